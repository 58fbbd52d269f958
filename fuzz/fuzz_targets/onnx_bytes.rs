//! ONNX bytes, as far as petal reads them before running anything: the protobuf, the graph's
//! inputs and outputs checked against the embedded model's card, and tract's type analysis.
//!
//! petal turns panics inside tract's loading into errors (denoiser.rs, `guarded`, which also
//! keeps libFuzzer's aborting panic hook out of those stages); any other panic is a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = petal::model::Model::embedded() {
        let _ = petal::denoiser::summarize(data, &model.card, "fuzz.onnx");
    }
});
