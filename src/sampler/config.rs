//! Choosing and building a sampler from user settings.

use std::fmt;
use std::str::FromStr;

use super::{Ddim, Ddpm, DpmSolverPP, Scheduler};
use crate::schedule::{NoiseSchedule, Spacing};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerKind {
    /// Ancestral sampling; stochastic. Meant for all T steps but accepts fewer.
    Ddpm,
    /// DDIM; deterministic for `eta = 0`, DDPM-like noise for `eta = 1`.
    Ddim { eta: f32 },
    /// DPM-Solver++(2M): second-order multistep, deterministic; good images in ~20 steps.
    DpmSolver2M,
    /// DPM-Solver++(3M): third-order multistep, deterministic.
    DpmSolver3M,
}

impl SamplerKind {
    /// The names [`FromStr`] accepts.
    pub const NAMES: [&'static str; 4] = ["ddpm", "ddim", "dpmpp-2m", "dpmpp-3m"];

    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::Ddim { .. } => "ddim",
            SamplerKind::DpmSolver2M => "dpmpp-2m",
            SamplerKind::DpmSolver3M => "dpmpp-3m",
        }
    }

    /// A sensible step count for a model with `num_timesteps` training steps: DDPM's chain
    /// is only exact with every step; the ODE solvers need far fewer.
    pub fn default_steps(self, num_timesteps: usize) -> usize {
        let steps = match self {
            SamplerKind::Ddpm => num_timesteps,
            SamplerKind::Ddim { .. } => 50,
            SamplerKind::DpmSolver2M | SamplerKind::DpmSolver3M => 20,
        };
        steps.min(num_timesteps)
    }

    /// Whether the sampler draws from the rng while stepping.
    pub fn is_stochastic(self) -> bool {
        match self {
            SamplerKind::Ddpm => true,
            SamplerKind::Ddim { eta } => eta > 0.0,
            SamplerKind::DpmSolver2M | SamplerKind::DpmSolver3M => false,
        }
    }
}

impl FromStr for SamplerKind {
    type Err = Error;

    /// `"ddim"` means deterministic DDIM (eta 0); set `eta` on the result for noise.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ddpm" => Ok(SamplerKind::Ddpm),
            "ddim" => Ok(SamplerKind::Ddim { eta: 0.0 }),
            "dpmpp-2m" => Ok(SamplerKind::DpmSolver2M),
            "dpmpp-3m" => Ok(SamplerKind::DpmSolver3M),
            other => Err(Error::Invalid(format!(
                "unknown sampler {other:?} (expected one of: {})",
                SamplerKind::NAMES.join(", ")
            ))),
        }
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplerKind::Ddim { eta } if *eta != 0.0 => write!(f, "ddim (eta {eta})"),
            _ => f.write_str(self.name()),
        }
    }
}

/// Everything needed to build a scheduler for one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    pub kind: SamplerKind,
    /// Number of denoiser evaluations, 1 to T.
    pub steps: usize,
    pub spacing: Spacing,
    /// Clip each clean-image estimate to the model's value range [-1, 1].
    pub clip_x0: bool,
}

impl SamplerConfig {
    /// The kind's default step count, trailing spacing and clipping on.
    pub fn with_defaults(kind: SamplerKind, num_timesteps: usize) -> Self {
        SamplerConfig {
            kind,
            steps: kind.default_steps(num_timesteps),
            spacing: Spacing::default(),
            clip_x0: true,
        }
    }

    /// A fresh scheduler for one image; fails on a step count outside 1..=T or a bad eta.
    pub fn build(&self, schedule: &NoiseSchedule) -> Result<Box<dyn Scheduler>> {
        let t_max = schedule.num_timesteps();
        Ok(match self.kind {
            SamplerKind::Ddpm => {
                let ts = self.spacing.timesteps(t_max, self.steps)?;
                Box::new(Ddpm::new(schedule, ts, self.clip_x0)?)
            }
            SamplerKind::Ddim { eta } => {
                let ts = self.spacing.timesteps(t_max, self.steps)?;
                Box::new(Ddim::new(schedule, ts, f64::from(eta), self.clip_x0)?)
            }
            SamplerKind::DpmSolver2M | SamplerKind::DpmSolver3M => {
                let order = if self.kind == SamplerKind::DpmSolver2M {
                    2
                } else {
                    3
                };
                let ts = self.spacing.multistep_timesteps(t_max, self.steps)?;
                Box::new(DpmSolverPP::new(schedule, ts, order, self.clip_x0)?)
            }
        })
    }
}
