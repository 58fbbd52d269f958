//! A display that keeps the frames it is shown, for tests and dry runs. Clones share one
//! [`Recording`], so a test can hand a display to the frame loop and look at what it showed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use image::RgbImage;

use super::canvas::draw_into_canvas;
use super::{Canvas, Display, Palette};
use crate::error::{Error, Result};

/// The frames a [`MemoryDisplay`] was shown (the last `keep` of them) and how many in all.
#[derive(Debug, Default)]
pub struct Recorded {
    pub frames: std::collections::VecDeque<RgbImage>,
    pub shown: u64,
    /// Failed `show` calls (see [`MemoryDisplay::fail_next`]).
    pub failures: u64,
    fail_next: u64,
    /// Set by [`Recording::close`], like a viewer closing a window.
    closed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Recording(Arc<Mutex<Recorded>>);

impl Recording {
    pub fn lock(&self) -> MutexGuard<'_, Recorded> {
        // A poisoned lock only means a test thread panicked while holding it; the data is fine.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the recorded frames, oldest first.
    pub fn frames(&self) -> Vec<RgbImage> {
        self.lock().frames.iter().cloned().collect()
    }

    pub fn shown(&self) -> u64 {
        self.lock().shown
    }

    /// Makes the display report itself closed from now on.
    pub fn close(&self) {
        self.lock().closed = true;
    }
}

#[derive(Debug, Clone)]
pub struct MemoryDisplay {
    canvas: Canvas,
    keep: usize,
    recording: Recording,
    palette: Option<Palette>,
    min_refresh: Duration,
}

impl MemoryDisplay {
    /// A display of `width` x `height` that keeps every frame.
    pub fn new(width: u32, height: u32) -> Self {
        MemoryDisplay {
            canvas: Canvas::new(width, height),
            keep: usize::MAX,
            recording: Recording::default(),
            palette: None,
            min_refresh: Duration::ZERO,
        }
    }

    /// Keeps only the last `keep` frames (memory stays flat over long runs).
    pub fn keep_last(mut self, keep: usize) -> Self {
        self.keep = keep;
        self
    }

    /// Behaves like a panel with these colours.
    pub fn with_palette(mut self, palette: Palette) -> Self {
        self.palette = Some(palette);
        self
    }

    /// Behaves like a slow panel.
    pub fn with_min_refresh_interval(mut self, d: Duration) -> Self {
        self.min_refresh = d;
        self
    }

    /// The shared record of shown frames.
    pub fn recording(&self) -> Recording {
        self.recording.clone()
    }

    /// Makes the next `n` calls to `show` fail, like an unplugged screen.
    pub fn fail_next(&self, n: u64) {
        self.recording.lock().fail_next = n;
    }
}

draw_into_canvas!(MemoryDisplay);

impl Display for MemoryDisplay {
    fn describe(&self) -> String {
        format!(
            "memory {}x{}",
            self.canvas.image.width(),
            self.canvas.image.height()
        )
    }

    fn show(&mut self) -> Result<()> {
        let mut rec = self.recording.lock();
        if rec.fail_next > 0 {
            rec.fail_next -= 1;
            rec.failures += 1;
            return Err(Error::Image("memory display: failing on request".into()));
        }
        rec.shown += 1;
        if self.keep == 0 {
            return Ok(());
        }
        while rec.frames.len() >= self.keep {
            rec.frames.pop_front();
        }
        rec.frames.push_back(self.canvas.image.clone());
        Ok(())
    }

    fn min_refresh_interval(&self) -> Duration {
        self.min_refresh
    }

    fn palette(&self) -> Option<&Palette> {
        self.palette.as_ref()
    }

    fn closed(&mut self) -> bool {
        self.recording.lock().closed
    }
}
