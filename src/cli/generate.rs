use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use petal::denoiser::{with_threads, Precision, TractDenoiser};
use petal::generate::{default_theme, generate_parallel, GenerateParams, Progress};
use petal::model::{Model, DEFAULT_VARIANT};
use petal::picture::{self, Filter, METADATA_KEY};
use petal::{noise, Error};

/// Defaults chosen from measurement; see README "Samplers".
pub const DEFAULT_SAMPLER: &str = "dpmpp-2m";
pub const DEFAULT_STEPS: usize = 20;
pub const DEFAULT_SPACING: &str = "trailing";
/// Pictures are 256 px unless asked otherwise: the model's native 32 px is a speck on any
/// screen. `--size 32` gives the native size.
pub const DEFAULT_SIZE: u32 = 256;

#[derive(Args, Debug, Default)]
pub struct GenerateArgs {
    /// Where to write the picture (.png or .jpg).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Regenerate the picture whose PNG metadata this file holds (other flags override).
    #[arg(long)]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub sampling: super::sampling::SamplingArgs,
    /// Do not clip the x0 prediction to the model's value range.
    #[arg(long)]
    pub no_clip: bool,
    /// Number of pictures, laid out as a grid.
    #[arg(long)]
    pub count: Option<usize>,
    /// Each picture's size in pixels, square [default: 256; the model's native size is 32].
    #[arg(long)]
    pub size: Option<u32>,
    /// Upscaling filter: nearest (crisp pixels) or lanczos (smooth).
    #[arg(long)]
    pub filter: Option<String>,
    /// Start from this noise (float32 .npy, [N,C,H,W]) instead of the seed's.
    #[arg(long)]
    pub init_noise: Option<PathBuf>,
    /// Also write the final tensors in model space (float32 .npy, [N,C,H,W]).
    #[arg(long)]
    pub save_raw: Option<PathBuf>,
    /// Also write the x0 prediction after each step of the first picture as a strip.
    #[arg(long)]
    pub steps_strip: Option<PathBuf>,
}

fn params_from(
    args: &GenerateArgs,
    model: &Model,
    base: Option<GenerateParams>,
    defaults: &super::Defaults,
) -> anyhow::Result<GenerateParams> {
    let card = &model.card;
    let variant = args
        .sampling
        .variant
        .clone()
        .or_else(|| base.as_ref().map(|b| b.variant.clone()))
        .or_else(|| defaults.variant.clone())
        .unwrap_or_else(|| DEFAULT_VARIANT.to_string());
    let sha = card.variant(&variant)?.sha256.clone();
    let b = base.as_ref();
    let precision = match &args.sampling.precision {
        Some(p) => Precision::parse(p)?,
        None => b
            .map(|b| b.precision)
            .or(defaults.precision)
            .unwrap_or_default(),
    };
    let filter = match &args.filter {
        Some(f) => f.parse::<Filter>()?,
        None => b.map_or(Filter::Nearest, |b| b.filter),
    };
    Ok(GenerateParams {
        model: args
            .sampling
            .model
            .clone()
            .or_else(|| b.and_then(|b| b.model.clone())),
        model_name: card.name.clone(),
        model_sha256: sha,
        variant,
        precision,
        sampler: args
            .sampling
            .sampler
            .clone()
            .or_else(|| b.map(|b| b.sampler.clone()))
            .or_else(|| defaults.sampler.clone())
            .unwrap_or_else(|| DEFAULT_SAMPLER.into()),
        steps: args
            .sampling
            .steps
            .or(b.map(|b| b.steps))
            .or(defaults.steps)
            .unwrap_or(DEFAULT_STEPS),
        spacing: args
            .sampling
            .spacing
            .clone()
            .or_else(|| b.map(|b| b.spacing.clone()))
            .unwrap_or_else(|| DEFAULT_SPACING.into()),
        eta: args.sampling.eta.or(b.map(|b| b.eta)).unwrap_or(0.0),
        clip_x0: if args.no_clip {
            false
        } else {
            b.is_none_or(|b| b.clip_x0)
        },
        seed: args
            .sampling
            .seed
            .or(b.map(|b| b.seed))
            // Short random seeds are easier to read off a picture and type back in.
            .unwrap_or_else(|| u64::from(rand::random::<u32>())),
        count: args.count.or(b.map(|b| b.count)).unwrap_or(1),
        // A picture painted `--from` keeps its own size, native included.
        size: match (args.size, b) {
            (Some(s), _) => Some(s),
            (None, Some(b)) => b.size,
            (None, None) => Some(DEFAULT_SIZE),
        },
        filter,
        init_noise: args
            .init_noise
            .as_ref()
            .map(|p| p.display().to_string())
            .or_else(|| b.and_then(|b| b.init_noise.clone())),
        // A picture painted `--from` keeps its own theme, none included.
        theme: match (&args.sampling.theme, b) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(b)) => b.theme.clone(),
            (None, None) => default_theme(card),
        },
        guidance: args.sampling.guidance.or(b.and_then(|b| b.guidance)),
        petal_version: env!("CARGO_PKG_VERSION").into(),
    })
}

fn read_from(path: &Path) -> anyhow::Result<GenerateParams> {
    let text = picture::read_png_text(path, METADATA_KEY)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no petal metadata (only PNGs written by petal generate can be used with --from)",
            path.display()
        )
    })?;
    Ok(GenerateParams::from_metadata(
        &text,
        &path.display().to_string(),
    )?)
}

/// A progress bar over all steps of all pictures, and the steps strip of the first picture.
struct CliProgress {
    bar: Option<ProgressBar>,
    strip: Option<Vec<Vec<f32>>>,
}

impl Progress for CliProgress {
    fn step(&mut self, image: usize, _step: usize, _steps: usize, x0: &[f32]) -> petal::Result<()> {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if let (0, Some(strip)) = (image, self.strip.as_mut()) {
            strip.push(x0.to_vec());
        }
        Ok(())
    }
}

/// `defaults` (from `--board`) apply where neither a flag nor the `--from` picture sets a value.
pub fn run(
    args: GenerateArgs,
    threads: usize,
    quiet: bool,
    defaults: &super::Defaults,
) -> anyhow::Result<()> {
    check_writable(&args.out, "--out")?;
    picture::output_format(&args.out)?;
    for (flag, p) in [
        ("--save-raw", &args.save_raw),
        ("--steps-strip", &args.steps_strip),
    ] {
        if let Some(p) = p {
            check_writable(p, flag)?;
        }
    }
    if let Some(p) = &args.steps_strip {
        picture::output_format(p)?;
    }
    let base = args.from.as_deref().map(read_from).transpose()?;
    let model_spec = args
        .sampling
        .model
        .clone()
        .or_else(|| base.as_ref().and_then(|b| b.model.clone()));
    let model = Model::resolve(model_spec.as_deref())?;
    let params = params_from(&args, &model, base, defaults)?;
    params.validate(&model.card)?;
    let card = &model.card;
    let chw = [card.channels, card.resolution, card.resolution];
    let init = match &params.init_noise {
        Some(p) => Some(noise::read_npy(Path::new(p), chw, Some(params.count))?),
        None => None,
    };
    let what = super::model_label(&card.name, &params.variant, params.precision, quiet);
    let bytes = model.variant_bytes(&params.variant)?;
    if !quiet {
        eprintln!(
            "petal: {what}, {} x {} steps, seed {}",
            params.sampler, params.steps, params.seed
        );
    }
    let bar = (!quiet && console_is_tty()).then(|| {
        let bar = ProgressBar::new((params.count * params.steps) as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed} (eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = CliProgress {
        bar,
        strip: args.steps_strip.as_ref().map(|_| Vec::new()),
    };
    // Several pictures with a deterministic sampler: one picture per core, each denoiser on one
    // thread (the executor below belongs to this thread only). One picture at a time: its
    // steps use the step threads.
    // The graph is loaded and optimized once; each thread runs its own state of it.
    let shared = TractDenoiser::with_precision(&bytes, card, &what, params.precision)?.share();
    let images = with_threads(super::step_threads(defaults, threads), || {
        generate_parallel(
            || shared.spawn(),
            threads,
            card,
            &params,
            init,
            &mut progress,
        )
    })?;
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }

    let tile = |x: &[f32]| -> petal::Result<image::RgbImage> {
        let img = picture::tensor_to_rgb(x, card.channels, card.resolution, card.value_range)?;
        Ok(match params.size {
            Some(s) => picture::upscale(&img, s, params.filter),
            None => img,
        })
    };
    let tiles = images
        .iter()
        .map(|x| tile(x))
        .collect::<petal::Result<Vec<_>>>()?;
    let sheet = picture::grid(&tiles, picture::grid_columns(tiles.len()));
    let meta = serde_json::to_string(&params)?;
    let metadata = [
        (METADATA_KEY, meta),
        ("Software", format!("petal {}", env!("CARGO_PKG_VERSION"))),
    ];
    if let Some(path) = &args.save_raw {
        noise::write_npy(path, &images, chw)?;
    }
    if let (Some(path), Some(strip)) = (&args.steps_strip, &progress.strip) {
        let frames = strip
            .iter()
            .map(|x| tile(x))
            .collect::<petal::Result<Vec<_>>>()?;
        picture::save_atomic(&picture::grid(&frames, frames.len()), path, &metadata)?;
    }
    picture::save_atomic(&sheet, &args.out, &metadata)?;
    if !quiet {
        eprintln!("petal: wrote {}", args.out.display());
    }
    Ok(())
}

fn console_is_tty() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Fails before any work when the output cannot be written, so a long run is not wasted.
fn check_writable(path: &Path, flag: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "{flag} {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail!("{flag} {} is a directory", path.display());
    }
    petal::atomic_file::probe_writable(dir)
        .map_err(|e| Error::io(dir, e))
        .with_context(|| format!("{flag} {}: cannot write there", path.display()))?;
    petal::atomic_file::remove_stale_temp_files(dir)
        .with_context(|| format!("{flag} {}: cleaning up", path.display()))?;
    Ok(())
}
