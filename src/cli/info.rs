use anyhow::Context;
use clap::Args;
use petal::denoiser::summarize;
use petal::model::Model;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Model directory, card file or shipped name (default: the embedded model).
    pub model: Option<String>,
    /// Variant whose graph to describe.
    #[arg(long, default_value = petal::model::DEFAULT_VARIANT)]
    pub variant: String,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let model = Model::resolve(args.model.as_deref())?;
    let card = &model.card;
    println!("model     {}", model.origin());
    if !card.description.is_empty() {
        println!("about     {}", card.description);
    }
    println!(
        "image     {}x{} px, {} channels, values {:?}",
        card.resolution, card.resolution, card.channels, card.value_range
    );
    println!("schedule  {}", serde_json::to_string(&card.schedule)?);
    println!("predicts  {}", card.prediction);
    println!(
        "inputs    {} {:?} {}, {} {:?} {} ({})",
        card.inputs.x.name,
        card.inputs.x.shape,
        card.inputs.x.dtype,
        card.inputs.t.name,
        card.inputs.t.shape,
        card.inputs.t.dtype,
        card.inputs.t.units.as_deref().unwrap_or("timestep index")
    );
    if !card.themes.is_empty() {
        println!(
            "themes    {} (--theme NAME, any or none; guidance {} unless --guidance says)",
            card.themes.join(", "),
            card.guidance_scale.unwrap_or(1.0)
        );
    }
    if let Some(p) = card.params {
        println!("params    {p}");
    }
    if let Some(m) = card.macs_per_step {
        println!("MACs      {:.1} M per step", m as f64 / 1e6);
    }
    if let Some(f) = card.fid_l0_floor {
        println!("FID-L0    data floor {f:.2}");
    }
    for (name, v) in &card.variants {
        println!(
            "variant   {name:6} {:24} {:>9} bytes  FID-L0 {}  max|err| vs f32 {}",
            v.file,
            v.bytes.map_or("?".into(), |b| b.to_string()),
            v.fid_l0.map_or("-".into(), |f| format!("{f:.2}")),
            v.max_abs_err_vs_f32
                .map_or("-".into(), |f| format!("{f:.4}"))
        );
    }
    let what = format!("{} ({})", card.name, args.variant);
    let bytes = model.variant_bytes(&args.variant)?;
    let summary = summarize(&bytes, card, &what).with_context(|| format!("reading {what}"))?;
    println!("graph     {} nodes ({})", summary.node_count, args.variant);
    for (name, fact) in summary.inputs {
        println!("  input   {name}: {fact}");
    }
    for (name, fact) in summary.outputs {
        println!("  output  {name}: {fact}");
    }
    let ops: Vec<String> = summary
        .op_counts
        .iter()
        .map(|(op, n)| format!("{op}x{n}"))
        .collect();
    println!("  ops     {}", ops.join(" "));
    Ok(())
}
