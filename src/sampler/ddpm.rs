//! Ancestral DDPM sampling (Ho et al. 2020), diffusers' `DDPMScheduler` with
//! `variance_type="fixed_small"`: the posterior mean of `x_prev` given `x` and the predicted
//! clean image, plus noise of the posterior variance. With fewer than T steps it jumps between
//! the listed timesteps, treating each jump as one step of a coarser chain (as diffusers does).

use rand::RngCore;

use super::common::{affine_step, check_lengths, check_timesteps, standard_normal};
use super::{ModelOutput, Scheduler, StepOutput};
use crate::schedule::NoiseSchedule;
use crate::Result;

#[derive(Debug, Clone)]
pub struct Ddpm {
    timesteps: Vec<usize>,
    /// alpha_bar at each timestep.
    alphas: Vec<f64>,
    clip_x0: bool,
}

impl Ddpm {
    pub fn new(schedule: &NoiseSchedule, timesteps: Vec<usize>, clip_x0: bool) -> Result<Self> {
        check_timesteps(schedule, &timesteps)?;
        let alphas = timesteps
            .iter()
            .map(|&t| schedule.alphas_cumprod[t])
            .collect();
        Ok(Ddpm {
            timesteps,
            alphas,
            clip_x0,
        })
    }

    /// Whether step `index` adds fresh noise. diffusers adds noise whenever `t > 0`, but on the
    /// last step the posterior variance is 0 (it clamps it to 1e-20), so leaving it out changes
    /// the result by at most 1e-10 per unit of noise.
    pub fn needs_noise(&self, index: usize) -> bool {
        index + 1 < self.timesteps.len()
    }

    /// One step with caller-supplied standard normal `noise`; `None` gives the posterior mean.
    pub fn step_with_noise(
        &self,
        out: ModelOutput<'_>,
        index: usize,
        x: &[f32],
        noise: Option<&[f32]>,
    ) -> StepOutput {
        check_lengths(&out, x, noise);
        let a = self.alphas[index];
        let a_prev = self.alphas.get(index + 1).copied().unwrap_or(1.0);
        let x0 = out.x0(x, a.sqrt(), (1.0 - a).sqrt(), self.clip_x0);

        // Formula (7) of Ho et al. for a jump from alpha_bar `a` to `a_prev`.
        let cur_alpha = a / a_prev;
        let cur_beta = 1.0 - cur_alpha;
        let c_x0 = a_prev.sqrt() * cur_beta / (1.0 - a);
        let c_x = cur_alpha.sqrt() * (1.0 - a_prev) / (1.0 - a);
        let std = ((1.0 - a_prev) / (1.0 - a) * cur_beta).max(0.0).sqrt();

        let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        affine_step(&x0, c_x0, &x, c_x, std, noise)
    }
}

impl Scheduler for Ddpm {
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
