//! Several pictures painted on several threads are exactly the pictures painted one after
//! another, in the same order; a failure on any thread stops the run with that error.

mod frame_kit;

use std::sync::atomic::{AtomicUsize, Ordering};

use frame_kit::{card, params, Gauss};
use petal::generate::{generate, generate_parallel, GenerateParams, NoProgress, Progress};
use petal::sampler::Denoiser;

fn serial(p: &GenerateParams) -> Vec<Vec<f32>> {
    let card = card();
    generate(&mut Gauss::new(&card), &card, p, None, &mut NoProgress).unwrap()
}

fn parallel(p: &GenerateParams, workers: usize) -> Vec<Vec<f32>> {
    let card = card();
    generate_parallel(
        || Ok(Gauss::new(&card)),
        workers,
        &card,
        p,
        None,
        &mut NoProgress,
    )
    .unwrap()
}

#[test]
fn parallel_pictures_equal_serial_ones_for_every_sampler() {
    let card = card();
    for (sampler, eta) in [
        ("dpmpp-2m", 0.0),
        ("dpmpp-3m", 0.0),
        ("ddim", 0.0),
        ("ddim", 0.7),
        ("ddpm", 0.0),
    ] {
        let mut p = params(&card, sampler, 6);
        p.eta = eta;
        p.count = 7;
        p.seed = 11;
        let want = serial(&p);
        assert_eq!(want.len(), 7);
        // Pictures differ from each other, so a mix-up of order would show.
        assert_ne!(want[0], want[1]);
        for workers in [1, 2, 3, 8] {
            assert_eq!(
                parallel(&p, workers),
                want,
                "{sampler} eta {eta}, {workers} workers"
            );
        }
    }
}

/// Counts steps per picture and checks every step arrives.
struct Counting(Vec<usize>);

impl Progress for Counting {
    fn step(&mut self, image: usize, _: usize, _: usize, _: &[f32]) -> petal::Result<()> {
        self.0[image] += 1;
        Ok(())
    }
}

#[test]
fn progress_sees_every_step_of_every_picture() {
    let card = card();
    let mut p = params(&card, "dpmpp-2m", 5);
    p.count = 6;
    let mut progress = Counting(vec![0; 6]);
    generate_parallel(|| Ok(Gauss::new(&card)), 3, &card, &p, None, &mut progress).unwrap();
    assert_eq!(progress.0, vec![5; 6]);
}

/// Fails on its `fail_at`-th call over all instances.
struct Failing<'a> {
    inner: Gauss,
    calls: &'a AtomicUsize,
    fail_at: usize,
}

impl Denoiser for Failing<'_> {
    fn predict(&mut self, x: &[f32], t: usize) -> petal::Result<Vec<f32>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.fail_at {
            return Err(petal::Error::Invalid("denoiser broke".into()));
        }
        self.inner.predict(x, t)
    }
}

#[test]
fn a_failing_worker_fails_the_run() {
    let card = card();
    let mut p = params(&card, "dpmpp-2m", 4);
    p.count = 8;
    let calls = AtomicUsize::new(0);
    let make = || {
        Ok(Failing {
            inner: Gauss::new(&card),
            calls: &calls,
            fail_at: 9,
        })
    };
    let e = generate_parallel(make, 2, &card, &p, None, &mut NoProgress).unwrap_err();
    assert!(e.to_string().contains("denoiser broke"), "{e}");
    // The other worker stopped at its next picture instead of painting all the rest.
    assert!(
        calls.load(Ordering::SeqCst) < 8 * 4,
        "{}",
        calls.load(Ordering::SeqCst)
    );

    let e = generate_parallel(
        || -> petal::Result<Gauss> { Err(petal::Error::Invalid("no model".into())) },
        2,
        &card,
        &p,
        None,
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no model"), "{e}");
}

/// Denoisers spawned from one loaded plan (one per thread in `generate --count`) predict
/// exactly what the denoiser that loaded it does, each from its own state.
#[test]
fn denoisers_from_a_shared_plan_predict_like_their_source() {
    let model = petal::model::Model::embedded().unwrap();
    let bytes = model.variant_bytes("int8w").unwrap();
    let mut source = petal::denoiser::TractDenoiser::new(&bytes, &model.card, "int8w").unwrap();
    let shared = source.share();
    let x: Vec<f32> = (0..model.card.image_len())
        .map(|i| ((i % 17) as f32 / 8.0) - 1.0)
        .collect();
    let want = source.predict(&x, 700).unwrap();
    let (mut a, mut b) = (shared.spawn().unwrap(), shared.spawn().unwrap());
    assert_eq!(a.predict(&x, 700).unwrap(), want);
    // Interleaved calls: the two states do not share activations.
    let other = b.predict(&vec![0.0; x.len()], 10).unwrap();
    assert_eq!(a.predict(&x, 700).unwrap(), want);
    assert_ne!(other, want);
    assert_eq!(b.predict(&x, 700).unwrap(), want);
}
