//! Telling a running frame what to do: the commands its buttons and its control page (and later
//! MQTT) send, through one channel the frame loop reads between pictures.
//!
//! Commands are handled while the frame waits for its next picture, within a tick (50 ms). One
//! sent while a picture is being painted waits for that picture to finish: painting is seconds
//! on a Pi, and a half-painted picture is worth nothing.

use std::str::FromStr;
use std::sync::mpsc::{channel, Receiver, Sender};

use crate::error::{Error, Result};

/// `petal frame`'s exit status after [`Command::Shutdown`]: boards/petal.service powers the
/// board off on it (petal's own user may not), and does not restart petal.
pub const SHUTDOWN_EXIT_STATUS: i32 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// After `Previous`: the gallery picture after the one on screen. Otherwise, as `Paint`.
    Next,
    /// Paint a new picture now (also while paused: one picture, still paused after).
    Paint,
    /// Show the gallery picture before the one on screen (again: the one before that).
    Previous,
    /// Keep the picture on screen as a favourite, which retention never deletes.
    Keep,
    /// Stop painting new pictures until the next `Pause`.
    Pause,
    /// End the frame cleanly, as SIGTERM does, and ask for the machine to be powered off.
    Shutdown,
    /// End this run of the loop so that the caller reads its settings again (the control page
    /// saved new ones); the gallery, and with it the seed sequence, carries on.
    Reload,
}

impl Command {
    pub const NAMES: &'static str = "next, paint, previous, keep, pause, shutdown, reload";

    pub fn name(self) -> &'static str {
        match self {
            Command::Next => "next",
            Command::Paint => "paint",
            Command::Previous => "previous",
            Command::Keep => "keep",
            Command::Pause => "pause",
            Command::Shutdown => "shutdown",
            Command::Reload => "reload",
        }
    }
}

impl FromStr for Command {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "next" => Command::Next,
            "paint" => Command::Paint,
            "previous" | "prev" => Command::Previous,
            "keep" | "favourite" | "favorite" => Command::Keep,
            "pause" => Command::Pause,
            "shutdown" => Command::Shutdown,
            "reload" => Command::Reload,
            other => {
                return Err(Error::Invalid(format!(
                    "unknown command {other:?} (expected one of {})",
                    Command::NAMES
                )))
            }
        })
    }
}

/// The frame's end of the channel; [`Remote`]s are the other ends.
pub struct Inbox(Receiver<Command>);

/// Sends commands to a frame; cheap to clone, one per source (buttons, the control page).
#[derive(Clone)]
pub struct Remote(Sender<Command>);

impl Remote {
    /// False once the frame has ended.
    pub fn send(&self, c: Command) -> bool {
        self.0.send(c).is_ok()
    }
}

/// A channel from any number of [`Remote`]s to one frame.
pub fn channel_pair() -> (Remote, Inbox) {
    let (tx, rx) = channel();
    (Remote(tx), Inbox(rx))
}

impl Inbox {
    /// An inbox nobody can send to: a frame without controls.
    pub fn none() -> Self {
        channel_pair().1
    }

    /// The next command, if one is waiting.
    pub fn poll(&self) -> Option<Command> {
        self.0.try_recv().ok()
    }
}
