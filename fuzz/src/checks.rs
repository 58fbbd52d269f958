//! One check per fuzz target: what petal does with one input from outside, from the parser to
//! the checks that follow it. Each returns nothing and must never panic, whatever the bytes.
//!
//! Two harnesses share this file, so both test the same code paths: the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, nightly, through the `petal_fuzz` library) and the stable replay
//! and mutation pass in petal's test suite (`tests/hostile_input.rs`, which includes the file
//! with `#[path]`, because the fuzz crate is not part of petal's workspace and petal's library
//! should not carry harness code). It may use `petal` and `std` only.

use std::path::Path;

use petal::card::ModelCard;
use petal::display::spec::DisplaySpec;
use petal::frame::config::{FrameOptions, FrameSettings};
use petal::generate::GenerateParams;
use petal::picture::{png_text, Filter, METADATA_KEY};

/// The model card JSON: parsed, checked, and everything petal derives from it before a model
/// runs (the schedule, the variants, the tensor sizes).
pub fn card_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(card) = ModelCard::from_json(text, Path::new("fuzz/card.json")) else {
        return;
    };
    let _ = card.image_len();
    let _ = card.variant("int8w");
    let Ok(schedule) = card.schedule.schedule() else {
        return;
    };
    for kind in ["ddim", "dpmpp-2m", "ddpm"] {
        if let Ok(kind) = kind.parse() {
            let config = petal::sampler::SamplerConfig {
                kind,
                steps: 20,
                spacing: petal::schedule::Spacing::default(),
                clip_x0: true,
            };
            let _ = config.build(&schedule);
        }
    }
}

/// The frame's TOML config: parsed, merged under (empty) flags, checked as `petal frame` does
/// before its loop starts, generation settings included, against the embedded model.
pub fn frame_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz/frame.toml");
    let Ok(file) = FrameOptions::from_toml(text, path) else {
        return;
    };
    let (options, sources) = file.merge(FrameOptions::default(), Some(path));
    let Ok(settings) = FrameSettings::from_options(&options, &sources) else {
        return;
    };
    let Ok(model) = petal::model::Model::embedded() else {
        return;
    };
    let variant = options.variant.clone().unwrap_or_else(|| "int8w".into());
    // An unknown precision is an error the frame reports at start; nothing further to check.
    let precision = match options
        .precision
        .as_deref()
        .map(petal::denoiser::Precision::parse)
    {
        Some(Err(_)) => return,
        Some(Ok(p)) => p,
        None => Default::default(),
    };
    let params = GenerateParams {
        model: None,
        model_name: model.card.name.clone(),
        model_sha256: String::new(),
        variant,
        precision,
        sampler: options.sampler.clone().unwrap_or_else(|| "dpmpp-2m".into()),
        steps: options.steps.unwrap_or(20),
        spacing: options.spacing.clone().unwrap_or_else(|| "trailing".into()),
        eta: options.eta.unwrap_or(0.0),
        clip_x0: true,
        seed: options.seed.unwrap_or(0),
        count: 1,
        size: options.gallery_size,
        filter: Filter::Nearest,
        init_noise: None,
        theme: options.theme.clone(),
        guidance: options.guidance,
        petal_version: String::new(),
    };
    let _ = petal::frame::check(&settings, &params, &model.card);
}

/// Display spec strings (`--display`, `display = ...`): parsed in full, for every kind, as
/// `petal frame` does before it opens anything.
pub fn display_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = DisplaySpec::parse_any(text);
    let _ = text.parse::<DisplaySpec>();
}

/// Board profile TOML (`--board FILE`): parsed and checked.
pub fn board_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = petal::board::Board::parse(text, "fuzz/board.toml");
}

/// `--init-noise` .npy files, with and without a required picture count.
pub fn init_noise_npy(data: &[u8]) {
    for count in [None, Some(1), Some(4)] {
        let _ = petal::noise::npy_from_bytes(data, "fuzz.npy", [3, 32, 32], count);
    }
}

/// The PNG that `petal generate --from` reads: its petal text chunk, parsed into settings and
/// checked against the embedded model as a run would be.
pub fn png_metadata(data: &[u8]) {
    let Ok(Some(text)) = png_text(std::io::Cursor::new(data), "fuzz.png", METADATA_KEY) else {
        return;
    };
    let Ok(params) = GenerateParams::from_metadata(&text, "fuzz.png") else {
        return;
    };
    if let Ok(model) = petal::model::Model::embedded() {
        let _ = params.validate(&model.card);
    }
}

/// ONNX bytes, as far as petal reads them before running anything: the protobuf, the graph's
/// inputs and outputs checked against the embedded model's card, and tract's type analysis.
///
/// petal turns panics inside tract's loading into errors (`denoiser::guarded`, which also keeps
/// a harness's panic hook quiet for those stages); any other panic is a finding.
pub fn onnx_bytes(data: &[u8]) {
    if let Ok(model) = petal::model::Model::embedded() {
        let _ = petal::denoiser::summarize(data, &model.card, "fuzz.onnx");
    }
}
