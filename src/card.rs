//! The model card (`card.json`, schema versions 1 and 2; JSON Schema in
//! `models/card.schema.json`). Version 2 added v-prediction; a version-1 card is always
//! epsilon-prediction and still loads.
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
pub const SCHEMA_VERSION: u32 = 2;
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inputs {
    pub x: TensorSpec,
    pub t: TensorSpec,
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
