//! ONNX `GroupNormalization` as one tract op, with the SiLU that follows it folded in.
//!
//! tract expands the ONNX op into ~10 primitive ops (reshape, mean, subtract, mean of
//! squares, add, rsqrt, multiply, affine), each a pass over the activations and most with an
//! output buffer of their own: 9-10% of an f32 step of the shipped UNet. Here a group's
//! values are read three times while they sit in cache (mean, variance, then the per-channel
//! affine written in place), and a SiLU after the norm runs on the same buffer.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::Silu;
use tract_onnx::tract_hir::internal::*;

/// tract's ONNX parser with `GroupNormalization` parsed into [`FusedGroupNorm`].
pub(super) fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    onnx.op_register.insert("GroupNormalization", parse);
    onnx
}

fn parse(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let epsilon: f32 = node.get_attr_opt("epsilon")?.unwrap_or(1e-5);
    let groups: usize = node.get_attr("num_groups")?;
    ensure!(
        groups > 0,
        "GroupNormalization: num_groups must be positive"
    );
    ensure!(
        epsilon.is_finite() && epsilon >= 0.0,
        "GroupNormalization: epsilon {epsilon} is not a non-negative number"
    );
    // Before opset 21 scale and bias have one value per group, from 21 on one per channel.
    let per_channel_affine = ctx.onnx_operator_set_version >= 21;
    let op = GroupNormInference {
        norm: FusedGroupNorm {
            epsilon,
            groups,
            per_channel_affine,
            silu: false,
        },
    };
    Ok((expand(op), vec![]))
}

/// The op while tract infers types and shapes; it becomes one [`FusedGroupNorm`] node.
#[derive(Debug, Clone)]
struct GroupNormInference {
    norm: FusedGroupNorm,
}

impl Expansion for GroupNormInference {
    fn name(&self) -> StaticName {
        "GroupNormalization".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 3)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, &inputs[1].datum_type)?;
        s.equals(&inputs[0].datum_type, &inputs[2].datum_type)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.norm.clone(), inputs)
    }
}

/// GroupNorm over `[N, C, spatial...]`: each of `groups` runs of C/groups channels is
/// normalized over its channels and all spatial positions, then scaled and shifted per channel
/// (or per group, before opset 21); then, if `silu`, `y * sigmoid(y)`. Computes in f32 (the
/// ONNX default `stash_type`) and hands back the input's float type.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedGroupNorm {
    epsilon: f32,
    groups: usize,
    per_channel_affine: bool,
    silu: bool,
}

impl Eq for FusedGroupNorm {}

impl FusedGroupNorm {
    /// Channels, and values per channel, of an input of this shape; errors on a shape the
    /// op does not fit (told at load, not mid-picture, as `output_facts` calls it).
    fn layout(&self, shape: &[usize], scale_len: usize, bias_len: usize) -> TractResult<Layout> {
        ensure!(
            shape.len() >= 2,
            "GroupNormalization: input of rank {} (at least 2: batch, channels)",
            shape.len()
        );
        let channels = shape[1];
        ensure!(
            channels.is_multiple_of(self.groups),
            "GroupNormalization: {channels} channels do not split into {} groups",
            self.groups
        );
        let affine = if self.per_channel_affine {
            channels
        } else {
            self.groups
        };
        ensure!(
            scale_len == affine && bias_len == affine,
            "GroupNormalization: scale and bias have {scale_len} and {bias_len} values, {affine} expected"
        );
        Ok(Layout {
            channels,
            per_channel: shape[2..].iter().product(),
        })
    }
}

struct Layout {
    channels: usize,
    per_channel: usize,
}

impl Op for FusedGroupNorm {
    fn name(&self) -> StaticName {
        "PetalGroupNorm".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "groups: {}, epsilon: {}, silu: {}",
            self.groups, self.epsilon, self.silu
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for FusedGroupNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, scale, bias) = args_3!(inputs);
        let dt = x.datum_type();
        let scale = scale.cast_to::<f32>()?;
        let bias = bias.cast_to::<f32>()?;
        let scale_view = scale.try_as_plain_ram()?;
        let bias_view = bias.try_as_plain_ram()?;
        let (scale, bias) = (scale_view.as_slice::<f32>()?, bias_view.as_slice::<f32>()?);
        let layout = self.layout(x.shape(), scale.len(), bias.len())?;
        // The activations are normalized in place: no buffer beyond the one that comes in
        // (tract hands this op its input exclusively when nothing else reads it).
        let mut y = if dt == f32::datum_type() {
            x.into_tensor()
        } else {
            x.cast_to::<f32>()?.into_owned()
        };
        {
            let mut view = y.try_as_plain_ram_mut()?;
            let values = view.as_slice_mut::<f32>()?;
            self.normalize(values, &layout, scale, bias);
            if self.silu {
                tract_linalg::routines::Func::Silu.ew_f32()?.run(values)?;
            }
        }
        if dt != f32::datum_type() {
            y = y.cast_to_dt(dt)?.into_owned();
        }
        Ok(tvec![y.into_tvalue()])
    }
}

impl FusedGroupNorm {
    fn normalize(&self, values: &mut [f32], layout: &Layout, scale: &[f32], bias: &[f32]) {
        let channels_per_group = layout.channels / self.groups;
        let group_len = channels_per_group * layout.per_channel;
        if group_len == 0 {
            return;
        }
        // `values` holds batch x groups runs of `group_len` (its shape was checked by `layout`).
        for (ix, group) in values.chunks_exact_mut(group_len).enumerate() {
            let g = ix % self.groups;
            let n = group_len as f32;
            let mean = lane_sum(group, |v| v) / n;
            let variance = lane_sum(group, |v| (v - mean) * (v - mean)) / n;
            let inv_std = 1.0 / (variance + self.epsilon).sqrt();
            for (k, channel) in group.chunks_exact_mut(layout.per_channel).enumerate() {
                let c = g * channels_per_group + k;
                let affine = if self.per_channel_affine { c } else { g };
                // (v - mean) * inv_std * scale + bias, as one multiply and one add per value.
                // Not `mul_add`: without FMA in the target features it is a libm call.
                let a = inv_std * scale[affine];
                let b = bias[affine] - mean * a;
                for v in channel {
                    *v = *v * a + b;
                }
            }
        }
    }
}

/// Sum of `f(v)` over `values` in 8 independent lanes, so the compiler can keep them in one
/// SIMD register (one running sum would be a chain it may not reorder).
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f32>() + rest
}

impl TypedOp for FusedGroupNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 3,
            "GroupNormalization takes x, scale and bias"
        );
        ensure!(
            inputs[0].datum_type.is_float(),
            "GroupNormalization of {:?} values (floats only)",
            inputs[0].datum_type
        );
        if let (Some(shape), Some(scale), Some(bias)) = (
            inputs[0].shape.as_concrete(),
            inputs[1].shape.as_concrete(),
            inputs[2].shape.as_concrete(),
        ) {
            ensure!(
                scale.len() == 1 && bias.len() == 1,
                "GroupNormalization: scale and bias must be vectors"
            );
            self.layout(shape, scale[0], bias[0])?;
        }
        Ok(tvec![inputs[0].without_value()])
    }

    /// Takes in the SiLU that follows (the UNet's norm, then activation), saving a pass and
    /// a buffer.
    fn declutter(
        &self,
        model: &TypedModel,
        node: &TypedNode,
    ) -> TractResult<Option<TypedModelPatch>> {
        if self.silu {
            return Ok(None);
        }
        let Some(next) = model.single_succ(node.id)? else {
            return Ok(None);
        };
        let is_silu = next
            .op_as::<ElementWiseOp>()
            .is_some_and(|ew| ew.0.is::<Silu>());
        if !is_silu || next.outputs[0].fact.datum_type != node.outputs[0].fact.datum_type {
            return Ok(None);
        }
        let fused = FusedGroupNorm {
            silu: true,
            ..self.clone()
        };
        Ok(Some(TypedModelPatch::fuse_with_next(model, node, fused)?))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook formula, one value at a time, in f64.
    fn naive(
        x: &[f32],
        shape: [usize; 4],
        groups: usize,
        op: &FusedGroupNorm,
        scale: &[f32],
        bias: &[f32],
    ) -> Vec<f32> {
        let [n, c, h, w] = shape;
        let (cpg, hw) = (c / groups, h * w);
        let mut out = vec![0f32; x.len()];
        for b in 0..n {
            for g in 0..groups {
                let start = (b * c + g * cpg) * hw;
                let group = &x[start..start + cpg * hw];
                let mean = group.iter().map(|&v| v as f64).sum::<f64>() / group.len() as f64;
                let var = group
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>()
                    / group.len() as f64;
                for k in 0..cpg * hw {
                    let ch = g * cpg + k / hw;
                    let affine = if op.per_channel_affine { ch } else { g };
                    let mut y = (group[k] as f64 - mean) / (var + op.epsilon as f64).sqrt()
                        * scale[affine] as f64
                        + bias[affine] as f64;
                    if op.silu {
                        y /= 1.0 + (-y).exp();
                    }
                    out[start + k] = y as f32;
                }
            }
        }
        out
    }

    fn check(op: FusedGroupNorm, shape: [usize; 4]) {
        let len: usize = shape.iter().product();
        // Values with a large common offset: a one-pass E[x^2] - E[x]^2 would lose them.
        let x: Vec<f32> = (0..len)
            .map(|i| 100.0 + ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let affine = if op.per_channel_affine {
            shape[1]
        } else {
            op.groups
        };
        let scale: Vec<f32> = (0..affine).map(|i| 0.5 + i as f32 / 4.0).collect();
        let bias: Vec<f32> = (0..affine).map(|i| i as f32 - 1.0).collect();
        let want = naive(&x, shape, op.groups, &op, &scale, &bias);
        let inputs = tvec![
            Tensor::from_shape(&shape, &x).unwrap().into_tvalue(),
            Tensor::from_shape(&[affine], &scale).unwrap().into_tvalue(),
            Tensor::from_shape(&[affine], &bias).unwrap().into_tvalue(),
        ];
        let out = op.eval_out_of_plan(inputs).unwrap().unwrap();
        let view = out[0].try_as_plain_ram().unwrap();
        let got = view.as_slice::<f32>().unwrap();
        let max = want
            .iter()
            .zip(got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-4, "{op:?} on {shape:?}: off by {max:e}");
    }

    fn op(groups: usize, per_channel_affine: bool, silu: bool) -> FusedGroupNorm {
        FusedGroupNorm {
            epsilon: 1e-5,
            groups,
            per_channel_affine,
            silu,
        }
    }

    #[test]
    fn normalizes_per_group_with_per_channel_affine() {
        check(op(3, true, false), [2, 6, 3, 5]);
    }

    #[test]
    fn applies_per_group_affine_before_opset_21() {
        check(op(2, false, false), [1, 4, 4, 4]);
    }

    #[test]
    fn applies_the_folded_silu() {
        check(op(4, true, true), [1, 8, 5, 5]);
    }

    #[test]
    fn rejects_channels_that_do_not_split_into_groups() {
        let fact = |shape: &[usize]| f32::fact(shape);
        let (x, s) = (fact(&[1, 5, 4, 4]), fact(&[5]));
        let err = op(2, true, false).output_facts(&[&x, &s, &s]).unwrap_err();
        assert!(
            err.to_string()
                .contains("5 channels do not split into 2 groups"),
            "{err}"
        );
        let (x, s) = (fact(&[1, 4, 4, 4]), fact(&[3]));
        let err = op(2, true, false).output_facts(&[&x, &s, &s]).unwrap_err();
        assert!(
            err.to_string().contains("3 and 3 values, 4 expected"),
            "{err}"
        );
    }
}
