//! Faults a frame on a wall meets over the years: a wall clock that jumps (NTP after a boot
//! without a real-time clock), and `kill -9` / power cuts at any moment.

mod frame_kit;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use chrono::{DateTime, Local, TimeZone};
use frame_kit::{card, params, settings, Gauss};
use petal::display::MemoryDisplay;
use petal::frame::when::Clock;
use petal::frame::{self, Event, Report};
use petal::generate::GenerateParams;

/// A wall clock that reads `before` for its first `switch_after` readings, then `after`.
#[derive(Debug)]
struct JumpingClock {
    before: DateTime<Local>,
    after: DateTime<Local>,
    switch_after: usize,
    reads: AtomicUsize,
}

impl Clock for JumpingClock {
    fn now(&self) -> DateTime<Local> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        if n < self.switch_after {
            self.before
        } else {
            self.after
        }
    }
}

fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Local> {
    Local.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
}

/// Runs the loop on a memory display with `clock`, collecting the events' text.
fn run_with_clock(toml: &str, clock: JumpingClock) -> (petal::Result<Report>, Vec<String>) {
    let card = card();
    let mut den = Gauss::new(&card);
    let mut s = settings(toml);
    s.clock = Arc::new(clock);
    let display = MemoryDisplay::new(32, 32).keep_last(1);
    let mut open = move || Ok(display.clone());
    let stop = AtomicBool::new(false);
    let mut events = vec![];
    let p = params(&card, "ddim", 2);
    let report = frame::run(
        &s,
        &p,
        &card,
        &mut den,
        &mut open,
        &stop,
        &mut |e: Event| events.push(format!("{e:?}")),
    );
    (report, events)
}

fn gallery_seeds(dir: &Path) -> Vec<u64> {
    let g = petal::frame::Gallery {
        dir: dir.to_path_buf(),
        keep: None,
        keep_bytes: None,
        size: None,
    };
    g.pictures()
        .unwrap()
        .iter()
        .map(|(p, _)| {
            let text = petal::picture::read_png_text(p, petal::picture::METADATA_KEY)
                .unwrap()
                .unwrap();
            serde_json::from_str::<GenerateParams>(&text).unwrap().seed
        })
        .collect()
}

fn gallery_toml(g: &Path, cycles: u64, extra: &str) -> String {
    format!(
        "display = \"memory\"\nevery = \"0\"\ncycles = {cycles}\nseed = 40\nemerging = false\n\
         gallery = {:?}\nkeep = 2\n{extra}",
        g.display().to_string()
    )
}

/// Each cycle reads the clock twice (quiet hours, then caption and file name).
const READS_PER_PICTURE: usize = 2;

#[test]
fn clock_going_back_a_day_keeps_the_newest_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gallery");
    let clock = JumpingClock {
        before: local(2026, 12, 2, 12, 0),
        after: local(2026, 12, 1, 12, 0),
        switch_after: 3 * READS_PER_PICTURE,
        reads: AtomicUsize::new(0),
    };
    let t0 = Instant::now();
    let (report, _) = run_with_clock(&gallery_toml(&g, 5, ""), clock);
    assert_eq!(report.unwrap().pictures, 5);
    assert!(t0.elapsed() < Duration::from_secs(30), "the loop stalled");
    // Retention kept the two pictures painted last, though their names say "a day earlier".
    assert_eq!(gallery_seeds(&g), vec![43, 44]);
}

#[test]
fn clock_jumping_a_year_ahead_neither_stalls_nor_empties_the_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gallery");
    let clock = JumpingClock {
        before: local(2026, 12, 2, 12, 0),
        after: local(2027, 12, 2, 12, 0),
        switch_after: 2 * READS_PER_PICTURE,
        reads: AtomicUsize::new(0),
    };
    let t0 = Instant::now();
    let (report, _) = run_with_clock(&gallery_toml(&g, 4, ""), clock);
    assert_eq!(report.unwrap().pictures, 4);
    assert!(t0.elapsed() < Duration::from_secs(30), "the loop stalled");
    assert_eq!(gallery_seeds(&g), vec![42, 43]);
}

#[test]
fn a_boot_at_1970_paints_through_quiet_hours_until_the_clock_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gallery");
    // Quiet all day but one minute: with a real clock nothing would be painted.
    let quiet = "quiet-hours = \"12:01-12:00\"\ncaption = true\n";
    let clock = JumpingClock {
        before: local(1970, 1, 1, 0, 0),
        after: local(1970, 1, 1, 0, 5),
        switch_after: 1,
        reads: AtomicUsize::new(0),
    };
    let (report, events) = run_with_clock(&gallery_toml(&g, 3, quiet), clock);
    assert_eq!(report.unwrap().pictures, 3, "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.as_str() == "ClockNotSet")
            .count(),
        1,
        "said once: {events:?}"
    );
    assert!(!events.iter().any(|e| e.starts_with("QuietHours")));
    assert_eq!(gallery_seeds(&g).len(), 2);

    // NTP arrives and the time is inside quiet hours: painting pauses.
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gallery");
    let clock = JumpingClock {
        before: local(1970, 1, 1, 0, 0),
        after: local(2026, 12, 2, 20, 0),
        switch_after: READS_PER_PICTURE,
        reads: AtomicUsize::new(0),
    };
    let card = card();
    let mut den = Gauss::new(&card);
    let mut s = settings(&gallery_toml(&g, 3, quiet));
    s.clock = Arc::new(clock);
    let display = MemoryDisplay::new(32, 32).keep_last(1);
    let mut open = move || Ok(display.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        s2.store(true, Ordering::Relaxed);
    });
    let p = params(&card, "ddim", 2);
    let report = frame::run(&s, &p, &card, &mut den, &mut open, &stop, &mut |_| {}).unwrap();
    stopper.join().unwrap();
    assert_eq!(report.pictures, 1, "one picture before the clock was set");
    assert!(report.stopped);
}

#[test]
fn a_restart_continues_the_seed_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gallery");
    let clock = || JumpingClock {
        before: local(2026, 12, 2, 12, 0),
        after: local(2026, 12, 2, 12, 0),
        switch_after: 0,
        reads: AtomicUsize::new(0),
    };
    run_with_clock(&gallery_toml(&g, 2, ""), clock()).0.unwrap();
    let (report, events) = run_with_clock(&gallery_toml(&g, 2, ""), clock());
    assert_eq!(report.unwrap().last_seed, Some(43));
    assert!(events.iter().any(|e| e.contains("SeedsContinue")));
    assert_eq!(gallery_seeds(&g), vec![42, 43]);
}

// ---- kill -9 at random moments ----

fn pngs_and_temps(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut pngs = vec![];
    let mut temps = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            temps.push(p);
        } else if name.ends_with(".png") {
            pngs.push(p);
        }
    }
    (pngs, temps)
}

fn frame_command(shown: &Path, g: &Path, cycles: Option<u32>) -> Command {
    let mut c = Command::cargo_bin("petal").expect("petal binary");
    c.args(["--quiet", "--threads", "1", "frame", "--steps", "4"])
        .args(["--every", "0", "--seed", "100", "--keep", "3"])
        .arg("--display")
        .arg(format!("png:{}?size=48x48&keep=5", shown.display()))
        .arg("--gallery")
        .arg(g)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(n) = cycles {
        c.args(["--cycles", &n.to_string()]);
    }
    c
}

/// `kill -9` at pseudo-random moments over many restarts: every PNG stays whole, the restart
/// removes what the killed process left half-written, retention holds, and the seeds go on.
#[test]
fn sigkill_at_random_moments_leaves_whole_pictures_and_a_continuing_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (shown, g) = (dir.path().join("shown"), dir.path().join("gallery"));
    std::fs::create_dir(&shown).unwrap();
    let emulated = std::env::var_os("PETAL_TEST_EMULATED").is_some();
    let (rounds, scale) = if emulated { (4, 20) } else { (15, 1) };
    // A fixed xorshift sequence: reproducible "random" kill times from 30 to 600 ms.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left_temps = 0;
    for _ in 0..rounds {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let wait = Duration::from_millis((30 + state % 570) * scale);
        let mut child = frame_command(&shown, &g, None).spawn().unwrap();
        std::thread::sleep(wait);
        child.kill().unwrap();
        child.wait().unwrap();
        for d in [&shown, &g] {
            let (pngs, temps) = pngs_and_temps(d);
            left_temps += temps.len();
            for p in pngs {
                image::open(&p).unwrap_or_else(|e| panic!("{} is not whole: {e}", p.display()));
            }
        }
    }
    // A clean run after the last kill: it starts by removing the dead processes' leftovers.
    let status = frame_command(&shown, &g, Some(1)).status().unwrap();
    assert!(status.success());
    for d in [&shown, &g] {
        let (pngs, temps) = pngs_and_temps(d);
        assert!(temps.is_empty(), "left behind: {temps:?}");
        for p in pngs {
            image::open(&p).unwrap_or_else(|e| panic!("{} is not whole: {e}", p.display()));
        }
    }
    let seeds = gallery_seeds(&g);
    assert!(
        !seeds.is_empty() && seeds.len() <= 3,
        "retention: {seeds:?}"
    );
    assert!(
        seeds.windows(2).all(|w| w[1] > w[0]),
        "each restart goes on after the newest picture: {seeds:?}"
    );
    eprintln!(
        "{rounds} kills; temp files found right after a kill: {left_temps}; gallery seeds {seeds:?}"
    );
}

// ---- a full disk ----

/// A small tmpfs, unmounted when dropped; `None` where this process may not mount (not root,
/// no mount(8), a container without the capability).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The gallery and the png display share a nearly full filesystem: the frame keeps showing new
/// pictures, makes room by deleting the oldest frames and pictures, logs each failure once per
/// picture at most, never exits early, never leaves a partial file, and carries on normally
/// once space is back.
#[test]
fn a_full_disk_costs_old_pictures_not_the_new_one() {
    let Some(disk) = SmallDisk::mount(1 << 20) else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root); the full-disk test did not run"
        );
        return;
    };
    let (shown, g) = (disk.path().join("shown"), disk.path().join("gallery"));
    std::fs::create_dir(&shown).unwrap();
    // Fill the disk but for ~300 kB: a few pictures' worth.
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; (1 << 20) - 300 * 1024]).unwrap();
    let cycles = 12;
    let run = |seed: &str| {
        let mut c = Command::cargo_bin("petal").expect("petal binary");
        c.args(["--threads", "1", "frame", "--steps", "3", "--every", "0"])
            .args(["--cycles", &cycles.to_string(), "--seed", seed])
            .args(["--gallery-size", "128"])
            .arg("--display")
            .arg(format!("png:{}?size=192x192", shown.display()))
            .arg("--gallery")
            .arg(&g)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run("1");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let painted = stderr.lines().filter(|l| l.contains("seed ")).count();
    assert_eq!(painted, cycles, "every picture was painted: {stderr}");
    let failures = stderr
        .lines()
        .filter(|l| l.contains("No space") || l.contains("space"))
        .count();
    assert!(
        failures <= 2 * cycles,
        "logged once per picture at most: {stderr}"
    );
    let current = image::open(shown.join("current.png")).expect("current.png is whole");
    assert_eq!(current.width(), 192);
    for d in [&shown, &g] {
        let (pngs, temps) = pngs_and_temps(d);
        assert!(temps.is_empty(), "partial files: {temps:?}");
        for p in pngs {
            image::open(&p).unwrap_or_else(|e| panic!("{} is not whole: {e}", p.display()));
        }
    }
    // 3 emerging frames and the finished picture per cycle were shown; the disk held far fewer,
    // so the oldest frames made room (frame numbering is not the limit: keep defaults to 1000).
    let kept_frames = pngs_and_temps(&shown).0.len() - 1;
    assert!(kept_frames < 4 * cycles, "{kept_frames} frames kept");
    // The newest picture is in the gallery: room was made for it.
    let seeds = gallery_seeds(&g);
    assert_eq!(seeds.last(), Some(&(cycles as u64)), "{seeds:?}");

    // Space comes back: nothing more is deleted than retention asks for.
    std::fs::remove_file(&filler).unwrap();
    let before = gallery_seeds(&g).len();
    let out = run("100");
    assert!(out.status.success());
    assert_eq!(gallery_seeds(&g).len(), before + cycles);
}
