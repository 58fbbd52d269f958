use clap::Args;
use petal::board::{Board, SHIPPED};

#[derive(Args, Debug)]
pub struct BoardsArgs {
    /// Print this profile (a name or a .toml path) as TOML instead of the list; copy it to make
    /// a profile for another board.
    pub name: Option<String>,
}

pub fn run(args: BoardsArgs) -> anyhow::Result<()> {
    if let Some(spec) = args.name {
        let board = Board::resolve(&spec)?;
        match SHIPPED.iter().find(|(name, _)| *name == spec) {
            Some((_, text)) => print!("{text}"),
            None => print!("{}", toml::to_string(&board)?),
        }
        return Ok(());
    }
    let boards = Board::shipped()?;
    println!(
        "{:<18} {:<30} {:>5} {:>7} {:<19} {:<7} {:<9} {:<8} {:>5}  display",
        "board",
        "target",
        "cores",
        "threads",
        "features",
        "variant",
        "precision",
        "sampler",
        "steps"
    );
    for b in &boards {
        let opt = |n: Option<usize>| n.map_or_else(|| "all".to_string(), |n| n.to_string());
        let features = if b.cpu.features.is_empty() {
            "-".to_string()
        } else {
            b.cpu.features.join(",")
        };
        println!(
            "{:<18} {:<30} {:>5} {:>7} {:<19} {:<7} {:<9} {:<8} {:>5}  {}",
            b.name,
            b.build.target,
            opt(b.cpu.cores),
            opt(b.cpu.threads),
            features,
            b.defaults.variant,
            b.defaults.precision.as_deref().unwrap_or("f32"),
            b.defaults.sampler,
            b.defaults.steps,
            b.defaults.display
        );
    }
    println!();
    for b in &boards {
        println!("{:<18} {}", b.name, b.description);
    }
    println!(
        "\nUse one with `petal --board NAME generate ...`; `petal boards NAME` prints it as TOML."
    );
    Ok(())
}
