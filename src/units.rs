//! Quantities people write in configs and display specs: durations ("10m", "1h30m") and
//! byte sizes ("500M").
//! Below both `display` and `frame`, which read them.

use std::time::Duration;

use crate::error::{Error, Result};

/// Parses `500ms`, `30s`, `10m`, `2h`, `1d` and sums such as `1h30m`; `0` alone is allowed.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let text = s.trim();
    let bad = |why: &str| {
        Error::Invalid(format!(
            "{s:?} is not a duration ({why}; examples: 30s, 10m, 1h30m, 500ms)"
        ))
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("a number needs a unit"))?;
        if n_end == 0 {
            return Err(bad("expected a number"));
        }
        let n: f64 = rest[..n_end].parse().map_err(|_| bad("bad number"))?;
        let after = &rest[n_end..];
        let u_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let unit = match &after[..u_end] {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(bad("a number needs a unit")),
            _ => return Err(bad("units are ms, s, m, h, d")),
        };
        let secs = n * unit;
        if !secs.is_finite() || secs > 1e9 {
            return Err(bad("too long"));
        }
        total += Duration::from_secs_f64(secs);
        rest = after[u_end..].trim_start();
    }
    Ok(total)
}

/// Parses `500M`, `2G`, `100k`, `12345` (bytes; powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'B' => 1,
                _ => 0,
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .filter(|_| mult > 0)
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{s:?} is not a size in bytes (examples: 500M, 2G, 100k)"
            ))
        })
}
