//! The frame's painting: a picture and the in-between pictures of its glide are painted as one
//! [`Show`], on as many threads as the frame was given, and — unless the picture is shown
//! emerging, which is the painting itself — while the previous picture is still on the screen.
//! The display loop then only plays the show back when it is due, so commands and a failing
//! display are answered during painting too, and a `Next` finds its picture ready.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::screen::Screen;
use crate::card::ModelCard;
use crate::denoiser::with_threads;
use crate::display::Display;
use crate::error::{Error, Result};
use crate::generate::{generate, GenerateParams, Progress};
use crate::noise;
use crate::picture::tensor_to_rgb;
use crate::sampler::Denoiser;

use super::morph;

/// The denoisers the frame paints with: one per painting thread.
pub struct Painters<'a> {
    denoisers: Vec<&'a mut (dyn Denoiser + Send)>,
    step_threads: usize,
}

impl<'a> Painters<'a> {
    /// One painting thread.
    pub fn one(denoiser: &'a mut (dyn Denoiser + Send)) -> Self {
        Painters {
            denoisers: vec![denoiser],
            step_threads: 1,
        }
    }

    /// One painting thread per denoiser; each runs tract's steps on `step_threads` threads.
    ///
    /// # Panics
    /// When `denoisers` is empty.
    pub fn new(denoisers: Vec<&'a mut (dyn Denoiser + Send)>, step_threads: usize) -> Self {
        assert!(
            !denoisers.is_empty(),
            "a frame needs a denoiser to paint with"
        );
        Painters {
            denoisers,
            step_threads: step_threads.max(1),
        }
    }

    pub fn threads(&self) -> usize {
        self.denoisers.len()
    }

    /// The first painting thread's denoiser (for a picture shown emerging, painted live).
    pub(super) fn first(&mut self) -> &mut (dyn Denoiser + Send) {
        &mut *self.denoisers[0]
    }

    pub(super) fn step_threads(&self) -> usize {
        self.step_threads
    }
}

/// What to paint for one picture.
#[derive(Clone)]
pub(super) struct Job {
    /// The picture's parameters (its own seed).
    pub params: GenerateParams,
    pub seed: u64,
    /// The picture's start noise (drawn from `seed` as `generate` draws it).
    pub start: Vec<f32>,
    /// The previous picture's start noise, when the show glides from it.
    pub glide_from: Option<Vec<f32>>,
    /// In-between pictures of the glide.
    pub morph: usize,
}

/// A painted picture, with its glide.
pub(super) struct Show {
    pub job: Job,
    /// In-between pictures, in order (empty: the show cuts to the picture).
    pub glide: Vec<RgbImage>,
    /// Time one in-between picture took to paint on one thread: the glide plays at that pace,
    /// as it did when it was shown as it was painted.
    pub glide_pace: Duration,
    pub picture: RgbImage,
    /// Wall time of the painting.
    pub paint_time: Duration,
}

/// Ends a painting when the frame stops, or when the frame no longer wants it (`cancel`).
pub(super) struct Cancellable<'a> {
    pub stop: &'a AtomicBool,
    pub cancel: &'a AtomicBool,
}

impl Progress for Cancellable<'_> {
    fn step(&mut self, _: usize, _: usize, _: usize, _: &[f32]) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) || self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        Ok(())
    }
}

pub(super) fn picture_of(x: &[f32], card: &ModelCard) -> Result<RgbImage> {
    tensor_to_rgb(x, card.channels, card.resolution, card.value_range)
}

/// Paints `job`'s glide and picture, spread over the painters' threads.
pub(super) fn paint(
    job: Job,
    painters: &mut Painters,
    card: &ModelCard,
    stop: &AtomicBool,
    cancel: &AtomicBool,
) -> Result<Show> {
    let t0 = Instant::now();
    let mut starts: Vec<Vec<f32>> = match &job.glide_from {
        Some(from) => (1..=job.morph)
            .map(|k| morph::slerp(from, &job.start, morph::position(k, job.morph)))
            .collect(),
        None => Vec::new(),
    };
    starts.push(job.start.clone());
    let (mut painted, busy) = paint_all(starts, &job.params, painters, card, stop, cancel)?;
    let picture = painted.pop().ok_or_else(lost)?;
    let glide_pace = if painted.is_empty() {
        Duration::ZERO
    } else {
        // The in-between pictures' share of the busy time (all pictures cost the same).
        busy / (painted.len() + 1) as u32
    };
    let glide = painted
        .iter()
        .map(|x| picture_of(x, card))
        .collect::<Result<_>>()?;
    Ok(Show {
        picture: picture_of(&picture, card)?,
        glide,
        glide_pace,
        paint_time: t0.elapsed(),
        job,
    })
}

/// Carries each start noise to a picture with `params` (the sampler is deterministic wherever
/// there is more than one), one per thread at a time; returns them in order, with the summed
/// time the threads spent on them.
fn paint_all(
    starts: Vec<Vec<f32>>,
    params: &GenerateParams,
    painters: &mut Painters,
    card: &ModelCard,
    stop: &AtomicBool,
    cancel: &AtomicBool,
) -> Result<(Vec<Vec<f32>>, Duration)> {
    let count = starts.len();
    let threads = painters.denoisers.len().min(count);
    let step_threads = painters.step_threads;
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Vec<f32>>>> =
        starts.into_iter().map(|s| Mutex::new(Some(s))).collect();
    let failed = AtomicBool::new(false);
    let work = |denoiser: &mut (dyn Denoiser + Send)| -> Result<Duration> {
        let mut busy = Duration::ZERO;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count || failed.load(Ordering::Relaxed) {
                return Ok(busy);
            }
            let start = slots[i]
                .lock()
                .map_err(|_| lost())?
                .take()
                .ok_or_else(lost)?;
            let t = Instant::now();
            let mut progress = Cancellable { stop, cancel };
            let out = with_threads(step_threads, || {
                generate(denoiser, card, params, Some(vec![start]), &mut progress)
            });
            let out = match out {
                Ok(mut out) => out.pop().ok_or_else(lost)?,
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            busy += t.elapsed();
            *slots[i].lock().map_err(|_| lost())? = Some(out);
        }
    };
    let busy = if threads <= 1 {
        work(&mut *painters.denoisers[0])?
    } else {
        let results: Vec<Result<Duration>> = std::thread::scope(|scope| {
            let handles: Vec<_> = painters
                .denoisers
                .iter_mut()
                .take(threads)
                .map(|d| scope.spawn(|| work(&mut **d)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(lost())))
                .collect()
        });
        let mut busy = Duration::ZERO;
        for r in results {
            busy += r?;
        }
        busy
    };
    let painted = slots
        .into_iter()
        .map(|s| s.into_inner().map_err(|_| lost())?.ok_or_else(lost))
        .collect::<Result<_>>()?;
    Ok((painted, busy))
}

pub(super) fn lost() -> Error {
    Error::Invalid("a painting thread stopped unexpectedly".into())
}

/// The sampler's progress: stops on request, and shows the x0 prediction on fast displays.
struct Steps<'s, 'a, D: Display> {
    stop: &'s AtomicBool,
    screen: Option<&'s mut Screen<'a, D>>,
    card: &'s ModelCard,
    shown: u64,
}

impl<D: Display> Progress for Steps<'_, '_, D> {
    fn step(&mut self, _image: usize, _step: usize, _steps: usize, x0: &[f32]) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        if let Some(screen) = self.screen.as_deref_mut() {
            if screen.ending(self.stop) {
                return Err(Error::Interrupted);
            }
            let c = self.card;
            let img = tensor_to_rgb(x0, c.channels, c.resolution, c.value_range)?;
            if screen.present(&img, None) {
                self.shown += 1;
            }
        }
        Ok(())
    }
}

/// The next picture to paint: its seed (the next of a fixed sequence, or a random one) and
/// start noise, gliding from `glide_from` when given.
pub(super) fn job_for(
    next_seed: &mut Option<u64>,
    params: &GenerateParams,
    card: &ModelCard,
    glide_from: Option<Vec<f32>>,
    morph: usize,
) -> Job {
    let seed = match *next_seed {
        Some(s) => {
            *next_seed = Some(s.wrapping_add(1));
            s
        }
        // Short random seeds are easier to read off a caption and type back in.
        None => u64::from(rand::random::<u32>()),
    };
    let mut p = params.clone();
    p.seed = seed;
    p.init_noise = None;
    let start = {
        let (mut rng, _) = noise::rngs(seed);
        noise::gaussian(&mut rng, card.image_len())
    };
    Job {
        params: p,
        seed,
        start,
        glide_from,
        morph,
    }
}

/// Paints `job`'s picture on the first painter while the screen shows its x0 predictions;
/// returns the show and the number of steps shown.
pub(super) fn paint_emerging<D: Display>(
    job: Job,
    painters: &mut Painters,
    screen: &mut Screen<D>,
    card: &ModelCard,
    stop: &AtomicBool,
) -> Result<(Show, u64)> {
    let t0 = Instant::now();
    let step_threads = painters.step_threads();
    let mut steps = Steps {
        stop,
        screen: Some(screen),
        card,
        shown: 0,
    };
    let denoiser = painters.first();
    let mut out = with_threads(step_threads, || {
        generate(
            denoiser,
            card,
            &job.params,
            Some(vec![job.start.clone()]),
            &mut steps,
        )
    })?;
    let x = out.pop().ok_or_else(lost)?;
    let show = Show {
        picture: picture_of(&x, card)?,
        glide: Vec::new(),
        glide_pace: Duration::ZERO,
        paint_time: t0.elapsed(),
        job,
    };
    Ok((show, steps.shown))
}
