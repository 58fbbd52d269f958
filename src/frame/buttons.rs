//! Buttons on the frame (the Inky Impression's A-D, or any push buttons to ground on GPIO
//! lines): each press, debounced, becomes a [`Command`] for the frame.
//!
//! `buttons = "inky"` in the frame config is the Inky Impression's four buttons; any other set
//! is a comma-separated list of `GPIO:SHORT[:LONG]`, e.g. `"5:next:pause,24:-:shutdown"`:
//! the GPIO line, the command of a short press and that of a press held for [`LONG_PRESS`]
//! (`-` for none). A short press acts when the button is released, so a long press never
//! does both. Buttons are read as pulled up and pressed to ground (active low).
//!
//! The lines are polled every [`POLL`] on a thread of their own, so a press is seen while a
//! picture is being painted too; the frame acts on it between pictures (see [`super::control`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::control::{Command, Remote};
use crate::error::{Error, Result};

/// A level must hold this long to count: contacts bounce for a few milliseconds.
pub const DEBOUNCE: Duration = Duration::from_millis(30);
/// Held this long, a press is a long press.
pub const LONG_PRESS: Duration = Duration::from_secs(2);
pub const POLL: Duration = Duration::from_millis(10);

/// The Inky Impression's buttons A-D (GPIO 5, 6, 16, 24): next (held: pause), previous, keep,
/// and shutdown, which takes a long press so that a brush against the frame cannot power it off.
pub const INKY: &str = "5:next:pause,6:previous,16:keep,24:-:shutdown";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub gpio: u32,
    pub short: Option<Command>,
    pub long: Option<Command>,
}

/// Parses `inky` or `GPIO:SHORT[:LONG],...`.
pub fn parse_buttons(text: &str) -> Result<Vec<Button>> {
    let spec = if text.trim().eq_ignore_ascii_case("inky") {
        INKY
    } else {
        text
    };
    let bad = |msg: String| {
        Error::Invalid(format!(
            "buttons {text:?}: {msg} (expected \"inky\" or GPIO:SHORT[:LONG],... with commands {} or -)",
            Command::NAMES
        ))
    };
    let command = |s: &str| -> Result<Option<Command>> {
        match s.trim() {
            "-" | "" => Ok(None),
            c => c.parse().map(Some).map_err(|e| bad(format!("{e}"))),
        }
    };
    let mut out: Vec<Button> = Vec::new();
    for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
        let parts: Vec<&str> = item.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad(format!("{item:?} is not GPIO:SHORT[:LONG]")));
        }
        let gpio: u32 = parts[0]
            .trim()
            .parse()
            .ok()
            .filter(|g| *g < 1024)
            .ok_or_else(|| bad(format!("{:?} is not a GPIO line number", parts[0])))?;
        if out.iter().any(|b| b.gpio == gpio) {
            return Err(bad(format!("GPIO {gpio} is given twice")));
        }
        let short = command(parts[1])?;
        let long = match parts.get(2) {
            Some(l) => command(l)?,
            None => None,
        };
        if short.is_none() && long.is_none() {
            return Err(bad(format!("GPIO {gpio} has no command")));
        }
        out.push(Button { gpio, short, long });
    }
    if out.is_empty() {
        return Err(bad("no button".into()));
    }
    Ok(out)
}

/// One button's debouncing and press timing.
#[derive(Debug, Clone)]
struct Debounce {
    /// The level that has held for [`DEBOUNCE`].
    pressed: bool,
    raw: bool,
    raw_since: Instant,
    down_since: Option<Instant>,
    long_sent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Press {
    Short,
    Long,
}

impl Debounce {
    fn new(now: Instant) -> Self {
        Debounce {
            pressed: false,
            raw: false,
            raw_since: now,
            down_since: None,
            long_sent: false,
        }
    }

    /// `long`: whether a long press means something; without, a press acts when let go,
    /// however long it was held.
    fn update(&mut self, raw: bool, now: Instant, long: bool) -> Option<Press> {
        if raw != self.raw {
            self.raw = raw;
            self.raw_since = now;
        }
        if self.raw != self.pressed && now - self.raw_since >= DEBOUNCE {
            self.pressed = self.raw;
            if self.pressed {
                self.down_since = Some(self.raw_since);
                self.long_sent = false;
            } else {
                self.down_since = None;
                if !self.long_sent {
                    return Some(Press::Short);
                }
            }
        }
        match self.down_since {
            Some(t) if long && !self.long_sent && now - t >= LONG_PRESS => {
                self.long_sent = true;
                Some(Press::Long)
            }
            _ => None,
        }
    }
}

/// The buttons' state: levels in, commands out.
pub struct ButtonPanel {
    buttons: Vec<(Button, Debounce)>,
}

impl ButtonPanel {
    pub fn new(buttons: Vec<Button>, now: Instant) -> Self {
        ButtonPanel {
            buttons: buttons
                .into_iter()
                .map(|b| (b, Debounce::new(now)))
                .collect(),
        }
    }

    pub fn gpios(&self) -> Vec<u32> {
        self.buttons.iter().map(|(b, _)| b.gpio).collect()
    }

    /// Takes the lines' levels at `now` (`high[i]` for the i-th button; high = released) and
    /// returns the commands they make.
    pub fn update(&mut self, high: &[bool], now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        for ((button, debounce), &level) in self.buttons.iter_mut().zip(high) {
            let c = match debounce.update(!level, now, button.long.is_some()) {
                Some(Press::Short) => button.short,
                Some(Press::Long) => button.long,
                None => None,
            };
            out.extend(c);
        }
        out
    }
}

/// Polls `read` (the buttons' levels, in order) every [`POLL`] until `stop` is set or the frame
/// is gone, sending the commands; a read that fails is reported once and retried.
pub fn watch(
    mut panel: ButtonPanel,
    mut read: impl FnMut() -> Result<Vec<bool>>,
    remote: &Remote,
    stop: &AtomicBool,
    report: &mut dyn FnMut(&Error),
) {
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        match read() {
            Ok(levels) => {
                failing = false;
                for c in panel.update(&levels, Instant::now()) {
                    if !remote.send(c) {
                        return;
                    }
                }
            }
            Err(e) => {
                if !failing {
                    report(&e);
                }
                failing = true;
            }
        }
        std::thread::sleep(POLL);
    }
}
