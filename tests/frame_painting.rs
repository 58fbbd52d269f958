//! How the frame paints: the next picture while the current one shows (so a `Next` finds it
//! ready), a glide's in-between pictures side by side on several threads (the same pictures as
//! on one), and a picture shown emerging only when it is due.

mod frame_kit;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frame_kit::{card, params, settings, Gauss};
use petal::display::MemoryDisplay;
use petal::frame::control::channel_pair;
use petal::frame::{self, Command, Event, Painters, Report};
use petal::sampler::Denoiser;

/// Calls to all the denoisers of one test, and the most that ran at the same time.
#[derive(Default)]
struct Calls {
    total: AtomicUsize,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
}

/// [`Gauss`], counted in `calls`.
struct Counted {
    inner: Gauss,
    calls: Arc<Calls>,
}

impl Counted {
    fn new(delay: Duration, calls: &Arc<Calls>) -> Self {
        let mut inner = Gauss::new(&card());
        inner.delay = delay;
        Counted {
            inner,
            calls: Arc::clone(calls),
        }
    }
}

impl Denoiser for Counted {
    fn predict(&mut self, x: &[f32], t: usize) -> petal::Result<Vec<f32>> {
        let c = &self.calls;
        let now = c.running.fetch_add(1, Ordering::SeqCst) + 1;
        c.most_at_once.fetch_max(now, Ordering::SeqCst);
        let out = self.inner.predict(x, t);
        c.running.fetch_sub(1, Ordering::SeqCst);
        c.total.fetch_add(1, Ordering::SeqCst);
        out
    }
}

/// Waits (up to 30 s) for `cond`, polling.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a frame on a 48x48 memory display with `threads` counted denoisers (ddim, 4 steps).
fn glide(threads: usize, calls: &Arc<Calls>) -> (Report, Vec<image::RgbImage>) {
    let card = card();
    let p = params(&card, "ddim", 4);
    let s = settings(
        "display = \"memory\"\nevery = \"0\"\ncycles = 3\nseed = 7\nmorph = 6\nemerging = false",
    );
    let display = MemoryDisplay::new(48, 48);
    let rec = display.recording();
    let mut open = move || Ok(display.clone());
    let mut denoisers: Vec<Counted> = (0..threads)
        .map(|_| Counted::new(Duration::from_millis(3), calls))
        .collect();
    let painters = Painters::new(
        denoisers
            .iter_mut()
            .map(|d| d as &mut (dyn Denoiser + Send))
            .collect(),
        1,
    );
    let stop = AtomicBool::new(false);
    let report = frame::run_painters(
        &s,
        &p,
        &card,
        painters,
        &mut open,
        &stop,
        &petal::frame::Inbox::none(),
        &mut |_: Event| {},
    )
    .unwrap();
    (report, rec.frames())
}

#[test]
fn a_glide_is_painted_on_every_thread_and_shows_what_one_thread_paints() {
    let one = Arc::new(Calls::default());
    let (report1, frames1) = glide(1, &one);
    let three = Arc::new(Calls::default());
    let (report3, frames3) = glide(3, &three);
    // 3 pictures, two glides of 6 in-between pictures, 4 steps each.
    assert_eq!(one.total.load(Ordering::SeqCst), (3 + 2 * 6) * 4);
    assert_eq!(three.total.load(Ordering::SeqCst), (3 + 2 * 6) * 4);
    assert_eq!(report1.morph_frames, 12);
    assert_eq!(report3.morph_frames, 12);
    assert_eq!(frames1.len(), 3 + 12);
    assert!(
        frames1 == frames3,
        "three painting threads show other pictures than one"
    );
    assert_eq!(one.most_at_once.load(Ordering::SeqCst), 1);
    assert!(
        three.most_at_once.load(Ordering::SeqCst) >= 2,
        "a glide's pictures were painted one at a time on three threads"
    );
}

/// Pictures announced by a frame, with when each came.
type Shown = Arc<Mutex<Vec<(u64, Instant)>>>;

/// A running frame (a picture a minute, seed 5, ddim 3 steps of `step` each), its calls, the
/// pictures it announced, and its remote control.
struct Running {
    frame: std::thread::JoinHandle<petal::Result<Report>>,
    calls: Arc<Calls>,
    shown: Shown,
    remote: petal::frame::Remote,
}

fn start(step: Duration, emerging: bool) -> Running {
    let calls = Arc::new(Calls::default());
    let shown = Shown::default();
    let (remote, inbox) = channel_pair();
    let toml = format!("display = \"memory\"\nevery = \"60s\"\nemerging = {emerging}\nseed = 5");
    let frame = spawn_frame(&toml, step, &calls, inbox, &shown);
    wait_for("the first picture", || shown.lock().unwrap().len() == 1);
    Running {
        frame,
        calls,
        shown,
        remote,
    }
}

fn spawn_frame(
    toml: &str,
    delay: Duration,
    calls: &Arc<Calls>,
    inbox: frame::Inbox,
    shown: &Shown,
) -> std::thread::JoinHandle<petal::Result<Report>> {
    let s = settings(toml);
    let calls = Arc::clone(calls);
    let shown = Arc::clone(shown);
    std::thread::spawn(move || {
        let card = card();
        let mut den = Counted::new(delay, &calls);
        let p = params(&card, "ddim", 3);
        let stop = AtomicBool::new(false);
        let display = MemoryDisplay::new(40, 40);
        let mut open = move || Ok(display.clone());
        let mut events = |e: Event| {
            if let Event::Picture { seed, .. } = e {
                shown.lock().unwrap().push((seed, Instant::now()));
            }
        };
        frame::run_controlled(
            &s,
            &p,
            &card,
            &mut den,
            &mut open,
            &stop,
            &inbox,
            &mut events,
        )
    })
}

#[test]
fn the_next_picture_is_painted_while_one_shows_and_next_finds_it_ready() {
    // 3 steps of 150 ms: 450 ms to paint a picture; a picture every minute.
    let step = Duration::from_millis(150);
    let Running {
        frame,
        calls,
        shown,
        remote,
    } = start(step, false);
    // Nobody asked: the second picture gets painted anyway, long before it is due.
    wait_for("the second picture painted ahead", || {
        calls.total.load(Ordering::SeqCst) == 6
    });
    std::thread::sleep(step * 2);
    assert_eq!(
        calls.total.load(Ordering::SeqCst),
        6,
        "only one picture is painted ahead"
    );
    let asked = Instant::now();
    assert!(remote.send(Command::Next));
    wait_for("the second picture", || shown.lock().unwrap().len() == 2);
    let (seed, at) = shown.lock().unwrap()[1];
    assert_eq!(
        seed, 6,
        "the painted-ahead picture is the next of the sequence"
    );
    let latency = at - asked;
    assert!(
        latency < step * 3,
        "Next took {latency:?}, as long as painting a picture ({:?})",
        step * 3
    );
    assert!(remote.send(Command::Shutdown));
    let report = frame.join().unwrap().unwrap();
    assert!(report.shutdown);
    assert_eq!(report.pictures, 2);
    assert_eq!(report.last_seed, Some(6));
}

#[test]
fn a_picture_shown_emerging_is_painted_when_it_is_due() {
    let Running {
        frame,
        calls,
        shown,
        remote,
    } = start(Duration::from_millis(1), true);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        calls.total.load(Ordering::SeqCst),
        3,
        "the next picture's painting is its showing: nothing is painted ahead"
    );
    assert!(remote.send(Command::Next));
    wait_for("the second picture", || shown.lock().unwrap().len() == 2);
    assert_eq!(calls.total.load(Ordering::SeqCst), 6);
    assert!(remote.send(Command::Shutdown));
    let report = frame.join().unwrap().unwrap();
    assert_eq!(
        report.emerging_frames, 6,
        "both pictures emerged step by step"
    );
}

#[test]
fn stopping_ends_a_painting_ahead_within_a_step() {
    let step = Duration::from_millis(200);
    let Running {
        frame,
        calls,
        shown: _,
        remote,
    } = start(step, false);
    wait_for("the painting ahead to start", || {
        calls.total.load(Ordering::SeqCst) >= 3
    });
    let asked = Instant::now();
    assert!(remote.send(Command::Shutdown));
    let report = frame.join().unwrap().unwrap();
    let took = asked.elapsed();
    assert!(report.shutdown);
    assert_eq!(report.pictures, 1);
    assert!(
        calls.total.load(Ordering::SeqCst) < 6,
        "the picture painted ahead was finished although the frame was stopping"
    );
    assert!(
        took < step * 2 + Duration::from_millis(300),
        "stopping took {took:?}"
    );
}
