//! Samplers: turn pure noise into an image by repeatedly asking a [`Denoiser`] about its input
//! (the noise in it, or its velocity) and stepping towards less noise with a [`Scheduler`].
//!
//! The split mirrors diffusers: the scheduler owns the step rule and the timesteps, the
//! denoiser owns the network, and [`sample`] drives one against the other. A scheduler is built
//! fresh for every image because multistep solvers remember earlier steps.

mod common;
mod config;
mod ddim;
mod ddpm;
mod dpm_solver;
mod guidance;
mod prediction;

pub use common::standard_normal;
pub use config::{SamplerConfig, SamplerKind};
pub use ddim::Ddim;
pub use ddpm::Ddpm;
pub use dpm_solver::DpmSolverPP;
pub use guidance::Guided;
pub use prediction::{ModelOutput, Prediction};

use crate::{Error, Result};

/// A denoising model: the network, or an exact analytic stand-in in tests.
pub trait Denoiser {
    /// The model's output for `x` (one image, flat CHW, in model space [-1, 1]) at integer
    /// timestep `t`: the quantity named by [`Denoiser::prediction`], as long as `x`.
    fn predict(&mut self, x: &[f32], t: usize) -> Result<Vec<f32>>;

    /// What [`Denoiser::predict`] returns; schedulers convert it through [`ModelOutput`].
    fn prediction(&self) -> Prediction {
        Prediction::Epsilon
    }

    /// How many themes the network takes (0: an unthemed network).
    fn themes(&self) -> usize {
        0
    }

    /// [`Denoiser::predict`] for `theme`: an index below [`Denoiser::themes`], or `themes()`
    /// for none (what [`Denoiser::predict`] itself gives a themed network).
    fn predict_theme(&mut self, x: &[f32], t: usize, theme: usize) -> Result<Vec<f32>> {
        if theme != self.themes() {
            return Err(Error::Invalid(format!(
                "theme {theme} asked of a network with {} themes",
                self.themes()
            )));
        }
        self.predict(x, t)
    }
}

/// The result of one scheduler step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// The sample at the next (less noisy) timestep; after the last step, the final image.
    pub prev_sample: Vec<f32>,
    /// The scheduler's estimate of the clean image at this step (clipped when `clip_x0` is on).
    pub pred_x0: Vec<f32>,
}

/// One sampling algorithm over a fixed list of timesteps.
pub trait Scheduler {
    /// The timesteps the denoiser is evaluated at, in the order they are used (descending).
    fn timesteps(&self) -> &[usize];

    /// Advances from `x` at `timesteps()[index]` given the denoiser's output there. Steps must
    /// be taken in order `0, 1, ...` on a fresh scheduler.
    ///
    /// Panics if the output and `x` differ in length or `index` is out of range: both are bugs
    /// in the caller, which [`sample`] never commits.
    fn step(
        &mut self,
        out: ModelOutput<'_>,
        index: usize,
        x: &[f32],
        rng: &mut dyn rand::RngCore,
    ) -> StepOutput;
}

/// Runs every step of `sched` from `x_t` and returns the final sample.
///
/// `on_step(index, pred_x0)` is called after each step (progress, step strips, previews); an
/// error from it (e.g. [`Error::Interrupted`]) stops sampling and is returned.
pub fn sample(
    denoiser: &mut dyn Denoiser,
    sched: &mut dyn Scheduler,
    x_t: Vec<f32>,
    rng: &mut dyn rand::RngCore,
    on_step: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
) -> Result<Vec<f32>> {
    let mut x = x_t;
    for index in 0..sched.timesteps().len() {
        let t = sched.timesteps()[index];
        let prediction = denoiser.prediction();
        let output = denoiser.predict(&x, t)?;
        if output.len() != x.len() {
            return Err(Error::Model {
                what: "denoiser".into(),
                msg: format!(
                    "returned {} values for an input of {} at t={t}",
                    output.len(),
                    x.len()
                ),
            });
        }
        // A NaN would silently spread through every later step; name the step it came from.
        if let Some(k) = output.iter().position(|v| !v.is_finite()) {
            return Err(Error::Model {
                what: "denoiser".into(),
                msg: format!("returned a non-finite value ({}) at t={t}", output[k]),
            });
        }
        let out = sched.step(ModelOutput::new(prediction, &output), index, &x, rng);
        on_step(index, &out.pred_x0)?;
        x = out.prev_sample;
    }
    Ok(x)
}
