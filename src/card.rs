//! The model card (`card.json`, schema versions 1 to 3; JSON Schema in
//! `models/card.schema.json`). Version 2 added v-prediction; a version-1 card is always
//! epsilon-prediction and still loads. Version 3 added themes: a network trained on the data's
//! categories takes a theme index as a third input, and the card names the themes and the
//! guidance scale petal paints them with.
//!
//! The card is the contract between the Python recipe and this runtime: it says what the ONNX
//! file expects (input names, shapes, timestep units), which noise schedule the model was
//! trained with, and the sha256 of each variant so a corrupt or swapped file is caught early.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sampler::Prediction;
use crate::schedule::ScheduleSpec;

/// The newest card version this petal reads (and the one the recipe writes).
pub const SCHEMA_VERSION: u32 = 3;
/// Words `--theme` takes beside the card's theme names (so no theme may be called that).
pub const THEME_WORDS: [&str; 2] = ["any", "none"];
/// The oldest card version this petal still reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub schema_version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub resolution: usize,
    pub channels: usize,
    pub value_range: [f32; 2],
    pub schedule: ScheduleSpec,
    pub prediction: Prediction,
    pub inputs: Inputs,
    pub output: TensorSpec,
    #[serde(default)]
    pub params: Option<u64>,
    #[serde(default)]
    pub macs_per_step: Option<u64>,
    #[serde(default)]
    pub training: Option<serde_json::Value>,
    pub variants: BTreeMap<String, Variant>,
    #[serde(default)]
    pub fid_l0_floor: Option<f64>,
    #[serde(default)]
    pub eval: Option<serde_json::Value>,
    #[serde(default)]
    pub architecture: Option<serde_json::Value>,
    /// The themes the network was trained on, in index order (empty: an unthemed network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// The classifier-free guidance scale for themed pictures (present iff `themes` is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance_scale: Option<f32>,
    /// How often `--theme any` draws each theme (the training images of each); `None`: evenly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme_weights: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inputs {
    pub x: TensorSpec,
    pub t: TensorSpec,
    /// The theme index (float32 `[1]`): `0..K` for `themes[i]`, `K` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<TensorSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variant {
    pub file: String,
    pub sha256: String,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub fid_l0: Option<f64>,
    #[serde(default)]
    pub max_abs_err_vs_f32: Option<f64>,
}

impl ModelCard {
    /// Parses and checks a card; `origin` names it in errors (a path or "embedded").
    pub fn from_json(text: &str, origin: &Path) -> Result<Self> {
        let card_err = |msg: String| Error::Card {
            path: origin.to_path_buf(),
            msg,
        };
        let card: ModelCard = serde_json::from_str(text).map_err(|e| card_err(e.to_string()))?;
        card.validate().map_err(card_err)?;
        Ok(card)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text, path)
    }

    fn validate(&self) -> Result<(), String> {
        if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&self.schema_version) {
            return Err(format!(
                "schema_version {} is not supported (this petal reads versions \
                 {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        if self.schema_version == 1 && self.prediction != Prediction::Epsilon {
            return Err(format!(
                "prediction {:?} needs schema_version 2 (version 1 cards are \"epsilon\" only)",
                self.prediction.name()
            ));
        }
        let image = [1, self.channels, self.resolution, self.resolution];
        if self.inputs.x.shape != image {
            return Err(format!(
                "inputs.x.shape {:?} does not match channels/resolution {:?}",
                self.inputs.x.shape, image
            ));
        }
        if self.output.shape != image {
            return Err(format!(
                "output.shape {:?} does not match channels/resolution {:?}",
                self.output.shape, image
            ));
        }
        if self.inputs.t.shape != [1] {
            return Err(format!(
                "inputs.t.shape {:?} must be [1]",
                self.inputs.t.shape
            ));
        }
        for (what, spec) in [("inputs.x", &self.inputs.x), ("output", &self.output)] {
            if spec.dtype != "float32" {
                return Err(format!("{what}.dtype {:?} must be \"float32\"", spec.dtype));
            }
        }
        if !matches!(self.inputs.t.dtype.as_str(), "float32" | "int64") {
            return Err(format!(
                "inputs.t.dtype {:?} must be \"float32\" or \"int64\"",
                self.inputs.t.dtype
            ));
        }
        self.validate_themes()?;
        if self.value_range[0] >= self.value_range[1] {
            return Err(format!("value_range {:?} is empty", self.value_range));
        }
        if self.variants.is_empty() {
            return Err("no variants listed".into());
        }
        for (name, v) in &self.variants {
            if v.sha256.len() != 64 || !v.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("variants.{name}.sha256 is not 64 hex digits"));
            }
            if v.file.contains('/') || v.file.contains('\\') || v.file.starts_with('.') {
                return Err(format!(
                    "variants.{name}.file {:?} must be a plain file name next to the card",
                    v.file
                ));
            }
        }
        self.schedule
            .schedule()
            .map(|_| ())
            .map_err(|e| format!("schedule: {e}"))
    }

    fn validate_themes(&self) -> Result<(), String> {
        let themed = !self.themes.is_empty();
        if themed && self.schema_version < 3 {
            return Err(format!(
                "themes need schema_version 3 (this card is version {})",
                self.schema_version
            ));
        }
        match (&self.inputs.theme, themed) {
            (Some(_), false) => return Err("inputs.theme is given but themes is empty".into()),
            (None, true) => return Err("themes are listed but inputs.theme is missing".into()),
            (Some(spec), true) => {
                if spec.shape != [1] || spec.dtype != "float32" {
                    return Err(format!(
                        "inputs.theme must be float32 [1] (got {} {:?})",
                        spec.dtype, spec.shape
                    ));
                }
            }
            (None, false) => {}
        }
        if let Some(w) = &self.theme_weights {
            let usable = w.iter().all(|w| w.is_finite() && *w >= 0.0) && w.iter().any(|w| *w > 0.0);
            if w.len() != self.themes.len() || !usable {
                return Err(format!(
                    "theme_weights must be one number at least 0 per theme ({} themes), not all 0 \
                     (got {w:?})",
                    self.themes.len()
                ));
            }
        }
        match (self.guidance_scale, themed) {
            (Some(_), false) => Err("guidance_scale is given but themes is empty".into()),
            (None, true) => Err("themes are listed but guidance_scale is missing".into()),
            (Some(s), true) if !(s.is_finite() && s >= 0.0) => {
                Err(format!("guidance_scale {s} must be a number at least 0"))
            }
            _ => {
                let mut seen = std::collections::HashSet::new();
                for name in &self.themes {
                    let plain = !name.is_empty()
                        && name.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                        });
                    if !plain || THEME_WORDS.contains(&name.as_str()) {
                        return Err(format!(
                            "theme name {name:?} must be lowercase letters, digits, - or _, and \
                             not one of {THEME_WORDS:?}"
                        ));
                    }
                    if !seen.insert(name) {
                        return Err(format!("theme {name:?} is listed twice"));
                    }
                }
                Ok(())
            }
        }
    }

    /// The index the network takes for `theme` (a name from `themes`).
    pub fn theme_index(&self, theme: &str) -> Result<usize> {
        if self.themes.is_empty() {
            return Err(Error::Invalid(format!(
                "model {} has no themes (it was trained without them); leave out --theme",
                self.name
            )));
        }
        self.themes.iter().position(|t| t == theme).ok_or_else(|| {
            Error::Invalid(format!(
                "model {} has no theme {theme:?} (it has: {}, or {})",
                self.name,
                self.themes.join(", "),
                THEME_WORDS.join(", ")
            ))
        })
    }

    pub fn variant(&self, name: &str) -> Result<&Variant> {
        self.variants.get(name).ok_or_else(|| {
            Error::Invalid(format!(
                "model {} has no variant {name:?} (it has: {})",
                self.name,
                self.variants.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Number of values in one image tensor.
    pub fn image_len(&self) -> usize {
        self.channels * self.resolution * self.resolution
    }
}
