//! petal runs ONNX `GroupNormalization` as one fused op (with the SiLU after it). Its
//! predictions must match tract's own expansion of the op, run on the same file through
//! tract's stock ONNX parser, for every shipped variant.

mod numeric;

use numeric::diff;
use petal::card::ModelCard;
use petal::denoiser::TractDenoiser;
use petal::model::Model;
use petal::noise;
use petal::sampler::Denoiser;
use tract_onnx::prelude::*;

/// One evaluation through tract's stock parser and optimizer (no petal op in the graph), and
/// whether that graph quantizes activations.
fn stock_predict(bytes: &[u8], card: &ModelCard, x: &[f32], t: usize) -> (Vec<f32>, bool) {
    let mut model = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .model_for_read(&mut &bytes[..])
        .unwrap();
    let t_is_int = card.inputs.t.dtype == "int64";
    let t_dt = if t_is_int {
        i64::datum_type()
    } else {
        f32::datum_type()
    };
    model
        .set_input_fact(
            0,
            InferenceFact::dt_shape(f32::datum_type(), &card.inputs.x.shape),
        )
        .unwrap();
    model
        .set_input_fact(1, InferenceFact::dt_shape(t_dt, &card.inputs.t.shape))
        .unwrap();
    let plan = model
        .into_typed()
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let ops: Vec<String> = plan
        .model()
        .nodes()
        .iter()
        .map(|n| n.op.name().to_string())
        .collect();
    assert!(
        !ops.iter().any(|o| o.contains("PetalGroupNorm")),
        "the stock parser must not know petal's op"
    );
    let quantizes = ops.iter().any(|o| o.starts_with("QuantizeLinear"));
    let x = Tensor::from_shape(&card.inputs.x.shape, x).unwrap();
    let t = if t_is_int {
        Tensor::from_shape(&card.inputs.t.shape, &[t as i64]).unwrap()
    } else {
        Tensor::from_shape(&card.inputs.t.shape, &[t as f32]).unwrap()
    };
    let out = plan.run(tvec![x.into(), t.into()]).unwrap();
    let out = out[0]
        .try_as_plain_ram()
        .unwrap()
        .as_slice::<f32>()
        .unwrap()
        .to_vec();
    (out, quantizes)
}

#[test]
fn fused_group_norm_matches_tracts_expansion_on_every_variant() {
    let model = Model::embedded().unwrap();
    let card = &model.card;
    let (mut rng, _) = noise::rngs(11);
    let x = noise::gaussian(&mut rng, card.image_len());
    let f32_bytes = model.variant_bytes("f32").unwrap();
    let mut reference = TractDenoiser::new(&f32_bytes, card, "f32").unwrap();
    let mut float_variants = 0;
    for variant in card.variants.keys() {
        let bytes = model.variant_bytes(variant).unwrap();
        let mut fused = TractDenoiser::new(&bytes, card, variant).unwrap();
        for t in [999, 400, 20] {
            let (want, quantizes) = stock_predict(&bytes, card, &x, t);
            let got = fused.predict(&x, t).unwrap();
            let (max, mean) = diff(&want, &got);
            println!("{variant} t={t}: fused vs tract's GroupNorm: max {max:.2e}, mean {mean:.2e}");
            if !quantizes {
                // Same arithmetic up to the order of a sum: float rounding only (measured
                // 2e-6 at most).
                assert!(
                    max < 1e-4,
                    "{variant} t={t}: fused GroupNorm differs from tract's by {max:.2e}"
                );
                float_variants += 1;
                continue;
            }
            // With activations quantized, a 1e-6 change anywhere can flip a rounding and
            // spread (scaling the input by 1 + 1e-6 moved int8's output by 0.04-0.07 on
            // average, measured), so exact agreement is not the test: the fused graph must
            // stay as close to the f32 network as tract's own.
            let f32_out = reference.predict(&x, t).unwrap();
            let (_, stock_err) = diff(&want, &f32_out);
            let (_, fused_err) = diff(&got, &f32_out);
            println!("{variant} t={t}: mean error vs f32: tract's {stock_err:.3e}, fused {fused_err:.3e}");
            assert!(
                fused_err <= stock_err * 1.25 + 1e-4,
                "{variant} t={t}: fused GroupNorm is further from f32 ({fused_err:.3e}) than tract's ({stock_err:.3e})"
            );
        }
    }
    assert!(float_variants > 0, "no variant was compared exactly");
}
