//! Noise schedules and inference timestep spacings.
//!
//! The betas must be bit-for-bit those of the training recipe
//! (`models/train/petal_train/schedule.py`, `make_betas`), because the model only knows the noise
//! levels it was trained on; the spacings must be those of diffusers so that step counts and
//! settings mean the same thing here as in the Python tooling.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Largest accepted number of training timesteps; a guard against a corrupt model card making
/// us allocate gigabytes.
pub const MAX_TIMESTEPS: usize = 100_000;

fn default_beta_start() -> f64 {
    1e-4
}

fn default_beta_end() -> f64 {
    0.02
}

/// The beta schedule family, as named in the model card (`"kind"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Ho et al. (2020): betas evenly spaced from `beta_start` to `beta_end`. The defaults are the
    /// ones `Schedule.from_dict` uses when the card leaves them out.
    Linear {
        #[serde(default = "default_beta_start")]
        beta_start: f64,
        #[serde(default = "default_beta_end")]
        beta_end: f64,
    },
    /// Nichol & Dhariwal (2021) with s = 0.008, betas capped at 0.999 (diffusers'
    /// `squaredcos_cap_v2`).
    Cosine,
}

/// The schedule as the model card writes it: `{"kind":"cosine","T":1000}` or
/// `{"kind":"linear","T":1000,"beta_start":1e-4,"beta_end":0.02}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    #[serde(flatten)]
    pub kind: ScheduleKind,
    /// Number of training timesteps (`T` in the card).
    #[serde(rename = "T")]
    pub num_timesteps: usize,
}

impl ScheduleSpec {
    pub fn schedule(&self) -> Result<NoiseSchedule> {
        NoiseSchedule::new(self.kind, self.num_timesteps)
    }
}

/// Per-timestep betas and their cumulative products `alpha_bar_t = prod_{s<=t} (1 - beta_s)`,
/// indexed by the integer timestep `t` in `0..T`.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    pub betas: Vec<f64>,
    pub alphas_cumprod: Vec<f64>,
}

impl NoiseSchedule {
    pub fn new(kind: ScheduleKind, num_timesteps: usize) -> Result<Self> {
        if num_timesteps == 0 || num_timesteps > MAX_TIMESTEPS {
            return Err(Error::Invalid(format!(
                "schedule T must be between 1 and {MAX_TIMESTEPS}, got {num_timesteps}"
            )));
        }
        let betas = match kind {
            ScheduleKind::Linear {
                beta_start,
                beta_end,
            } => {
                for (name, b) in [("beta_start", beta_start), ("beta_end", beta_end)] {
                    if !(b > 0.0 && b < 1.0) {
                        return Err(Error::Invalid(format!(
                            "linear schedule {name} must be in (0, 1), got {b}"
                        )));
                    }
                }
                torch_linspace(beta_start, beta_end, num_timesteps)
            }
            ScheduleKind::Cosine => cosine_betas(num_timesteps),
        };
        // Sequential product, as torch.cumprod computes it on the CPU, so the values match the
        // training side bit for bit.
        let mut alphas_cumprod = Vec::with_capacity(betas.len());
        let mut acc = 1.0f64;
        for b in &betas {
            acc *= 1.0 - b;
            alphas_cumprod.push(acc);
        }
        // Samplers divide by sqrt(alpha_bar) and by sqrt(1 - alpha_bar); reject schedules where
        // either is zero in f64 instead of producing NaN images.
        if let Some(t) = alphas_cumprod.iter().position(|&a| !(a > 0.0 && a < 1.0)) {
            return Err(Error::Invalid(format!(
                "schedule {kind:?} with T={num_timesteps} gives alpha_bar[{t}] = {}, which must be \
                 strictly between 0 and 1",
                alphas_cumprod[t]
            )));
        }
        Ok(NoiseSchedule {
            betas,
            alphas_cumprod,
        })
    }

    /// The number of training timesteps `T`.
    pub fn num_timesteps(&self) -> usize {
        self.betas.len()
    }
}

/// `torch.linspace(start, end, n, dtype=torch.float64)` on the CPU: the first half counts up
/// from `start`, the second half down from `end`, each as one fused multiply-add (verified bit
/// for bit against torch 2.15 on x86-64; a torch build without FMA may differ by an ulp).
fn torch_linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f64;
    let halfway = n / 2;
    (0..n)
        .map(|i| {
            if i < halfway {
                step.mul_add(i as f64, start)
            } else {
                (-step).mul_add((n - 1 - i) as f64, end)
            }
        })
        .collect()
}

/// Nichol & Dhariwal's cosine schedule, written with the same operation order as `make_betas`
/// so the f64 results are identical.
fn cosine_betas(n: usize) -> Vec<f64> {
    const S: f64 = 0.008;
    let t_max = n as f64;
    let f = |i: f64| {
        let c = ((i / t_max + S) / (1.0 + S) * std::f64::consts::PI / 2.0).cos();
        c * c
    };
    (0..n)
        .map(|i| (1.0 - f(i as f64 + 1.0) / f(i as f64)).min(0.999))
        .collect()
}

/// How `steps` inference timesteps are picked from `0..T` (diffusers' `timestep_spacing`; see
/// table 2 of Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Spacing {
    Leading,
    /// Always starts at `T - 1`, so the first step sees the pure noise it is given; the training
    /// recipe samples this way.
    #[default]
    Trailing,
    Linspace,
}

impl Spacing {
    pub const NAMES: [&'static str; 3] = ["leading", "trailing", "linspace"];

    pub fn name(self) -> &'static str {
        match self {
            Spacing::Leading => "leading",
            Spacing::Trailing => "trailing",
            Spacing::Linspace => "linspace",
        }
    }

    /// Descending timesteps as diffusers' `DDPMScheduler` and `DDIMScheduler` pick them.
    ///
    /// One deliberate difference: for `trailing`, numpy's float `arange` sometimes yields one
    /// element too many (e.g. T=1000, steps=61), which diffusers turns into a bogus timestep -1;
    /// we keep exactly `steps` timesteps, i.e. diffusers' list without that element.
    pub fn timesteps(self, num_timesteps: usize, steps: usize) -> Result<Vec<usize>> {
        check_steps(num_timesteps, steps)?;
        let t_max = num_timesteps;
        let ts: Vec<f64> = match self {
            Spacing::Linspace => np_linspace((t_max - 1) as f64, steps),
            Spacing::Leading => {
                let ratio = t_max / steps;
                (0..steps).map(|i| (i * ratio) as f64).collect()
            }
            Spacing::Trailing => return Ok(trailing(t_max, steps)),
        };
        finish(self, num_timesteps, steps, ts.into_iter().rev())
    }

    /// Descending timesteps as diffusers' multistep solvers (`DPMSolverMultistepScheduler`,
    /// `UniPCMultistepScheduler`) pick them: `leading` and `linspace` lay out `steps + 1` points
    /// and drop the one at 0, so they differ from [`Spacing::timesteps`]; `trailing` is the same.
    ///
    /// For step counts close to T `leading`/`linspace` repeat timesteps there; that is an error
    /// here (a repeated noise level makes the multistep update divide by zero).
    pub fn multistep_timesteps(self, num_timesteps: usize, steps: usize) -> Result<Vec<usize>> {
        check_steps(num_timesteps, steps)?;
        let t_max = num_timesteps;
        let ts: Vec<f64> = match self {
            Spacing::Linspace => np_linspace((t_max - 1) as f64, steps + 1),
            Spacing::Leading => {
                let ratio = t_max / (steps + 1);
                (0..=steps).map(|i| (i * ratio) as f64).collect()
            }
            Spacing::Trailing => return Ok(trailing(t_max, steps)),
        };
        // Reverse, then drop the final point (the one at 0).
        finish(self, num_timesteps, steps, ts.into_iter().skip(1).rev())
    }
}

fn check_steps(num_timesteps: usize, steps: usize) -> Result<()> {
    if steps == 0 || steps > num_timesteps {
        return Err(Error::Invalid(format!(
            "steps must be between 1 and the model's T={num_timesteps}, got {steps}"
        )));
    }
    Ok(())
}

/// `np.linspace(0, stop, num)`: `i * step`, with the last point set to `stop` exactly.
fn np_linspace(stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![0.0];
    }
    let step = stop / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step).collect();
    v[num - 1] = stop;
    v
}

/// `np.round(np.arange(T, 0, -T / steps)) - 1`, reproducing numpy's fill (`start + i * delta`
/// with `delta` recomputed from the first two elements) so rounding ties land the same way.
fn trailing(num_timesteps: usize, steps: usize) -> Vec<usize> {
    let start = num_timesteps as f64;
    let ratio = start / steps as f64;
    let delta = (start - ratio) - start;
    (0..steps)
        .map(|i| {
            let v = (start + i as f64 * delta).round_ties_even();
            // v >= ratio - rounding >= 1 because steps <= T, so the subtraction cannot wrap.
            (v as usize).saturating_sub(1)
        })
        .collect()
}

fn finish(
    spacing: Spacing,
    num_timesteps: usize,
    steps: usize,
    values: impl Iterator<Item = f64>,
) -> Result<Vec<usize>> {
    // np.round is round-half-to-even.
    let ts: Vec<usize> = values.map(|v| v.round_ties_even() as usize).collect();
    if ts.windows(2).any(|w| w[0] <= w[1]) || ts.iter().any(|&t| t >= num_timesteps) {
        return Err(Error::Invalid(format!(
            "{} spacing with {steps} steps of T={num_timesteps} repeats timesteps; use fewer \
             steps or trailing spacing",
            spacing.name()
        )));
    }
    Ok(ts)
}

impl FromStr for Spacing {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "leading" => Ok(Spacing::Leading),
            "trailing" => Ok(Spacing::Trailing),
            "linspace" => Ok(Spacing::Linspace),
            other => Err(Error::Invalid(format!(
                "unknown timestep spacing {other:?} (expected one of: {})",
                Spacing::NAMES.join(", ")
            ))),
        }
    }
}

impl fmt::Display for Spacing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
