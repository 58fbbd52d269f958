//! Controlling a running frame: commands (next, previous, keep, pause, shutdown) through its
//! inbox, the buttons that send them (debouncing, long presses, the `buttons` setting), and
//! the `petal frame --buttons` errors.

mod frame_kit;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frame_kit::{card, params, settings, Gauss};
use petal::display::MemoryDisplay;
use petal::frame::buttons::{parse_buttons, Button, ButtonPanel, DEBOUNCE, INKY, LONG_PRESS};
use petal::frame::control::{channel_pair, SHUTDOWN_EXIT_STATUS};
use petal::frame::{self, Command, Event, Gallery, Inbox, Report};

/// Waits (up to 30 s) for `cond`, polling.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every command the frame heard, with what it did.
type CommandLog = Arc<Mutex<Vec<(Command, String)>>>;

/// A frame on `display` (ddim, 3 steps, the exact Gaussian denoiser) on its own thread.
fn spawn_frame(
    toml: String,
    display: MemoryDisplay,
    inbox: Inbox,
    log: CommandLog,
) -> std::thread::JoinHandle<petal::Result<Report>> {
    std::thread::spawn(move || {
        let card = card();
        let mut den = Gauss::new(&card);
        let p = params(&card, "ddim", 3);
        let s = settings(&toml);
        let stop = AtomicBool::new(false);
        let mut open = move || Ok(display.clone());
        let mut events = |e: Event| {
            if let Event::Command { command, outcome } = e {
                log.lock().unwrap().push((command, outcome));
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
fn commands_steer_a_running_frame() {
    let dir = tempfile::tempdir().unwrap();
    let gallery_dir = dir.path().join("gallery");
    let toml = format!(
        "display = \"memory\"\nevery = \"300ms\"\nemerging = false\nseed = 40\ngallery = \"{}\"\nkeep = 3",
        gallery_dir.display()
    );
    let display = MemoryDisplay::new(40, 40);
    let rec = display.recording();
    let (remote, inbox) = channel_pair();
    let log = CommandLog::default();
    let frame = spawn_frame(toml, display, inbox, Arc::clone(&log));
    let gallery = Gallery {
        dir: gallery_dir.clone(),
        keep: Some(3),
        keep_bytes: None,
        size: None,
    };
    let said = |c: Command| -> Option<String> {
        let log = log.lock().unwrap();
        log.iter()
            .rev()
            .find(|(k, _)| *k == c)
            .map(|(_, o)| o.clone())
    };
    let heard =
        |c: Command, n: usize| log.lock().unwrap().iter().filter(|(k, _)| *k == c).count() >= n;

    // Two pictures, then pause: nothing new is painted while paused.
    wait_for("two pictures", || rec.shown() >= 2);
    assert!(remote.send(Command::Pause));
    wait_for("paused", || heard(Command::Pause, 1));
    assert!(said(Command::Pause).unwrap().starts_with("paused"));
    let shown = rec.shown();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(rec.shown(), shown, "a paused frame paints nothing");

    // Previous puts the picture before the newest back on the screen.
    let pics = gallery.pictures().unwrap();
    let before_newest = pics[pics.len() - 2].0.clone();
    assert!(remote.send(Command::Previous));
    wait_for("previous", || heard(Command::Previous, 1));
    assert_eq!(
        said(Command::Previous).unwrap(),
        format!("showing {}", before_newest.display())
    );
    let frames = rec.frames();
    // One frame per picture (not emerging): the older picture's frame is shown again.
    assert!(
        frames.last().unwrap() == &frames[frames.len() - 3],
        "the previous picture is on screen"
    );

    // Keep makes it a favourite, which outlives retention.
    assert!(remote.send(Command::Keep));
    wait_for("keep", || heard(Command::Keep, 1));
    let favourite = gallery_dir
        .join("favourites")
        .join(before_newest.file_name().unwrap());
    assert!(favourite.is_file(), "{}", said(Command::Keep).unwrap());

    // Next, after previous, goes forward through the gallery: the newest again, no painting.
    let newest = pics.last().unwrap().0.clone();
    let shown = rec.shown();
    assert!(remote.send(Command::Next));
    wait_for("next", || heard(Command::Next, 1));
    assert_eq!(
        said(Command::Next).unwrap(),
        format!("showing {}", newest.display())
    );
    assert_eq!(rec.shown(), shown + 1);
    assert_eq!(
        gallery.pictures().unwrap().len(),
        pics.len(),
        "nothing painted"
    );

    // Next with the newest on screen, and paint, paint one picture each, even while paused;
    // the frame stays paused.
    let shown = rec.shown();
    assert!(remote.send(Command::Next));
    wait_for("next paints", || rec.shown() == shown + 1);
    assert!(remote.send(Command::Paint));
    wait_for("paint", || rec.shown() == shown + 2);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(rec.shown(), shown + 2, "still paused after next and paint");

    // Pause again: painting goes on, retention prunes the original, the favourite stays.
    assert!(remote.send(Command::Pause));
    wait_for("unpaused", || heard(Command::Pause, 2));
    assert_eq!(said(Command::Pause).unwrap(), "painting again");
    wait_for("original pruned", || !before_newest.exists());
    assert!(favourite.is_file());
    assert_eq!(
        image::open(&favourite).unwrap().to_rgb8().dimensions(),
        (32, 32)
    );

    // Shutdown ends the run cleanly and says so in the report.
    assert!(remote.send(Command::Shutdown));
    let report = frame.join().unwrap().unwrap();
    assert!(report.shutdown && report.stopped);
    assert!(
        !remote.send(Command::Next),
        "the inbox is gone with the frame"
    );
    let names: Vec<PathBuf> = gallery
        .pictures()
        .unwrap()
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(names.len(), 3, "retention kept its limit: {names:?}");
}

#[test]
fn commands_without_a_gallery_say_why_nothing_happened() {
    let (remote, inbox) = channel_pair();
    let log = CommandLog::default();
    let toml = "display = \"memory\"\nevery = \"1h\"\nemerging = false".to_string();
    let frame = spawn_frame(toml, MemoryDisplay::new(8, 8), inbox, Arc::clone(&log));
    for c in [Command::Previous, Command::Keep, Command::Shutdown] {
        assert!(remote.send(c));
    }
    let report = frame.join().unwrap().unwrap();
    assert_eq!(report.pictures, 1);
    assert!(report.shutdown);
    let log = log.lock().unwrap();
    assert!(log[0].1.contains("no gallery"), "{log:?}");
    assert!(log[1].1.contains("no gallery"), "{log:?}");
}

#[test]
fn command_names_parse_and_unknown_ones_are_named() {
    for (s, c) in [
        ("next", Command::Next),
        ("paint", Command::Paint),
        ("reload", Command::Reload),
        ("Previous", Command::Previous),
        ("keep", Command::Keep),
        ("pause", Command::Pause),
        ("shutdown", Command::Shutdown),
    ] {
        assert_eq!(s.parse::<Command>().unwrap(), c);
        assert_eq!(c.name().parse::<Command>().unwrap(), c);
    }
    let e = "reboot".parse::<Command>().unwrap_err().to_string();
    assert!(e.contains("\"reboot\"") && e.contains("shutdown"), "{e}");
}

#[test]
fn the_buttons_setting() {
    let inky = parse_buttons("inky").unwrap();
    assert_eq!(inky, parse_buttons(INKY).unwrap());
    assert_eq!(
        inky.iter().map(|b| b.gpio).collect::<Vec<_>>(),
        vec![5, 6, 16, 24]
    );
    assert_eq!(
        inky[3],
        Button {
            gpio: 24,
            short: None,
            long: Some(Command::Shutdown)
        }
    );
    assert_eq!(
        parse_buttons("17:keep").unwrap(),
        vec![Button {
            gpio: 17,
            short: Some(Command::Keep),
            long: None
        }]
    );
    for (bad, part) in [
        ("5:fly", "\"fly\""),
        ("5", "not GPIO:SHORT"),
        ("x:next", "not a GPIO line"),
        ("5:next,5:keep", "given twice"),
        ("5:-:-", "no command"),
        ("", "no button"),
    ] {
        let e = parse_buttons(bad).unwrap_err().to_string();
        assert!(e.contains(part), "{bad:?}: {e}");
    }
}

/// Feeds a panel of the Inky's buttons levels over time: `held` lists, per 10 ms poll, which
/// buttons (by index) are down.
fn presses(held: impl Fn(u64) -> Vec<usize>, polls: u64) -> Vec<Command> {
    let t0 = Instant::now();
    let mut panel = ButtonPanel::new(parse_buttons("inky").unwrap(), t0);
    let mut out = Vec::new();
    for i in 0..polls {
        let down = held(i);
        let levels: Vec<bool> = (0..4).map(|b| !down.contains(&b)).collect();
        out.extend(panel.update(&levels, t0 + Duration::from_millis(10 * i)));
    }
    out
}

#[test]
fn button_presses_are_debounced_and_long_presses_told_apart() {
    let poll = |d: Duration| d.as_millis() as u64 / 10;
    // A 100 ms press of A: next, once, when it is let go.
    assert_eq!(
        presses(
            |i| if (10..20).contains(&i) {
                vec![0]
            } else {
                vec![]
            },
            50
        ),
        vec![Command::Next]
    );
    // Contact bounce: 10 ms blips never count.
    assert_eq!(
        presses(|i| if i % 7 == 3 { vec![0, 1] } else { vec![] }, 200),
        vec![]
    );
    // A press that bounces on the way down and up is still one press.
    let bouncy = |i: u64| match i {
        10 | 12 | 14..=30 | 32 => vec![1],
        _ => vec![],
    };
    assert_eq!(presses(bouncy, 60), vec![Command::Previous]);
    // A held past the long-press time: pause, and no next when let go.
    let long = poll(LONG_PRESS) + poll(DEBOUNCE) + 5;
    assert_eq!(
        presses(|i| if i < long { vec![0] } else { vec![] }, long + 20),
        vec![Command::Pause]
    );
    // D does nothing on a short press, and shuts down on a long one.
    assert_eq!(
        presses(|i| if i < 20 { vec![3] } else { vec![] }, 40),
        vec![]
    );
    assert_eq!(
        presses(|i| if i < long { vec![3] } else { vec![] }, long + 20),
        vec![Command::Shutdown]
    );
    // C has no long command: held for 5 s it still keeps, once, when let go.
    assert_eq!(
        presses(|i| if i < 500 { vec![2] } else { vec![] }, 520),
        vec![Command::Keep]
    );
    // Two buttons at once each count.
    assert_eq!(
        presses(
            |i| if (5..15).contains(&i) {
                vec![0, 2]
            } else {
                vec![]
            },
            30
        ),
        vec![Command::Next, Command::Keep]
    );
}

#[test]
fn cli_buttons_errors_are_clear() {
    use assert_cmd::cargo::CommandCargoExt;
    let run = |args: &[&str]| {
        let out = std::process::Command::cargo_bin("petal")
            .unwrap()
            .args(["frame", "--display", "memory", "--cycles", "1"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_ne!(out.status.code(), Some(SHUTDOWN_EXIT_STATUS));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["--buttons", "5:fly"]);
    assert!(e.contains("--buttons") && e.contains("\"fly\""), "{e}");
    let e = run(&["--buttons-gpiochip", "/dev/gpiochip9"]);
    assert!(e.contains("needs buttons"), "{e}");
    let e = run(&[
        "--buttons",
        "inky",
        "--buttons-gpiochip",
        "/nonexistent/gpiochip0",
    ]);
    if cfg!(feature = "buttons") {
        assert!(e.contains("/nonexistent/gpiochip0 does not exist"), "{e}");
    } else {
        assert!(e.contains("`buttons` feature"), "{e}");
    }
}

#[test]
fn after_previous_the_next_picture_cuts_in_instead_of_gliding() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "display = \"memory\"\nevery = \"1h\"\nemerging = false\nmorph = 2\nseed = 3\ngallery = \"{}\"",
        dir.path().join("g").display()
    );
    let display = MemoryDisplay::new(16, 16);
    let rec = display.recording();
    let (remote, inbox) = channel_pair();
    let log = CommandLog::default();
    let frame = spawn_frame(toml, display, inbox, Arc::clone(&log));
    let heard =
        |c: Command, n: usize| log.lock().unwrap().iter().filter(|(k, _)| *k == c).count() >= n;
    wait_for("first picture", || rec.shown() == 1);
    // Next glides: two in-between frames, then the picture.
    assert!(remote.send(Command::Next));
    wait_for("second picture", || rec.shown() == 4);
    // Back to the first picture; the next one then cuts in: one frame, no glide.
    assert!(remote.send(Command::Previous));
    wait_for("previous", || heard(Command::Previous, 1));
    assert_eq!(rec.shown(), 5);
    assert!(remote.send(Command::Paint));
    wait_for("third picture", || heard(Command::Paint, 1));
    assert!(remote.send(Command::Shutdown));
    let report = frame.join().unwrap().unwrap();
    assert_eq!(report.pictures, 3);
    assert_eq!(report.morph_frames, 2, "only the second picture glided in");
    assert_eq!(rec.shown(), 6);
}

#[test]
fn a_reload_keeps_the_pause_the_picture_and_the_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "display = \"memory\"\nevery = \"1h\"\nemerging = false\nseed = 9\ngallery = \"{}\"",
        dir.path().join("g").display()
    );
    let card = card();
    let p = params(&card, "ddim", 3);
    let display = MemoryDisplay::new(16, 16);
    let rec = display.recording();
    let run = |s: petal::frame::FrameSettings, inbox: &Inbox| {
        let mut den = Gauss::new(&card);
        let stop = AtomicBool::new(false);
        let d = display.clone();
        let mut open = move || Ok(d.clone());
        frame::run_controlled(
            &s,
            &p,
            &card,
            &mut den,
            &mut open,
            &stop,
            inbox,
            &mut |_| {},
        )
    };
    // First run: one picture, paused, then told to reload.
    let (remote, inbox) = channel_pair();
    for c in [Command::Pause, Command::Reload] {
        assert!(remote.send(c));
    }
    let first = run(settings(&toml), &inbox).unwrap();
    assert!(first.reload && first.pictures == 1, "{first:?}");
    let resume = first.resume.clone().unwrap();
    assert!(resume.paused);
    assert_eq!(resume.on_screen, first.last_saved);

    // Second run with what the first left: no picture at once (the hour is not over), the
    // picture shown again, still paused; paint still paints.
    let mut s = settings(&toml);
    s.resume = Some(resume);
    let (remote, inbox) = channel_pair();
    let shown = rec.shown();
    let second = std::thread::scope(|scope| {
        let h = scope.spawn(move || run(s, &inbox));
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            rec.shown(),
            shown + 1,
            "only the picture on screen, shown again"
        );
        assert_eq!(rec.frames().last(), rec.frames().get(shown as usize - 1));
        assert!(remote.send(Command::Paint));
        wait_for("paint", || rec.shown() == shown + 2);
        assert!(remote.send(Command::Shutdown));
        h.join().unwrap().unwrap()
    });
    assert_eq!(second.pictures, 1);
    assert!(second.resume.unwrap().paused, "still paused");
}
