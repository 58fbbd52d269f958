//! The generation pipeline: parameters -> noise -> sampler steps through a denoiser -> tensors.
//!
//! Everything a picture depends on is in [`GenerateParams`], which is stored as JSON in the
//! PNG so `petal generate --from picture.png` paints the same picture again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use serde::{Deserialize, Serialize};

use crate::card::ModelCard;
use crate::denoiser::Precision;
use crate::error::{Error, Result};
use crate::limits;
use crate::noise;
use crate::picture::Filter;
use crate::sampler::{self, Denoiser, Guided, SamplerConfig, SamplerKind};
use crate::schedule::Spacing;

/// The largest picture side petal paints.
pub const MAX_SIZE: u32 = limits::MAX_SIDE;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateParams {
    /// `None`: the embedded default model.
    pub model: Option<String>,
    pub model_name: String,
    pub model_sha256: String,
    pub variant: String,
    /// The float type tract computed in (absent in pictures painted before petal had f16).
    #[serde(default)]
    pub precision: Precision,
    pub sampler: String,
    pub steps: usize,
    pub spacing: String,
    pub eta: f32,
    pub clip_x0: bool,
    pub seed: u64,
    pub count: usize,
    pub size: Option<u32>,
    pub filter: Filter,
    pub init_noise: Option<String>,
    /// A themed model's theme: one of the card's names, or [`ANY_THEME`] (a theme drawn per
    /// picture from the seed); `None`: no theme (absent in pictures from before themes).
    #[serde(default)]
    pub theme: Option<String>,
    /// The classifier-free guidance scale of a themed picture (`None`: the card's).
    #[serde(default)]
    pub guidance: Option<f32>,
    pub petal_version: String,
}

/// The theme a themed model paints with unless told otherwise; unthemed models have none.
pub fn default_theme(card: &ModelCard) -> Option<String> {
    (!card.themes.is_empty()).then(|| ANY_THEME.to_string())
}

/// `--theme any`: each picture's theme drawn from its seed, as often as the card's
/// `theme_weights` say (as in the training set), or evenly.
pub const ANY_THEME: &str = "any";
/// `--theme none`: a themed model painting without a theme (one network call per step).
pub const NO_THEME: &str = "none";

/// What to paint with a themed model: each picture's theme index (`None`: no theme) and the
/// guidance scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemePlan {
    pub themes: Vec<Option<usize>>,
    pub scale: f32,
}

impl GenerateParams {
    /// The settings a picture's metadata holds (what `--from` reads); `what` names the picture.
    pub fn from_metadata(text: &str, what: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("{what}: petal metadata is not readable ({e})")))
    }

    pub fn sampler_config(&self) -> Result<SamplerConfig> {
        let mut kind: SamplerKind = self.sampler.parse()?;
        if let SamplerKind::Ddim { eta } = &mut kind {
            *eta = self.eta;
        }
        let spacing: Spacing = self.spacing.parse()?;
        Ok(SamplerConfig {
            kind,
            steps: self.steps,
            spacing,
            clip_x0: self.clip_x0,
        })
    }

    /// Bytes a run holds at its peak, estimated from the sizes alone: start noise and results
    /// (f32), every tile, the sheet, and its encoded file.
    pub fn memory_needed(&self, card: &ModelCard) -> u64 {
        let count = self.count as u64;
        let tensors = count
            .saturating_mul(card.image_len() as u64)
            .saturating_mul(2 * 4);
        let side = self.size.map_or(card.resolution as u64, u64::from);
        let cols = crate::picture::grid_columns(self.count) as u64;
        let cells = cols.saturating_mul(count.div_ceil(cols));
        let tile_bytes = side.saturating_mul(side).saturating_mul(3);
        let pictures = tile_bytes.saturating_mul(count.saturating_add(cells.saturating_mul(2)));
        tensors.saturating_add(pictures)
    }

    pub fn validate(&self, card: &ModelCard) -> Result<()> {
        if self.count == 0 {
            return Err(Error::Invalid("--count must be at least 1".into()));
        }
        if self.size == Some(0) {
            return Err(Error::Invalid("--size must be at least 1 pixel".into()));
        }
        if let Some(s) = self.size.filter(|&s| s > MAX_SIZE) {
            return Err(Error::Invalid(format!(
                "--size {s} is larger than petal paints ({MAX_SIZE} pixels square at most)"
            )));
        }
        let (needed, budget) = (self.memory_needed(card), limits::memory_budget());
        if needed > budget {
            return Err(Error::Invalid(format!(
                "--count {} at {} px would need about {} of memory, more than petal may use here \
                 ({}); paint fewer or smaller pictures per run",
                self.count,
                self.size.map_or(card.resolution as u64, u64::from),
                limits::human_bytes(needed),
                limits::human_bytes(budget)
            )));
        }
        if self.precision == Precision::F16 && self.variant == "int8" {
            // Measured: f16 scales and zero points around int8's integer convolutions move its
            // output by a further 0.034 mean (f32 int8 vs f32: 0.086); f16 is for float graphs.
            return Err(Error::Invalid(
                "--precision f16 is for the float variants (f32, int8w); int8 computes in \
                 integers: use --precision f32 with it"
                    .into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.eta) {
            return Err(Error::Invalid(format!(
                "--eta {} must be within 0..1",
                self.eta
            )));
        }
        self.theme_plan(card)?;
        let config = self.sampler_config()?;
        let schedule = card.schedule.schedule()?;
        config.build(&schedule).map(|_| ())
    }

    /// Each picture's theme and the guidance scale, checked against the card.
    pub fn theme_plan(&self, card: &ModelCard) -> Result<ThemePlan> {
        if let Some(g) = self.guidance {
            if card.themes.is_empty() {
                return Err(Error::Invalid(format!(
                    "--guidance is for themed models; model {} has no themes",
                    card.name
                )));
            }
            if !(g.is_finite() && (0.0..=MAX_GUIDANCE).contains(&g)) {
                return Err(Error::Invalid(format!(
                    "--guidance {g} must be within 0..{MAX_GUIDANCE} (1: the theme alone; \
                     the card's is {})",
                    card.guidance_scale.unwrap_or(1.0)
                )));
            }
        }
        let scale = self.guidance.or(card.guidance_scale).unwrap_or(1.0);
        let themes = match self.theme.as_deref() {
            None | Some(NO_THEME) => vec![None; self.count],
            Some(ANY_THEME) => {
                // Checked like a name, so an unthemed model refuses "any" too.
                let count = card.themes.len();
                if count == 0 {
                    card.theme_index(ANY_THEME)?;
                }
                let mut rng = noise::theme_rng(self.seed);
                let even = vec![1.0; count];
                let weights = card.theme_weights.as_deref().unwrap_or(&even);
                let draw = WeightedIndex::new(weights).map_err(|e| {
                    Error::Invalid(format!("model {}: theme_weights: {e}", card.name))
                })?;
                (0..self.count)
                    .map(|_| Some(draw.sample(&mut rng)))
                    .collect()
            }
            Some(name) => vec![Some(card.theme_index(name)?); self.count],
        };
        Ok(ThemePlan { themes, scale })
    }
}

/// Guidance beyond this is far from the scales measured for petal's models (2 and 3, see
/// bench/results/model-themed-2200): refused as a likely typo.
pub const MAX_GUIDANCE: f32 = 20.0;

/// Samples one picture, through [`Guided`] when it has a theme.
fn sample_picture(
    denoiser: &mut dyn Denoiser,
    theme: Option<usize>,
    scale: f32,
    sched: &mut dyn sampler::Scheduler,
    x_t: Vec<f32>,
    rng: &mut dyn rand::RngCore,
    on_step: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
) -> Result<Vec<f32>> {
    match theme {
        Some(theme) => {
            let mut guided = Guided::new(denoiser, theme, scale)?;
            sampler::sample(&mut guided, sched, x_t, rng, on_step)
        }
        None => sampler::sample(denoiser, sched, x_t, rng, on_step),
    }
}

impl ThemePlan {
    /// The themes of `count` pictures: `--init-noise` may hold a different number of pictures
    /// than `count` only when every picture has the same theme.
    fn themes_for(&self, count: usize) -> Result<Vec<Option<usize>>> {
        if count == self.themes.len() {
            return Ok(self.themes.clone());
        }
        match self.themes.first() {
            Some(first) if self.themes.iter().all(|t| t == first) => Ok(vec![*first; count]),
            None => Ok(vec![None; count]),
            Some(_) => Err(Error::Invalid(format!(
                "{count} start noises for {} pictures of different themes",
                self.themes.len()
            ))),
        }
    }
}

/// What a caller sees while images are being painted.
pub trait Progress {
    /// After each sampler step of image `image`: the current x0 prediction.
    fn step(&mut self, image: usize, step: usize, steps: usize, x0: &[f32]) -> Result<()>;
}

/// Ignores progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&mut self, _: usize, _: usize, _: usize, _: &[f32]) -> Result<()> {
        Ok(())
    }
}

/// Paints `params.count` images on up to `workers` threads (fewer where memory is short: see
/// [`limits::affordable_workers`]), one denoiser each (built by `make` on its own thread), and
/// returns them in order. A small model's single step does not split
/// well over cores, while whole pictures do; each worker's denoiser should therefore run on one
/// thread.
///
/// The pictures are exactly those of [`generate`]: the start noise is drawn in the same order
/// before any work, and deterministic samplers draw nothing else. Stochastic samplers (DDPM, DDIM
/// with eta > 0) draw from one noise stream picture after picture, so they run on one worker to
/// keep that order.
pub fn generate_parallel<D, F>(
    make: F,
    workers: usize,
    card: &ModelCard,
    params: &GenerateParams,
    init_noise: Option<Vec<Vec<f32>>>,
    progress: &mut (dyn Progress + Send),
) -> Result<Vec<Vec<f32>>>
where
    D: Denoiser,
    F: Fn() -> Result<D> + Sync,
{
    params.validate(card)?;
    let config = params.sampler_config()?;
    let plan = params.theme_plan(card)?;
    let workers = limits::affordable_workers(
        workers.min(params.count),
        limits::memory_budget(),
        params.memory_needed(card),
        limits::DENOISER_STATE_BYTES,
    );
    if workers == 1 || config.kind.is_stochastic() {
        let mut denoiser = make()?;
        return generate(&mut denoiser, card, params, init_noise, progress);
    }
    let schedule = card.schedule.schedule()?;
    let starts = match init_noise {
        Some(n) => n,
        None => {
            let (mut init_rng, _) = noise::rngs(params.seed);
            (0..params.count)
                .map(|_| noise::gaussian(&mut init_rng, card.image_len()))
                .collect()
        }
    };
    let count = starts.len();
    let themes = plan.themes_for(count)?;
    let queue = Mutex::new(starts.into_iter().zip(themes).enumerate());
    let progress = Mutex::new(progress);
    let failed = AtomicBool::new(false);
    let work = || -> Result<Vec<Numbered>> {
        let run = || -> Result<Vec<Numbered>> {
            let mut denoiser = make()?;
            // Never drawn from: the sampler is deterministic.
            let (_, mut unused_rng) = noise::rngs(params.seed);
            let mut done = Vec::new();
            loop {
                let next = queue.lock().map_err(|_| poisoned())?.next();
                let Some((i, (x_t, theme))) = next else {
                    break;
                };
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let mut scheduler = config.build(&schedule)?;
                let steps = scheduler.timesteps().len();
                let mut on_step = |s: usize, x0: &[f32]| {
                    progress
                        .lock()
                        .map_err(|_| poisoned())?
                        .step(i, s, steps, x0)
                };
                let image = sample_picture(
                    &mut denoiser,
                    theme,
                    plan.scale,
                    scheduler.as_mut(),
                    x_t,
                    &mut unused_rng,
                    &mut on_step,
                )?;
                done.push((i, image));
            }
            Ok(done)
        };
        let result = run();
        if result.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        result
    };
    let results: Vec<Result<Vec<Numbered>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(poisoned())))
            .collect()
    });
    let mut images: Vec<Option<Vec<f32>>> = vec![None; count];
    for done in results {
        for (i, image) in done? {
            images[i] = Some(image);
        }
    }
    images.into_iter().map(|x| x.ok_or_else(poisoned)).collect()
}

/// A finished picture and its place in the run.
type Numbered = (usize, Vec<f32>);

fn poisoned() -> Error {
    Error::Invalid("a painting thread stopped unexpectedly".into())
}

/// Paints `params.count` images. `init_noise`, when given, replaces the seeded start noise.
pub fn generate(
    denoiser: &mut dyn Denoiser,
    card: &ModelCard,
    params: &GenerateParams,
    init_noise: Option<Vec<Vec<f32>>>,
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    params.validate(card)?;
    let config = params.sampler_config()?;
    let plan = params.theme_plan(card)?;
    let schedule = card.schedule.schedule()?;
    let (mut init_rng, mut sampler_rng) = noise::rngs(params.seed);
    let starts = match init_noise {
        Some(n) => n,
        None => (0..params.count)
            .map(|_| noise::gaussian(&mut init_rng, card.image_len()))
            .collect(),
    };
    let mut out = Vec::with_capacity(starts.len());
    let themes = plan.themes_for(starts.len())?;
    for (i, (x_t, theme)) in starts.into_iter().zip(themes).enumerate() {
        let mut scheduler = config.build(&schedule)?;
        let steps = scheduler.timesteps().len();
        let mut on_step = |s: usize, x0: &[f32]| progress.step(i, s, steps, x0);
        out.push(sample_picture(
            denoiser,
            theme,
            plan.scale,
            scheduler.as_mut(),
            x_t,
            &mut sampler_rng,
            &mut on_step,
        )?);
    }
    Ok(out)
}
