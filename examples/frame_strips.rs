//! Writes the pictures in docs/frame.md: a picture emerging step by step and a morph between
//! two seeds, as the frame loop shows them, each laid out as one strip.
//!
//! `cargo run --release --example frame_strips -- docs` (with the embedded model).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use petal::denoiser::TractDenoiser;
use petal::display::MemoryDisplay;
use petal::frame::{self, Event, FrameOptions, FrameSettings};
use petal::generate::GenerateParams;
use petal::model::{Model, DEFAULT_VARIANT};
use petal::picture::{grid, save_atomic, Filter};

fn settings(toml: &str) -> petal::Result<FrameSettings> {
    let o = FrameOptions::from_toml(toml, std::path::Path::new("<example>"))?;
    let (o, src) = FrameOptions::default().merge(o, None);
    FrameSettings::from_options(&o, &src)
}

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs".into()));
    std::fs::create_dir_all(&out)?;
    let model = Model::embedded()?;
    let card = &model.card;
    let bytes = model.variant_bytes(DEFAULT_VARIANT)?;
    let mut denoiser = TractDenoiser::new(&bytes, card, "emoji32")?;
    let params = GenerateParams {
        model: None,
        model_name: card.name.clone(),
        model_sha256: card.variant(DEFAULT_VARIANT)?.sha256.clone(),
        variant: DEFAULT_VARIANT.into(),
        precision: Default::default(),
        sampler: "ddim".into(),
        steps: 10,
        spacing: "trailing".into(),
        eta: 0.0,
        clip_x0: true,
        seed: 0,
        count: 1,
        size: None,
        filter: Filter::Nearest,
        init_noise: None,
        theme: petal::generate::default_theme(card),
        guidance: None,
        petal_version: env!("CARGO_PKG_VERSION").into(),
    };
    let stop = AtomicBool::new(false);
    for (name, toml) in [
        ("frame-emerging.png", "display = \"memory\"\ncycles = 1\nseed = 7"),
        (
            "frame-morph.png",
            "display = \"memory\"\nevery = \"0\"\ncycles = 2\nseed = 7\nmorph = 8\nemerging = false",
        ),
    ] {
        let s = settings(toml)?;
        let display = MemoryDisplay::new(96, 96);
        let rec = display.recording();
        let mut open = move || Ok(display.clone());
        frame::run(&s, &params, card, &mut denoiser, &mut open, &stop, &mut |_e: Event| {})?;
        let frames = rec.frames();
        let path = out.join(name);
        save_atomic(&grid(&frames, frames.len()), &path, &[])?;
        println!("{} ({} frames)", path.display(), frames.len());
    }
    Ok(())
}
