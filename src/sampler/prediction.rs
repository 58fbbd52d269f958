//! What a denoiser's output means, and the one place where it is turned into the clean-image
//! and noise estimates the schedulers step with.
//!
//! With `alpha = sqrt(alpha_bar)`, `sigma = sqrt(1 - alpha_bar)` and `x = alpha x0 + sigma eps`:
//! * epsilon prediction: `x0 = (x - sigma eps) / alpha`. At the cosine schedule's last timestep
//!   alpha is 4.9e-5, so any error in eps (even float32 rounding) is multiplied by ~20,000.
//! * v prediction (Salimans & Ho 2022), `v = alpha eps - sigma x0`: `x0 = alpha x - sigma v` and
//!   `eps = sigma x + alpha v`. Neither divides, so both stay well conditioned at every t.
//!
//! The conversion is done in f64 straight from the network's output, never through an f32
//! epsilon, which would bring the ill-conditioning back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The quantity a denoiser is trained to predict (the model card's `prediction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prediction {
    /// The noise `eps` (Ho et al. 2020).
    #[default]
    Epsilon,
    /// The velocity `v = alpha eps - sigma x0` (Salimans & Ho 2022).
    V,
}

impl Prediction {
    pub fn name(self) -> &'static str {
        match self {
            Prediction::Epsilon => "epsilon",
            Prediction::V => "v",
        }
    }
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Prediction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "epsilon" => Ok(Prediction::Epsilon),
            "v" => Ok(Prediction::V),
            other => Err(Error::Invalid(format!(
                "prediction {other:?} is not supported (expected \"epsilon\" or \"v\")"
            ))),
        }
    }
}

/// A denoiser's raw output for one image at one timestep, with its meaning.
#[derive(Debug, Clone, Copy)]
pub struct ModelOutput<'a> {
    pub prediction: Prediction,
    pub values: &'a [f32],
}

impl<'a> ModelOutput<'a> {
    pub fn new(prediction: Prediction, values: &'a [f32]) -> Self {
        ModelOutput { prediction, values }
    }

    /// A noise prediction (what every sampler test with an analytic eps model passes).
    pub fn eps(values: &'a [f32]) -> Self {
        Self::new(Prediction::Epsilon, values)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The clean-image estimate at `x`, optionally clipped to the model's value range [-1, 1].
    pub fn x0(&self, x: &[f32], alpha: f64, sigma: f64, clip: bool) -> Vec<f64> {
        let raw = x.iter().zip(self.values).map(|(&x, &o)| {
            let (x, o) = (f64::from(x), f64::from(o));
            match self.prediction {
                Prediction::Epsilon => (x - sigma * o) / alpha,
                Prediction::V => alpha * x - sigma * o,
            }
        });
        if clip {
            raw.map(|v| v.clamp(-1.0, 1.0)).collect()
        } else {
            raw.collect()
        }
    }

    /// The noise estimate at `x` (unclipped, as diffusers' DDIM uses it).
    pub fn eps_estimate(&self, x: &[f32], alpha: f64, sigma: f64) -> Vec<f64> {
        match self.prediction {
            Prediction::Epsilon => self.values.iter().map(|&o| f64::from(o)).collect(),
            Prediction::V => x
                .iter()
                .zip(self.values)
                .map(|(&x, &o)| sigma * f64::from(x) + alpha * f64::from(o))
                .collect(),
        }
    }
}
