//! The `?key=value&...` part of a display spec, taken apart once; each display takes the keys it
//! knows and whatever is left over is an error naming the key.

use std::path::PathBuf;

use super::parse_size;
use crate::error::{Error, Result};
use crate::limits::MAX_SIDE;

pub(crate) fn invalid(spec: &str, msg: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("display {spec:?}: {msg}"))
}

/// The options of one spec, with the spec's text for error messages.
pub(crate) struct Options<'a> {
    pub text: &'a str,
    pairs: Vec<(String, String)>,
}

impl<'a> Options<'a> {
    pub fn parse(text: &'a str, query: Option<&str>) -> Result<Self> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| invalid(text, format!("option {pair:?} is not key=value")))?;
            if pairs.iter().any(|(seen, _)| seen == k) {
                return Err(invalid(text, format!("option {k:?} is given twice")));
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(Options { text, pairs })
    }

    pub fn err(&self, msg: impl std::fmt::Display) -> Error {
        invalid(self.text, msg)
    }

    pub fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }

    /// The first option nobody took, if any.
    pub fn leftover(&self) -> Option<&str> {
        self.pairs.first().map(|(k, _)| k.as_str())
    }

    pub fn num(&self, key: &str, v: &str) -> Result<u64> {
        v.parse::<u64>()
            .map_err(|_| self.err(format!("{key}={v:?} is not a whole number")))
    }

    /// A whole number within `lo..=hi`, or `default` when absent.
    pub fn ranged(&mut self, key: &str, lo: u64, hi: u64, default: u64) -> Result<u64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => {
                let n = self.num(key, &v)?;
                if !(lo..=hi).contains(&n) {
                    return Err(self.err(format!("{key}={n} is out of range ({lo}..={hi})")));
                }
                Ok(n)
            }
        }
    }

    /// `WxH`, or `default` when absent.
    pub fn size(&self, key: &str, v: Option<String>, default: (u32, u32)) -> Result<(u32, u32)> {
        match v {
            None => Ok(default),
            Some(v) => match parse_size(&v) {
                Some((w, h)) if w.max(h) <= MAX_SIDE => Ok((w, h)),
                Some(_) => Err(self.err(format!(
                    "{key}={v} is larger than petal draws ({MAX_SIDE} pixels a side at most)"
                ))),
                None => Err(self.err(format!("{key}={v:?} is not WxH (like 800x480)"))),
            },
        }
    }

    /// `on|off` (also `true|false`, `1|0`, `yes|no`), or `default` when absent.
    pub fn flag(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key).as_deref() {
            None => Ok(default),
            Some("on" | "true" | "1" | "yes") => Ok(true),
            Some("off" | "false" | "0" | "no") => Ok(false),
            Some(v) => Err(self.err(format!("{key}={v:?} (expected on or off)"))),
        }
    }

    /// A path, or `default` when absent.
    pub fn path(&mut self, key: &str, default: &str) -> Result<PathBuf> {
        match self.take(key) {
            None => Ok(PathBuf::from(default)),
            Some(v) if v.is_empty() => Err(self.err(format!("{key}= needs a path"))),
            Some(v) => Ok(PathBuf::from(v)),
        }
    }

    /// A GPIO line number (the BCM number on a Raspberry Pi), `none`, or `default` when absent.
    pub fn gpio(&mut self, key: &str, default: Option<u32>) -> Result<Option<u32>> {
        match self.take(key).as_deref() {
            None => Ok(default),
            Some("none" | "-") => Ok(None),
            Some(v) => v.parse::<u32>().map(Some).map_err(|_| {
                self.err(format!(
                    "{key}={v:?} is not a GPIO line number (like {key}=25, the BCM number on a Raspberry Pi)"
                ))
            }),
        }
    }

    /// `0|90|180|270`.
    pub fn rotation(&mut self) -> Result<u16> {
        match self.take("rotate").as_deref() {
            None | Some("0") => Ok(0),
            Some("90") => Ok(90),
            Some("180") => Ok(180),
            Some("270") => Ok(270),
            Some(v) => Err(self.err(format!("rotate={v:?} (expected 0, 90, 180 or 270)"))),
        }
    }
}

/// Fails when two named GPIO lines are the same (a wiring mistake the panel cannot report).
pub(crate) fn distinct_gpios(opts: &Options, pins: &[(&str, Option<u32>)]) -> Result<()> {
    for (i, (a, pa)) in pins.iter().enumerate() {
        for (b, pb) in &pins[i + 1..] {
            if let (Some(x), Some(y)) = (pa, pb) {
                if x == y {
                    return Err(opts.err(format!("{a} and {b} are both GPIO {x}")));
                }
            }
        }
    }
    Ok(())
}

/// Width and height after turning a panel by `rotate` degrees clockwise (90 and 270 swap them).
pub(crate) fn rotated((w, h): (u32, u32), rotate: u16) -> (u32, u32) {
    if rotate % 180 == 90 {
        (h, w)
    } else {
        (w, h)
    }
}

/// The error for a missing or unknown panel model in `kind:MODEL` (`example`: a whole spec).
pub(crate) fn unknown_model(
    opts: &Options,
    kind: &str,
    what: &str,
    name: &str,
    names: &str,
    example: &str,
) -> Error {
    let problem = if name.is_empty() {
        "no panel model".to_string()
    } else {
        format!("unknown {what} model {name:?}")
    };
    opts.err(format!(
        "{problem} (expected {kind}:MODEL with MODEL one of {names}, like {example})"
    ))
}
