//! Finding a model: the embedded default, a shipped model by name, a directory, or a card file.
//!
//! The default model is compiled into the binary so the one file copied to a board can paint
//! with nothing else present; its bytes are checked against the card's sha256 like any other.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::card::ModelCard;
use crate::error::{Error, Result};

pub const DEFAULT_MODEL: &str = "emoji32";
pub const DEFAULT_VARIANT: &str = "int8w";
pub const VARIANTS: [&str; 3] = ["f32", "int8w", "int8"];

mod embedded {
    macro_rules! model_file {
        ($f:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/emoji32/", $f))
        };
    }
    pub const CARD: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/emoji32/card.json"
    ));
    pub const FILES: [(&str, &[u8]); 3] = [
        ("emoji32-f32.onnx", model_file!("emoji32-f32.onnx")),
        ("emoji32-int8w.onnx", model_file!("emoji32-int8w.onnx")),
        ("emoji32-int8.onnx", model_file!("emoji32-int8.onnx")),
    ];
}

/// A model card plus where its files come from.
#[derive(Debug, Clone)]
pub struct Model {
    pub card: ModelCard,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Embedded,
    Dir(PathBuf),
}

impl Model {
    /// Resolves `--model`: `None` or a shipped name -> the embedded model; a directory holding
    /// `card.json`; or a path to a card file whose ONNX files sit beside it.
    pub fn resolve(spec: Option<&str>) -> Result<Model> {
        let spec = match spec {
            None => return Self::embedded(),
            Some(s) => s,
        };
        let path = Path::new(spec);
        if path.is_dir() {
            return Self::from_card_path(&path.join("card.json"));
        }
        if path.is_file() {
            return Self::from_card_path(path);
        }
        if spec == DEFAULT_MODEL {
            return Self::embedded();
        }
        Err(Error::Invalid(format!(
            "model {spec:?} is not a directory, a card file, or a shipped model (shipped: {DEFAULT_MODEL})"
        )))
    }

    pub fn embedded() -> Result<Model> {
        let card = ModelCard::from_json(embedded::CARD, Path::new("<embedded emoji32>/card.json"))?;
        Ok(Model {
            card,
            source: Source::Embedded,
        })
    }

    pub fn from_card_path(card_path: &Path) -> Result<Model> {
        let card = ModelCard::load(card_path)?;
        let dir = card_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Model {
            card,
            source: Source::Dir(dir),
        })
    }

    /// Where the model came from, for messages and picture metadata.
    pub fn origin(&self) -> String {
        match &self.source {
            Source::Embedded => format!("{} (embedded)", self.card.name),
            Source::Dir(d) => d.display().to_string(),
        }
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self.source, Source::Embedded)
    }

    /// The bytes of one variant, checked against the card's sha256.
    pub fn variant_bytes(&self, variant: &str) -> Result<Cow<'static, [u8]>> {
        let v = self.card.variant(variant)?;
        let bytes: Cow<'static, [u8]> = match &self.source {
            Source::Embedded => embedded::FILES
                .iter()
                .find(|(name, _)| *name == v.file)
                .map(|(_, b)| Cow::Borrowed(*b))
                .ok_or_else(|| Error::Model {
                    what: self.origin(),
                    msg: format!("{} is not embedded in this binary", v.file),
                })?,
            Source::Dir(dir) => {
                let p = dir.join(&v.file);
                Cow::Owned(std::fs::read(&p).map_err(|e| Error::io(&p, e))?)
            }
        };
        let digest = sha256_hex(&bytes);
        if !digest.eq_ignore_ascii_case(&v.sha256) {
            return Err(Error::Model {
                what: format!("{} ({variant})", self.origin()),
                msg: format!(
                    "{} has sha256 {digest} but the card says {}: the file is corrupt or not the one the card describes; copy the model directory again, or rewrite the card with the recipe (python -m petal_train card)",
                    v.file, v.sha256
                ),
            });
        }
        Ok(bytes)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
