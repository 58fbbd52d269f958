//! The settings the remote controls (control page, MQTT) show and change, and how a change is
//! written into the frame's TOML config: the file is edited in place (comments and the other
//! keys stay as the owner wrote them), checked as a whole, and only then replaced, atomically;
//! then the frame is told to read it again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use toml_edit::{DocumentMut, Value};

use super::control::{Command, Remote};
use super::status::{lock, FrameState};
use crate::display::dither::DEFAULT_SATURATION;
use crate::error::{Error, Result};
use crate::frame::config::{FrameOptions, DEFAULT_EVERY};

/// Checks a complete new config text (flags merged over it, every setting parsed); the frame's
/// caller knows the flags and the model.
pub type Validator = Box<dyn Fn(&str) -> Result<()> + Send>;

/// Why a change was not saved.
#[derive(Debug, PartialEq)]
pub enum NotSaved {
    /// Not this source's to change: no config file, or a flag sets it.
    Refused(String),
    /// The change, or the config with it, does not parse or check.
    Invalid(String),
    /// Reading or writing the file failed.
    Io(String),
    /// Saved, but the frame has ended.
    FrameGone,
}

impl std::fmt::Display for NotSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotSaved::Refused(m) | NotSaved::Invalid(m) | NotSaved::Io(m) => f.write_str(m),
            NotSaved::FrameGone => f.write_str("saved, but the frame is not running"),
        }
    }
}

/// Saves changes into the frame's config and makes the frame reload it.
pub struct SettingsSaver {
    /// `None`: the frame was started without `--config`.
    pub config: Option<PathBuf>,
    pub state: Arc<Mutex<FrameState>>,
    pub remote: Remote,
    pub validate: Validator,
}

impl SettingsSaver {
    /// Saves `change`; the config file it went into.
    pub fn save(&self, change: &SettingsChange) -> std::result::Result<PathBuf, NotSaved> {
        let Some(config) = self.config.clone() else {
            return Err(NotSaved::Refused(
                "the frame was started without --config, so there is no file to save settings in"
                    .into(),
            ));
        };
        let (fixed, display) = {
            let s = lock(&self.state);
            (s.fixed.clone(), s.display.clone())
        };
        if let Some(k) = change.keys().into_iter().find(|k| fixed.contains(k)) {
            return Err(NotSaved::Refused(format!(
                "{k} is set on the command line (--{k}), which overrides the config"
            )));
        }
        let text = std::fs::read_to_string(&config)
            .map_err(|e| NotSaved::Io(format!("{}: {e}", config.display())))?;
        let new = change
            .apply(&text, &display)
            .map_err(|e| NotSaved::Invalid(e.to_string()))?;
        (self.validate)(&new).map_err(|e| NotSaved::Invalid(e.to_string()))?;
        crate::atomic_file::write_atomic(&config, new.as_bytes())
            .map_err(|e| NotSaved::Io(e.to_string()))?;
        if !self.remote.send(Command::Reload) {
            return Err(NotSaved::FrameGone);
        }
        Ok(config)
    }
}

/// What the page's form holds; read from the merged options at each (re)load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageSettings {
    pub every: String,
    /// "" when there are none.
    pub quiet_hours: String,
    /// `None`: the sampler's default.
    pub steps: Option<usize>,
    pub saturation: f32,
    pub rotate: u16,
}

/// A change from the page: the fields it sends, each optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub every: Option<String>,
    /// "" removes the quiet hours.
    pub quiet_hours: Option<String>,
    pub steps: Option<usize>,
    pub saturation: Option<f32>,
    pub rotate: Option<u16>,
}

/// The config keys each field of [`SettingsChange`] writes.
const KEYS: [(&str, &str); 5] = [
    ("every", "every"),
    ("quiet_hours", "quiet-hours"),
    ("steps", "steps"),
    ("saturation", "display"),
    ("rotate", "display"),
];

impl PageSettings {
    pub fn of(o: &FrameOptions) -> Self {
        let display = o.display.as_deref().unwrap_or("");
        let saturation = display_option(display, "saturation")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_SATURATION);
        let rotate = display_option(display, "rotate")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        PageSettings {
            every: o.every.clone().unwrap_or_else(|| DEFAULT_EVERY.into()),
            quiet_hours: o.quiet_hours.clone().unwrap_or_default(),
            steps: o.steps,
            saturation,
            rotate,
        }
    }
}

impl SettingsChange {
    /// The config keys this change writes.
    pub fn keys(&self) -> Vec<&'static str> {
        let set = [
            self.every.is_some(),
            self.quiet_hours.is_some(),
            self.steps.is_some(),
            self.saturation.is_some(),
            self.rotate.is_some(),
        ];
        let mut keys: Vec<&'static str> = KEYS
            .iter()
            .zip(set)
            .filter(|(_, on)| *on)
            .map(|((_, key), _)| *key)
            .collect();
        keys.dedup();
        keys
    }

    /// `config` (the file's text) with this change made. `display` is the display spec in
    /// force, for a config that does not name one itself.
    pub fn apply(&self, config: &str, display: &str) -> Result<String> {
        let mut doc: DocumentMut = config
            .parse()
            .map_err(|e| Error::Invalid(format!("the config is not valid TOML: {e}")))?;
        if let Some(every) = &self.every {
            set(&mut doc, "every", every.trim().into());
        }
        if let Some(q) = &self.quiet_hours {
            if q.trim().is_empty() {
                doc.remove("quiet-hours");
            } else {
                set(&mut doc, "quiet-hours", q.trim().into());
            }
        }
        if let Some(steps) = self.steps {
            let steps = i64::try_from(steps)
                .map_err(|_| Error::Invalid(format!("steps {steps} is too large")))?;
            set(&mut doc, "steps", steps.into());
        }
        if self.saturation.is_some() || self.rotate.is_some() {
            let mut spec = doc
                .get("display")
                .and_then(|d| d.as_str())
                .unwrap_or(display)
                .to_string();
            if let Some(s) = self.saturation {
                if !(0.0..=1.0).contains(&s) {
                    return Err(Error::Invalid(format!("saturation {s} is outside 0..1")));
                }
                spec = with_display_option(&spec, "saturation", &format!("{s}"));
            }
            if let Some(r) = self.rotate {
                spec = with_display_option(&spec, "rotate", &r.to_string());
            }
            set(&mut doc, "display", spec.into());
        }
        Ok(doc.to_string())
    }
}

/// Sets `key`, keeping the comment on its line where it had one.
fn set(doc: &mut DocumentMut, key: &str, mut new: Value) {
    match doc.get_mut(key).and_then(|item| item.as_value_mut()) {
        Some(old) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        None => doc[key] = toml_edit::Item::Value(new),
    }
}

/// The value of `key` in a display spec's `?key=value&...` options.
pub fn display_option<'a>(spec: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = spec.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `spec` with option `key` set to `val` (replaced where it is, else appended).
pub fn with_display_option(spec: &str, key: &str, val: &str) -> String {
    let (base, query) = spec.split_once('?').unwrap_or((spec, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let new = format!("{key}={val}");
    match pairs
        .iter_mut()
        .find(|p| p.split_once('=').map_or(p.as_str(), |(k, _)| k) == key)
    {
        Some(p) => *p = new,
        None => pairs.push(new),
    }
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_options_are_replaced_in_place_or_appended() {
        assert_eq!(
            with_display_option("epaper:7in3e", "rotate", "90"),
            "epaper:7in3e?rotate=90"
        );
        assert_eq!(
            with_display_option("epaper:7in3e?rotate=0&saturation=0.4", "rotate", "180"),
            "epaper:7in3e?rotate=180&saturation=0.4"
        );
        assert_eq!(
            with_display_option("png:/x?size=64x64", "saturation", "0.7"),
            "png:/x?size=64x64&saturation=0.7"
        );
        assert_eq!(
            display_option("epaper:7in3e?rotate=270&saturation=0.4", "rotate"),
            Some("270")
        );
        assert_eq!(display_option("fb:/dev/fb0", "rotate"), None);
    }

    #[test]
    fn a_change_keeps_the_owners_comments_and_other_keys() {
        let config = "# my frame\ndisplay = \"fb:/dev/fb0\"  # the HDMI screen\nevery = \"10m\"\nquiet-hours = \"22:00-07:00\"\nkeep = 500\n";
        let change = SettingsChange {
            every: Some("30m".into()),
            quiet_hours: Some(String::new()),
            steps: Some(12),
            rotate: Some(90),
            saturation: None,
        };
        let out = change.apply(config, "unused").unwrap();
        assert!(out.starts_with("# my frame\n"), "{out}");
        assert!(out.contains("# the HDMI screen"), "{out}");
        assert!(out.contains("every = \"30m\""), "{out}");
        assert!(!out.contains("quiet-hours"), "{out}");
        assert!(out.contains("keep = 500"), "{out}");
        assert!(out.contains("steps = 12"), "{out}");
        assert!(out.contains("display = \"fb:/dev/fb0?rotate=90\""), "{out}");
        assert_eq!(
            change.keys(),
            vec!["every", "quiet-hours", "steps", "display"]
        );
        let o = FrameOptions::from_toml(&out, std::path::Path::new("x")).unwrap();
        let page = PageSettings::of(&o);
        assert_eq!(
            (page.rotate, page.steps, page.every.as_str()),
            (90, Some(12), "30m")
        );
    }

    #[test]
    fn a_config_without_a_display_gets_the_one_in_force() {
        let change = SettingsChange {
            saturation: Some(0.8),
            ..Default::default()
        };
        let out = change.apply("every = \"1m\"\n", "epaper:7in3e").unwrap();
        assert!(
            out.contains("display = \"epaper:7in3e?saturation=0.8\""),
            "{out}"
        );
        let bad = SettingsChange {
            saturation: Some(3.0),
            ..Default::default()
        };
        assert!(bad.apply("", "memory").is_err());
    }
}
