//! Multistep DPM-Solver++ (Lu et al. 2022) with data prediction, i.e. diffusers'
//! `DPMSolverMultistepScheduler` with `algorithm_type="dpmsolver++"`, `solver_type="midpoint"`,
//! `lower_order_final=True`, `euler_at_final=False`, `final_sigmas_type="zero"` and no Karras /
//! Lu / exponential sigmas. `clip_x0` corresponds to its `thresholding=True` with
//! `sample_max_value=1.0`, which then clips the data prediction to [-1, 1].
//!
//! The solver integrates in log-SNR `lambda = ln(alpha / sigma)`, reusing the data predictions of
//! earlier steps instead of extra model calls; order 2 is "2M", order 3 is "3M".

use rand::RngCore;

use super::common::{check_lengths, check_timesteps, to_f32};
use super::{ModelOutput, Scheduler, StepOutput};
use crate::schedule::NoiseSchedule;
use crate::{Error, Result};

/// Below this many steps the last two steps drop to lower order, as diffusers'
/// `lower_order_final` does: high-order updates over very large log-SNR jumps are unstable.
const LOWER_ORDER_FINAL_BELOW: usize = 15;

#[derive(Debug, Clone)]
pub struct DpmSolverPP {
    timesteps: Vec<usize>,
    /// sqrt(alpha_bar), sqrt(1 - alpha_bar) and their log ratio at each timestep.
    alpha: Vec<f64>,
    sigma: Vec<f64>,
    lambda: Vec<f64>,
    order: usize,
    clip_x0: bool,
    /// Data predictions of the last `order` steps, oldest first.
    history: Vec<Vec<f64>>,
    next_index: usize,
}

impl DpmSolverPP {
    /// `order` is the solver order, 1 to 3 (1 is DDIM in disguise).
    pub fn new(
        schedule: &NoiseSchedule,
        timesteps: Vec<usize>,
        order: usize,
        clip_x0: bool,
    ) -> Result<Self> {
        check_timesteps(schedule, &timesteps)?;
        if !(1..=3).contains(&order) {
            return Err(Error::Invalid(format!(
                "DPM-Solver++ order must be 1, 2 or 3, got {order}"
            )));
        }
        let ac = |t: usize| schedule.alphas_cumprod[t];
        let alpha: Vec<f64> = timesteps.iter().map(|&t| ac(t).sqrt()).collect();
        let sigma: Vec<f64> = timesteps.iter().map(|&t| (1.0 - ac(t)).sqrt()).collect();
        let lambda = alpha
            .iter()
            .zip(&sigma)
            .map(|(a, s)| a.ln() - s.ln())
            .collect();
        Ok(DpmSolverPP {
            timesteps,
            alpha,
            sigma,
            lambda,
            order,
            clip_x0,
            history: Vec::with_capacity(order),
            next_index: 0,
        })
    }

    /// The order used for the step leaving `index` (which is not the last step).
    fn order_at(&self, index: usize) -> usize {
        let n = self.timesteps.len();
        // Warm-up: only `index + 1` data predictions exist so far.
        let mut order = self.order.min(index + 1);
        if index + 2 == n && n < LOWER_ORDER_FINAL_BELOW {
            order = order.min(2);
        }
        order
    }
}

impl Scheduler for DpmSolverPP {
    fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    fn step(
        &mut self,
        out: ModelOutput<'_>,
        index: usize,
        x: &[f32],
        _rng: &mut dyn RngCore,
    ) -> StepOutput {
        check_lengths(&out, x, None);
        assert_eq!(
            index, self.next_index,
            "DPM-Solver++ steps must be taken in order on a fresh scheduler"
        );
        self.next_index += 1;
        let i = index;
        let x0 = out.x0(x, self.alpha[i], self.sigma[i], self.clip_x0);
        if self.history.len() == self.order {
            self.history.remove(0);
        }
        self.history.push(x0);
        let hist = &self.history;
        let m0 = &hist[hist.len() - 1];

        // The final noise level is sigma = 0 (final_sigmas_type="zero"): a first-order step to it
        // lands exactly on the data prediction.
        if i + 1 == self.timesteps.len() {
            let x0 = to_f32(m0);
            return StepOutput {
                prev_sample: x0.clone(),
                pred_x0: x0,
            };
        }

        let (alpha_t, sigma_t) = (self.alpha[i + 1], self.sigma[i + 1]);
        let h = self.lambda[i + 1] - self.lambda[i];
        let ratio = sigma_t / self.sigma[i];
        // expm1 keeps exp(-h) - 1 accurate for the small h of many-step runs.
        let em = (-h).exp_m1();
        let c0 = -alpha_t * em;

        let prev: Vec<f64> = match self.order_at(i) {
            1 => x
                .iter()
                .zip(m0)
                .map(|(&x, m0)| ratio * f64::from(x) + c0 * m0)
                .collect(),
            2 => {
                let m1 = &hist[hist.len() - 2];
                let r0 = (self.lambda[i] - self.lambda[i - 1]) / h;
                x.iter()
                    .zip(m0.iter().zip(m1))
                    .map(|(&x, (m0, m1))| {
                        let d1 = (m0 - m1) / r0;
                        ratio * f64::from(x) + c0 * m0 + 0.5 * c0 * d1
                    })
                    .collect()
            }
            _ => {
                let (m1, m2) = (&hist[hist.len() - 2], &hist[hist.len() - 3]);
                let r0 = (self.lambda[i] - self.lambda[i - 1]) / h;
                let r1 = (self.lambda[i - 1] - self.lambda[i - 2]) / h;
                let c1 = alpha_t * (em / h + 1.0);
                let c2 = -alpha_t * ((em + h) / (h * h) - 0.5);
                x.iter()
                    .zip(m0.iter().zip(m1.iter().zip(m2)))
                    .map(|(&x, (m0, (m1, m2)))| {
                        let d1_0 = (m0 - m1) / r0;
                        let d1_1 = (m1 - m2) / r1;
                        let d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1);
                        let d2 = (d1_0 - d1_1) / (r0 + r1);
                        ratio * f64::from(x) + c0 * m0 + c1 * d1 + c2 * d2
                    })
                    .collect()
            }
        };
        StepOutput {
            prev_sample: to_f32(&prev),
            pred_x0: to_f32(m0),
        }
    }
}
