//! The frame's display: opened lazily, retried with a doubling wait when it fails, and kept to
//! a panel's refresh limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use image::RgbImage;

use super::{Event, MAX_BACKOFF, TICK};
use crate::display::compose::compose;
use crate::display::scale::Layout;
use crate::display::Display;
use crate::error::{Error, Result};

/// The display, opened lazily and retried with a doubling wait when it fails.
pub(super) struct Screen<'a, D: Display> {
    pub(super) open: &'a mut dyn FnMut() -> Result<D>,
    pub(super) events: &'a mut dyn FnMut(Event),
    pub(super) display: Option<D>,
    pub(super) layout: Layout,
    pub(super) backoff: Duration,
    pub(super) first_backoff: Duration,
    pub(super) retry_at: Option<Instant>,
    pub(super) failures_in_row: u64,
    pub(super) last_show: Option<Instant>,
    /// A finished picture (and caption) the display has not shown yet.
    pub(super) pending: Option<(RgbImage, Option<String>)>,
    pub(super) shown: u64,
    pub(super) failures: u64,
    pub(super) closed: bool,
}

impl<D: Display> Screen<'_, D> {
    /// Whether the run should end: `stop` set, or the display closed by its viewer.
    pub(super) fn ending(&mut self, stop: &AtomicBool) -> bool {
        if stop.load(Ordering::Relaxed) || self.closed {
            return true;
        }
        if self.display.as_mut().is_some_and(|d| d.closed()) {
            self.closed = true;
            (self.events)(Event::DisplayClosed);
        }
        self.closed
    }

    pub(super) fn ready(&mut self) -> bool {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        if self.display.is_none() {
            match (self.open)() {
                Ok(d) => {
                    (self.events)(Event::DisplayOpened {
                        describe: d.describe(),
                    });
                    self.display = Some(d);
                }
                Err(e) => {
                    self.failed(e);
                    return false;
                }
            }
        }
        true
    }

    pub(super) fn failed(&mut self, e: Error) {
        self.failures += 1;
        self.failures_in_row += 1;
        self.backoff = if self.failures_in_row == 1 {
            self.first_backoff
        } else {
            (self.backoff * 2).min(MAX_BACKOFF)
        };
        self.retry_at = Some(Instant::now() + self.backoff);
        // Opened again on the next try: an unplugged screen may come back with another mode.
        self.display = None;
        (self.events)(Event::DisplayFailed {
            error: &e,
            retry_in: self.backoff,
        });
    }

    /// Whether step-by-step pictures are worth showing (an open display with no refresh limit).
    pub(super) fn fast(&mut self) -> bool {
        self.ready()
            && self
                .display
                .as_ref()
                .is_some_and(|d| d.min_refresh_interval().is_zero())
    }

    /// Shows `picture` (model resolution) now, if the display can; true when shown.
    pub(super) fn present(&mut self, picture: &RgbImage, caption: Option<&str>) -> bool {
        if !self.ready() {
            return false;
        }
        let Some(d) = self.display.as_mut() else {
            return false;
        };
        let (w, h) = d.dimensions();
        let frame = compose(picture, w, h, &self.layout, caption, d.palette());
        match d.draw_image(&frame).and_then(|()| d.show()) {
            Ok(()) => {
                if self.failures_in_row > 0 {
                    (self.events)(Event::DisplayRecovered {
                        after_failures: self.failures_in_row,
                    });
                }
                self.failures_in_row = 0;
                self.retry_at = None;
                self.last_show = Some(Instant::now());
                self.shown += 1;
                true
            }
            Err(e) => {
                self.failed(e);
                false
            }
        }
    }

    /// Shows a finished picture, waiting for the panel's refresh limit; kept for a retry when
    /// the display fails.
    pub(super) fn present_final(
        &mut self,
        picture: RgbImage,
        caption: Option<String>,
        stop: &AtomicBool,
    ) {
        let limit = self
            .display
            .as_ref()
            .map_or(Duration::ZERO, |d| d.min_refresh_interval());
        if let Some(last) = self.last_show {
            let due = last + limit;
            while Instant::now() < due && !self.ending(stop) {
                std::thread::sleep(TICK.min(due.saturating_duration_since(Instant::now())));
            }
        }
        if !self.present(&picture, caption.as_deref()) {
            self.pending = Some((picture, caption));
        } else {
            self.pending = None;
        }
    }

    /// Retries a pending picture when its time has come.
    pub(super) fn tick(&mut self) {
        if self.pending.is_some() && self.retry_at.is_none_or(|t| Instant::now() >= t) {
            if let Some((pic, cap)) = self.pending.take() {
                if !self.present(&pic, cap.as_deref()) {
                    self.pending = Some((pic, cap));
                }
            }
        }
    }
}

/// Waits until `until`, ticking the screen; false when the run is ending.
pub(super) fn pause_until<D: Display>(
    until: Instant,
    screen: &mut Screen<D>,
    stop: &AtomicBool,
) -> bool {
    loop {
        if screen.ending(stop) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep(TICK.min(until - now));
    }
}
