//! Board profiles: what petal knows about a Raspberry Pi, a Jetson or a generic PC.
//!
//! A profile (one TOML file in `boards/`) says how to build petal for the board (target triple,
//! rustflags), what its CPU offers tract (cores, NEON / dotprod / fp16), and which defaults to
//! paint with there (threads, model variant, sampler, steps, display). The shipped profiles are
//! compiled into the binary, so `petal boards` and `petal --board rpi4 ...` need no files; a
//! path to a `.toml` file works too, for boards petal does not ship a profile for.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::VARIANTS;

/// The profiles shipped in `boards/`, by name, in the order `petal boards` lists them.
pub const SHIPPED: [(&str, &str); 9] = [
    ("rpi-zero", include_str!("../boards/rpi-zero.toml")),
    ("rpi1", include_str!("../boards/rpi1.toml")),
    ("rpi-zero2w", include_str!("../boards/rpi-zero2w.toml")),
    ("rpi3", include_str!("../boards/rpi3.toml")),
    ("rpi4", include_str!("../boards/rpi4.toml")),
    ("rpi5", include_str!("../boards/rpi5.toml")),
    ("jetson-nano", include_str!("../boards/jetson-nano.toml")),
    (
        "jetson-orin-nano",
        include_str!("../boards/jetson-orin-nano.toml"),
    ),
    ("x86_64", include_str!("../boards/x86_64.toml")),
];

/// The target triples `boards/build.sh` knows how to build (it checks the same list).
pub const TARGETS: [&str; 6] = [
    "aarch64-unknown-linux-gnu",
    "aarch64-unknown-linux-musl",
    "armv7-unknown-linux-gnueabihf",
    "arm-unknown-linux-gnueabihf",
    "arm-unknown-linux-musleabihf",
    "x86_64-unknown-linux-gnu",
];

/// CPU features a profile may name: the ones that decide which tract kernels run.
pub const FEATURES: [&str; 6] = ["neon", "dotprod", "fp16", "fma", "avx2", "avx512"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Short name, as given to `--board`.
    pub name: String,
    /// One line for `petal boards`.
    pub description: String,
    /// Memory of the smallest model of the board sold, in MiB.
    pub ram_mb: u32,
    pub build: Build,
    pub cpu: Cpu,
    pub defaults: BoardDefaults,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// Rust target triple, one of [`TARGETS`].
    pub target: String,
    /// Extra rustc flags for this board (e.g. `["-C", "target-cpu=cortex-a72"]`).
    #[serde(default)]
    pub rustflags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// The core, as LLVM names it (`cortex-a72`).
    pub core: String,
    /// Cores on the board; absent for generic machines.
    pub cores: Option<usize>,
    /// Pictures painted at once by `generate --count`; absent: every core the machine has.
    pub threads: Option<usize>,
    /// Threads inside one step when one picture is painted (`frame`); absent: 1.
    #[serde(default)]
    pub step_threads: Option<usize>,
    /// Features from [`FEATURES`] that the core has.
    #[serde(default)]
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardDefaults {
    /// Model variant (`f32`, `int8w`, `int8`).
    pub variant: String,
    /// Float type tract computes in (`f32`, or `f16` where the core has fp16 arithmetic).
    #[serde(default)]
    pub precision: Option<String>,
    /// Sampler name, as `petal generate --sampler` takes it.
    pub sampler: String,
    /// Sampler steps.
    pub steps: usize,
    /// Display spec for `petal frame` (`fb:/dev/fb0`, `png:DIR`).
    pub display: String,
}

impl Board {
    /// Resolves `--board`: a shipped name, or a path to a profile file.
    pub fn resolve(spec: &str) -> Result<Board> {
        if let Some((_, text)) = SHIPPED.iter().find(|(name, _)| *name == spec) {
            return Board::parse(text, &format!("{spec} (built in)"));
        }
        let path = Path::new(spec);
        if path.is_file() || spec.ends_with(".toml") || spec.contains('/') {
            return Board::load(path);
        }
        Err(Error::Board {
            what: format!("{spec:?}"),
            msg: format!(
                "unknown board; known boards: {} (or give a path to a profile .toml)",
                names().join(", ")
            ),
        })
    }

    /// Reads a profile file.
    pub fn load(path: &Path) -> Result<Board> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Board {
            what: path.display().to_string(),
            msg: format!("cannot read it: {e}"),
        })?;
        Board::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a profile; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<Board> {
        let board: Board = toml::from_str(text).map_err(|e| Error::Board {
            what: what.to_string(),
            msg: describe_toml_error(text, &e),
        })?;
        board.check().map_err(|msg| Error::Board {
            what: what.to_string(),
            msg,
        })?;
        Ok(board)
    }

    /// All shipped profiles.
    pub fn shipped() -> Result<Vec<Board>> {
        SHIPPED
            .iter()
            .map(|(name, text)| Board::parse(text, &format!("{name} (built in)")))
            .collect()
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if !TARGETS.contains(&self.build.target.as_str()) {
            return Err(format!(
                "build.target {:?} is not a target boards/build.sh knows ({})",
                self.build.target,
                TARGETS.join(", ")
            ));
        }
        if self.cpu.cores == Some(0) {
            return Err("cpu.cores must be at least 1".into());
        }
        match (self.cpu.threads, self.cpu.cores) {
            (Some(0), _) => return Err("cpu.threads must be at least 1".into()),
            (Some(t), Some(c)) if t > c => {
                return Err(format!("cpu.threads = {t} is more than cpu.cores = {c}"))
            }
            _ => {}
        }
        match (self.cpu.step_threads, self.cpu.cores) {
            (Some(0), _) => return Err("cpu.step_threads must be at least 1".into()),
            (Some(t), Some(c)) if t > c => {
                return Err(format!(
                    "cpu.step_threads = {t} is more than cpu.cores = {c}"
                ))
            }
            _ => {}
        }
        if let Some(f) = self
            .cpu
            .features
            .iter()
            .find(|f| !FEATURES.contains(&f.as_str()))
        {
            return Err(format!(
                "cpu.features: unknown feature {f:?} (known: {})",
                FEATURES.join(", ")
            ));
        }
        if !VARIANTS.contains(&self.defaults.variant.as_str()) {
            return Err(format!(
                "defaults.variant {:?} is not one of {}",
                self.defaults.variant,
                VARIANTS.join(", ")
            ));
        }
        if let Some(p) = &self.defaults.precision {
            let precision = crate::denoiser::Precision::parse(p).map_err(|e| {
                format!(
                    "defaults.precision: {}",
                    e.to_string().trim_start_matches("invalid setting: ")
                )
            })?;
            if precision == crate::denoiser::Precision::F16
                && !self.cpu.features.iter().any(|f| f == "fp16")
            {
                return Err(
                    "defaults.precision \"f16\" needs a core with fp16 arithmetic: add \"fp16\" to cpu.features, or use \"f32\"".into(),
                );
            }
        }
        if self.defaults.sampler.trim().is_empty() {
            return Err("defaults.sampler must not be empty".into());
        }
        if self.defaults.steps == 0 {
            return Err("defaults.steps must be at least 1".into());
        }
        if self.defaults.display.trim().is_empty() {
            return Err("defaults.display must not be empty".into());
        }
        Ok(())
    }
}

/// Names of the shipped profiles.
pub fn names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(name, _)| *name).collect()
}

/// One line: where in the file (line and the key written there) and what serde says, so a
/// wrong type ("invalid type: string, expected usize") still names the field.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return msg;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line_no = before.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    if line.is_empty() {
        format!("line {line_no}: {msg}")
    } else {
        format!("line {line_no} ({line}): {msg}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_parse_and_match_their_names() {
        for (name, text) in SHIPPED {
            let b = Board::parse(text, name).unwrap();
            assert_eq!(b.name, name);
        }
    }

    #[test]
    fn unknown_board_lists_the_known_ones() {
        let e = Board::resolve("rpi9").unwrap_err().to_string();
        assert!(e.contains("unknown board"), "{e}");
        for name in names() {
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let good = SHIPPED
            .iter()
            .find(|(name, _)| *name == "rpi4")
            .expect("rpi4 is shipped")
            .1;
        let e = Board::parse(&good.replace("threads = 4", "threads = \"four\""), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("threads"), "{e}");
        let e = Board::parse(&good.replace("steps = 20\n", ""), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps"), "{e}");
        let e = Board::parse(&good.replace("\"int8w\"", "\"int4\""), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("defaults.variant"), "{e}");
        let e = Board::parse(&good.replace("threads = 4", "threads = 9"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpu.threads"), "{e}");
        let e = Board::parse(&format!("{good}\nbogus = 1\n"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = Board::parse(
            &good.replace("threads = 4", "threads = 4\nstep_threads = 0"),
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cpu.step_threads"), "{e}");
    }

    #[test]
    fn f16_precision_needs_an_fp16_core() {
        let (_, pi5) = SHIPPED.iter().find(|(n, _)| *n == "rpi5").unwrap();
        let b = Board::parse(pi5, "rpi5").unwrap();
        assert_eq!(b.defaults.precision.as_deref(), Some("f16"));
        let no_fp16 = pi5.replace(", \"fp16\"]", "]");
        assert_ne!(
            &no_fp16, pi5,
            "the rpi5 profile lists fp16 as its last feature"
        );
        let e = Board::parse(&no_fp16, "x").unwrap_err().to_string();
        assert!(e.contains("fp16") && e.contains("cpu.features"), "{e}");
        let e = Board::parse(&pi5.replace("\"f16\"", "\"f8\""), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("defaults.precision") && e.contains("f8"), "{e}");
    }
}
