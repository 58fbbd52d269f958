//! The art frame: paint a picture, show it (emerging step by step on fast displays, or
//! gliding from the last one with `morph`), keep it in the gallery, wait, again — for months.
//!
//! The loop never dies of a display: a failing display is retried with a doubling wait and
//! reported through [`Event`]s. It stops within a tick (50 ms) of `stop` being set, also in the
//! middle of a picture (the sampler's progress callback checks it), and leaves no partial
//! file: every write is a temp file and a rename. Nothing grows per picture: the denoisers,
//! the buffers and the display are reused; the previous picture's noise and at most one show
//! painted ahead ([`painter`]) are kept.

pub mod buttons;
pub mod config;
pub mod control;
pub mod gallery;
#[cfg(feature = "http")]
pub mod http;
pub mod morph;
#[cfg(feature = "mqtt")]
pub mod mqtt;
pub mod painter;
mod screen;
pub mod settings_edit;
pub mod status;
mod steering;
pub mod when;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::card::ModelCard;
use crate::display::Display;
use crate::error::{Error, Result};
use crate::generate::GenerateParams;
use crate::sampler::Denoiser;
use painter::{job_for, Studio};
use screen::{pause_until, Screen};
use steering::{wait_for_next, Controls, Waited};

pub use config::{FrameOptions, FrameSettings};
pub use control::{Command, Inbox, Remote};
pub use gallery::Gallery;
pub use painter::Painters;

/// How often waits look at the stop flag and at a display waiting to be retried.
pub const TICK: Duration = Duration::from_millis(50);
/// The longest wait between two tries of a failing display.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What happens, for the caller to log.
#[derive(Debug)]
pub enum Event<'a> {
    DisplayOpened {
        describe: String,
    },
    DisplayFailed {
        error: &'a Error,
        retry_in: Duration,
    },
    DisplayRecovered {
        after_failures: u64,
    },
    Picture {
        seed: u64,
        paint_time: Duration,
        saved: Option<&'a std::path::Path>,
    },
    GalleryFailed {
        error: &'a Error,
    },
    QuietHours {
        started: bool,
    },
    /// The wall clock reads before any real time (no RTC, no NTP yet): quiet hours are not
    /// applied and captions leave out the time until it is set. Sent once per run.
    ClockNotSet,
    /// With a fixed starting seed, a restart continues the sequence after the gallery's newest
    /// picture instead of painting the same pictures again.
    SeedsContinue {
        from: u64,
    },
    /// The viewer closed the display (a desktop window): the run ends as if stopped.
    DisplayClosed,
    /// A command arrived (a button, ...); `outcome` says what it did, for the log.
    Command {
        command: Command,
        outcome: String,
    },
    /// What the commands have set, after each command (for the control page).
    Controls {
        paused: bool,
        on_screen: Option<&'a std::path::Path>,
    },
}

/// Where a run left off, for the next run after a reload: it keeps the pause, the picture on
/// screen, and the time the next picture is due, instead of painting one at once.
#[derive(Debug, Clone)]
pub struct Resume {
    pub paused: bool,
    pub on_screen: Option<PathBuf>,
    /// When the next picture was due (the new interval counts from the last picture's start).
    pub last_start: Option<Instant>,
}

/// What a run did, for the caller's summary and for tests.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub pictures: u64,
    /// Frames put on the display, all kinds.
    pub frames_shown: u64,
    pub emerging_frames: u64,
    /// Time of the pictures shown emerging (painting and showing), for frames per second.
    pub emerging_time: Duration,
    pub morph_frames: u64,
    /// Time of the in-between pictures on the screen (they play at the pace one thread
    /// paints them).
    pub morph_time: Duration,
    pub display_failures: u64,
    /// Set when `stop` ended the run (rather than `cycles`).
    pub stopped: bool,
    /// Set when a [`Command::Shutdown`] ended the run: the caller powers the machine off.
    pub shutdown: bool,
    /// Set when a [`Command::Reload`] ended the run: the caller reads its settings again and
    /// runs the frame anew, with [`Report::resume`] in the new settings.
    pub reload: bool,
    pub resume: Option<Resume>,
    pub last_seed: Option<u64>,
    pub last_saved: Option<PathBuf>,
}

impl Report {
    pub fn emerging_fps(&self) -> Option<f64> {
        (self.emerging_frames > 0 && !self.emerging_time.is_zero())
            .then(|| self.emerging_frames as f64 / self.emerging_time.as_secs_f64())
    }

    pub fn time_per_morph_frame(&self) -> Option<Duration> {
        (self.morph_frames > 0).then(|| self.morph_time / self.morph_frames as u32)
    }
}

/// Checks the generation settings for the frame loop before anything is loaded.
pub fn check(settings: &FrameSettings, params: &GenerateParams, card: &ModelCard) -> Result<()> {
    params.validate(card)?;
    if params.count != 1 {
        return Err(Error::Invalid(
            "the frame paints one picture at a time (count 1)".into(),
        ));
    }
    if settings.morph > 0 && params.sampler_config()?.kind.is_stochastic() {
        return Err(Error::Invalid(format!(
            "--morph needs a deterministic sampler (ddim with eta 0, dpmpp-2m or dpmpp-3m), not {}{}",
            params.sampler,
            if params.sampler == "ddim" { format!(" with eta {}", params.eta) } else { String::new() }
        )));
    }
    Ok(())
}

/// Runs the frame until `settings.cycles` pictures are done or `stop` is set.
///
/// `params` is the template of every picture (its seed is replaced per picture); `open`
/// opens the display (again after a failure).
pub fn run<D: Display>(
    settings: &FrameSettings,
    params: &GenerateParams,
    card: &ModelCard,
    denoiser: &mut (dyn Denoiser + Send),
    open: &mut dyn FnMut() -> Result<D>,
    stop: &AtomicBool,
    events: &mut dyn FnMut(Event),
) -> Result<Report> {
    let inbox = Inbox::none();
    run_controlled(settings, params, card, denoiser, open, stop, &inbox, events)
}

/// [`run`], also taking [`Command`]s from `inbox` (buttons, ...).
#[allow(clippy::too_many_arguments)]
pub fn run_controlled<D: Display>(
    settings: &FrameSettings,
    params: &GenerateParams,
    card: &ModelCard,
    denoiser: &mut (dyn Denoiser + Send),
    open: &mut dyn FnMut() -> Result<D>,
    stop: &AtomicBool,
    inbox: &Inbox,
    events: &mut dyn FnMut(Event),
) -> Result<Report> {
    let painters = Painters::one(denoiser);
    run_painters(settings, params, card, painters, open, stop, inbox, events)
}

/// [`run_controlled`] with several painting threads: a glide's pictures are painted at once.
#[allow(clippy::too_many_arguments)]
pub fn run_painters<D: Display>(
    settings: &FrameSettings,
    params: &GenerateParams,
    card: &ModelCard,
    painters: Painters,
    open: &mut dyn FnMut() -> Result<D>,
    stop: &AtomicBool,
    inbox: &Inbox,
    events: &mut dyn FnMut(Event),
) -> Result<Report> {
    check(settings, params, card)?;
    if let Some(g) = &settings.gallery {
        g.prepare()?;
    }
    let mut screen = Screen {
        open,
        events,
        display: None,
        layout: settings.layout,
        backoff: settings.retry,
        first_backoff: settings.retry,
        retry_at: None,
        failures_in_row: 0,
        last_show: None,
        pending: None,
        shown: 0,
        failures: 0,
        closed: false,
    };
    screen.ready();
    let mut report = Report::default();
    let mut next_seed = settings.first_seed;
    if let (Some(first), Some(g)) = (settings.first_seed, &settings.gallery) {
        if let Some(newest) = g.newest_seed().filter(|&s| s >= first) {
            next_seed = Some(newest.wrapping_add(1));
            (screen.events)(Event::SeedsContinue {
                from: newest.wrapping_add(1),
            });
        }
    }
    let mut clock_warned = false;
    let mut controls = Controls::default();
    let gallery = settings.gallery.as_ref();
    let mut last_start = None;
    if let Some(r) = &settings.resume {
        controls.paused = r.paused;
        controls.on_screen.clone_from(&r.on_screen);
        last_start = r.last_start;
    }
    // The previous picture's start noise, for morphing from it.
    let mut previous: Option<Vec<f32>> = None;
    let mut quiet = false;
    // Tells a painting that is no longer wanted (the run ends) to stop.
    let cancel = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        let mut studio = Studio::open(scope, painters, card, stop, &cancel);
        let result = (|| -> Result<()> {
            if let Some(started) = settings.resume.as_ref().and_then(|r| r.last_start) {
                // The display was opened again: a fast one gets the picture back (a panel still
                // shows it); the next one comes when it is due under the new interval.
                if let (true, Some(p)) = (screen.fast(), controls.on_screen.clone()) {
                    controls.show(&p, &mut screen, stop);
                }
                controls.announce(&mut screen);
                if let Waited::Stopped = wait_for_next(
                    started + settings.every,
                    settings.every,
                    stop,
                    &mut screen,
                    inbox,
                    &mut controls,
                    gallery,
                ) {
                    report.stopped = true;
                    return Ok(());
                }
            }
            loop {
                if screen.ending(stop) {
                    report.stopped = true;
                    return Ok(());
                }
                if settings.cycles.is_some_and(|n| report.pictures >= n) {
                    return Ok(());
                }
                let now = settings.clock.now();
                let clock_set = when::clock_is_set(&now);
                if !clock_set && !clock_warned {
                    clock_warned = true;
                    (screen.events)(Event::ClockNotSet);
                }
                if let Some(q) = settings.quiet_hours.filter(|_| clock_set) {
                    if q.contains_time(&now) {
                        if !quiet {
                            quiet = true;
                            (screen.events)(Event::QuietHours { started: true });
                        }
                        // No refresh at all, not even of a picture a failing display missed;
                        // of the commands, only shutdown and pause mean something now.
                        while let Some(c) = inbox.poll() {
                            if matches!(c, Command::Shutdown | Command::Pause | Command::Reload) {
                                if let Some(Waited::Stopped) =
                                    controls.handle(c, gallery, &mut screen, stop)
                                {
                                    report.stopped = true;
                                    return Ok(());
                                }
                            }
                        }
                        std::thread::sleep(TICK);
                        continue;
                    } else if quiet {
                        quiet = false;
                        (screen.events)(Event::QuietHours { started: false });
                    }
                }
                let started = Instant::now();
                last_start = Some(started);
                // A slow panel (e-paper) would spend minutes and wear on in-between pictures:
                // it cuts from one picture to the next.
                let morphing = settings.morph > 0 && previous.is_some() && screen.fast();
                let mut emerged = 0;
                let show = if studio.pending() {
                    // Painted while the last picture showed (or still being painted).
                    studio.receive(&mut screen, stop, &cancel, card)?.0
                } else {
                    let from = previous.clone().filter(|_| morphing);
                    let job = job_for(&mut next_seed, params, card, from, settings.morph);
                    let emerging = settings.emerging && !morphing && screen.fast();
                    studio.order(job, emerging)?;
                    let (show, shown) = studio.receive(&mut screen, stop, &cancel, card)?;
                    emerged = shown;
                    show
                };
                // The next picture is painted while this one shows (its glide included), unless it
                // will be shown emerging: then its painting is the show, and waits for its time.
                let last = settings.cycles.is_some_and(|n| report.pictures + 1 >= n);
                let glides = settings.morph > 0 && screen.fast();
                let emerges = settings.emerging && !glides && screen.fast();
                if !last && !emerges {
                    let from = Some(show.job.start.clone()).filter(|_| glides);
                    let job = job_for(&mut next_seed, params, card, from, settings.morph);
                    studio.order(job, false)?;
                }
                if morphing && !show.glide.is_empty() {
                    let t0 = Instant::now();
                    for (k, frame) in show.glide.iter().enumerate() {
                        if !pause_until(t0 + show.glide_pace * k as u32, &mut screen, stop) {
                            break;
                        }
                        if screen.present(frame, None) {
                            report.morph_frames += 1;
                        }
                        screen.tick();
                    }
                    pause_until(
                        t0 + show.glide_pace * show.glide.len() as u32,
                        &mut screen,
                        stop,
                    );
                    report.morph_time += t0.elapsed();
                }

                let seed = show.job.seed;
                let now = settings.clock.now();
                let caption = settings.caption.then(|| {
                    if when::clock_is_set(&now) {
                        format!("{}  seed {seed}", when::local_stamp(&now))
                    } else {
                        format!("seed {seed}")
                    }
                });
                screen.present_final(show.picture.clone(), caption, stop);
                if emerged > 0 {
                    report.emerging_frames += emerged;
                    report.emerging_time += show.paint_time;
                }
                let saved = match &settings.gallery {
                    Some(g) => match g.save(&show.picture, &show.job.params, &now) {
                        Ok(path) => Some(path),
                        Err(e) => {
                            (screen.events)(Event::GalleryFailed { error: &e });
                            None
                        }
                    },
                    None => None,
                };
                (screen.events)(Event::Picture {
                    seed,
                    paint_time: show.paint_time,
                    saved: saved.as_deref(),
                });
                report.pictures += 1;
                report.last_seed = Some(seed);
                controls.on_screen.clone_from(&saved);
                controls.announce(&mut screen);
                report.last_saved = saved;
                previous = Some(show.job.start);
                if settings.cycles.is_some_and(|n| report.pictures >= n) {
                    return Ok(());
                }
                let deadline = started + settings.every;
                if let Waited::Stopped = wait_for_next(
                    deadline,
                    settings.every,
                    stop,
                    &mut screen,
                    inbox,
                    &mut controls,
                    gallery,
                ) {
                    report.stopped = true;
                    return Ok(());
                }
                if controls.on_screen != report.last_saved {
                    // `Previous` put an older picture up: the next one cuts to it rather than
                    // gliding from a picture that is no longer on the screen.
                    previous = None;
                }
            }
        })();
        cancel.store(true, Ordering::Relaxed);
        result
    });
    report.frames_shown = screen.shown;
    report.display_failures = screen.failures;
    report.shutdown = controls.shutdown;
    report.reload = controls.reload;
    report.resume = Some(Resume {
        paused: controls.paused,
        on_screen: controls.on_screen.clone(),
        last_start,
    });
    match result {
        Err(Error::Interrupted) => {
            report.stopped = true;
            Ok(report)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(report),
    }
}
