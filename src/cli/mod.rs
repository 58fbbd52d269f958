mod bench;
mod boards;
mod frame;
mod generate;
mod info;
mod sampling;

use clap::{Parser, Subcommand};
use petal::denoiser::Precision;

const START_HERE: &str = "\
Start here:
  petal generate --out picture.png           a 256 px picture from the built-in model
  petal generate --out grid.png --count 16   16 pictures in a grid
  petal frame --display png:DIR              a new picture every few minutes (docs/frame.md)";

#[derive(Parser, Debug)]
#[command(
    name = "petal",
    version,
    about = "A small diffusion model that paints pictures on a Raspberry Pi",
    // What a newcomer does first comes before the reference.
    help_template = "{about-with-newline}\n{before-help}{usage-heading} {usage}\n\n{all-args}{after-help}",
    before_help = START_HERE
)]
pub struct Cli {
    /// No progress bar and no messages except errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Cores petal may use: `generate --count N` paints up to this many pictures at once, and
    /// `frame` as many in-between pictures of a glide (default: the cores there are).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Threads inside one sampler step, where one picture is painted at a time (`frame`,
    /// `generate --count 1`); at most --threads. Default 1: a step of this small model does
    /// not split well (2 threads were slower than 1 on a 2-core x86, see README).
    #[arg(long, global = true, value_name = "N")]
    pub step_threads: Option<usize>,
    /// Board profile whose defaults to use (threads, variant, sampler, steps): a name from
    /// `petal boards` or a path to a profile .toml. Flags given explicitly still win.
    #[arg(long, global = true, value_name = "NAME|FILE")]
    pub board: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Paint pictures and write them to a file.
    Generate(generate::GenerateArgs),
    /// Show a model's card, graph and size.
    Info(info::InfoArgs),
    /// Time loading, each sampler step and whole pictures, per variant and thread count.
    Bench(bench::BenchArgs),
    /// List the board profiles built into petal, or print one as TOML.
    Boards(boards::BoardsArgs),
    /// Art-frame mode: a new picture on a display every so often, until stopped.
    Frame(Box<frame::FrameArgs>),
}

/// Settings that come from a board profile and apply where no flag gives them.
#[derive(Debug, Default, Clone)]
pub struct Defaults {
    pub threads: Option<usize>,
    /// `--step-threads`, else the board's `cpu.step_threads`.
    pub step_threads: Option<usize>,
    pub variant: Option<String>,
    pub precision: Option<Precision>,
    pub sampler: Option<String>,
    pub steps: Option<usize>,
}

impl Defaults {
    fn from_board(spec: Option<&str>) -> petal::Result<Defaults> {
        let Some(spec) = spec else {
            return Ok(Defaults::default());
        };
        let b = petal::board::Board::resolve(spec)?;
        Ok(Defaults {
            threads: b.cpu.threads,
            step_threads: b.cpu.step_threads,
            variant: Some(b.defaults.variant),
            precision: b
                .defaults
                .precision
                .as_deref()
                .map(Precision::parse)
                .transpose()?,
            sampler: Some(b.defaults.sampler),
            steps: Some(b.defaults.steps),
        })
    }
}

/// Threads inside one step when a single picture is painted: the step-thread setting, at
/// most the cores petal may use.
fn step_threads(defaults: &Defaults, threads: usize) -> usize {
    defaults.step_threads.unwrap_or(1).min(threads).max(1)
}

/// How a model is named in messages ("emoji32 (int8w)", "emoji32 (int8w, f16)"). Warns once
/// where f16 was asked for on a core that only emulates it.
fn model_label(name: &str, variant: &str, precision: Precision, quiet: bool) -> String {
    if precision == Precision::F32 {
        return format!("{name} ({variant})");
    }
    if !quiet && !petal::denoiser::cpu_has_fp16() {
        eprintln!(
            "petal: this CPU has no fp16 arithmetic, so f16 is emulated and slower than f32 here \
             (it pays on a Pi 5 or a Jetson Orin); use --precision f32"
        );
    }
    format!("{name} ({variant}, {})", precision.name())
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut defaults = Defaults::from_board(cli.board.as_deref())?;
    defaults.step_threads = cli.step_threads.or(defaults.step_threads);
    if defaults.step_threads == Some(0) {
        anyhow::bail!("--step-threads must be at least 1");
    }
    let threads = match cli.threads.or(defaults.threads) {
        Some(0) => anyhow::bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    match cli.command {
        Command::Generate(a) => generate::run(a, threads, cli.quiet, &defaults),
        Command::Info(a) => info::run(a),
        Command::Bench(a) => bench::run(a, cli.threads, cli.quiet),
        Command::Frame(a) => frame::run(*a, cli.threads, cli.quiet, &defaults),
        Command::Boards(a) => boards::run(a),
    }
}
