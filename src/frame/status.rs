//! What a running frame is showing and how it is set, kept current from its [`Event`]s for the
//! remote controls (the control page, MQTT) to read.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::settings_edit::PageSettings;
use super::{Event, Gallery};

/// The frame as the remote controls see it.
#[derive(Debug, Clone, Default)]
pub struct FrameState {
    pub seed: Option<u64>,
    /// RFC 3339, local time with its offset.
    pub painted_at: Option<String>,
    pub paint_seconds: Option<f64>,
    pub paused: bool,
    pub on_screen: Option<PathBuf>,
    pub pictures: u64,
    pub gallery: Option<Gallery>,
    pub settings: Option<PageSettings>,
    /// Config keys the command line sets: the page cannot change them.
    pub fixed: Vec<&'static str>,
    /// The display spec in force.
    pub display: String,
}

impl FrameState {
    pub fn observe(&mut self, e: &Event) {
        match e {
            Event::Picture {
                seed, paint_time, ..
            } => {
                self.seed = Some(*seed);
                self.paint_seconds = Some(paint_time.as_secs_f64());
                // RFC 3339, as Home Assistant's timestamp sensors want it.
                self.painted_at =
                    Some(chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
                self.pictures += 1;
            }
            Event::Controls { paused, on_screen } => {
                self.paused = *paused;
                self.on_screen = on_screen.map(Path::to_path_buf);
            }
            _ => {}
        }
    }
}

/// Locks `m`; a panic elsewhere while holding it leaves a state still worth showing.
pub fn lock(m: &Mutex<FrameState>) -> MutexGuard<'_, FrameState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
