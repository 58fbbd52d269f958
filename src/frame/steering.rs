//! Steering a running frame: the commands (next, previous, keep, pause, reload, shutdown) are
//! handled between pictures and while waiting for the next one.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::screen::Screen;
use super::{Command, Event, Gallery, Inbox, TICK};
use crate::display::Display;

/// What the commands have set, across pictures.
#[derive(Default)]
pub(super) struct Controls {
    pub(super) paused: bool,
    pub(super) shutdown: bool,
    pub(super) reload: bool,
    /// The gallery file of the picture on screen (the newest, or one `Previous` went back to).
    pub(super) on_screen: Option<PathBuf>,
}

/// How a wait between pictures ended.
pub(super) enum Waited {
    /// Time for the next picture (or `Next`).
    Due,
    /// Stopped: `stop`, a closed display, or `Shutdown`.
    Stopped,
}

impl Controls {
    /// Does what `c` asks, except starting a picture or ending the run, which it returns.
    pub(super) fn handle<D: Display>(
        &mut self,
        c: Command,
        gallery: Option<&Gallery>,
        screen: &mut Screen<D>,
        stop: &AtomicBool,
    ) -> Option<Waited> {
        let waited = self.handle_one(c, gallery, screen, stop);
        self.announce(screen);
        waited
    }

    /// Tells the caller what the commands have set (for the control page and MQTT).
    pub(super) fn announce<D: Display>(&self, screen: &mut Screen<D>) {
        (screen.events)(Event::Controls {
            paused: self.paused,
            on_screen: self.on_screen.as_deref(),
        });
    }

    fn handle_one<D: Display>(
        &mut self,
        c: Command,
        gallery: Option<&Gallery>,
        screen: &mut Screen<D>,
        stop: &AtomicBool,
    ) -> Option<Waited> {
        let newer = match (c, gallery) {
            (Command::Next, Some(g)) => match g.after(self.on_screen.as_deref()) {
                Ok(p) => p,
                Err(e) => {
                    (screen.events)(Event::Command {
                        command: c,
                        outcome: format!("cannot list the gallery: {e}"),
                    });
                    return None;
                }
            },
            _ => None,
        };
        if let Some(path) = newer {
            let outcome = self.show(&path, screen, stop);
            (screen.events)(Event::Command {
                command: c,
                outcome,
            });
            return None;
        }
        let outcome = match c {
            Command::Next | Command::Paint => {
                return self.say(c, "the next picture now", Waited::Due, screen);
            }
            Command::Reload => {
                self.reload = true;
                return self.say(c, "reading the settings again", Waited::Stopped, screen);
            }
            Command::Shutdown => {
                self.shutdown = true;
                return self.say(
                    c,
                    "stopping the frame to power off",
                    Waited::Stopped,
                    screen,
                );
            }
            Command::Pause => {
                self.paused = !self.paused;
                if self.paused {
                    "paused: no new pictures until the next pause".to_string()
                } else {
                    "painting again".to_string()
                }
            }
            Command::Keep => match (gallery, &self.on_screen) {
                (Some(g), Some(p)) => match g.keep_favourite(p) {
                    Ok(kept) => format!("kept {} as a favourite", kept.display()),
                    Err(e) => format!("cannot keep it: {e}"),
                },
                (None, _) => "nothing to keep: the frame has no gallery".into(),
                (_, None) => "nothing to keep yet".into(),
            },
            Command::Previous => match gallery {
                None => "no earlier picture: the frame has no gallery".into(),
                Some(g) => match g.before(self.on_screen.as_deref()) {
                    Ok(Some(path)) => self.show(&path, screen, stop),
                    Ok(None) => "no earlier picture in the gallery".into(),
                    Err(e) => format!("cannot list the gallery: {e}"),
                },
            },
        };
        (screen.events)(Event::Command {
            command: c,
            outcome,
        });
        None
    }

    /// Reports what `c` did, and ends the wait as `waited`.
    fn say<D: Display>(
        &self,
        c: Command,
        outcome: &str,
        waited: Waited,
        screen: &mut Screen<D>,
    ) -> Option<Waited> {
        (screen.events)(Event::Command {
            command: c,
            outcome: outcome.into(),
        });
        Some(waited)
    }

    /// Puts a gallery picture on the screen; says what happened.
    pub(super) fn show<D: Display>(
        &mut self,
        path: &Path,
        screen: &mut Screen<D>,
        stop: &AtomicBool,
    ) -> String {
        match image::open(path) {
            Ok(img) => {
                screen.present_final(img.to_rgb8(), None, stop);
                self.on_screen = Some(path.to_path_buf());
                format!("showing {}", path.display())
            }
            Err(e) => format!("cannot read {}: {e}", path.display()),
        }
    }
}

/// Waits in ticks until `deadline` (restarted when `Previous` puts an older picture up, so it
/// gets a whole interval; ignored while paused), handling commands meanwhile.
pub(super) fn wait_for_next<D: Display>(
    mut deadline: Instant,
    every: Duration,
    stop: &AtomicBool,
    screen: &mut Screen<D>,
    inbox: &Inbox,
    controls: &mut Controls,
    gallery: Option<&Gallery>,
) -> Waited {
    loop {
        if screen.ending(stop) {
            return Waited::Stopped;
        }
        while let Some(c) = inbox.poll() {
            if let Some(w) = controls.handle(c, gallery, screen, stop) {
                return w;
            }
            if matches!(c, Command::Previous | Command::Next) {
                // A picture from the gallery went up: it gets a whole interval.
                deadline = Instant::now() + every;
            }
        }
        screen.tick();
        let now = Instant::now();
        if now >= deadline && !controls.paused {
            return Waited::Due;
        }
        let left = if controls.paused {
            TICK
        } else {
            deadline - now
        };
        std::thread::sleep(TICK.min(left));
    }
}
