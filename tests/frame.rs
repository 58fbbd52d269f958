//! The frame loop: frames on an in-memory display, emerging pictures, morphs, the gallery,
//! failing displays, quiet hours, stopping; and the `petal frame` command's config errors and
//! SIGTERM handling.

mod frame_kit;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use embedded_graphics::prelude::RgbColor;
use frame_kit::{card, params, settings, Gauss};
use image::{Rgb, RgbImage};
use petal::display::compose::compose;
use petal::display::dither::ACEP7_NOMINAL;
use petal::display::{MemoryDisplay, Palette};
use petal::frame::{self, Event, Report};
use petal::generate::{generate, GenerateParams, NoProgress};
use petal::picture::tensor_to_rgb;

fn run(
    toml: &str,
    params: &GenerateParams,
    display: &MemoryDisplay,
    den: &mut Gauss,
    stop: &AtomicBool,
) -> petal::Result<Report> {
    let card = card();
    let s = settings(toml);
    let d = display.clone();
    let mut open = move || Ok(d.clone());
    frame::run(&s, params, &card, den, &mut open, stop, &mut |_e: Event| {})
}

/// The stand-alone picture for `seed`, as `petal generate` paints it, composed for a screen.
fn standalone(p: &GenerateParams, seed: u64, w: u32, h: u32) -> RgbImage {
    let card = card();
    let mut den = Gauss::new(&card);
    let mut p = p.clone();
    p.seed = seed;
    let x = generate(&mut den, &card, &p, None, &mut NoProgress).unwrap();
    let pic = tensor_to_rgb(&x[0], card.channels, card.resolution, card.value_range).unwrap();
    compose(&pic, w, h, &Default::default(), None, None)
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let n = a.as_raw().len() as f64;
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / n
}

#[test]
fn frames_are_recorded_with_letterboxing() {
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(100, 70);
    let rec = display.recording();
    let p = params(&card, "ddim", 4);
    let stop = AtomicBool::new(false);
    let toml =
        "display = \"memory\"\nevery = \"0\"\ncycles = 2\nseed = 5\nbackground = \"#102030\"";
    let report = run(toml, &p, &display, &mut den, &stop).unwrap();
    assert_eq!(report.pictures, 2);
    assert!(!report.stopped);
    // Each picture: one frame per sampler step while emerging, then the finished one.
    assert_eq!(report.emerging_frames, 8);
    assert_eq!(rec.shown(), 10);
    let frames = rec.frames();
    assert!(frames.iter().all(|f| f.dimensions() == (100, 70)));
    // 32 px at a whole scale of 2: 64x64 centred, bars of the background colour around.
    let last = frames.last().unwrap();
    for (x, y) in [(0, 0), (17, 35), (82, 35), (50, 2), (50, 67), (99, 69)] {
        assert_eq!(last.get_pixel(x, y), &Rgb([0x10, 0x20, 0x30]), "({x},{y})");
    }
    // The finished frames are the stand-alone pictures of seeds 5 and 6.
    let bg = |img: RgbImage| {
        let layout = petal::display::scale::Layout {
            background: [0x10, 0x20, 0x30],
            ..Default::default()
        };
        let small = image::imageops::crop_imm(&img, 18, 3, 64, 64).to_image();
        let small = image::imageops::resize(&small, 32, 32, image::imageops::FilterType::Nearest);
        compose(&small, 100, 70, &layout, None, None)
    };
    assert_eq!(frames[4], bg(standalone(&p, 5, 100, 70)));
    assert_eq!(frames[9], bg(standalone(&p, 6, 100, 70)));
}

#[test]
fn emerging_frames_move_toward_the_final_picture() {
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(64, 64);
    let rec = display.recording();
    let p = params(&card, "dpmpp-2m", 12);
    let stop = AtomicBool::new(false);
    run(
        "display = \"memory\"\ncycles = 1\nseed = 9",
        &p,
        &display,
        &mut den,
        &stop,
    )
    .unwrap();
    let frames = rec.frames();
    assert_eq!(frames.len(), 13);
    let last = frames.last().unwrap();
    let d: Vec<f64> = frames[..12]
        .iter()
        .map(|f| mean_abs_diff(f, last))
        .collect();
    assert!(
        d[0] > 5.0,
        "the first x0 prediction is far from the end: {d:?}"
    );
    assert!(d[11] < 1.0, "the last is (almost) the picture: {d:?}");
    for w in d.windows(2) {
        assert!(
            w[1] <= w[0] + 0.5,
            "distances to the final picture should shrink: {d:?}"
        );
    }
}

#[test]
fn morph_glides_smoothly_and_ends_on_the_standalone_pictures() {
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(64, 64);
    let rec = display.recording();
    let p = params(&card, "ddim", 6);
    let stop = AtomicBool::new(false);
    let n = 7;
    let toml =
        format!("display = \"memory\"\nevery = \"0\"\ncycles = 2\nseed = 100\nmorph = {n}\nemerging = false");
    let report = run(&toml, &p, &display, &mut den, &stop).unwrap();
    assert_eq!(report.morph_frames, n as u64);
    let frames = rec.frames();
    assert_eq!(frames.len(), n + 2, "A, the in-between frames, B");
    let (a, b) = (standalone(&p, 100, 64, 64), standalone(&p, 101, 64, 64));
    assert_eq!(
        frames[0], a,
        "the first end is the stand-alone picture of seed 100"
    );
    assert_eq!(
        frames[n + 1],
        b,
        "the last end is the stand-alone picture of seed 101"
    );
    let total = mean_abs_diff(&a, &b);
    assert!(total > 5.0, "the two seeds should paint different pictures");
    let steps: Vec<f64> = frames
        .windows(2)
        .map(|w| mean_abs_diff(&w[0], &w[1]))
        .collect();
    for s in &steps {
        assert!(
            *s < total * 0.35,
            "a jump of {s} in a glide of {total}: {steps:?}"
        );
        assert!(*s > 0.0, "every in-between frame differs: {steps:?}");
    }
    // The in-between frames travel from A to B.
    let to_b: Vec<f64> = frames.iter().map(|f| mean_abs_diff(f, &b)).collect();
    assert!(
        to_b[n / 2] < to_b[0] && to_b[n / 2] > to_b[n + 1],
        "{to_b:?}"
    );
}

#[test]
fn morph_needs_a_deterministic_sampler() {
    let card = card();
    let s = settings("display = \"memory\"\nmorph = 3");
    let e = frame::check(&s, &params(&card, "ddpm", 10), &card)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--morph needs a deterministic sampler") && e.contains("ddpm"),
        "{e}"
    );
    let mut p = params(&card, "ddim", 10);
    p.eta = 0.5;
    let e = frame::check(&s, &p, &card).unwrap_err().to_string();
    assert!(e.contains("eta 0.5"), "{e}");
}

#[test]
fn gallery_keeps_pictures_with_metadata_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gallery");
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(32, 32).keep_last(1);
    let p = params(&card, "ddim", 3);
    let stop = AtomicBool::new(false);
    let toml = format!(
        "display = \"memory\"\nevery = \"0\"\ncycles = 5\nseed = 40\nemerging = false\ngallery = {:?}\nkeep = 2\ngallery-size = 64",
        g.display().to_string()
    );
    let report = run(&toml, &p, &display, &mut den, &stop).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&g)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(report.last_saved.as_deref(), Some(files[1].as_path()));
    let meta = petal::picture::read_png_text(&files[1], petal::picture::METADATA_KEY)
        .unwrap()
        .unwrap();
    let saved: GenerateParams = serde_json::from_str(&meta).unwrap();
    assert_eq!(saved.seed, 44);
    assert_eq!(saved.size, Some(64));
    assert_eq!(image::image_dimensions(&files[1]).unwrap(), (64, 64));
    // By bytes: one picture's worth keeps only the newest.
    let one = std::fs::metadata(&files[1]).unwrap().len();
    let toml = format!(
        "display = \"memory\"\nevery = \"0\"\ncycles = 3\nemerging = false\ngallery = {:?}\ngallery-size = 64\nkeep-bytes = \"{}\"",
        g.display().to_string(),
        one + one / 2
    );
    run(&toml, &p, &display, &mut den, &stop).unwrap();
    assert_eq!(std::fs::read_dir(&g).unwrap().count(), 1);
}

#[test]
fn a_failing_display_is_retried_and_the_picture_shown_later() {
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(32, 32);
    let rec = display.recording();
    display.fail_next(3);
    let p = params(&card, "ddim", 2);
    let stop = AtomicBool::new(false);
    let toml =
        "display = \"memory\"\ncycles = 2\nevery = \"400ms\"\nemerging = false\nretry = \"20ms\"";
    let report = run(toml, &p, &display, &mut den, &stop).unwrap();
    assert_eq!(report.pictures, 2);
    assert_eq!(report.display_failures, 3);
    assert_eq!(rec.lock().failures, 3);
    // Both pictures got on the screen: the first after the retries (20, 40, 80 ms).
    assert_eq!(rec.shown(), 2);
}

#[test]
fn slow_and_few_colour_displays_get_only_dithered_finished_pictures() {
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(48, 40)
        .with_palette(Palette::acep7(0.5).unwrap())
        .with_min_refresh_interval(Duration::from_millis(300));
    let rec = display.recording();
    let p = params(&card, "ddim", 5);
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let report = run(
        "display = \"memory\"\ncycles = 2\nevery = \"0\"\ncaption = true",
        &p,
        &display,
        &mut den,
        &stop,
    )
    .unwrap();
    assert_eq!(
        report.emerging_frames, 0,
        "no emerging pictures on a slow panel"
    );
    assert_eq!(rec.shown(), 2);
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "the refresh limit is kept"
    );
    for f in rec.frames() {
        assert!(f
            .pixels()
            .all(|px| ACEP7_NOMINAL.iter().any(|c| [c.r(), c.g(), c.b()] == px.0)));
    }
}

#[test]
fn slow_panels_cut_to_the_next_picture_without_morph_frames() {
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(32, 32).with_min_refresh_interval(Duration::from_millis(150));
    let rec = display.recording();
    let p = params(&card, "ddim", 3);
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let report = run(
        "display = \"memory\"\ncycles = 3\nevery = \"0\"\nmorph = 4",
        &p,
        &display,
        &mut den,
        &stop,
    )
    .unwrap();
    assert_eq!(report.pictures, 3);
    assert_eq!(
        report.morph_frames, 0,
        "no in-between refreshes of a slow panel"
    );
    assert_eq!(rec.shown(), 3);
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "the refresh limit is kept"
    );
}

#[test]
fn closing_the_display_ends_the_run() {
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(32, 32);
    let rec = display.recording();
    let p = params(&card, "ddim", 2);
    let stop = AtomicBool::new(false);
    let s = settings("display = \"memory\"\nevery = \"1h\"");
    let d = display.clone();
    let mut open = move || Ok(d.clone());
    let closer = rec.clone();
    let mut closed_events = 0;
    let t0 = Instant::now();
    let report = frame::run(
        &s,
        &p,
        &card,
        &mut den,
        &mut open,
        &stop,
        &mut |e: Event| {
            match e {
                // The viewer closes the window once the first picture is up.
                Event::Picture { .. } => closer.close(),
                Event::DisplayClosed => closed_events += 1,
                _ => {}
            }
        },
    )
    .unwrap();
    assert!(report.stopped);
    assert_eq!(report.pictures, 1);
    assert_eq!(closed_events, 1);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "ends within a tick, not after the hour: {:?}",
        t0.elapsed()
    );
}

#[test]
fn quiet_hours_pause_painting() {
    use chrono::Timelike;
    let card = card();
    let mut den = Gauss::new(&card);
    let display = MemoryDisplay::new(32, 32);
    let rec = display.recording();
    let p = params(&card, "ddim", 2);
    let now = chrono::Local::now();
    let m = now.hour() * 60 + now.minute();
    let hhmm = |m: u32| format!("{:02}:{:02}", (m / 60) % 24, m % 60);
    let window = format!("{}-{}", hhmm((m + 1440 - 60) % 1440), hhmm((m + 60) % 1440));
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        s2.store(true, Ordering::Relaxed);
    });
    let toml = format!("display = \"memory\"\ncycles = 3\nquiet-hours = \"{window}\"");
    let report = run(&toml, &p, &display, &mut den, &stop).unwrap();
    t.join().unwrap();
    assert!(report.stopped);
    assert_eq!(report.pictures, 0);
    assert_eq!(rec.shown(), 0);
}

#[test]
fn stop_interrupts_a_generation_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let card = card();
    let mut den = Gauss::new(&card);
    den.delay = Duration::from_millis(5);
    let display = MemoryDisplay::new(32, 32);
    let p = params(&card, "ddim", 1000);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        s2.store(true, Ordering::Relaxed);
        Instant::now()
    });
    let toml = format!(
        "display = \"memory\"\ncycles = 1\ngallery = {:?}",
        dir.path().display().to_string()
    );
    let report = run(&toml, &p, &display, &mut den, &stop).unwrap();
    let stopped_at = t.join().unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_millis(200),
        "{:?}",
        stopped_at.elapsed()
    );
    assert!(report.stopped);
    assert_eq!(report.pictures, 0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn bad_settings_are_clear_errors() {
    let err = |toml: &str| {
        let o = petal::frame::FrameOptions::from_toml(toml, Path::new("frame.toml"));
        match o {
            Err(e) => e.to_string(),
            Ok(o) => {
                let (o, src) = o.merge(
                    petal::frame::FrameOptions::default(),
                    Some(Path::new("frame.toml")),
                );
                match petal::frame::FrameSettings::from_options(&o, &src) {
                    Err(e) => e.to_string(),
                    Ok(_) => panic!("{toml:?} should be refused"),
                }
            }
        }
    };
    let cases: [(&str, &[&str]); 11] = [
        (
            "display = \"png:/tmp/x\"\nevery = \"10x\"",
            &["every in frame.toml", "\"10x\" is not a duration"],
        ),
        (
            "display = \"png:/tmp/x\"\nevry = \"10m\"",
            &["frame.toml", "unknown field `evry`"],
        ),
        (
            "display = \"vga:0\"",
            &["display in frame.toml", "unknown display"],
        ),
        (
            "display = \"png:/tmp/x\"\nmorph = -1",
            &["frame.toml", "morph"],
        ),
        (
            "display = \"png:/tmp/x\"\nmorph = 5000",
            &["morph in frame.toml", "more than"],
        ),
        (
            "display = \"png:/tmp/x\"\nquiet-hours = \"22-7:99\"",
            &["quiet-hours in frame.toml", "HH:MM-HH:MM"],
        ),
        (
            "display = \"png:/tmp/x\"\nkeep = 3",
            &["keep in frame.toml", "needs a gallery"],
        ),
        (
            "display = \"png:/tmp/x\"\ngallery = \"/tmp/g\"\nkeep-bytes = \"lots\"",
            &["keep-bytes", "not a size"],
        ),
        (
            "display = \"png:/tmp/x\"\nfit = \"stretch\"",
            &["fit in frame.toml", "fit or fill"],
        ),
        (
            "display = \"png:/tmp/x\"\nbackground = \"#12\"",
            &["background in frame.toml", "#rrggbb"],
        ),
        ("every = \"1m\"", &["no display"]),
    ];
    for (toml, wants) in cases {
        let e = err(toml);
        for w in wants {
            assert!(e.contains(w), "{toml:?}: {e:?} should mention {w:?}");
        }
    }
}

// ---- The `petal frame` command ----

fn petal() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("petal").expect("petal binary");
    c.arg("--threads").arg("1");
    c
}

#[test]
fn cli_writes_frames_and_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let (shown, g) = (dir.path().join("shown"), dir.path().join("gallery"));
    let out = petal()
        .args([
            "frame",
            "--cycles",
            "2",
            "--steps",
            "3",
            "--every",
            "0",
            "--seed",
            "3",
            "--caption",
        ])
        .arg("--display")
        .arg(format!("png:{}?size=96x64", shown.display()))
        .arg("--gallery")
        .arg(&g)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("seed 3") && stderr.contains("seed 4"),
        "{stderr}"
    );
    assert_eq!(
        image::image_dimensions(shown.join("current.png")).unwrap(),
        (96, 64)
    );
    // 3 emerging frames and the finished picture, twice.
    assert!(shown.join("frame-000008.png").exists());
    assert!(!shown.join("frame-000009.png").exists());
    assert_eq!(std::fs::read_dir(&g).unwrap().count(), 2);
}

#[test]
fn cli_config_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("frame.toml");
    let shown = dir.path().join("shown");
    std::fs::write(
        &cfg,
        format!(
            "display = \"png:{}?size=32x32\"\nevery = \"0\"\ncycles = 5\nsteps = 2\nemerging = false\n",
            shown.display()
        ),
    )
    .unwrap();
    // The flag wins over the file's cycles.
    petal()
        .args(["--quiet", "frame", "--cycles", "1", "--config"])
        .arg(&cfg)
        .assert()
        .success();
    assert!(shown.join("frame-000001.png").exists());
    assert!(!shown.join("frame-000002.png").exists());

    std::fs::write(&cfg, "display = \"png:/tmp\"\nevery = \"soon\"\n").unwrap();
    let out = petal()
        .args(["frame", "--config"])
        .arg(&cfg)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("every in") && stderr.contains("not a duration"),
        "{stderr}"
    );

    // A panel this build cannot drive, or (with the feature) whose device is missing: an error
    // at start that names it.
    let out = petal()
        .args([
            "frame",
            "--display",
            "spi:st7789?dc=25&dev=/nonexistent/spidev0.0",
        ])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let want = if cfg!(feature = "spi") {
        "/nonexistent/spidev0.0 does not exist"
    } else {
        "--features spi"
    };
    assert!(stderr.contains(want), "{stderr}");

    let out = petal()
        .args(["frame", "--display", "lcd:1"])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("unknown display \"lcd:1\""), "{stderr}");

    let out = petal()
        .args([
            "frame",
            "--display",
            "memory",
            "--morph",
            "4",
            "--sampler",
            "ddpm",
        ])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("deterministic sampler"), "{stderr}");
}

#[test]
fn sigterm_mid_generation_exits_0_quickly_without_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    let (shown, g) = (dir.path().join("shown"), dir.path().join("gallery"));
    std::fs::create_dir(&shown).unwrap();
    // Through CommandCargoExt so that a cross test run starts petal with its runner (qemu).
    let mut child = Command::cargo_bin("petal")
        .expect("petal binary")
        .args([
            "--quiet",
            "--threads",
            "1",
            "frame",
            "--steps",
            "1000",
            "--sampler",
            "ddim",
        ])
        .arg("--display")
        .arg(format!("png:{}?size=64x64", shown.display()))
        .arg("--gallery")
        .arg(&g)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the picture is emerging: the generation is under way.
    let t0 = Instant::now();
    while !shown.join("frame-000003.png").exists() {
        assert!(t0.elapsed() < Duration::from_secs(60), "no frames appeared");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("petal exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let sent = Instant::now();
    // petal checks for the signal between sampler steps. A step takes milliseconds on a board
    // but seconds under qemu-user (.ci/cross sets PETAL_TEST_EMULATED), where 30 s still tells
    // a stop mid-generation from finishing 1000 steps (over an hour there).
    let deadline = if std::env::var_os("PETAL_TEST_EMULATED").is_some() {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(2)
    };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            sent.elapsed() < deadline,
            "still running {deadline:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}");
    for d in [&shown, &g] {
        for e in std::fs::read_dir(d).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".tmp") && !name.starts_with(".petal"),
                "partial file {name}"
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(&g).unwrap().count(),
        0,
        "no picture was finished"
    );
    image::open(shown.join("current.png")).expect("current.png is whole");
}

#[test]
fn cli_gallery_pictures_paint_again_with_generate_from() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gallery");
    petal()
        .args([
            "--quiet",
            "frame",
            "--display",
            "memory",
            "--cycles",
            "1",
            "--seed",
            "77",
        ])
        .args([
            "--steps",
            "3",
            "--no-emerging",
            "--gallery-size",
            "64",
            "--gallery",
        ])
        .arg(&g)
        .assert()
        .success();
    let saved = std::fs::read_dir(&g)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let again = dir.path().join("again.png");
    petal()
        .args(["--quiet", "generate", "--from"])
        .arg(&saved)
        .arg("--out")
        .arg(&again)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn cli_paints_on_a_framebuffer_stand_in() {
    use petal::display::fb::FbFormat;
    let dir = tempfile::tempdir().unwrap();
    let (dev, g) = (dir.path().join("fb0"), dir.path().join("gallery"));
    // 70x50 RGB565 with lines padded to 160 bytes.
    let (w, h, stride) = (70u32, 50u32, 160usize);
    std::fs::write(&dev, vec![0x55u8; stride * h as usize]).unwrap();
    petal()
        .args([
            "--quiet",
            "frame",
            "--cycles",
            "1",
            "--steps",
            "3",
            "--no-emerging",
            "--seed",
            "21",
        ])
        .arg("--display")
        .arg(format!(
            "fb:{}?width={w}&height={h}&bpp=16&stride={stride}",
            dev.display()
        ))
        .arg("--gallery")
        .arg(&g)
        .assert()
        .success();
    // The screen holds the gallery picture, fitted (32 px at 1x, centred, black bars).
    let saved = std::fs::read_dir(&g)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let picture = image::open(saved).unwrap().to_rgb8();
    let want = compose(&picture, w, h, &Default::default(), None, None);
    let bytes = std::fs::read(&dev).unwrap();
    assert_eq!(bytes.len(), stride * h as usize);
    for y in 0..h {
        for x in 0..w {
            let p = want.get_pixel(x, y);
            let mut px = [0u8; 2];
            FbFormat::Rgb565.encode(
                embedded_graphics::pixelcolor::Rgb888::new(p[0], p[1], p[2]),
                &mut px,
            );
            let at = y as usize * stride + x as usize * 2;
            assert_eq!(&bytes[at..at + 2], &px, "({x},{y})");
        }
    }
}
