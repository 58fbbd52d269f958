//! `petal bench`: each (variant, threads) pair runs in a fresh child process so its peak RSS
//! is its own, then the rows are printed as a table or JSON.

use std::process::Command as Process;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use petal::denoiser::{with_threads, Precision, TractDenoiser};
use petal::generate::{default_theme, generate, generate_parallel, GenerateParams, NoProgress};
use petal::model::Model;
use petal::picture::Filter;
use petal::sampler::Denoiser;
use serde::{Deserialize, Serialize};

use super::generate::{DEFAULT_SAMPLER, DEFAULT_SPACING, DEFAULT_STEPS};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model directory, card file or shipped name (default: the embedded model).
    #[arg(long)]
    pub model: Option<String>,
    /// Comma-separated variants to time.
    #[arg(long, default_value = "f32,int8w,int8")]
    pub variants: String,
    /// Float type tract computes in: f32, or f16 (fast on cores with fp16 arithmetic).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// Comma-separated thread counts (default: 1 and the cores there are).
    #[arg(long)]
    pub thread_counts: Option<String>,
    /// Timed UNet evaluations per configuration.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Sampler and steps for the time-per-image figure.
    #[arg(long, default_value = DEFAULT_SAMPLER)]
    pub sampler: String,
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    pub steps: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Instead of timing pictures: time per operator type within one step, per variant
    /// (one thread, `--runs` steps at the first timestep).
    #[arg(long)]
    pub profile: bool,
    /// tract's gate for threading a matrix product: at least this many panels (tract's
    /// default 64). For measuring whether threads inside a step can pay.
    #[arg(long, value_name = "PANELS")]
    pub tract_panel_threshold: Option<usize>,
    /// tract's gate for threading element-wise work: at least this many elements (default
    /// 32768).
    #[arg(long, value_name = "ELEMENTS")]
    pub tract_element_threshold: Option<usize>,
    /// Internal: time one configuration in this process and print one JSON row.
    #[arg(long, hide = true, num_args = 2, value_names = ["VARIANT", "THREADS"])]
    pub one: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BenchRow {
    pub variant: String,
    #[serde(default)]
    pub precision: Precision,
    pub threads: usize,
    pub load_ms: f64,
    pub optimize_ms: f64,
    pub step_ms_median: f64,
    pub step_ms_min: f64,
    pub step_ms_max: f64,
    pub image_ms: f64,
    /// Pictures per second with the threads inside each step (one picture at a time).
    pub pictures_per_s_step_threads: f64,
    /// Pictures per second with one picture per thread (`generate --count N`), loading excluded.
    pub pictures_per_s_picture_threads: f64,
    pub sampler: String,
    pub steps: usize,
    pub peak_rss_mib: Option<f64>,
}

fn parse_list<T: std::str::FromStr>(s: &str, flag: &str) -> anyhow::Result<Vec<T>> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<T>()
                .map_err(|_| anyhow::anyhow!("{flag}: {p:?} is not a valid entry"))
        })
        .collect()
}

pub fn run(args: BenchArgs, threads: Option<usize>, quiet: bool) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let model = Model::resolve(args.model.as_deref())?;
    let precision = Precision::parse(&args.precision)?;
    if let Some(one) = &args.one {
        let threads: usize = one[1].parse().context("--one THREADS")?;
        let row = bench_one(&model, &args, &one[0], threads, precision)?;
        println!("{}", serde_json::to_string(&row)?);
        return Ok(());
    }
    let variants: Vec<String> = parse_list(&args.variants, "--variants")?;
    for v in &variants {
        model.card.variant(v)?;
    }
    if args.profile {
        return profile(&model, &variants, precision, args.runs, args.json);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut thread_counts: Vec<usize> = match (&args.thread_counts, threads) {
        (Some(s), _) => parse_list(s, "--thread-counts")?,
        (None, Some(t)) => vec![t],
        (None, None) => vec![1, cores],
    };
    thread_counts.dedup();
    if thread_counts.contains(&0) {
        bail!("--thread-counts: thread counts must be at least 1");
    }
    let exe =
        std::env::current_exe().context("finding the petal binary to run each configuration")?;
    let mut rows = Vec::new();
    for v in &variants {
        for &t in &thread_counts {
            if !quiet {
                eprintln!("petal bench: {v} on {t} thread(s)...");
            }
            let mut cmd = Process::new(&exe);
            cmd.arg("bench")
                .args(["--runs", &args.runs.to_string()])
                .args(["--sampler", &args.sampler])
                .args(["--steps", &args.steps.to_string()])
                .args(["--precision", precision.name()])
                .args(["--one", v, &t.to_string()]);
            if let Some(m) = &args.model {
                cmd.args(["--model", m]);
            }
            if let Some(n) = args.tract_panel_threshold {
                cmd.args(["--tract-panel-threshold", &n.to_string()]);
            }
            if let Some(n) = args.tract_element_threshold {
                cmd.args(["--tract-element-threshold", &n.to_string()]);
            }
            let out = cmd.output().context("running a benchmark child process")?;
            if !out.status.success() {
                bail!(
                    "benchmark of {v} on {t} thread(s) failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            rows.push(serde_json::from_slice::<BenchRow>(&out.stdout)?);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&model, &rows);
    }
    Ok(())
}

fn bench_one(
    model: &Model,
    args: &BenchArgs,
    variant: &str,
    threads: usize,
    precision: Precision,
) -> anyhow::Result<BenchRow> {
    let card = &model.card;
    let bytes = model.variant_bytes(variant)?;
    let what = format!("{} ({variant}, {})", card.name, precision.name());
    let params = GenerateParams {
        model: args.model.clone(),
        model_name: card.name.clone(),
        model_sha256: card.variant(variant)?.sha256.clone(),
        variant: variant.into(),
        precision,
        sampler: args.sampler.clone(),
        steps: args.steps,
        spacing: DEFAULT_SPACING.into(),
        eta: 0.0,
        clip_x0: true,
        seed: 0,
        count: 1,
        size: None,
        filter: Filter::Nearest,
        init_noise: None,
        // Timed as `generate` paints by default: a themed model's default theme and guidance.
        theme: default_theme(card),
        guidance: None,
        petal_version: env!("CARGO_PKG_VERSION").into(),
    };
    params.validate(card)?;
    if let Some(n) = args.tract_panel_threshold {
        tract_linalg::multithread::set_threading_panel_threshold(n);
    }
    if let Some(n) = args.tract_element_threshold {
        tract_linalg::multithread::set_threading_element_threshold(n);
    }
    with_threads(threads, || -> anyhow::Result<BenchRow> {
        let mut d = TractDenoiser::with_precision(&bytes, card, &what, precision)?;
        let x = petal::noise::gaussian(&mut petal::noise::rngs(7).0, card.image_len());
        let t_max = card.schedule.num_timesteps - 1;
        // Two untimed runs: first-call allocations and cache warm-up are not a step's cost.
        for _ in 0..2 {
            d.predict(&x, t_max)?;
        }
        let mut times = Vec::with_capacity(args.runs);
        for i in 0..args.runs {
            let t = t_max - (i * t_max) / args.runs.max(1);
            let t0 = Instant::now();
            std::hint::black_box(d.predict(&x, t)?);
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let t0 = Instant::now();
        generate(&mut d, card, &params, None, &mut NoProgress)?;
        let image_ms = t0.elapsed().as_secs_f64() * 1e3;
        // A grid of four pictures per thread, as `generate --count` paints it: one state per
        // thread of the plan loaded above, so both policies are timed painting only (a run's
        // load and optimize time are reported on their own).
        let grid = GenerateParams {
            count: 4 * threads,
            ..params.clone()
        };
        let shared = d.share();
        let make = || shared.spawn();
        let t0 = Instant::now();
        generate_parallel(make, threads, card, &grid, None, &mut NoProgress)?;
        let per_thread_pps = grid.count as f64 / t0.elapsed().as_secs_f64();
        Ok(BenchRow {
            variant: variant.into(),
            precision,
            threads,
            load_ms: d.load_time.as_secs_f64() * 1e3,
            optimize_ms: d.optimize_time.as_secs_f64() * 1e3,
            step_ms_median: times[times.len() / 2],
            step_ms_min: times[0],
            step_ms_max: times[times.len() - 1],
            image_ms,
            pictures_per_s_step_threads: 1e3 / image_ms,
            pictures_per_s_picture_threads: per_thread_pps,
            sampler: args.sampler.clone(),
            steps: args.steps,
            peak_rss_mib: peak_rss_mib(),
        })
    })
}

#[derive(Debug, Serialize)]
struct ProfileRow {
    variant: String,
    op: String,
    nodes: usize,
    ms_per_step: f64,
    share: f64,
}

/// `bench --profile`: where one step's time goes, per operator type, for each variant.
fn profile(
    model: &Model,
    variants: &[String],
    precision: Precision,
    runs: usize,
    json: bool,
) -> anyhow::Result<()> {
    let card = &model.card;
    let mut rows = Vec::new();
    for v in variants {
        let bytes = model.variant_bytes(v)?;
        let what = format!("{} ({v}, {})", card.name, precision.name());
        let mut d = TractDenoiser::with_precision(&bytes, card, &what, precision)?;
        let x = petal::noise::gaussian(&mut petal::noise::rngs(7).0, card.image_len());
        let ops = d.profile(&x, card.schedule.num_timesteps - 1, runs)?;
        let total: f64 = ops.iter().map(|o| o.per_step.as_secs_f64()).sum();
        for o in ops {
            let ms = o.per_step.as_secs_f64() * 1e3;
            rows.push(ProfileRow {
                variant: v.clone(),
                op: o.op,
                nodes: o.nodes,
                ms_per_step: ms,
                share: if total > 0.0 { ms / 1e3 / total } else { 0.0 },
            });
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "model {} — time per operator type in one step ({}, 1 thread, mean of {runs} steps)",
        model.origin(),
        precision.name()
    );
    println!(
        "{:8} {:28} {:>6} {:>10} {:>7}",
        "variant", "operator", "nodes", "ms/step", "share"
    );
    for r in &rows {
        println!(
            "{:8} {:28} {:>6} {:>10.3} {:>6.1}%",
            r.variant,
            r.op,
            r.nodes,
            r.ms_per_step,
            r.share * 100.0
        );
    }
    Ok(())
}

/// Peak resident set size of this process (Linux: VmHWM).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn print_table(model: &Model, rows: &[BenchRow]) {
    println!(
        "model {} ({}) — per-step latency over timesteps spread across the schedule; image = {} x {} steps;\n\
         pictures/s (loading excluded) with the threads inside each step (st) and with one picture per thread (pt, generate --count)",
        model.origin(),
        rows.first().map_or("f32", |r| r.precision.name()),
        rows.first().map_or("", |r| r.sampler.as_str()),
        rows.first().map_or(0, |r| r.steps)
    );
    println!(
        "{:8} {:>7} {:>8} {:>9} {:>10} {:>8} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "variant",
        "threads",
        "load ms",
        "optim ms",
        "step med",
        "min",
        "max",
        "image ms",
        "pic/s st",
        "pic/s pt",
        "peak MiB"
    );
    for r in rows {
        println!(
            "{:8} {:>7} {:>8.1} {:>9.1} {:>10.2} {:>8.2} {:>8.2} {:>10.1} {:>9.2} {:>9.2} {:>9}",
            r.variant,
            r.threads,
            r.load_ms,
            r.optimize_ms,
            r.step_ms_median,
            r.step_ms_min,
            r.step_ms_max,
            r.image_ms,
            r.pictures_per_s_step_threads,
            r.pictures_per_s_picture_threads,
            r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}"))
        );
    }
}
