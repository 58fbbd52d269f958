//! f16 compute (`--precision f16`, the Pi 5 and Orin profiles' default) against f32, on the
//! shipped model. On x86 tract emulates f16 (about 150x slower), so these tests evaluate a few
//! steps only. Under `qemu-aarch64 -cpu cortex-a76` with `TRACT_CPU_AARCH64_KIND=a75`, CI runs
//! them on tract's native fp16 kernels, and `PETAL_EXPECT_FP16=1` makes sure of it.

mod numeric;

use numeric::diff;
use petal::denoiser::{cpu_has_fp16, Precision, TractDenoiser};
use petal::model::Model;
use petal::noise;
use petal::sampler::Denoiser;

fn denoiser(variant: &str, precision: Precision) -> TractDenoiser {
    let model = Model::embedded().unwrap();
    let bytes = model.variant_bytes(variant).unwrap();
    TractDenoiser::with_precision(&bytes, &model.card, variant, precision).unwrap()
}

#[test]
fn fp16_kernels_are_detected_where_expected() {
    // CI sets this under qemu cortex-a76: the f16 test below must then run on real fp16
    // kernels, not on tract's emulation.
    if std::env::var("PETAL_EXPECT_FP16").as_deref() == Ok("1") {
        assert!(
            cpu_has_fp16(),
            "PETAL_EXPECT_FP16=1 but tract found no fp16"
        );
    }
    if cfg!(not(target_arch = "aarch64")) {
        assert!(!cpu_has_fp16(), "only aarch64 has tract's fp16 kernels");
    }
}

/// One network evaluation in f16 against f32, at the noisiest, a middle and a late timestep.
/// The bound is set from measurement with margin (see the printed figures): a broken
/// conversion (an op left in the wrong type, the timestep embedding rounded to f16's 0.5
/// spacing near t = 999, an overflow in a norm) gives errors of order 0.1-1.
#[test]
fn f16_prediction_stays_close_to_f32() {
    let card = Model::embedded().unwrap().card;
    let mut f32_net = denoiser("f32", Precision::F32);
    let mut f16_net = denoiser("f32", Precision::F16);
    let (mut rng, _) = noise::rngs(7);
    let x = noise::gaussian(&mut rng, card.image_len());
    for t in [999, 500, 50] {
        let want = f32_net.predict(&x, t).unwrap();
        let got = f16_net.predict(&x, t).unwrap();
        let (max, mean) = diff(&want, &got);
        let scale = want.iter().map(|v| v.abs()).sum::<f32>() / want.len() as f32;
        println!("t={t}: f16 vs f32 max {max:.3e} mean {mean:.3e} (mean |f32| {scale:.3})");
        assert!(
            got.iter().all(|v| v.is_finite()),
            "t={t}: f16 gave a non-finite value"
        );
        assert!(
            mean <= 5e-3 && max <= 5e-2,
            "t={t}: f16 too far from f32: max {max:.3e}, mean {mean:.3e}"
        );
    }
}

#[test]
fn f16_runs_the_int8w_variant_too() {
    // int8w's weights are dequantized on load, so its graph is all float like f32's.
    let card = Model::embedded().unwrap().card;
    let x = vec![0.1; card.image_len()];
    let want = denoiser("int8w", Precision::F32).predict(&x, 500).unwrap();
    let got = denoiser("int8w", Precision::F16).predict(&x, 500).unwrap();
    let (max, mean) = diff(&want, &got);
    println!("int8w: f16 vs f32 max {max:.3e} mean {mean:.3e}");
    assert!(
        mean <= 5e-3 && max <= 5e-2 && got.iter().all(|v| v.is_finite()),
        "int8w: f16 too far from f32: max {max:.3e}, mean {mean:.3e}"
    );
}
