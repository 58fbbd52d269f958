//! Quiet hours ("22:00-07:00") and the wall clock. Durations are parsed in [`crate::units`].

use chrono::{DateTime, Datelike, Local, Timelike};

use crate::error::{Error, Result};

/// A daily window in local time when the frame neither paints nor refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// Minutes after midnight.
    pub start: u32,
    pub end: u32,
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':').unwrap_or((s.trim(), "0"));
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some((h * 60 + m) % (24 * 60))
}

impl std::str::FromStr for QuietHours {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "quiet hours {s:?} are not HH:MM-HH:MM (like 22:00-07:00)"
            ))
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (start, end) = (
            parse_hhmm(a).ok_or_else(bad)?,
            parse_hhmm(b).ok_or_else(bad)?,
        );
        if start == end {
            return Err(Error::Invalid(format!(
                "quiet hours {s:?} start and end at the same time"
            )));
        }
        Ok(QuietHours { start, end })
    }
}

impl QuietHours {
    /// Whether `minute` (after midnight) is inside; the window may span midnight.
    pub fn contains(&self, minute: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Whether the local time `now` is inside.
    pub fn contains_time(&self, now: &DateTime<Local>) -> bool {
        self.contains(now.hour() * 60 + now.minute())
    }
}

/// Wall-clock time as the frame sees it. Only quiet hours, captions and file names read it;
/// waiting between pictures uses the monotonic clock, so a clock that jumps (NTP arriving
/// after a boot without a real-time clock) cannot stall or rush the loop. Tests replace it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Local>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Local> {
        Local::now()
    }
}

/// A Raspberry Pi has no battery-backed clock: until NTP answers it boots at 1970 or at its
/// last saved time. A year before this one means the clock has not been set.
pub const EARLIEST_SET_YEAR: i32 = 2025;

/// Whether `now` can be a real time (see [`EARLIEST_SET_YEAR`]).
pub fn clock_is_set(now: &DateTime<Local>) -> bool {
    now.year() >= EARLIEST_SET_YEAR
}

/// "2026-11-28 00:32", local time.
pub fn local_stamp(now: &DateTime<Local>) -> String {
    now.format("%Y-%m-%d %H:%M").to_string()
}

/// "20261128-003205", UTC, for people reading file names (order comes from a sequence number).
pub fn utc_file_stamp(now: &DateTime<Local>) -> String {
    now.with_timezone(&chrono::Utc)
        .format("%Y%m%d-%H%M%S")
        .to_string()
}
