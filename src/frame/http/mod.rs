//! The control page: `petal frame --http ADDR` serves a small web page and a JSON API that send
//! the frame the same commands as its buttons, and change its main settings in its TOML config.
//!
//! Security, for a frame on a home network:
//! - it listens on loopback unless told otherwise; a LAN address needs a token file (made by
//!   boards/install.sh, mode 0600), and every request from the LAN must carry the token;
//! - every state-changing action is a POST with the token in the `X-Petal-Token` header, also
//!   on loopback: a browser sends that header to another origin only after a CORS preflight,
//!   which petal never answers, so no other web page can act for the user (no CSRF). The page
//!   gets the token inside the HTML, which other origins cannot read;
//! - on loopback the `Host` header must name loopback, so a DNS-rebound name cannot read the
//!   page (and its token);
//! - gallery files are served by name only when the name is one of petal's picture names;
//! - bodies are limited to [`MAX_BODY`] bytes, requests to a rate, and wrong tokens to a lower one.
//!
//! One thread serves requests one at a time: a frame has one or two viewers, and tiny_http
//! keeps the binary small (see docs/frame.md for what it adds).

mod routes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Remote;
use crate::error::{Error, Result};
use crate::frame::settings_edit::SettingsSaver;
pub use crate::frame::settings_edit::{PageSettings, SettingsChange, Validator};
pub use crate::frame::status::FrameState;

/// The largest request body accepted (a settings change is ~100 bytes).
pub const MAX_BODY: usize = 4096;
/// The longest request target accepted.
pub const MAX_URL: usize = 2048;
/// Requests per second allowed on average, and in a burst.
pub const RATE_PER_SECOND: f64 = 20.0;
pub const RATE_BURST: f64 = 60.0;
/// Requests without the right token allowed per second, and in a burst: guessing is slow, and
/// someone guessing does not lock out the owner, whose requests carry the token.
pub const FAILURES_PER_SECOND: f64 = 1.0;
pub const FAILURES_BURST: f64 = 10.0;

/// Where and how to listen.
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// The token file; required for a non-loopback address. Without one, a token is made for
    /// this run (loopback only).
    pub token_file: Option<PathBuf>,
    /// The frame's TOML config, where settings are saved; `None`: settings are read-only.
    pub config: Option<PathBuf>,
}

/// A running control page; stops when dropped.
pub struct ControlPage {
    pub addr: SocketAddr,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ControlPage {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a token file: one line, at least 16 characters, readable by its owner only.
pub fn read_token(path: &Path) -> Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Invalid(format!(
                "http token {}: mode {mode:o} lets others read it; chmod 600 it",
                path.display()
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let token = text.trim().to_string();
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Invalid(format!(
            "http token {}: expected one line of at least 16 printable characters",
            path.display()
        )));
    }
    Ok(token)
}

/// A token for one run: 128 random bits as hex.
fn fresh_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Starts serving. An address in use, a LAN address without a token file, or an unreadable
/// token file is an error now.
pub fn start(
    cfg: HttpConfig,
    state: Arc<Mutex<FrameState>>,
    remote: Remote,
    validate: Validator,
) -> Result<ControlPage> {
    let loopback = cfg.addr.ip().is_loopback();
    let token = match &cfg.token_file {
        Some(p) => read_token(p)?,
        None if loopback => fresh_token(),
        None => {
            return Err(Error::Invalid(format!(
                "--http {}: a non-loopback address needs a token file (--http-token-file; boards/install.sh makes /etc/petal/http-token)",
                cfg.addr
            )))
        }
    };
    let server = tiny_http::Server::http(cfg.addr)
        .map_err(|e| Error::Invalid(format!("--http {}: cannot listen there: {e}", cfg.addr)))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Invalid(format!("--http {}: not an IP address", cfg.addr)))?;
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let mut site = routes::Site {
        token,
        loopback,
        saver: SettingsSaver {
            config: cfg.config,
            state: Arc::clone(&state),
            remote: remote.clone(),
            validate,
        },
        state,
        remote,
        bucket: RateBucket::new(RATE_PER_SECOND, RATE_BURST, Instant::now()),
        failures: RateBucket::new(FAILURES_PER_SECOND, FAILURES_BURST, Instant::now()),
    };
    let thread = std::thread::Builder::new()
        .name("petal-http".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match server.recv_timeout(Duration::from_millis(100)) {
                    Ok(Some(req)) => site.serve(req),
                    Ok(None) => {}
                    // The listener itself failed: nothing more to serve, the frame goes on.
                    Err(e) => {
                        log::error!("control page: {e}");
                        break;
                    }
                }
            }
        })
        .map_err(|e| Error::Invalid(format!("cannot start the control page's thread: {e}")))?;
    Ok(ControlPage {
        addr,
        done,
        thread: Some(thread),
    })
}

/// A token bucket: `rate` a second on average, `burst` at once.
struct RateBucket {
    rate: f64,
    burst: f64,
    level: f64,
    at: Instant,
}

impl RateBucket {
    fn new(rate: f64, burst: f64, now: Instant) -> Self {
        RateBucket {
            rate,
            burst,
            level: burst,
            at: now,
        }
    }

    /// Takes one if the bucket holds it.
    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.rate).min(self.burst);
        self.at = now;
        if self.level >= 1.0 {
            self.level -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = RateBucket::new(20.0, 60.0, t0);
        let burst = (0..200).filter(|_| b.take(t0)).count();
        assert_eq!(burst, 60);
        let later = t0 + Duration::from_secs(1);
        let next = (0..200).filter(|_| b.take(later)).count();
        assert_eq!(next, 20);
    }

    #[test]
    fn token_files_readable_by_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "0123456789abcdef0123\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = read_token(&p).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(read_token(&p).unwrap(), "0123456789abcdef0123");
        std::fs::write(&p, "short\n").unwrap();
        assert!(read_token(&p).is_err());
    }
}
