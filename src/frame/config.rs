//! `petal frame` settings: a TOML file (`--config`) with every option, command-line flags on
//! top (flags win), checked all at once at start so a typo is an error before any painting.
//!
//! ```toml
//! display = "fb:/dev/fb0"
//! every = "10m"
//! morph = 8
//! caption = true
//! quiet-hours = "22:00-07:00"
//! gallery = "/var/lib/petal/gallery"
//! keep = 500
//! buttons = "inky"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::buttons::{parse_buttons, Button};
use super::gallery::Gallery;
use super::when::QuietHours;
use crate::display::scale::{parse_colour, Fit, Layout, Smoothing};
use crate::display::DisplaySpec;
use crate::error::{Error, Result};
use crate::units::{parse_bytes, parse_duration};

/// Every option, as the file or the flags give it (unparsed, all optional).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FrameOptions {
    /// Display spec: png:DIR, fb:/dev/fbN, memory, ...
    pub display: Option<String>,
    /// Time from the start of one picture to the start of the next ("10m").
    pub every: Option<String>,
    /// Stop after this many pictures.
    pub cycles: Option<u64>,
    /// In-between pictures when gliding from one picture to the next (0: cut).
    pub morph: Option<usize>,
    /// Show the picture emerging, step by step, on displays fast enough.
    pub emerging: Option<bool>,
    /// Draw the time and seed on each picture.
    pub caption: Option<bool>,
    /// "22:00-07:00": no painting and no refresh in this window (local time).
    pub quiet_hours: Option<String>,
    /// fit (letterbox) or fill (crop).
    pub fit: Option<String>,
    /// nearest (crisp pixels) or smooth.
    pub filter: Option<String>,
    /// Letterbox colour, #rrggbb.
    pub background: Option<String>,
    /// Directory where each picture is kept.
    pub gallery: Option<PathBuf>,
    /// Pictures kept in the gallery at most.
    pub keep: Option<usize>,
    /// Bytes kept in the gallery at most ("500M").
    pub keep_bytes: Option<String>,
    /// Gallery pictures upscaled to this many pixels (default: the model's resolution).
    pub gallery_size: Option<u32>,
    pub model: Option<String>,
    pub variant: Option<String>,
    /// "f32" or "f16" (cores with fp16 arithmetic).
    pub precision: Option<String>,
    pub sampler: Option<String>,
    pub steps: Option<usize>,
    pub spacing: Option<String>,
    pub eta: Option<f32>,
    /// A themed model's theme, "any" (one per picture) or "none".
    pub theme: Option<String>,
    /// Guidance scale of themed pictures (default: the model card's).
    pub guidance: Option<f32>,
    /// First seed; the next pictures take the following ones (default: random seeds).
    pub seed: Option<u64>,
    pub threads: Option<usize>,
    /// First wait after a display fails (doubles up to a minute); mostly for tests.
    pub retry: Option<String>,
    /// Push buttons on GPIO lines: "inky" or "GPIO:SHORT[:LONG],..." (see frame::buttons).
    pub buttons: Option<String>,
    /// The GPIO chip of the buttons (default /dev/gpiochip0).
    pub buttons_gpiochip: Option<PathBuf>,
    /// Serve the control page at this address ("127.0.0.1:8080").
    pub http: Option<String>,
    /// The control page's token (needed for a non-loopback address).
    pub http_token_file: Option<PathBuf>,
    /// An MQTT broker: "mqtt://[USER:PASS@]HOST[:PORT]".
    pub mqtt: Option<String>,
    /// The frame's name in MQTT topics and Home Assistant (default: the host name).
    pub mqtt_id: Option<String>,
}

/// Where each merged value came from, to name it in errors.
#[derive(Debug, Clone)]
pub struct Sources {
    config: Option<PathBuf>,
    from_flag: Vec<&'static str>,
}

impl Sources {
    /// The keys the command line set (over the config file).
    pub fn from_flags(&self) -> &[&'static str] {
        &self.from_flag
    }

    pub fn name(&self, key: &'static str) -> String {
        match &self.config {
            Some(p) if !self.from_flag.contains(&key) => format!("{key} in {}", p.display()),
            _ => format!("--{key}"),
        }
    }
}

impl FrameOptions {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "config {}: {}",
                origin.display(),
                e.to_string().trim_end()
            ))
        })
    }

    /// `flags` over `self` (a config file).
    pub fn merge(self, flags: FrameOptions, config: Option<&Path>) -> (FrameOptions, Sources) {
        let mut from_flag = Vec::new();
        macro_rules! pick {
            ($($f:ident => $k:literal),* $(,)?) => {
                FrameOptions {
                    $($f: match flags.$f {
                        Some(v) => { from_flag.push($k); Some(v) }
                        None => self.$f,
                    },)*
                }
            };
        }
        let merged = pick!(
            display => "display", every => "every", cycles => "cycles", morph => "morph",
            emerging => "emerging", caption => "caption", quiet_hours => "quiet-hours",
            fit => "fit", filter => "filter", background => "background", gallery => "gallery",
            keep => "keep", keep_bytes => "keep-bytes", gallery_size => "gallery-size",
            model => "model", variant => "variant", precision => "precision", sampler => "sampler", steps => "steps",
            spacing => "spacing", eta => "eta", theme => "theme", guidance => "guidance",
            seed => "seed", threads => "threads",
            retry => "retry", buttons => "buttons", buttons_gpiochip => "buttons-gpiochip",
            http => "http", http_token_file => "http-token-file", mqtt => "mqtt",
            mqtt_id => "mqtt-id",
        );
        (
            merged,
            Sources {
                config: config.map(Path::to_path_buf),
                from_flag,
            },
        )
    }
}

/// The loop's settings, parsed and checked (the generation settings are checked separately,
/// against the model).
#[derive(Debug, Clone)]
pub struct FrameSettings {
    pub display: DisplaySpec,
    pub every: Duration,
    pub cycles: Option<u64>,
    pub morph: usize,
    pub emerging: bool,
    pub caption: bool,
    pub quiet_hours: Option<QuietHours>,
    pub layout: Layout,
    pub gallery: Option<Gallery>,
    pub first_seed: Option<u64>,
    pub retry: Duration,
    pub buttons: Option<Vec<Button>>,
    pub buttons_gpiochip: PathBuf,
    /// Where to serve the control page.
    pub http: Option<std::net::SocketAddr>,
    pub http_token_file: Option<PathBuf>,
    /// The MQTT broker, checked (the client needs a build with the `mqtt` feature).
    pub mqtt: Option<String>,
    pub mqtt_id: Option<String>,
    /// Where an earlier run of the loop left off (after its settings were reloaded).
    pub resume: Option<crate::frame::Resume>,
    /// Wall-clock time (tests jump it; see [`crate::frame::when::Clock`]).
    pub clock: std::sync::Arc<dyn crate::frame::when::Clock>,
}

pub const DEFAULT_EVERY: &str = "10m";

/// `--http`: "IP:PORT", or a bare port on loopback.
pub fn parse_http_addr(s: &str) -> Result<std::net::SocketAddr> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        Error::Invalid(format!(
            "{s:?} is not an address to listen on (like 127.0.0.1:8080, 0.0.0.0:8080 for the LAN, or a port)"
        ))
    })
}
pub const MAX_MORPH: usize = 1000;

impl FrameSettings {
    /// Checks and parses everything but the generation settings.
    pub fn from_options(o: &FrameOptions, src: &Sources) -> Result<Self> {
        let err = |key: &'static str, e: Error| -> Error {
            let msg = match e {
                Error::Invalid(m) => m,
                other => other.to_string(),
            };
            Error::Invalid(format!("{}: {msg}", src.name(key)))
        };
        let display_text = o.display.as_deref().ok_or_else(|| {
            Error::Invalid(
                "no display: give --display (or display = \"...\" in the config), e.g. png:DIR or fb:/dev/fb0".into(),
            )
        })?;
        let display: DisplaySpec = display_text.parse().map_err(|e| err("display", e))?;
        let every = parse_duration(o.every.as_deref().unwrap_or(DEFAULT_EVERY))
            .map_err(|e| err("every", e))?;
        if o.cycles == Some(0) {
            return Err(err("cycles", Error::Invalid("must be at least 1".into())));
        }
        let morph = o.morph.unwrap_or(0);
        if morph > MAX_MORPH {
            return Err(err(
                "morph",
                Error::Invalid(format!(
                    "{morph} in-between pictures is more than {MAX_MORPH}"
                )),
            ));
        }
        let quiet_hours = o
            .quiet_hours
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| err("quiet-hours", e))?;
        let layout = Layout {
            fit: o
                .fit
                .as_deref()
                .map(str::parse::<Fit>)
                .transpose()
                .map_err(|e| err("fit", e))?
                .unwrap_or(Fit::Fit),
            smoothing: o
                .filter
                .as_deref()
                .map(str::parse::<Smoothing>)
                .transpose()
                .map_err(|e| err("filter", e))?
                .unwrap_or(Smoothing::Nearest),
            background: o
                .background
                .as_deref()
                .map(parse_colour)
                .transpose()
                .map_err(|e| err("background", e))?
                .unwrap_or([0, 0, 0]),
        };
        if o.keep == Some(0) {
            return Err(err(
                "keep",
                Error::Invalid("must be at least 1 picture".into()),
            ));
        }
        let keep_bytes = o
            .keep_bytes
            .as_deref()
            .map(parse_bytes)
            .transpose()
            .map_err(|e| err("keep-bytes", e))?;
        if o.gallery.is_none() {
            for (key, given) in [
                ("keep", o.keep.is_some()),
                ("keep-bytes", keep_bytes.is_some()),
                ("gallery-size", o.gallery_size.is_some()),
            ] {
                if given {
                    return Err(err(
                        key,
                        Error::Invalid("needs a gallery (--gallery DIR)".into()),
                    ));
                }
            }
        }
        match o.gallery_size {
            Some(0) => {
                return Err(err(
                    "gallery-size",
                    Error::Invalid("must be at least 1 pixel".into()),
                ))
            }
            Some(s) if s > crate::limits::MAX_SIDE => {
                return Err(err(
                    "gallery-size",
                    Error::Invalid(format!(
                        "{s} is larger than petal paints ({} pixels at most)",
                        crate::limits::MAX_SIDE
                    )),
                ))
            }
            _ => {}
        }
        if o.threads == Some(0) {
            return Err(err("threads", Error::Invalid("must be at least 1".into())));
        }
        let gallery = o.gallery.as_ref().map(|dir| Gallery {
            dir: dir.clone(),
            keep: o.keep,
            keep_bytes,
            size: o.gallery_size,
        });
        let retry =
            parse_duration(o.retry.as_deref().unwrap_or("1s")).map_err(|e| err("retry", e))?;
        let buttons = o
            .buttons
            .as_deref()
            .map(parse_buttons)
            .transpose()
            .map_err(|e| err("buttons", e))?;
        if buttons.is_none() && o.buttons_gpiochip.is_some() {
            return Err(err(
                "buttons-gpiochip",
                Error::Invalid("needs buttons (--buttons inky)".into()),
            ));
        }
        let http = o
            .http
            .as_deref()
            .map(parse_http_addr)
            .transpose()
            .map_err(|e| err("http", e))?;
        if http.is_none() && o.http_token_file.is_some() {
            return Err(err(
                "http-token-file",
                Error::Invalid("needs the control page (--http ADDR)".into()),
            ));
        }
        #[cfg(feature = "mqtt")]
        if let Some(url) = &o.mqtt {
            url.parse::<crate::frame::mqtt::BrokerUrl>()
                .map_err(|e| err("mqtt", e))?;
        }
        #[cfg(feature = "mqtt")]
        if let Some(id) = &o.mqtt_id {
            crate::frame::mqtt::topic_id(id).map_err(|e| err("mqtt-id", e))?;
        }
        if o.mqtt.is_none() && o.mqtt_id.is_some() {
            return Err(err(
                "mqtt-id",
                Error::Invalid("needs a broker (--mqtt URL)".into()),
            ));
        }
        Ok(FrameSettings {
            mqtt: o.mqtt.clone(),
            mqtt_id: o.mqtt_id.clone(),
            http,
            http_token_file: o.http_token_file.clone(),
            display,
            every,
            cycles: o.cycles,
            morph,
            emerging: o.emerging.unwrap_or(true),
            caption: o.caption.unwrap_or(false),
            quiet_hours,
            layout,
            gallery,
            first_seed: o.seed,
            resume: None,
            clock: std::sync::Arc::new(crate::frame::when::SystemClock),
            retry,
            buttons,
            buttons_gpiochip: o
                .buttons_gpiochip
                .clone()
                .unwrap_or_else(|| PathBuf::from("/dev/gpiochip0")),
        })
    }
}
