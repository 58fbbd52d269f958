//! The frame's TOML config: parsed, merged under (empty) flags, checked as `petal frame` does
//! before its loop starts, generation settings included, against the embedded model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use petal::frame::config::{FrameOptions, FrameSettings};
use petal::generate::GenerateParams;
use petal::picture::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz/frame.toml");
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
        petal_version: String::new(),
    };
    let _ = petal::frame::check(&settings, &params, &model.card);
});
