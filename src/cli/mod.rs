mod bench;
mod boards;
mod frame;
mod generate;
mod info;
mod sampling;

use clap::{Parser, Subcommand};

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
    /// Threads for tract's matrix products (default: the cores there are).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
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
    pub variant: Option<String>,
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
            variant: Some(b.defaults.variant),
            sampler: Some(b.defaults.sampler),
            steps: Some(b.defaults.steps),
        })
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let defaults = Defaults::from_board(cli.board.as_deref())?;
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
