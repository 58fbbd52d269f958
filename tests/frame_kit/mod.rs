//! Shared pieces of the frame tests: an exact denoiser for Gaussian "pictures" (fast, so the
//! loop can be exercised for hundreds of cycles), generation parameters and settings.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use petal::card::ModelCard;
use petal::frame::{FrameOptions, FrameSettings};
use petal::generate::GenerateParams;
use petal::model::Model;
use petal::picture::Filter;
use petal::sampler::Denoiser;

/// The exact noise prediction when every pixel is independent N(mu, s^2): the sampler then
/// paints `mu` plus seed-dependent variation, smoothly in the start noise.
pub struct Gauss {
    pub mu: Vec<f32>,
    pub s2: f64,
    pub alphas_cumprod: Vec<f64>,
    /// Sleep per call, to make a generation last.
    pub delay: Duration,
}

impl Gauss {
    pub fn new(card: &ModelCard) -> Self {
        let r = card.resolution;
        let plane = r * r;
        let mu = (0..card.image_len())
            .map(|i| {
                let (c, p) = (i / plane, i % plane);
                let (y, x) = ((p / r) as f32 / r as f32, (p % r) as f32 / r as f32);
                match c {
                    0 => x - 0.5,
                    1 => y - 0.5,
                    _ => 0.6 * (x + y - 1.0),
                }
            })
            .collect();
        let sched = card.schedule.schedule().expect("schedule");
        Gauss {
            mu,
            s2: 0.3 * 0.3,
            alphas_cumprod: sched.alphas_cumprod.clone(),
            delay: Duration::ZERO,
        }
    }
}

impl Denoiser for Gauss {
    fn predict(&mut self, x: &[f32], t: usize) -> petal::Result<Vec<f32>> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let ab = self.alphas_cumprod[t];
        let (sa, s1) = (ab.sqrt(), (1.0 - ab).sqrt());
        let denom = ab * self.s2 + 1.0 - ab;
        Ok(x.iter()
            .zip(&self.mu)
            .map(|(x, m)| (s1 * (f64::from(*x) - sa * f64::from(*m)) / denom) as f32)
            .collect())
    }
}

pub fn card() -> ModelCard {
    Model::embedded().expect("embedded model").card
}

pub fn params(card: &ModelCard, sampler: &str, steps: usize) -> GenerateParams {
    GenerateParams {
        model: None,
        model_name: card.name.clone(),
        model_sha256: "test".into(),
        variant: "test".into(),
        precision: Default::default(),
        sampler: sampler.into(),
        steps,
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
    }
}

/// Settings from TOML text, as `petal frame --config` reads them.
pub fn settings(toml: &str) -> FrameSettings {
    let o = FrameOptions::from_toml(toml, Path::new("test.toml")).expect("options");
    let (o, src) = FrameOptions::default().merge(o, None);
    FrameSettings::from_options(&o, &src).expect("settings")
}

/// Checks a config text as `petal frame` would, less the model (for the settings savers).
pub fn validator() -> petal::frame::settings_edit::Validator {
    Box::new(|text: &str| {
        let o = FrameOptions::from_toml(text, Path::new("frame.toml"))?;
        let (o, src) = FrameOptions::default().merge(o, None);
        FrameSettings::from_options(&o, &src).map(|_| ())
    })
}

/// A frame on a 40x40 memory display (ddim, 3 steps, [`Gauss`]) on its own thread, taking
/// commands from `inbox`, its events kept in `state` as the remote controls see them.
pub fn spawn_observed_frame(
    s: FrameSettings,
    inbox: petal::frame::Inbox,
    state: std::sync::Arc<std::sync::Mutex<petal::frame::status::FrameState>>,
) -> std::thread::JoinHandle<petal::Result<petal::frame::Report>> {
    std::thread::spawn(move || {
        let card = card();
        let mut den = Gauss::new(&card);
        let p = params(&card, "ddim", 3);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let display = petal::display::MemoryDisplay::new(40, 40);
        let mut open = move || Ok(display.clone());
        let mut events = |e: petal::frame::Event| state.lock().unwrap().observe(&e);
        petal::frame::run_controlled(
            &s,
            &p,
            &card,
            &mut den,
            &mut open,
            &stop,
            &inbox,
            &mut events,
        )
    })
}
