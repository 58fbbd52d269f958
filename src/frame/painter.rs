//! The frame's painting threads. They start with the run and live as long as it does (a
//! thread per picture would take tract's per-thread scratch and the allocator's arenas with it
//! each time, and resident memory crept up by ~1 MB every few hundred pictures). The lead
//! painter takes [`Job`]s and delivers [`Show`]s: a picture and the in-between pictures of its
//! glide, painted side by side with the helpers, the other painting threads. Unless the
//! picture is shown emerging — then its painting is the show and the lead sends each step's
//! prediction to the screen as it goes — the display loop orders the next picture as soon as
//! it has one to show, and plays it back when it is due: commands and a failing display are
//! answered during painting, and a `Next` finds its picture ready.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::Scope;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::screen::Screen;
use super::TICK;
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
}

/// What to paint for one picture.
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

fn picture_of(x: &[f32], card: &ModelCard) -> Result<RgbImage> {
    tensor_to_rgb(x, card.channels, card.resolution, card.value_range)
}

pub(super) fn lost() -> Error {
    Error::Invalid("a painting thread stopped unexpectedly".into())
}

/// Ends a painting when the frame stops, or when the frame no longer wants it (`cancel`).
struct Cancellable<'a> {
    stop: &'a AtomicBool,
    cancel: &'a AtomicBool,
    /// Where each step's prediction goes, for a picture shown emerging.
    steps: Option<&'a SyncSender<Delivery>>,
}

impl Progress for Cancellable<'_> {
    fn step(&mut self, _: usize, _: usize, _: usize, x0: &[f32]) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) || self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        if let Some(to_screen) = self.steps {
            // The display loop has gone: the run is ending.
            to_screen
                .send(Delivery::Step(x0.to_vec()))
                .map_err(|_| Error::Interrupted)?;
        }
        Ok(())
    }
}

/// What the lead painter sends the display loop.
enum Delivery {
    /// A step's x0 prediction of a picture shown emerging.
    Step(Vec<f32>),
    Show(Box<Result<Show>>),
}

/// A show's start noises, for whichever painting thread is free: each takes the next index.
struct ShowWork {
    starts: Vec<Mutex<Option<Vec<f32>>>>,
    next: AtomicUsize,
    params: GenerateParams,
}

impl ShowWork {
    /// The next start noise nobody has taken, with its index.
    fn take(&self) -> Option<(usize, Vec<f32>)> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let start = self.starts.get(i)?.lock().ok()?.take()?;
        Some((i, start))
    }
}

/// A task's picture (or why not), and the time it took.
type Painted = (usize, Result<Vec<f32>>, Duration);

/// What the painting threads share: the run's stop flags and the card.
#[derive(Clone, Copy)]
struct Shared<'r> {
    card: &'r ModelCard,
    stop: &'r AtomicBool,
    cancel: &'r AtomicBool,
    step_threads: usize,
}

impl Shared<'_> {
    /// Carries `start` to a picture with `params`, ending early when the run ends; `steps`
    /// gets each step's prediction.
    fn carry(
        &self,
        denoiser: &mut (dyn Denoiser + Send),
        params: &GenerateParams,
        start: Vec<f32>,
        steps: Option<&SyncSender<Delivery>>,
    ) -> Result<Vec<f32>> {
        let mut progress = Cancellable {
            stop: self.stop,
            cancel: self.cancel,
            steps,
        };
        generate(
            denoiser,
            self.card,
            params,
            Some(vec![start]),
            &mut progress,
        )?
        .pop()
        .ok_or_else(lost)
    }
}

/// The display loop's side of the painting threads.
pub(super) struct Studio {
    orders: Sender<(Job, bool)>,
    deliveries: Receiver<Delivery>,
    /// A show ordered and not yet received.
    pending: bool,
}

impl Studio {
    /// Starts the painting threads in `scope`: they end when the studio is dropped (after the
    /// show they are painting, which `cancel` cuts short).
    pub(super) fn open<'scope, 'p: 'scope, 'r: 'scope>(
        scope: &'scope Scope<'scope, '_>,
        painters: Painters<'p>,
        card: &'r ModelCard,
        stop: &'r AtomicBool,
        cancel: &'r AtomicBool,
    ) -> Studio {
        let shared = Shared {
            card,
            stop,
            cancel,
            step_threads: painters.step_threads,
        };
        let (orders, lead_orders) = channel::<(Job, bool)>();
        // One delivery in flight: the lead paints an emerging picture no faster than the
        // screen shows its steps.
        let (lead_deliveries, deliveries) = sync_channel::<Delivery>(1);
        let (done, lead_done) = channel::<Painted>();
        let mut denoisers = painters.denoisers.into_iter();
        let lead = denoisers.next();
        let mut helpers = Vec::new();
        for denoiser in denoisers {
            let (work, helper_work) = channel::<Arc<ShowWork>>();
            helpers.push(work);
            let done = done.clone();
            scope.spawn(move || {
                with_threads(shared.step_threads, || {
                    help(denoiser, shared, &helper_work, &done)
                })
            });
        }
        drop(done);
        scope.spawn(move || {
            let Some(lead) = lead else { return };
            with_threads(shared.step_threads, || {
                let crew = Crew {
                    helpers,
                    done: lead_done,
                };
                while let Ok((job, emerging)) = lead_orders.recv() {
                    let show = if emerging {
                        paint_emerging(job, lead, shared, &lead_deliveries)
                    } else {
                        paint(job, lead, shared, &crew)
                    };
                    if lead_deliveries
                        .send(Delivery::Show(Box::new(show)))
                        .is_err()
                    {
                        return;
                    }
                }
            })
        });
        Studio {
            orders,
            deliveries,
            pending: false,
        }
    }

    /// Orders `job` painted; `emerging`: its steps are shown as they are painted, by
    /// [`Studio::receive`].
    pub(super) fn order(&mut self, job: Job, emerging: bool) -> Result<()> {
        self.orders.send((job, emerging)).map_err(|_| lost())?;
        self.pending = true;
        Ok(())
    }

    /// Whether a show has been ordered and not received yet.
    pub(super) fn pending(&self) -> bool {
        self.pending
    }

    /// Waits for the show ordered last, putting its steps on the screen if it emerges; returns
    /// it with the number of steps shown. A screen that is ending cancels the painting.
    pub(super) fn receive<D: Display>(
        &mut self,
        screen: &mut Screen<D>,
        stop: &AtomicBool,
        cancel: &AtomicBool,
        card: &ModelCard,
    ) -> Result<(Show, u64)> {
        let mut shown = 0;
        loop {
            match self.deliveries.recv_timeout(TICK) {
                Ok(Delivery::Step(x0)) => {
                    if screen.present(&picture_of(&x0, card)?, None) {
                        shown += 1;
                    }
                    if screen.ending(stop) {
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
                Ok(Delivery::Show(show)) => {
                    self.pending = false;
                    return Ok(((*show)?, shown));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if screen.ending(stop) {
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Err(lost()),
            }
        }
    }
}

/// The lead painter's way to the helpers.
struct Crew {
    /// One channel per helper: each gets every show with more than one picture.
    helpers: Vec<Sender<Arc<ShowWork>>>,
    /// The helpers' pictures.
    done: Receiver<Painted>,
}

/// A helper's life: paint from each show it gets until the show has no picture left, until
/// the run ends.
fn help(
    denoiser: &mut (dyn Denoiser + Send),
    shared: Shared,
    work: &Receiver<Arc<ShowWork>>,
    done: &Sender<Painted>,
) {
    while let Ok(show) = work.recv() {
        while let Some((i, start)) = show.take() {
            let t = Instant::now();
            let out = shared.carry(denoiser, &show.params, start, None);
            if done.send((i, out, t.elapsed())).is_err() {
                return;
            }
        }
    }
}

/// Paints `job`'s glide and picture, spread over the lead and its helpers.
fn paint(job: Job, lead: &mut (dyn Denoiser + Send), shared: Shared, crew: &Crew) -> Result<Show> {
    let t0 = Instant::now();
    let mut starts: Vec<Vec<f32>> = match &job.glide_from {
        Some(from) => (1..=job.morph)
            .map(|k| morph::slerp(from, &job.start, morph::position(k, job.morph)))
            .collect(),
        None => Vec::new(),
    };
    starts.push(job.start.clone());
    let count = starts.len();
    let work = Arc::new(ShowWork {
        starts: starts.into_iter().map(|x| Mutex::new(Some(x))).collect(),
        next: AtomicUsize::new(0),
        params: job.params.clone(),
    });
    if count > 1 {
        for helper in &crew.helpers {
            helper.send(Arc::clone(&work)).map_err(|_| lost())?;
        }
    }
    let mut results: Vec<Painted> = Vec::with_capacity(count);
    while let Some((i, start)) = work.take() {
        let t = Instant::now();
        results.push((
            i,
            shared.carry(lead, &work.params, start, None),
            t.elapsed(),
        ));
    }
    // Every picture the helpers took is collected, failed or not, so that none is left to mix
    // into the next show.
    while results.len() < count {
        results.push(crew.done.recv().map_err(|_| lost())?);
    }
    let mut painted: Vec<Option<Vec<f32>>> = vec![None; count];
    let mut busy = Duration::ZERO;
    let mut failure = None;
    for (i, out, took) in results {
        match out {
            Ok(x) => painted[i] = Some(x),
            Err(e) => failure = failure.or(Some(e)),
        }
        busy += took;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let mut painted = painted
        .into_iter()
        .map(|x| x.ok_or_else(lost))
        .collect::<Result<Vec<_>>>()?;
    let picture = painted.pop().ok_or_else(lost)?;
    // Every picture costs the same: one thread's time per in-between picture.
    let glide_pace = if painted.is_empty() {
        Duration::ZERO
    } else {
        busy / count as u32
    };
    let glide = painted
        .iter()
        .map(|x| picture_of(x, shared.card))
        .collect::<Result<_>>()?;
    Ok(Show {
        picture: picture_of(&picture, shared.card)?,
        glide,
        glide_pace,
        paint_time: t0.elapsed(),
        job,
    })
}

/// Paints `job`'s picture on the lead, sending each step's prediction to the screen.
fn paint_emerging(
    job: Job,
    lead: &mut (dyn Denoiser + Send),
    shared: Shared,
    to_screen: &SyncSender<Delivery>,
) -> Result<Show> {
    let t0 = Instant::now();
    let x = shared.carry(lead, &job.params, job.start.clone(), Some(to_screen))?;
    Ok(Show {
        picture: picture_of(&x, shared.card)?,
        glide: Vec::new(),
        glide_pace: Duration::ZERO,
        paint_time: t0.elapsed(),
        job,
    })
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
