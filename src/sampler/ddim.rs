//! DDIM (Song et al. 2021), diffusers' `DDIMScheduler` with `set_alpha_to_one=True`.
//!
//! One deliberate difference: diffusers steps from `t` to `t - T / steps`, which is the next
//! listed timestep only for `leading` spacing or when `steps` divides T; we always step to the
//! next listed timestep (the DDIM paper's sub-sequence), so every spacing is consistent.

use rand::RngCore;

use super::common::{affine_step, check_lengths, check_timesteps, standard_normal};
use super::{ModelOutput, Scheduler, StepOutput};
use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct Ddim {
    timesteps: Vec<usize>,
    /// alpha_bar at each timestep.
    alphas: Vec<f64>,
    eta: f64,
    clip_x0: bool,
}

impl Ddim {
    /// `eta` in [0, 1] scales the fresh noise: 0 is deterministic DDIM, 1 matches DDPM's
    /// posterior variance.
    pub fn new(
        schedule: &NoiseSchedule,
        timesteps: Vec<usize>,
        eta: f64,
        clip_x0: bool,
    ) -> Result<Self> {
        check_timesteps(schedule, &timesteps)?;
        if !(0.0..=1.0).contains(&eta) {
            return Err(Error::Invalid(format!(
                "DDIM eta must be between 0 and 1, got {eta}"
            )));
        }
        let alphas = timesteps
            .iter()
            .map(|&t| schedule.alphas_cumprod[t])
            .collect();
        Ok(Ddim {
            timesteps,
            alphas,
            eta,
            clip_x0,
        })
    }

    /// Whether step `index` adds fresh noise (the last step never does: its variance is 0).
    pub fn needs_noise(&self, index: usize) -> bool {
        self.eta > 0.0 && index + 1 < self.timesteps.len()
    }

    /// One step with caller-supplied standard normal `noise` (diffusers' `variance_noise`);
    /// `None` leaves the noise term out.
    pub fn step_with_noise(
        &self,
        out: ModelOutput<'_>,
        index: usize,
        x: &[f32],
        noise: Option<&[f32]>,
    ) -> StepOutput {
        check_lengths(&out, x, noise);
        let a = self.alphas[index];
        // After the last timestep comes the clean image: alpha_bar = 1.
        let a_prev = self.alphas.get(index + 1).copied().unwrap_or(1.0);
        let (alpha, sigma) = (a.sqrt(), (1.0 - a).sqrt());
        let x0 = out.x0(x, alpha, sigma, self.clip_x0);
        let eps = out.eps_estimate(x, alpha, sigma);

        let variance = (1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev);
        let std = self.eta * variance.sqrt();
        // max(0) only absorbs rounding: std^2 <= 1 - a_prev mathematically.
        let dir = (1.0 - a_prev - std * std).max(0.0).sqrt();
        let sqrt_a_prev = a_prev.sqrt();

        affine_step(&x0, sqrt_a_prev, &eps, dir, std, noise)
    }
}

impl Scheduler for Ddim {
    fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    fn step(
        &mut self,
        out: ModelOutput<'_>,
        index: usize,
        x: &[f32],
        rng: &mut dyn RngCore,
    ) -> StepOutput {
        let noise = self
            .needs_noise(index)
            .then(|| standard_normal(rng, x.len()));
        self.step_with_noise(out, index, x, noise.as_deref())
    }
}
