//! Memory stays flat over many pictures: a few hundred cycles of the frame loop (emerging
//! frames, morphs, captions, a gallery with retention, a PNG display) in one run must not grow
//! the resident set by more than 1 MB after a warm-up. Alone in its own test binary so no other
//! test's memory counts.

mod frame_kit;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use frame_kit::{card, params, settings, Gauss};
use petal::denoiser::TractDenoiser;
use petal::display::{AnyDisplay, DisplaySpec};
use petal::frame::{self, Event};
use petal::model::Model;
use petal::sampler::Denoiser;

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn soak(denoiser: &mut (dyn Denoiser + Send), steps: usize, warm: u64, cycles: u64) -> (u64, u64) {
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
    let mut before = 0;
    let mut after = 0;
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
                    before = rss_kb();
                    t0 = Instant::now();
                } else if pictures == warm + cycles {
                    after = rss_kb();
                }
            }
        },
    )
    .unwrap();
    assert_eq!(report.pictures, warm + cycles);
    assert!(
        before > 0 && after > 0,
        "RSS sampled after the warm-up and at the end"
    );
    assert_eq!(std::fs::read_dir(&gallery).unwrap().count(), 5);
    assert_eq!(
        std::fs::read_dir(&shown).unwrap().count(),
        5,
        "4 frames and current.png"
    );
    eprintln!(
        "soak: {cycles} cycles of {steps} steps in {:.1} s; RSS {before} kB -> {after} kB ({:+} kB)",
        t0.elapsed().as_secs_f64(),
        after as i64 - before as i64
    );
    (before, after)
}

#[test]
fn memory_stays_flat_over_hundreds_of_cycles() {
    let card = card();
    let mut gauss = Gauss::new(&card);
    let (before, after) = soak(&mut gauss, 3, 30, 300);
    assert!(
        after < before + 1024,
        "RSS grew from {before} kB to {after} kB"
    );

    // The real embedded model through tract: fewer cycles of one step (each is an inference).
    let model = Model::embedded().unwrap();
    let bytes = model.variant_bytes("int8w").unwrap();
    let mut tract = TractDenoiser::new(&bytes, &model.card, "emoji32 (int8w)").unwrap();
    let (before, after) = soak(&mut tract, 1, 20, 100);
    assert!(
        after < before + 1024,
        "RSS grew from {before} kB to {after} kB with tract"
    );
}
