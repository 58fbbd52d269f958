//! Board profiles: every shipped profile parses, names a target boards/build.sh knows, and its
//! defaults are accepted (and applied) by `petal generate`; bad names and files give clear errors.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use petal::board::{Board, SHIPPED, TARGETS};
use petal::picture::{read_png_text, METADATA_KEY};
use predicates::prelude::*;

/// Where rpi4's profile is in [`SHIPPED`], which the tests below edit.
const RPI4: usize = 4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Set by .ci/cross when the tests run under qemu-user, where one 1-step picture of the
/// embedded model takes ~6 s (emulated Cortex-A72/A7): the inference tests then paint one step
/// of one board. The profiles themselves are the same data on every target, and the
/// native run checks every board with its own steps.
fn emulated() -> bool {
    std::env::var_os("PETAL_TEST_EMULATED").is_some()
}

fn petal() -> Command {
    let mut c = Command::cargo_bin("petal").expect("petal binary");
    c.arg("--quiet");
    c
}

/// The settings petal stored in a picture it wrote.
fn metadata(png: &Path) -> serde_json::Value {
    let text = read_png_text(png, METADATA_KEY)
        .expect("readable png")
        .expect("petal metadata");
    serde_json::from_str(&text).expect("metadata is json")
}

#[test]
fn every_profile_file_is_shipped_and_parses() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("boards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut shipped: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
    shipped.sort();
    assert_eq!(
        on_disk, shipped,
        "boards/*.toml and board::SHIPPED must list the same boards"
    );
    for (name, _) in SHIPPED {
        let b = Board::load(&root().join("boards").join(format!("{name}.toml"))).unwrap();
        assert_eq!(b.name, name, "profile name must match its file name");
    }
}

#[test]
fn build_helper_knows_every_target() {
    let out = StdCommand::new("bash")
        .arg(root().join("boards/build.sh"))
        .arg("--list-targets")
        .output()
        .expect("bash runs boards/build.sh");
    assert!(out.status.success());
    let known: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(known, TARGETS, "board::TARGETS and build.sh must agree");
    for b in Board::shipped().unwrap() {
        assert!(
            known.contains(&b.build.target),
            "{}: target {} unknown to build.sh",
            b.name,
            b.build.target
        );
        // Each target also has a cross environment (or is the host).
        let env = StdCommand::new("bash")
            .arg(root().join("boards/build.sh"))
            .args(["--env", &b.build.target])
            .output()
            .unwrap();
        assert!(env.status.success(), "{}: --env failed", b.name);
    }
}

#[test]
fn build_helper_rejects_an_unknown_cargo_profile_before_building() {
    // A typo in --profile must stop before cargo starts a ~12-minute build of tract.
    let out = StdCommand::new("bash")
        .arg(root().join("boards/build.sh"))
        .args(["--profile", "tiny", "rpi4"])
        .output()
        .expect("bash runs boards/build.sh");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown Cargo profile 'tiny'"),
        "stderr: {stderr}"
    );
    assert!(
        !stderr.contains("Compiling"),
        "cargo must not start: {stderr}"
    );
}

#[test]
fn every_board_defaults_are_accepted_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut boards = Board::shipped().unwrap();
    if emulated() {
        boards.retain(|b| b.name == "rpi4");
    }
    for b in boards {
        let out = dir.path().join(format!("{}.png", b.name));
        // The profile's own sampler, steps and variant: nothing but --board and a seed.
        let mut cmd = petal();
        cmd.args(["--board", &b.name, "generate", "--seed", "7", "--out"])
            .arg(&out);
        let precision = b.defaults.precision.as_deref().unwrap_or("f32");
        // f16 where tract has no fp16 kernels is a software emulation (~150x slower on x86).
        let one_step = emulated() || (precision == "f16" && !petal::denoiser::cpu_has_fp16());
        if one_step {
            cmd.args(["--steps", "1"]);
        }
        cmd.assert().success();
        let m = metadata(&out);
        assert_eq!(m["variant"], b.defaults.variant.as_str(), "{}", b.name);
        assert_eq!(m["precision"], precision, "{}", b.name);
        assert_eq!(m["sampler"], b.defaults.sampler.as_str(), "{}", b.name);
        if !one_step {
            assert_eq!(m["steps"], b.defaults.steps, "{}", b.name);
        }
    }
}

#[test]
fn explicit_flags_win_over_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.png");
    petal()
        .args(["--board", "rpi4", "--threads", "1", "generate"])
        .args(["--steps", "1", "--sampler", "ddim", "--variant", "f32"])
        .args(["--seed", "1", "--out"])
        .arg(&out)
        .assert()
        .success();
    let m = metadata(&out);
    assert_eq!(m["steps"], 1);
    assert_eq!(m["sampler"], "ddim");
    assert_eq!(m["variant"], "f32");
}

#[test]
fn board_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("mine.toml");
    assert_eq!(SHIPPED[RPI4].0, "rpi4");
    let text = SHIPPED[RPI4]
        .1
        .replace("name = \"rpi4\"", "name = \"mine\"")
        .replace("steps = 20", "steps = 1")
        .replace("\"dpmpp-2m\"", "\"ddim\"");
    std::fs::write(&profile, text).unwrap();
    let out = dir.path().join("p.png");
    petal()
        .arg("--board")
        .arg(&profile)
        .args(["generate", "--seed", "3", "--out"])
        .arg(&out)
        .assert()
        .success();
    let m = metadata(&out);
    assert_eq!(m["steps"], 1);
    assert_eq!(m["sampler"], "ddim");
}

#[test]
fn unknown_board_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut expect = predicate::str::contains("unknown board").boxed();
    for (name, _) in SHIPPED {
        expect = expect.and(predicate::str::contains(name)).boxed();
    }
    petal()
        .args(["--board", "rpi9", "generate", "--out"])
        .arg(dir.path().join("p.png"))
        .assert()
        .failure()
        .stderr(expect);
    // Nothing is painted when the board is wrong.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn malformed_profile_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = SHIPPED[RPI4].1;
    let cases = [
        (good.replace("threads = 4", "threads = \"four\""), "threads"),
        (good.replace("steps = 20\n", ""), "steps"),
        (good.replace("\"int8w\"", "\"int4\""), "defaults.variant"),
        (
            good.replace("aarch64-unknown-linux-gnu", "mips-unknown-linux-gnu"),
            "build.target",
        ),
        (good.replace("threads = 4", "threads = 0"), "cpu.threads"),
        (good.replace("[cpu]", "[cpu]\nspeed = 3"), "speed"),
        ("name = \"x\"\n[build\n".to_string(), "line 2"),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let shown = path.display().to_string();
        petal()
            .arg("--board")
            .arg(&path)
            .args(["generate", "--out"])
            .arg(dir.path().join("p.png"))
            .assert()
            .failure()
            .stderr(
                predicate::str::contains(*field)
                    .and(predicate::str::contains(shown.as_str()))
                    .and(predicate::str::contains("board profile")),
            );
    }
    // A missing file is reported as such.
    petal()
        .args(["--board", "no/such/board.toml", "boards"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no/such/board.toml"));
}

#[test]
fn boards_lists_all_and_prints_one() {
    let mut expect = predicate::str::contains("aarch64-unknown-linux-musl").boxed();
    for (name, _) in SHIPPED {
        expect = expect.and(predicate::str::contains(name)).boxed();
    }
    let out = petal().arg("boards").assert().success().stdout(expect);
    // Each board's row names its precision: f16 where the profile computes in it.
    let list = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for b in Board::shipped().unwrap() {
        let row = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(b.name.as_str()))
            .unwrap();
        let precision = b.defaults.precision.as_deref().unwrap_or("f32");
        assert!(row.split_whitespace().any(|w| w == precision), "{row}");
    }
    let out = petal().args(["boards", "rpi5"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let b = Board::parse(&text, "printed").unwrap();
    assert_eq!(b, Board::resolve("rpi5").unwrap());
    petal()
        .args(["boards", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown board"));
}

#[test]
fn every_board_display_is_a_display_spec() {
    for b in Board::shipped().unwrap() {
        let parsed: Result<petal::display::DisplaySpec, _> = b.defaults.display.parse();
        assert!(
            parsed.is_ok(),
            "{}: display {:?}: {parsed:?}",
            b.name,
            b.defaults.display
        );
    }
}

#[test]
fn install_script_stages_binary_unit_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("root");
    let out = StdCommand::new("bash")
        .arg(root().join("boards/install.sh"))
        .arg("--root")
        .arg(&stage)
        .args(["--board", "rpi5", "--binary", env!("CARGO_BIN_EXE_petal")])
        .output()
        .expect("bash runs boards/install.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &str| std::fs::read_to_string(stage.join(p)).unwrap();
    assert!(stage.join("usr/local/bin/petal").is_file());
    let unit = read("etc/systemd/system/petal.service");
    for line in [
        "User=petal",
        "SupplementaryGroups=video",
        "Restart=on-failure",
        "ExecStart=/usr/local/bin/petal $PETAL_OPTS frame --config /etc/petal/frame.toml",
        // Settings saved from the control page or MQTT, under ProtectSystem=strict.
        "ReadWritePaths=/etc/petal",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks {line}");
    }
    assert!(read("etc/default/petal").contains("PETAL_OPTS=\"--board rpi5\""));
    // The sample config is one `petal frame` reads, with the board's display.
    let config = stage.join("etc/petal/frame.toml");
    let opts = petal::frame::FrameOptions::load(&config).expect("sample config parses");
    assert_eq!(opts.display.as_deref(), Some("fb:/dev/fb0"));
    // The control page's token: made once, readable by its owner only, shown once.
    let token_path = stage.join("etc/petal/http-token");
    let token = read("etc/petal/http-token");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(token.trim()),
        "the token is shown: {stdout}"
    );
    assert!(token.trim().len() >= 24, "{token:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    #[cfg(feature = "http")]
    petal::frame::http::read_token(&token_path).expect("petal reads the token it made");
    // Installing again keeps the user's edits.
    std::fs::write(&config, "display = \"png:/tmp\"\n").unwrap();
    let again = StdCommand::new("bash")
        .arg(root().join("boards/install.sh"))
        .arg("--root")
        .arg(&stage)
        .args(["--board", "rpi5", "--binary", env!("CARGO_BIN_EXE_petal")])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(read("etc/petal/frame.toml"), "display = \"png:/tmp\"\n");
    assert_eq!(read("etc/petal/http-token"), token, "the token is kept");
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains(token.trim()),
        "and not shown again"
    );
}

/// What systemd would run: the unit's ExecStart with the staged /etc/default/petal, against a
/// copy of the sample config pointed at a temporary png display and gallery. There is no
/// systemd here (nor in CI), so this checks the command line the unit hands to petal.
#[test]
fn the_units_command_line_runs_petal_frame() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("root");
    let status = StdCommand::new("bash")
        .arg(root().join("boards/install.sh"))
        .arg("--root")
        .arg(&stage)
        .args(["--board", "rpi4", "--binary", env!("CARGO_BIN_EXE_petal")])
        .output()
        .expect("bash runs boards/install.sh")
        .status;
    assert!(status.success());
    let unit = std::fs::read_to_string(stage.join("etc/systemd/system/petal.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("unit has ExecStart");
    let defaults = std::fs::read_to_string(stage.join("etc/default/petal")).unwrap();
    let opts = defaults
        .lines()
        .find_map(|l| l.strip_prefix("PETAL_OPTS="))
        .expect("PETAL_OPTS in /etc/default/petal")
        .trim_matches('"')
        .to_string();
    // The sample config, with the screen and gallery moved into the temporary directory and
    // one short cycle, so the run ends by itself.
    let (shown, gallery) = (dir.path().join("shown"), dir.path().join("gallery"));
    let staged_config = stage.join("etc/petal/frame.toml");
    let mut config: toml::Table = std::fs::read_to_string(&staged_config)
        .unwrap()
        .parse()
        .expect("sample config is TOML");
    config.insert("display".into(), format!("png:{}", shown.display()).into());
    config.insert("gallery".into(), gallery.display().to_string().into());
    for (key, value) in [("cycles", 1), ("morph", 0), ("steps", 2)] {
        config.insert(key.into(), toml::Value::Integer(value));
    }
    std::fs::write(&staged_config, toml::to_string(&config).unwrap()).unwrap();
    // systemd expands $PETAL_OPTS into words; the staged tree stands in for /.
    let words: Vec<String> = exec
        .split_whitespace()
        .flat_map(|w| match w {
            "$PETAL_OPTS" => opts.split_whitespace().map(str::to_string).collect(),
            "/usr/local/bin/petal" => vec![stage.join("usr/local/bin/petal").display().to_string()],
            "/etc/petal/frame.toml" => vec![staged_config.display().to_string()],
            w => vec![w.to_string()],
        })
        .collect();
    assert!(
        words.iter().any(|w| w == "--board"),
        "PETAL_OPTS names the board: {words:?}"
    );
    let mut cmd = runner_command(&words[0]);
    cmd.args(&words[1..]);
    let out = cmd.output().expect("the staged petal runs");
    assert!(
        out.status.success(),
        "{words:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.join("current.png").is_file(), "nothing was shown");
    assert_eq!(std::fs::read_dir(&gallery).unwrap().count(), 1);
}

/// A command for a binary built for the target: through cargo's runner (qemu) when the tests
/// run under one, as `assert_cmd` does for `cargo_bin`. The runner variable is the one for a
/// triple of this architecture (CARGO_TARGET_AARCH64_..._RUNNER under qemu-aarch64).
fn runner_command(program: &str) -> StdCommand {
    let prefix = format!("CARGO_TARGET_{}", std::env::consts::ARCH.to_uppercase());
    let runner = std::env::vars()
        .find(|(k, v)| k.starts_with(&prefix) && k.ends_with("_RUNNER") && !v.trim().is_empty())
        .map(|(_, v)| v);
    match runner {
        Some(runner) => {
            let mut words = runner.split_whitespace();
            let mut cmd = StdCommand::new(words.next().unwrap_or_default());
            cmd.args(words).arg(program);
            cmd
        }
        None => StdCommand::new(program),
    }
}
