//! Pieces shared by the schedulers.

use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use super::ModelOutput;
use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

/// `n` independent standard normal values from `rng`: the initial noise `x_T` and the fresh
/// noise of stochastic steps.
pub fn standard_normal(rng: &mut dyn RngCore, n: usize) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// Checks custom timesteps: non-empty, inside the schedule, strictly descending (a repeated or
/// rising noise level has no meaningful step).
pub(crate) fn check_timesteps(schedule: &NoiseSchedule, timesteps: &[usize]) -> Result<()> {
    let t_max = schedule.num_timesteps();
    if timesteps.is_empty() {
        return Err(Error::Invalid(
            "a sampler needs at least one timestep".into(),
        ));
    }
    if let Some(&t) = timesteps.iter().find(|&&t| t >= t_max) {
        return Err(Error::Invalid(format!(
            "timestep {t} is outside the schedule's 0..{t_max}"
        )));
    }
    if let Some(w) = timesteps.windows(2).find(|w| w[0] <= w[1]) {
        return Err(Error::Invalid(format!(
            "timesteps must be strictly descending, got {} then {}",
            w[0], w[1]
        )));
    }
    Ok(())
}

/// Panics on a length mismatch, which only a buggy caller can produce (see `Scheduler::step`).
pub(crate) fn check_lengths(out: &ModelOutput<'_>, x: &[f32], noise: Option<&[f32]>) {
    assert_eq!(
        out.len(),
        x.len(),
        "the model output and x must have the same length"
    );
    if let Some(n) = noise {
        assert_eq!(n.len(), x.len(), "noise and x must have the same length");
    }
}

/// The step both DDPM and DDIM take once their coefficients are known:
/// `c_x0 * x0 + c_other * other + std * noise`, with `other` the current sample (DDPM) or the
/// predicted noise (DDIM).
pub(crate) fn affine_step(
    x0: &[f64],
    c_x0: f64,
    other: &[f64],
    c_other: f64,
    std: f64,
    noise: Option<&[f32]>,
) -> super::StepOutput {
    let prev_sample = x0
        .iter()
        .zip(other)
        .enumerate()
        .map(|(k, (&x0, &o))| {
            let mut v = c_x0 * x0 + c_other * o;
            if let Some(n) = noise {
                v += std * f64::from(n[k]);
            }
            v as f32
        })
        .collect();
    super::StepOutput {
        prev_sample,
        pred_x0: to_f32(x0),
    }
}

pub(crate) fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}
