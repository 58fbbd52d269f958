//! Themes: a themed model's theme input, classifier-free guidance, and the `--theme` /
//! `--guidance` settings, run through tract on a tiny themed network
//! (tests/fixtures/themed, made by the recipe with tests/fixtures/make_themed_fixture.sh).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use petal::card::ModelCard;
use petal::denoiser::TractDenoiser;
use petal::generate::GenerateParams;
use petal::model::Model;
use petal::sampler::{sample, Denoiser, Guided, Prediction, SamplerConfig, SamplerKind};
use petal::schedule::{NoiseSchedule, ScheduleKind, Spacing};
use predicates::prelude::*;
use rand::SeedableRng;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/themed")
}

fn petal() -> Command {
    let mut c = Command::cargo_bin("petal").expect("petal binary");
    c.arg("--quiet").arg("--threads").arg("1");
    c
}

/// Paints with the themed fixture (f32, 4 steps, native size) and returns the raw tensors.
fn paint(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, Vec<Vec<f32>>) {
    let out = dir.join(format!("{name}.png"));
    let raw = dir.join(format!("{name}.npy"));
    petal()
        .arg("generate")
        .arg("--model")
        .arg(fixture())
        .args(["--variant", "f32", "--steps", "4", "--size", "16", "--out"])
        .arg(&out)
        .arg("--save-raw")
        .arg(&raw)
        .args(extra)
        .assert()
        .success();
    let count = extra
        .iter()
        .position(|a| *a == "--count")
        .map_or(1, |i| extra[i + 1].parse().unwrap());
    let x = petal::noise::read_npy(&raw, [3, 16, 16], Some(count)).unwrap();
    (out, x)
}

fn params_of(png: &Path) -> GenerateParams {
    let meta = petal::picture::read_png_text(png, "petal")
        .unwrap()
        .expect("metadata");
    serde_json::from_str(&meta).unwrap()
}

fn load_fixture() -> (ModelCard, TractDenoiser) {
    let model = Model::resolve(Some(fixture().to_str().unwrap())).unwrap();
    let bytes = model.variant_bytes("f32").unwrap();
    let denoiser = TractDenoiser::new(&bytes, &model.card, "themed").unwrap();
    (model.card, denoiser)
}

#[test]
fn the_card_names_the_themes_and_the_network_takes_them() {
    let (card, mut net) = load_fixture();
    assert_eq!(card.schema_version, 3);
    assert_eq!(card.themes, ["rings", "squares"]);
    assert_eq!(card.guidance_scale, Some(3.0));
    assert_eq!(net.themes(), 2);
    let x = petal::noise::gaussian(&mut petal::noise::rngs(5).0, card.image_len());
    let rings = net.predict_theme(&x, 500, 0).unwrap();
    let squares = net.predict_theme(&x, 500, 1).unwrap();
    let none = net.predict_theme(&x, 500, 2).unwrap();
    assert_ne!(rings, squares, "the theme input must reach the network");
    assert_ne!(rings, none);
    // No theme is what `predict` itself gives.
    assert_eq!(net.predict(&x, 500).unwrap(), none);
    assert!(net.predict_theme(&x, 500, 3).is_err());
}

#[test]
fn guidance_through_tract_is_none_plus_scale_times_the_difference() {
    let (card, mut net) = load_fixture();
    let x = petal::noise::gaussian(&mut petal::noise::rngs(6).0, card.image_len());
    let c = net.predict_theme(&x, 300, 1).unwrap();
    let u = net.predict_theme(&x, 300, 2).unwrap();
    let mut guided = Guided::new(&mut net, 1, 3.0).unwrap();
    assert_eq!(guided.calls_per_step(), 2);
    assert_eq!(guided.prediction(), Prediction::V);
    let g = guided.predict(&x, 300).unwrap();
    for ((g, c), u) in g.iter().zip(&c).zip(&u) {
        assert!((g - (u + 3.0 * (c - u))).abs() < 1e-5);
    }
}

#[test]
fn themes_paint_different_pictures_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (_, rings) = paint(dir.path(), "rings", &["--theme", "rings", "--seed", "4"]);
    let (_, squares) = paint(
        dir.path(),
        "squares",
        &["--theme", "squares", "--seed", "4"],
    );
    let (none_png, none) = paint(dir.path(), "none", &["--theme", "none", "--seed", "4"]);
    assert_ne!(rings, squares);
    assert_ne!(rings, none);
    assert_eq!(params_of(&none_png).theme.as_deref(), Some("none"));
    // Guidance changes a themed picture; scale 1 is the theme alone.
    let (_, one) = paint(
        dir.path(),
        "one",
        &["--theme", "rings", "--seed", "4", "--guidance", "1"],
    );
    assert_ne!(one, rings);
    // The default is a theme drawn per picture, and --from paints the same grid again.
    let (grid_png, grid) = paint(dir.path(), "grid", &["--count", "6", "--seed", "9"]);
    let p = params_of(&grid_png);
    assert_eq!(p.theme.as_deref(), Some("any"));
    assert_eq!(p.guidance, None);
    let again = dir.path().join("again.png");
    let again_raw = dir.path().join("again.npy");
    petal()
        .arg("generate")
        .arg("--from")
        .arg(&grid_png)
        .arg("--out")
        .arg(&again)
        .arg("--save-raw")
        .arg(&again_raw)
        .assert()
        .success();
    assert_eq!(
        petal::noise::read_npy(&again_raw, [3, 16, 16], Some(6)).unwrap(),
        grid
    );
}

#[test]
fn any_draws_each_pictures_theme_from_the_seed() {
    let card = ModelCard::load(&fixture().join("card.json")).unwrap();
    let mut params = base_params(&card);
    params.theme = Some("any".into());
    params.count = 400;
    let plan = params.theme_plan(&card).unwrap();
    assert_eq!(plan.scale, 3.0);
    let rings = plan.themes.iter().filter(|t| **t == Some(0)).count();
    assert!(plan.themes.iter().all(|t| t.is_some()));
    assert!((150..250).contains(&rings), "{rings} of 400 rings");
    assert_eq!(
        params.theme_plan(&card).unwrap(),
        plan,
        "drawn from the seed"
    );
    params.seed += 1;
    assert_ne!(params.theme_plan(&card).unwrap().themes, plan.themes);
    params.guidance = Some(1.5);
    assert_eq!(params.theme_plan(&card).unwrap().scale, 1.5);
    // "any" draws as the card's theme_weights say: a theme with weight 0 never comes up.
    let mut lopsided = card.clone();
    lopsided.theme_weights = Some(vec![0.0, 3.0]);
    let plan = params.theme_plan(&lopsided).unwrap();
    assert!(plan.themes.iter().all(|t| *t == Some(1)));
}

fn base_params(card: &ModelCard) -> GenerateParams {
    GenerateParams {
        model: None,
        model_name: card.name.clone(),
        model_sha256: card.variant("f32").unwrap().sha256.clone(),
        variant: "f32".into(),
        precision: Default::default(),
        sampler: "dpmpp-2m".into(),
        steps: 4,
        spacing: "trailing".into(),
        eta: 0.0,
        clip_x0: true,
        seed: 1,
        count: 1,
        size: None,
        filter: petal::picture::Filter::Nearest,
        init_noise: None,
        theme: None,
        guidance: None,
        petal_version: "test".into(),
    }
}

#[test]
fn bad_theme_settings_fail_with_one_line_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let themed = fixture();
    let themed = themed.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--model", themed, "--theme", "cats"],
            "no theme \"cats\" (it has: rings, squares, or any, none)",
        ),
        (&["--theme", "smileys-x"], "has no themes"),
        (&["--guidance", "2"], "--guidance is for themed models"),
        (&["--model", themed, "--guidance", "50"], "within 0..20"),
        (&["--model", themed, "--guidance", "NaN"], "--guidance NaN"),
        (&["--model", themed, "--guidance=-1"], "within 0..20"),
    ];
    for (args, needle) in cases {
        petal()
            .arg("generate")
            .arg("--out")
            .arg(&out)
            .args(args)
            .assert()
            .failure()
            .stderr(predicate::str::starts_with("error:"))
            .stderr(predicate::str::contains(needle))
            .stderr(predicate::str::contains("panicked").not());
        assert!(!out.exists(), "{args:?} left a file");
    }
}

#[test]
fn info_lists_the_themes() {
    petal()
        .arg("info")
        .arg(fixture())
        .assert()
        .success()
        .stdout(predicate::str::contains("themes    rings, squares"));
}

#[test]
fn theme_cards_are_checked() {
    let text = std::fs::read_to_string(fixture().join("card.json")).unwrap();
    let card: serde_json::Value = serde_json::from_str(&text).unwrap();
    let origin = Path::new("card.json");
    assert!(ModelCard::from_json(&text, origin).is_ok());
    let broken = |edit: &dyn Fn(&mut serde_json::Value), needle: &str| {
        let mut c = card.clone();
        edit(&mut c);
        let e = ModelCard::from_json(&c.to_string(), origin).unwrap_err();
        assert!(e.to_string().contains(needle), "{e} lacks {needle:?}");
    };
    broken(&|c| c["schema_version"] = 2.into(), "need schema_version 3");
    broken(
        &|c| {
            c["inputs"].as_object_mut().unwrap().remove("theme");
        },
        "inputs.theme is missing",
    );
    broken(
        &|c| {
            c.as_object_mut().unwrap().remove("guidance_scale");
        },
        "guidance_scale is missing",
    );
    broken(
        &|c| c["themes"] = serde_json::json!(["rings", "any"]),
        "not one of",
    );
    broken(
        &|c| c["themes"] = serde_json::json!(["Rings", "b"]),
        "lowercase",
    );
    broken(
        &|c| c["themes"] = serde_json::json!(["a", "a"]),
        "listed twice",
    );
    broken(&|c| c["guidance_scale"] = (-1.0).into(), "at least 0");
    broken(
        &|c| c["theme_weights"] = serde_json::json!([1.0]),
        "one number",
    );
    broken(
        &|c| c["theme_weights"] = serde_json::json!([0.0, 0.0]),
        "not all 0",
    );
}

/// Data that is one exact picture per theme, `mean[k]` everywhere (and 0 with no theme): the
/// exact v-prediction denoiser, counting its calls.
struct PointMasses {
    alphas_cumprod: Vec<f64>,
    means: Vec<f64>,
    calls: usize,
}

impl Denoiser for PointMasses {
    fn predict(&mut self, x: &[f32], t: usize) -> petal::Result<Vec<f32>> {
        self.predict_theme(x, t, self.means.len())
    }

    fn prediction(&self) -> Prediction {
        Prediction::V
    }

    fn themes(&self) -> usize {
        self.means.len()
    }

    fn predict_theme(&mut self, x: &[f32], t: usize, theme: usize) -> petal::Result<Vec<f32>> {
        self.calls += 1;
        let a = self.alphas_cumprod[t];
        let (alpha, sigma) = (a.sqrt(), (1.0 - a).sqrt());
        let x0 = self.means.get(theme).copied().unwrap_or(0.0);
        Ok(x.iter()
            .map(|&x| {
                let eps = (f64::from(x) - alpha * x0) / sigma;
                (alpha * eps - sigma * x0) as f32
            })
            .collect())
    }
}

#[test]
fn guided_sampling_of_exact_point_masses_lands_on_the_guided_picture() {
    let schedule = NoiseSchedule::new(ScheduleKind::Cosine, 1000).unwrap();
    let mut net = PointMasses {
        alphas_cumprod: schedule.alphas_cumprod.clone(),
        means: vec![0.2, -0.3],
        calls: 0,
    };
    let config = SamplerConfig {
        kind: SamplerKind::Ddim { eta: 0.0 },
        steps: 8,
        spacing: Spacing::Trailing,
        clip_x0: false,
    };
    let x_t = petal::noise::gaussian(&mut petal::noise::rngs(2).0, 12);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    // The x0 implied by guided outputs is none + scale * (theme - none): 0 + s * mean.
    for (theme, scale, want) in [(0, 1.0, 0.2), (1, 1.0, -0.3), (0, 2.5, 0.5), (1, 0.0, 0.0)] {
        net.calls = 0;
        let mut sched = config.build(&schedule).unwrap();
        let mut guided = Guided::new(&mut net, theme, scale).unwrap();
        let calls = guided.calls_per_step();
        let out = sample(
            &mut guided,
            sched.as_mut(),
            x_t.clone(),
            &mut rng,
            &mut |_, _| Ok(()),
        )
        .unwrap();
        for v in out {
            assert!(
                (f64::from(v) - want).abs() < 1e-4,
                "theme {theme} scale {scale}: {v}"
            );
        }
        assert_eq!(net.calls, 8 * calls);
        assert_eq!(calls, if scale == 1.0 { 1 } else { 2 });
    }
    assert!(
        Guided::new(&mut net, 2, 1.0).is_err(),
        "index 2 is no theme, not a theme"
    );
    assert!(Guided::new(&mut net, 0, -0.5).is_err());
    assert!(Guided::new(&mut net, 0, f32::NAN).is_err());
}

#[test]
fn a_frame_paints_the_theme_its_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, shown, gallery) = (
        dir.path().join("frame.toml"),
        dir.path().join("shown"),
        dir.path().join("gallery"),
    );
    std::fs::write(
        &cfg,
        format!(
            "display = \"png:{}?size=16x16\"\nevery = \"0\"\ncycles = 2\nsteps = 2\n\
             emerging = false\nvariant = \"f32\"\nmodel = \"{}\"\ntheme = \"squares\"\n\
             guidance = 2.0\ngallery = \"{}\"\nseed = 5\n",
            shown.display(),
            fixture().display(),
            gallery.display()
        ),
    )
    .unwrap();
    petal()
        .args(["frame", "--config"])
        .arg(&cfg)
        .assert()
        .success();
    let mut kept: Vec<PathBuf> = std::fs::read_dir(&gallery)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2);
    for png in &kept {
        let p = params_of(png);
        assert_eq!(p.theme.as_deref(), Some("squares"));
        assert_eq!(p.guidance, Some(2.0));
    }
    // A theme the model lacks stops the frame at start, naming the themes it has.
    std::fs::write(
        &cfg,
        format!(
            "display = \"png:{}\"\nmodel = \"{}\"\ntheme = \"cats\"\n",
            shown.display(),
            fixture().display()
        ),
    )
    .unwrap();
    petal()
        .args(["frame", "--config"])
        .arg(&cfg)
        .assert()
        .failure()
        .stderr(predicate::str::contains("no theme \"cats\""));
}
