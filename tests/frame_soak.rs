//! Memory stays flat over many pictures: a few hundred cycles of the frame loop (emerging
//! frames, morphs, captions, a gallery with retention, a PNG display) in one run must not grow
//! the resident set by more than 1 MB after a warm-up, nor the open file descriptors and
//! threads. Alone in its own test binary so no other test's memory, files or threads count.
//! (bench/soak.py is the long version: 1,000 pictures of the petal binary, sampled every
//! second.)

mod frame_kit;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use frame_kit::{card, params, settings, Gauss};
use petal::denoiser::TractDenoiser;
use petal::display::{AnyDisplay, DisplaySpec};
use petal::frame::{self, Event};
use petal::model::Model;
use petal::sampler::Denoiser;

fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
}

/// What the process holds at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    rss_kb: u64,
    fds: usize,
    threads: u64,
}

fn held() -> Held {
    Held {
        rss_kb: status_field("VmRSS:"),
        fds: std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd")
            .count(),
        threads: status_field("Threads:"),
    }
}

/// The process after the warm-up and at the end, with the checks every run must pass: resident
/// memory grows by less than 1 MB, and descriptors and threads do not grow (a descriptor more
/// is a picture caught mid-write; a leak would add one per picture).
fn check_flat(before: Held, after: Held, what: &str) {
    assert!(
        after.rss_kb < before.rss_kb + 1024,
        "{what}: RSS grew from {} kB to {} kB",
        before.rss_kb,
        after.rss_kb
    );
    assert!(
        after.fds <= before.fds + 1,
        "{what}: open descriptors {} -> {}",
        before.fds,
        after.fds
    );
    assert!(
        after.threads <= before.threads,
        "{what}: threads {} -> {}",
        before.threads,
        after.threads
    );
}

fn soak(
    denoiser: &mut (dyn Denoiser + Send),
    steps: usize,
    warm: u64,
    cycles: u64,
) -> (Held, Held) {
    let card = card();
    let dir = tempfile::tempdir().unwrap();
    let shown = dir.path().join("shown");
    let gallery = dir.path().join("gallery");
    let toml = |n: u64| {
        format!(
            "display = \"png:{}?size=128x96&keep=4\"\nevery = \"0\"\ncycles = {n}\nmorph = 1\ncaption = true\ngallery = \"{}\"\nkeep = 5\nseed = 1",
            shown.display(),
            gallery.display()
        )
    };
    let p = params(&card, "ddim", steps);
    let stop = AtomicBool::new(false);
    let s = settings(&toml(warm + cycles));
    let spec: DisplaySpec = s.display.clone();
    let mut open = move || -> petal::Result<AnyDisplay> { spec.open() };
    // Measured inside one run, as a kiosk lives: a run's painting threads (and the malloc arenas
    // they bring) start once, so comparing two runs would count them, not a leak.
    let mut pictures = 0;
    let mut before = Held::default();
    let mut after = Held::default();
    let mut t0 = Instant::now();
    let report = frame::run(
        &s,
        &p,
        &card,
        denoiser,
        &mut open,
        &stop,
        &mut |e: Event| {
            if let Event::Picture { .. } = e {
                pictures += 1;
                if pictures == warm {
                    before = held();
                    t0 = Instant::now();
                } else if pictures == warm + cycles {
                    after = held();
                }
            }
        },
    )
    .unwrap();
    assert_eq!(report.pictures, warm + cycles);
    assert!(
        before.rss_kb > 0 && after.rss_kb > 0,
        "RSS sampled after the warm-up and at the end"
    );
    assert_eq!(std::fs::read_dir(&gallery).unwrap().count(), 5);
    assert_eq!(
        std::fs::read_dir(&shown).unwrap().count(),
        5,
        "4 frames and current.png"
    );
    eprintln!(
        "soak: {cycles} cycles of {steps} steps in {:.1} s; RSS {} kB -> {} kB ({:+} kB), \
         fds {} -> {}, threads {} -> {}",
        t0.elapsed().as_secs_f64(),
        before.rss_kb,
        after.rss_kb,
        after.rss_kb as i64 - before.rss_kb as i64,
        before.fds,
        after.fds,
        before.threads,
        after.threads
    );
    (before, after)
}

#[test]
fn memory_stays_flat_over_hundreds_of_cycles() {
    let card = card();
    let mut gauss = Gauss::new(&card);
    let (before, after) = soak(&mut gauss, 3, 30, 300);
    check_flat(before, after, "exact denoiser");

    // The real embedded model through tract: fewer cycles of one step (each is an inference).
    let model = Model::embedded().unwrap();
    let bytes = model.variant_bytes("int8w").unwrap();
    let mut tract = TractDenoiser::new(&bytes, &model.card, "emoji32 (int8w)").unwrap();
    let (before, after) = soak(&mut tract, 1, 20, 100);
    check_flat(before, after, "tract");
}
