//! The UNet run by tract, behind the sampler's [`Denoiser`] trait.
//!
//! Input facts are fixed from the card before optimization (a symbolic batch measured ~2x
//! slower), the model is optimized once, and one `SimpleState` is reused across steps so no
//! per-step planning or allocation of the plan happens.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::floats::FloatPrecisionTranslator;
use tract_onnx::tract_core::model::translator::Translate;
use tract_onnx::tract_hir::infer::Factoid;

mod group_norm;

use crate::card::ModelCard;
use crate::error::{Error, Result};
use crate::sampler::{Denoiser, Prediction};

/// The float type tract computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// Half precision for the convolutions, matrix products and activations; the norms and
    /// the attention softmax stay in f32, where f16's range and 11-bit mantissa would cost
    /// the most. Fast only on cores with fp16 arithmetic (Cortex-A76 / Pi 5, A78AE / Orin);
    /// elsewhere tract emulates it.
    F16,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            _ => Err(Error::Invalid(format!(
                "unknown precision {s:?}: use f32, or f16 on boards with fp16 arithmetic (Pi 5, Orin)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

/// Whether tract computes f16 natively on this CPU (else its f16 is a slow emulation). This
/// is tract's own detection (the `asimdhp` flag of /proc/cpuinfo on Linux), so it says which
/// kernels will run. Under qemu-user /proc/cpuinfo is the host's: `TRACT_CPU_AARCH64_KIND=a75`
/// (an ARMv8.2 core, as the Pi 5's A76) makes tract use its fp16 kernels there.
pub fn cpu_has_fp16() -> bool {
    tract_linalg::has_fp16()
}

/// Nodes kept in f32 under [`Precision::F16`]:
/// - GroupNorm's mean and variance over 128-1024 values and the softmax's exponentials. The
///   recipe's exporter names them `*group_norm*` and `*softmax*`; tract keeps the ONNX name as
///   the prefix of the nodes it expands them into.
/// - The timestep embedding, from `t` up to its first matrix product: sin(t * f) for t up to
///   999 needs more than f16's 11 bits (its spacing is 0.5 there).
fn f32_nodes(model: &TypedModel, t_input: &str) -> TractResult<HashSet<usize>> {
    let mut keep: HashSet<usize> = model
        .nodes()
        .iter()
        .filter(|n| {
            let name = n.name.to_ascii_lowercase();
            name.contains("norm") || name.contains("softmax")
        })
        .map(|n| n.id)
        .collect();
    let is_product = |n: &TypedNode| {
        let op = n.op.name();
        op.contains("EinSum") || op.contains("MatMul") || op.contains("Conv")
    };
    let mut todo: Vec<usize> = model
        .input_outlets()?
        .iter()
        .filter(|o| model.node(o.node).name == t_input)
        .map(|o| o.node)
        .collect();
    while let Some(id) = todo.pop() {
        for succ in model
            .node(id)
            .outputs
            .iter()
            .flat_map(|o| o.successors.iter())
        {
            if !is_product(model.node(succ.node)) && keep.insert(succ.node) {
                todo.push(succ.node);
            }
        }
    }
    Ok(keep)
}

pub struct TractDenoiser {
    state: TypedSimpleState,
    /// The optimized graph (packed weights included) that `state` runs: shared by every
    /// denoiser [`SharedPlan::spawn`] makes from it.
    plan: Arc<TypedRunnableModel>,
    image_shape: [usize; 4],
    /// The input image's float type in the optimized graph (f16 under [`Precision::F16`]).
    x_type: DatumType,
    /// The timestep's type: int64 or a float, as the card says (f16 under f16).
    t_type: DatumType,
    /// A themed network's theme count and its theme input's float type.
    themes: Option<(usize, DatumType)>,
    prediction: Prediction,
    pub load_time: Duration,
    pub optimize_time: Duration,
    pub node_count: usize,
}

/// A loaded, optimized graph that any thread can start a [`TractDenoiser`] from: tract's plan is
/// immutable and shared, each denoiser owns only its run state (activations, scratch).
#[derive(Clone)]
pub struct SharedPlan {
    plan: Arc<TypedRunnableModel>,
    image_shape: [usize; 4],
    x_type: DatumType,
    t_type: DatumType,
    themes: Option<(usize, DatumType)>,
    prediction: Prediction,
    node_count: usize,
}

impl SharedPlan {
    /// A denoiser of its own (no load or optimization: those times are zero).
    pub fn spawn(&self) -> Result<TractDenoiser> {
        let state = self
            .plan
            .spawn()
            .map_err(|e| model_err("the shared plan", e))?;
        Ok(TractDenoiser {
            state,
            plan: self.plan.clone(),
            image_shape: self.image_shape,
            x_type: self.x_type,
            t_type: self.t_type,
            themes: self.themes,
            prediction: self.prediction,
            load_time: Duration::ZERO,
            optimize_time: Duration::ZERO,
            node_count: self.node_count,
        })
    }
}

/// One operator type's share of a step, from [`TractDenoiser::profile`].
#[derive(Debug, Clone)]
pub struct OpTime {
    pub op: String,
    /// Nodes of this type in the optimized graph.
    pub nodes: usize,
    /// Time in them per step (mean over the profiled runs).
    pub per_step: Duration,
}

/// Facts about a loaded graph, for `petal info`.
#[derive(Debug, Clone)]
pub struct GraphSummary {
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
    pub op_counts: Vec<(String, usize)>,
    pub node_count: usize,
}

/// Runs `f` with tract's matmuls on `threads` threads (1: tract's single-thread default).
pub fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    if threads <= 1 {
        return f();
    }
    let pool = tract_linalg::multithread::Executor::multithread(threads);
    tract_linalg::multithread::multithread_tract_scope(pool, f)
}

fn model_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Model {
        what: what.to_string(),
        msg: e.to_string(),
    }
}

thread_local! {
    /// Set while this thread runs a [`guarded`] stage: its panics are reported as errors.
    static IN_GUARDED_STAGE: Cell<bool> = const { Cell::new(false) };
}

/// Runs one stage of tract's loading. tract panics on some malformed graphs (an unwrap in its
/// ONNX reader, found by fuzz/onnx_bytes); a broken model file must be an error that names it,
/// not a crash. Nothing of a failed load is kept, so no state a panic interrupted is reused.
fn guarded<T>(what: &str, stage: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    static QUIET_HOOK: Once = Once::new();
    // The panic hook is process-wide, so it is wrapped once and told per thread whether the
    // panic will be caught: other threads' panics (and every panic outside these stages) are
    // reported as before.
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_GUARDED_STAGE.with(Cell::get) {
                previous(info);
            }
        }));
    });
    IN_GUARDED_STAGE.with(|g| g.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_GUARDED_STAGE.with(|g| g.set(false));
    result.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(model_err(
            what,
            format!("tract failed while {stage} ({why}): the file is not a model petal can run; re-export it with the recipe"),
        ))
    })
}

/// Parses the ONNX bytes and checks them against the card: input/output names and shapes.
fn load_inference(bytes: &[u8], card: &ModelCard, what: &str) -> Result<InferenceModel> {
    guarded(what, "reading the graph", || {
        load_inference_unguarded(bytes, card, what)
    })
}

fn load_inference_unguarded(bytes: &[u8], card: &ModelCard, what: &str) -> Result<InferenceModel> {
    let onnx = group_norm::onnx().with_ignore_value_info(true);
    let mut model = onnx
        .model_for_read(&mut &bytes[..])
        .map_err(|e| model_err(what, format!("not a loadable ONNX file: {e}")))?;
    let input_names: Vec<String> = model
        .input_outlets()
        .map_err(|e| model_err(what, e))?
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    let mut want = vec![&card.inputs.x.name, &card.inputs.t.name];
    want.extend(card.inputs.theme.as_ref().map(|theme| &theme.name));
    if input_names.len() != want.len() || !want.iter().all(|w| input_names.contains(w)) {
        return Err(model_err(
            what,
            format!(
                "the card names inputs {:?} but the ONNX graph has inputs {:?}",
                want, input_names
            ),
        ));
    }
    let t_dt = if card.inputs.t.dtype == "int64" {
        i64::datum_type()
    } else {
        f32::datum_type()
    };
    for (ix, name) in input_names.iter().enumerate() {
        let (dt, shape) = if name == &card.inputs.x.name {
            (f32::datum_type(), card.inputs.x.shape.clone())
        } else if name == &card.inputs.t.name {
            (t_dt, card.inputs.t.shape.clone())
        } else {
            (f32::datum_type(), vec![1])
        };
        let declared = model
            .input_fact(ix)
            .map_err(|e| model_err(what, e))?
            .clone();
        if !declared.shape.is_open() {
            let decl: Vec<Option<i64>> = declared
                .shape
                .dims()
                .map(|d| d.concretize().and_then(|t| t.to_i64().ok()))
                .collect();
            let disagrees = decl.len() != shape.len()
                || decl
                    .iter()
                    .zip(&shape)
                    .any(|(d, s)| d.is_some_and(|d| d != *s as i64));
            if disagrees {
                let decl: Vec<String> = decl
                    .iter()
                    .map(|d| d.map_or("?".into(), |d| d.to_string()))
                    .collect();
                return Err(model_err(
                    what,
                    format!(
                        "input {name:?}: the card says shape {shape:?} but the ONNX graph declares [{}]",
                        decl.join(", ")
                    ),
                ));
            }
        }
        model
            .set_input_fact(ix, InferenceFact::dt_shape(dt, shape))
            .map_err(|e| model_err(what, e))?;
    }
    Ok(model)
}

impl TractDenoiser {
    /// Loads, checks and optimizes a model. `what` names it in errors ("emoji32 (int8w)").
    pub fn new(bytes: &[u8], card: &ModelCard, what: &str) -> Result<Self> {
        Self::with_precision(bytes, card, what, Precision::F32)
    }

    /// [`TractDenoiser::new`], computing in `precision`. Inputs and outputs stay f32.
    pub fn with_precision(
        bytes: &[u8],
        card: &ModelCard,
        what: &str,
        precision: Precision,
    ) -> Result<Self> {
        let t0 = Instant::now();
        let model = load_inference(bytes, card, what)?;
        let mut typed = into_typed(model, what)?;
        let load_time = t0.elapsed();
        check_output(&typed, card, what)?;
        if precision == Precision::F16 {
            typed = guarded(what, "converting the graph to f16", || {
                let fail = |e: TractError| model_err(what, format!("f16 conversion failed: {e:#}"));
                let keep = f32_nodes(&typed, &card.inputs.t.name).map_err(fail)?;
                FloatPrecisionTranslator::with_filter(
                    f32::datum_type(),
                    f16::datum_type(),
                    move |n| !keep.contains(&n.id),
                )
                .translate_model(&typed)
                .map_err(fail)
            })?;
        }
        // The graph's inputs are x, t, then a themed network's theme (the recipe's order,
        // checked against the card on load).
        let input_type = |ix| -> Result<DatumType> {
            Ok(typed
                .input_fact(ix)
                .map_err(|e| model_err(what, e))?
                .datum_type)
        };
        let (x_type, t_type) = (input_type(0)?, input_type(1)?);
        let themes = match card.inputs.theme {
            Some(_) => Some((card.themes.len(), input_type(2)?)),
            None => None,
        };
        let t1 = Instant::now();
        let (state, plan, node_count) = guarded(what, "optimizing the graph", || {
            let optimized = typed
                .into_optimized()
                .map_err(|e| model_err(what, format!("optimization failed: {e:#}")))?;
            let node_count = optimized.nodes().len();
            let plan: Arc<TypedRunnableModel> =
                optimized.into_runnable().map_err(|e| model_err(what, e))?;
            let state = plan.spawn().map_err(|e| model_err(what, e))?;
            Ok((state, plan, node_count))
        })?;
        let optimize_time = t1.elapsed();
        let s = &card.inputs.x.shape;
        Ok(TractDenoiser {
            state,
            plan,
            image_shape: [s[0], s[1], s[2], s[3]],
            x_type,
            t_type,
            themes,
            prediction: card.prediction,
            load_time,
            optimize_time,
            node_count,
        })
    }

    /// The loaded graph, to make more denoisers from without loading it again: one per thread
    /// for pictures painted in parallel, sharing the packed weights.
    pub fn share(&self) -> SharedPlan {
        SharedPlan {
            plan: self.plan.clone(),
            image_shape: self.image_shape,
            x_type: self.x_type,
            t_type: self.t_type,
            themes: self.themes,
            prediction: self.prediction,
            node_count: self.node_count,
        }
    }

    /// `theme`: a themed network's theme index (`None`: no theme); unthemed networks ignore it.
    fn inputs(&self, x: &[f32], t: usize, theme: Option<usize>) -> TractResult<TVec<TValue>> {
        let x = Tensor::from_shape(&self.image_shape, x)?
            .cast_to_dt(self.x_type)?
            .into_owned();
        // Timesteps are integers below 2^11, exact in every type they may be given as.
        let t = tensor1(&[t as i64]).cast_to_dt(self.t_type)?.into_owned();
        // The input order of the ONNX graph is fixed by the recipe: x, t, then the theme.
        let mut inputs = tvec![x.into_tvalue(), t.into_tvalue()];
        if let Some((count, theme_type)) = self.themes {
            // The index `count` means no theme; small integers are exact in f16 too.
            let index = theme.unwrap_or(count) as f32;
            inputs.push(
                tensor1(&[index])
                    .cast_to_dt(theme_type)?
                    .into_owned()
                    .into_tvalue(),
            );
        }
        Ok(inputs)
    }

    fn run(&mut self, x: &[f32], t: usize, theme: Option<usize>) -> TractResult<Vec<f32>> {
        let inputs = self.inputs(x, t, theme)?;
        let out = self.state.run(inputs)?;
        Ok(out[0]
            .cast_to::<f32>()?
            .to_plain_array_view::<f32>()?
            .iter()
            .copied()
            .collect())
    }

    /// Time spent per operator type over `runs` evaluations of one step (after one untimed
    /// run), slowest first: where a step's time goes, for `petal bench --profile`.
    pub fn profile(&mut self, x: &[f32], t: usize, runs: usize) -> Result<Vec<OpTime>> {
        let fail = |e: TractError| Error::Model {
            what: "profiling".into(),
            msg: format!("{e:#}"),
        };
        let mut per_op = std::collections::BTreeMap::<String, (Duration, usize)>::new();
        for run in 0..=runs {
            let inputs = self.inputs(x, t, None).map_err(fail)?;
            let mut seen = Vec::new();
            self.state
                .run_plan_with_eval(inputs, |ctx, state, node, input| {
                    let t0 = Instant::now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, state, node, input);
                    seen.push((node.op().name().to_string(), t0.elapsed()));
                    out
                })
                .map_err(fail)?;
            if run == 0 {
                continue;
            }
            for (name, took) in seen {
                let entry = per_op.entry(name).or_default();
                entry.0 += took;
                entry.1 += 1;
            }
        }
        let runs = runs.max(1) as u32;
        let mut rows: Vec<OpTime> = per_op
            .into_iter()
            .map(|(op, (total, evals))| OpTime {
                op,
                nodes: evals / runs as usize,
                per_step: total / runs,
            })
            .collect();
        rows.sort_by(|a, b| b.per_step.cmp(&a.per_step).then(a.op.cmp(&b.op)));
        Ok(rows)
    }
}

/// Types the graph with the card's input facts (tract's analysis; guarded like the load).
fn into_typed(model: InferenceModel, what: &str) -> Result<TypedModel> {
    guarded(what, "typing the graph", || {
        model
            .into_typed()
            .map_err(|e| model_err(what, format!("does not agree with its card: {e:#}")))
    })
}

fn check_output(typed: &TypedModel, card: &ModelCard, what: &str) -> Result<()> {
    let outlets = typed.output_outlets().map_err(|e| model_err(what, e))?;
    if outlets.len() != 1 {
        return Err(model_err(
            what,
            format!("has {} outputs; the card expects one", outlets.len()),
        ));
    }
    let fact = typed
        .outlet_fact(outlets[0])
        .map_err(|e| model_err(what, e))?;
    let dims: Option<Vec<usize>> = fact.shape.as_concrete().map(|s| s.to_vec());
    if dims.as_deref() != Some(&card.output.shape[..]) || fact.datum_type != f32::datum_type() {
        return Err(model_err(
            what,
            format!(
                "output is {:?} {:?} but the card says float32 {:?}",
                fact.datum_type, fact.shape, card.output.shape
            ),
        ));
    }
    Ok(())
}

impl Denoiser for TractDenoiser {
    fn predict(&mut self, x: &[f32], t: usize) -> Result<Vec<f32>> {
        self.run(x, t, None).map_err(inference_err)
    }

    fn prediction(&self) -> Prediction {
        self.prediction
    }

    fn themes(&self) -> usize {
        self.themes.map_or(0, |(count, _)| count)
    }

    fn predict_theme(&mut self, x: &[f32], t: usize, theme: usize) -> Result<Vec<f32>> {
        let count = self.themes();
        if theme > count {
            return Err(Error::Invalid(format!(
                "theme {theme} asked of a network with {count} themes"
            )));
        }
        // Index `count` is no theme: the same as `predict` (and all an unthemed network has).
        let theme = (theme < count).then_some(theme);
        self.run(x, t, theme).map_err(inference_err)
    }
}

fn inference_err(e: TractError) -> Error {
    Error::Model {
        what: "inference".into(),
        msg: format!("{e:#}"),
    }
}

/// Op counts and I/O facts of the graph as tract sees it before optimization.
pub fn summarize(bytes: &[u8], card: &ModelCard, what: &str) -> Result<GraphSummary> {
    let typed = into_typed(load_inference(bytes, card, what)?, what)?;
    let describe = |outlets: &[OutletId]| -> Result<Vec<(String, String)>> {
        outlets
            .iter()
            .map(|o| {
                let fact = typed.outlet_fact(*o).map_err(|e| model_err(what, e))?;
                Ok((typed.node(o.node).name.clone(), format!("{fact:?}")))
            })
            .collect()
    };
    let inputs = describe(typed.input_outlets().map_err(|e| model_err(what, e))?)?;
    let outputs = describe(typed.output_outlets().map_err(|e| model_err(what, e))?)?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for node in typed.nodes() {
        *counts.entry(node.op.name().to_string()).or_default() += 1;
    }
    let mut op_counts: Vec<_> = counts.into_iter().collect();
    op_counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(GraphSummary {
        inputs,
        outputs,
        op_counts,
        node_count: typed.nodes().len(),
    })
}
