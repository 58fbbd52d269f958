//! `petal frame`: the art-frame loop on a display, configured by flags and/or a TOML file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use clap::Args;
use petal::denoiser::{Precision, TractDenoiser};
use petal::display::AnyDisplay;
use petal::frame::config::Sources;
use petal::frame::settings_edit::{PageSettings, SettingsSaver, Validator};
use petal::frame::status::FrameState;
use petal::frame::{self, Event, FrameOptions, FrameSettings, Painters};
use petal::generate::{default_theme, GenerateParams};
use petal::limits;
use petal::model::{Model, DEFAULT_VARIANT};
use petal::picture::Filter;
use petal::sampler::Denoiser;
use petal::Error;

use super::generate::{DEFAULT_SAMPLER, DEFAULT_SPACING, DEFAULT_STEPS};

#[derive(Args, Debug, Default)]
pub struct FrameArgs {
    /// TOML file with any of the options below (kebab-case keys); flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to show pictures: png:DIR, fb:/dev/fbN, memory (options after ?, see docs/frame.md).
    #[arg(long, value_name = "SPEC")]
    pub display: Option<String>,
    /// Time from one picture's start to the next ("10m", "30s", "1h"; default 10m).
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// Stop after this many pictures (default: run until stopped).
    #[arg(long)]
    pub cycles: Option<u64>,
    /// Glide to each new picture through N in-between pictures (needs a deterministic sampler).
    #[arg(long, value_name = "N")]
    pub morph: Option<usize>,
    /// Show each picture emerging, step by step (the default on fast displays).
    #[arg(long, overrides_with = "no_emerging")]
    pub emerging: bool,
    /// Show only finished pictures.
    #[arg(long)]
    pub no_emerging: bool,
    /// Draw the time and the seed on each picture.
    #[arg(long, overrides_with = "no_caption")]
    pub caption: bool,
    #[arg(long, hide = true)]
    pub no_caption: bool,
    /// No painting and no refresh in this daily window, local time ("22:00-07:00").
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub quiet_hours: Option<String>,
    /// fit (whole picture, letterboxed) or fill (whole screen, cropped).
    #[arg(long)]
    pub fit: Option<String>,
    /// Scaling: nearest (crisp pixel art) or smooth.
    #[arg(long)]
    pub filter: Option<String>,
    /// Letterbox colour (#rrggbb).
    #[arg(long, value_name = "COLOUR")]
    pub background: Option<String>,
    /// Keep every picture (PNG with petal metadata) in this directory.
    #[arg(long, value_name = "DIR")]
    pub gallery: Option<PathBuf>,
    /// Pictures kept in the gallery at most (oldest deleted first).
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Bytes kept in the gallery at most ("500M", "2G").
    #[arg(long, value_name = "SIZE")]
    pub keep_bytes: Option<String>,
    /// Gallery pictures upscaled to this many pixels square.
    #[arg(long, value_name = "PX")]
    pub gallery_size: Option<u32>,
    /// Push buttons to ground on GPIO lines: "inky" (the Inky Impression's A-D: next, previous,
    /// keep, shutdown when held) or "GPIO:SHORT[:LONG],..." (needs a build with `buttons`).
    #[arg(long, value_name = "SET")]
    pub buttons: Option<String>,
    /// The GPIO chip of the buttons (default /dev/gpiochip0).
    #[arg(long, value_name = "PATH")]
    pub buttons_gpiochip: Option<PathBuf>,
    /// Serve the control page here: a port or IP:PORT (loopback unless an IP says otherwise;
    /// a LAN address needs --http-token-file). See docs/frame.md.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// The control page's token: one line, mode 0600 (boards/install.sh makes one).
    #[arg(long, value_name = "FILE")]
    pub http_token_file: Option<PathBuf>,
    /// Publish state and take commands over MQTT, with Home Assistant discovery:
    /// mqtt://[USER:PASS@]HOST[:PORT]. See docs/frame.md.
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// The frame's name in MQTT topics and Home Assistant (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub mqtt_id: Option<String>,
    #[command(flatten)]
    pub sampling: super::sampling::SamplingArgs,
    /// First wait after a display fails; it doubles up to a minute (default 1s).
    #[arg(long, value_name = "DURATION", hide = true)]
    pub retry: Option<String>,
}

impl FrameArgs {
    fn options(&self) -> FrameOptions {
        let flag = |on: bool, off: bool| match (on, off) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        FrameOptions {
            display: self.display.clone(),
            every: self.every.clone(),
            cycles: self.cycles,
            morph: self.morph,
            emerging: flag(self.emerging, self.no_emerging),
            caption: flag(self.caption, self.no_caption),
            quiet_hours: self.quiet_hours.clone(),
            fit: self.fit.clone(),
            filter: self.filter.clone(),
            background: self.background.clone(),
            gallery: self.gallery.clone(),
            keep: self.keep,
            keep_bytes: self.keep_bytes.clone(),
            gallery_size: self.gallery_size,
            model: self.sampling.model.clone(),
            variant: self.sampling.variant.clone(),
            precision: self.sampling.precision.clone(),
            sampler: self.sampling.sampler.clone(),
            steps: self.sampling.steps,
            spacing: self.sampling.spacing.clone(),
            eta: self.sampling.eta,
            theme: self.sampling.theme.clone(),
            guidance: self.sampling.guidance,
            seed: self.sampling.seed,
            threads: None,
            retry: self.retry.clone(),
            buttons: self.buttons.clone(),
            buttons_gpiochip: self.buttons_gpiochip.clone(),
            http: self.http.clone(),
            http_token_file: self.http_token_file.clone(),
            mqtt: self.mqtt.clone(),
            mqtt_id: self.mqtt_id.clone(),
        }
    }
}

fn params_for(
    o: &FrameOptions,
    model: &Model,
    defaults: &super::Defaults,
) -> anyhow::Result<GenerateParams> {
    let card = &model.card;
    let variant = o
        .variant
        .clone()
        .or_else(|| defaults.variant.clone())
        .unwrap_or_else(|| DEFAULT_VARIANT.to_string());
    let sha = card.variant(&variant)?.sha256.clone();
    let precision = match &o.precision {
        Some(p) => Precision::parse(p)?,
        None => defaults.precision.unwrap_or_default(),
    };
    Ok(GenerateParams {
        model: o.model.clone(),
        model_name: card.name.clone(),
        model_sha256: sha,
        variant,
        precision,
        sampler: o
            .sampler
            .clone()
            .or_else(|| defaults.sampler.clone())
            .unwrap_or_else(|| DEFAULT_SAMPLER.into()),
        steps: o.steps.or(defaults.steps).unwrap_or(DEFAULT_STEPS),
        spacing: o.spacing.clone().unwrap_or_else(|| DEFAULT_SPACING.into()),
        eta: o.eta.unwrap_or(0.0),
        clip_x0: true,
        seed: 0,
        count: 1,
        size: o.gallery_size,
        filter: Filter::Nearest,
        init_noise: None,
        theme: o.theme.clone().or_else(|| default_theme(card)),
        guidance: o.guidance,
        petal_version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Everything one run of the frame loop needs, from the config file and the flags.
struct Loaded {
    options: FrameOptions,
    sources: Sources,
    settings: FrameSettings,
    /// Painting threads: a glide's in-between pictures are painted this many at once.
    threads: usize,
    /// tract's threads inside one step of each painting thread.
    step_threads: usize,
    model: Model,
    params: GenerateParams,
}

/// Reads the config file (again, after the control page saved it) under the flags.
fn load(
    config: Option<&Path>,
    flags: &FrameOptions,
    threads_flag: Option<usize>,
    defaults: &super::Defaults,
) -> anyhow::Result<Loaded> {
    let file = match config {
        Some(p) => FrameOptions::load(p)?,
        None => FrameOptions::default(),
    };
    resolve(file, config, flags, threads_flag, defaults)
}

/// [`load`] of a config file already read.
fn resolve(
    file: FrameOptions,
    config: Option<&Path>,
    flags: &FrameOptions,
    threads_flag: Option<usize>,
    defaults: &super::Defaults,
) -> anyhow::Result<Loaded> {
    let (options, sources) = file.merge(flags.clone(), config);
    let settings = FrameSettings::from_options(&options, &sources)?;
    let threads = match threads_flag.or(options.threads).or(defaults.threads) {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let step_threads = super::step_threads(defaults, threads);
    let model = Model::resolve(options.model.as_deref())?;
    let params = params_for(&options, &model, defaults)?;
    frame::check(&settings, &params, &model.card)?;
    Ok(Loaded {
        options,
        sources,
        settings,
        threads,
        step_threads,
        model,
        params,
    })
}

pub fn run(
    args: FrameArgs,
    threads_flag: Option<usize>,
    quiet: bool,
    defaults: &super::Defaults,
) -> anyhow::Result<()> {
    let flags = args.options();
    let config = args.config.clone();
    let mut loaded = load(config.as_deref(), &flags, threads_flag, defaults)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }

    let (remote, inbox) = frame::control::channel_pair();
    let buttons = start_buttons(&loaded.settings, remote.clone(), quiet)?;
    let page_state = Arc::new(Mutex::new(FrameState::default()));
    update_page(&page_state, &loaded);
    let validator = || -> Validator {
        let (config_path, flags, defaults) = (
            config.clone().unwrap_or_default(),
            flags.clone(),
            defaults.clone(),
        );
        Box::new(move |text: &str| {
            let file = FrameOptions::from_toml(text, &config_path)?;
            resolve(file, Some(&config_path), &flags, threads_flag, &defaults)
                .map(|_| ())
                .map_err(|e| Error::Invalid(format!("{e:#}")))
        })
    };
    let saver = || SettingsSaver {
        config: config.clone(),
        state: Arc::clone(&page_state),
        remote: remote.clone(),
        validate: validator(),
    };
    let page = start_page(
        &loaded,
        config.as_deref(),
        Arc::clone(&page_state),
        remote.clone(),
        validator(),
        quiet,
    )?;
    let mqtt = start_mqtt(
        &loaded,
        Arc::clone(&page_state),
        remote.clone(),
        saver(),
        quiet,
    )?;

    let result = loop {
        update_page(&page_state, &loaded);
        let report = match run_once(&loaded, &stop, &inbox, &page_state, quiet) {
            Ok(r) => r,
            Err(e) => break Err(e),
        };
        if report.reload && !stop.load(Ordering::Relaxed) {
            match load(config.as_deref(), &flags, threads_flag, defaults) {
                Ok(l) => loaded = l,
                // The page checked the file before saving it, so someone else changed it
                // since: a frame on a wall keeps going with what it had.
                Err(e) => eprintln!(
                    "petal: the config no longer works ({e:#}); keeping the settings in use"
                ),
            }
            loaded.settings.resume = report.resume;
            continue;
        }
        break Ok(report);
    };
    drop(page);
    drop(mqtt);
    if let Some((done, thread)) = buttons {
        done.store(true, Ordering::Relaxed);
        let _ = thread.join();
    }
    let report = result?;
    if report.shutdown {
        // The unit (boards/petal.service) powers the board off on this status; petal itself
        // has no right to.
        eprintln!(
            "petal frame: shutdown asked for; exiting with status {}",
            frame::control::SHUTDOWN_EXIT_STATUS
        );
        std::process::exit(frame::control::SHUTDOWN_EXIT_STATUS);
    }
    Ok(())
}

/// One run of the frame loop with `loaded`'s settings: until stopped, done, or told to reload.
fn run_once(
    loaded: &Loaded,
    stop: &AtomicBool,
    inbox: &frame::Inbox,
    page_state: &Mutex<FrameState>,
    quiet: bool,
) -> anyhow::Result<frame::Report> {
    let Loaded {
        settings,
        threads,
        step_threads,
        model,
        params,
        ..
    } = loaded;
    let card = &model.card;
    if let Some(g) = &settings.gallery {
        g.prepare()?;
    }
    // A display that cannot work as specified is an error now; one that is merely absent or
    // busy (I/O) is retried by the loop.
    let mut first: Option<AnyDisplay> = match settings.display.open() {
        Ok(d) => Some(d),
        Err(e @ Error::Invalid(_)) => return Err(e).context("the display cannot be used"),
        Err(e) => {
            eprintln!("petal: display {}: {e}; will retry", settings.display.text);
            None
        }
    };
    let spec = settings.display.clone();
    let mut open = move || -> petal::Result<AnyDisplay> {
        match first.take() {
            Some(d) => Ok(d),
            None => spec.open(),
        }
    };

    let what = super::model_label(&card.name, &params.variant, params.precision, quiet);
    let bytes = model.variant_bytes(&params.variant)?;
    if !quiet {
        eprintln!(
            "petal frame: {what}, {} x {} steps, every {:?}{}",
            params.sampler,
            params.steps,
            settings.every,
            if settings.morph > 0 {
                format!(", morph {}", settings.morph)
            } else {
                String::new()
            }
        );
    }
    let mut events = |e: Event| {
        observe_page(page_state, &e);
        log_event(e, quiet);
    };
    let mut denoiser = TractDenoiser::with_precision(&bytes, card, &what, params.precision)?;
    // Only a glide has pictures to paint side by side; each more thread holds a tract state.
    let wanted = if settings.morph > 0 {
        (*threads).min(settings.morph + 1)
    } else {
        1
    };
    let painting = limits::affordable_workers(
        wanted,
        limits::memory_budget(),
        params.memory_needed(card),
        limits::DENOISER_STATE_BYTES,
    );
    let plan = denoiser.share();
    let mut more = (1..painting)
        .map(|_| plan.spawn())
        .collect::<petal::Result<Vec<_>>>()?;
    let mut all: Vec<&mut (dyn Denoiser + Send)> = vec![&mut denoiser];
    all.extend(more.iter_mut().map(|d| d as &mut (dyn Denoiser + Send)));
    let report = frame::run_painters(
        settings,
        params,
        card,
        Painters::new(all, *step_threads),
        &mut open,
        stop,
        inbox,
        &mut events,
    )?;
    if !quiet {
        let mut line = format!(
            "petal frame: {} after {} picture{}, {} frames shown",
            if report.reload {
                "reloading its settings"
            } else if report.stopped {
                "stopped"
            } else {
                "done"
            },
            report.pictures,
            if report.pictures == 1 { "" } else { "s" },
            report.frames_shown
        );
        if let Some(fps) = report.emerging_fps() {
            line.push_str(&format!(", emerging at {fps:.1} frames/s"));
        }
        if let Some(t) = report.time_per_morph_frame() {
            line.push_str(&format!(
                ", {:.0} ms per morph frame",
                t.as_secs_f64() * 1000.0
            ));
        }
        if report.display_failures > 0 {
            line.push_str(&format!(", {} display failures", report.display_failures));
        }
        eprintln!("{line}");
    }
    Ok(report)
}

fn log_event(e: Event, quiet: bool) {
    match e {
        // Failures are worth a line even with --quiet: a kiosk's log is its only voice.
        Event::DisplayFailed { error, retry_in } => {
            eprintln!("petal: display failed: {error}; retrying in {retry_in:?}")
        }
        Event::GalleryFailed { error } => eprintln!("petal: gallery: {error}"),
        _ if quiet => {}
        Event::DisplayOpened { describe } => eprintln!("petal: showing on {describe}"),
        Event::DisplayRecovered { after_failures } => {
            eprintln!("petal: display back after {after_failures} failed tries")
        }
        Event::Picture {
            seed,
            paint_time,
            saved,
        } => match saved {
            Some(p) => eprintln!(
                "petal: seed {seed} in {:.2} s, kept as {}",
                paint_time.as_secs_f64(),
                p.display()
            ),
            None => eprintln!("petal: seed {seed} in {:.2} s", paint_time.as_secs_f64()),
        },
        Event::QuietHours { started: true } => eprintln!("petal: quiet hours"),
        Event::QuietHours { started: false } => eprintln!("petal: quiet hours over"),
        Event::ClockNotSet => {
            eprintln!("petal: the clock is not set yet (no network time?): quiet hours wait for it")
        }
        Event::SeedsContinue { from } => {
            eprintln!("petal: continuing the seed sequence at {from} after the gallery's newest")
        }
        Event::DisplayClosed => eprintln!("petal: the display was closed"),
        Event::Command { command, outcome } => {
            eprintln!("petal: {}: {outcome}", command.name())
        }
        Event::Controls { .. } => {}
    }
}

type ButtonThread = (Arc<AtomicBool>, std::thread::JoinHandle<()>);

/// Opens the buttons' GPIO lines (an error now if they cannot be) and watches them on a thread.
#[cfg(feature = "buttons")]
fn start_buttons(
    settings: &FrameSettings,
    remote: frame::Remote,
    quiet: bool,
) -> anyhow::Result<Option<ButtonThread>> {
    use petal::frame::buttons::{watch, ButtonPanel};
    let Some(buttons) = settings.buttons.clone() else {
        return Ok(None);
    };
    let panel = ButtonPanel::new(buttons, std::time::Instant::now());
    let read = petal::display::linux_io::open_buttons(&settings.buttons_gpiochip, &panel.gpios())
        .context("the buttons cannot be used")?;
    if !quiet {
        eprintln!(
            "petal: buttons on GPIO {:?} of {}",
            panel.gpios(),
            settings.buttons_gpiochip.display()
        );
    }
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let thread = std::thread::Builder::new()
        .name("petal-buttons".into())
        .spawn(move || {
            watch(panel, read, &remote, &flag, &mut |e| {
                eprintln!("petal: {e}")
            });
        })
        .context("cannot start the buttons' thread")?;
    Ok(Some((done, thread)))
}

#[cfg(not(feature = "buttons"))]
fn start_buttons(
    settings: &FrameSettings,
    _remote: frame::Remote,
    _quiet: bool,
) -> anyhow::Result<Option<ButtonThread>> {
    if settings.buttons.is_some() {
        bail!(
            "--buttons needs a build with the `buttons` feature (cargo build --release --features buttons; boards/build.sh includes it)"
        );
    }
    Ok(None)
}

fn update_page(page: &Mutex<FrameState>, loaded: &Loaded) {
    let mut s = frame::status::lock(page);
    s.settings = Some(PageSettings::of(&loaded.options));
    s.fixed = loaded.sources.from_flags().to_vec();
    s.display = loaded.settings.display.text.clone();
    s.gallery = loaded.settings.gallery.clone();
}

fn observe_page(page: &Mutex<FrameState>, e: &Event) {
    frame::status::lock(page).observe(e);
}

/// A running remote control (control page, MQTT link), stopped when dropped.
type Running = Option<Box<dyn std::any::Any>>;

/// Starts the control page when the settings ask for it (an error now if it cannot listen).
#[cfg(feature = "http")]
fn start_page(
    loaded: &Loaded,
    config: Option<&Path>,
    state: Arc<Mutex<FrameState>>,
    remote: frame::Remote,
    validate: Validator,
    quiet: bool,
) -> anyhow::Result<Running> {
    use petal::frame::http::{self, HttpConfig};
    let Some(addr) = loaded.settings.http else {
        return Ok(None);
    };
    let page = http::start(
        HttpConfig {
            addr,
            token_file: loaded.settings.http_token_file.clone(),
            config: config.map(Path::to_path_buf),
        },
        state,
        remote,
        validate,
    )
    .context("the control page cannot start")?;
    if !quiet {
        eprintln!("petal: control page on http://{}/", page.addr);
    }
    Ok(Some(Box::new(page)))
}

#[cfg(not(feature = "http"))]
fn start_page(
    loaded: &Loaded,
    _config: Option<&Path>,
    _state: Arc<Mutex<FrameState>>,
    _remote: frame::Remote,
    _validate: Validator,
    _quiet: bool,
) -> anyhow::Result<Running> {
    if loaded.settings.http.is_some() {
        bail!("--http needs a build with the `http` feature (in the default features)");
    }
    Ok(None)
}

/// Connects to the MQTT broker when the settings name one (in the background: a broker that
/// is down is retried).
#[cfg(feature = "mqtt")]
fn start_mqtt(
    loaded: &Loaded,
    state: Arc<Mutex<FrameState>>,
    remote: frame::Remote,
    saver: SettingsSaver,
    quiet: bool,
) -> anyhow::Result<Running> {
    use petal::frame::mqtt::{self, MqttConfig};
    let Some(url) = &loaded.settings.mqtt else {
        return Ok(None);
    };
    let id = loaded
        .settings
        .mqtt_id
        .clone()
        .unwrap_or_else(mqtt::host_name);
    let broker: mqtt::BrokerUrl = url.parse()?;
    let link = mqtt::start(
        MqttConfig {
            broker: broker.clone(),
            id,
        },
        state,
        remote,
        saver,
    )
    .context("MQTT cannot start")?;
    if !quiet {
        eprintln!(
            "petal: MQTT to {}:{} as {}/{}",
            broker.host,
            broker.port,
            mqtt::TOPIC_PREFIX,
            link.id()
        );
    }
    Ok(Some(Box::new(link)))
}

#[cfg(not(feature = "mqtt"))]
fn start_mqtt(
    loaded: &Loaded,
    _state: Arc<Mutex<FrameState>>,
    _remote: frame::Remote,
    _saver: SettingsSaver,
    _quiet: bool,
) -> anyhow::Result<Running> {
    if loaded.settings.mqtt.is_some() {
        bail!("--mqtt needs a build with the `mqtt` feature (in the default features)");
    }
    Ok(None)
}
