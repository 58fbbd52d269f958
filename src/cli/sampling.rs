//! The sampling flags `generate` and `frame` share; `frame`'s TOML config has the same keys
//! (kebab-case), so one definition serves both commands and the config.

use clap::Args;

#[derive(Args, Debug, Default, Clone)]
pub struct SamplingArgs {
    /// Model directory, card file or shipped name (default: the embedded model).
    #[arg(long)]
    pub model: Option<String>,
    /// f32, int8w (weight-only int8, the default) or int8 (integer compute).
    #[arg(long)]
    pub variant: Option<String>,
    /// Float type tract computes in: f32, or f16 on cores with fp16 arithmetic (Pi 5, Orin).
    #[arg(long)]
    pub precision: Option<String>,
    /// ddpm, ddim, dpmpp-2m or dpmpp-3m.
    #[arg(long)]
    pub sampler: Option<String>,
    /// Sampler steps (1..=T).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Timestep spacing: leading, trailing or linspace.
    #[arg(long)]
    pub spacing: Option<String>,
    /// DDIM noise (0: deterministic, 1: DDPM-like).
    #[arg(long)]
    pub eta: Option<f32>,
    /// A themed model's theme (`petal info` lists them), `any` (one drawn per picture, the
    /// default) or `none`.
    #[arg(long)]
    pub theme: Option<String>,
    /// How strongly a themed picture follows its theme: 1 is the theme alone (one network call
    /// per step), more is closer to it and less varied (two calls per step) [default: the
    /// model card's].
    #[arg(long)]
    pub guidance: Option<f32>,
    /// Seed of the (first) picture; a frame's next pictures take the following seeds
    /// (default: a random one, printed and stored in the PNG).
    #[arg(long)]
    pub seed: Option<u64>,
}
