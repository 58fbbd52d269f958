//! Classifier-free guidance (Ho & Salimans 2022): a themed network asked twice per step, once
//! with the theme and once without, and pushed further from the second towards the first.
//!
//! `out = none + scale * (theme - none)`. The combination is linear in the network's output,
//! so it means the same for epsilon and v prediction and the schedulers never see it: a
//! [`Guided`] is just another [`Denoiser`].

use super::{Denoiser, Prediction};
use crate::{Error, Result};

/// A themed network painting one theme at one guidance scale.
pub struct Guided<'a> {
    net: &'a mut dyn Denoiser,
    theme: usize,
    scale: f32,
}

impl<'a> Guided<'a> {
    /// `theme` below `net.themes()`; `scale` 1 asks the network once per step (the theme
    /// alone), any other scale twice.
    pub fn new(net: &'a mut dyn Denoiser, theme: usize, scale: f32) -> Result<Self> {
        if theme >= net.themes() {
            return Err(Error::Invalid(format!(
                "theme {theme} asked of a network with {} themes",
                net.themes()
            )));
        }
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(Error::Invalid(format!(
                "guidance scale {scale} must be a number at least 0"
            )));
        }
        Ok(Guided { net, theme, scale })
    }

    /// Network calls per sampler step.
    pub fn calls_per_step(&self) -> usize {
        if self.scale == 1.0 {
            1
        } else {
            2
        }
    }
}

impl Denoiser for Guided<'_> {
    fn predict(&mut self, x: &[f32], t: usize) -> Result<Vec<f32>> {
        let mut themed = self.net.predict_theme(x, t, self.theme)?;
        if self.scale == 1.0 {
            return Ok(themed);
        }
        let none = self.net.predict_theme(x, t, self.net.themes())?;
        if none.len() != themed.len() {
            return Err(Error::Model {
                what: "denoiser".into(),
                msg: format!(
                    "returned {} values without a theme and {} with one",
                    none.len(),
                    themed.len()
                ),
            });
        }
        for (c, u) in themed.iter_mut().zip(&none) {
            *c = u + self.scale * (*c - u);
        }
        Ok(themed)
    }

    fn prediction(&self) -> Prediction {
        self.net.prediction()
    }
}
