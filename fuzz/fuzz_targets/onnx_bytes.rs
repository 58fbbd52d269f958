//! ONNX bytes, as far as petal reads them before running anything: the protobuf, the graph's
//! inputs and outputs checked against the embedded model's card, and tract's type analysis.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = petal::model::Model::embedded() {
        let _ = petal::denoiser::summarize(data, &model.card, "fuzz.onnx");
    }
});
