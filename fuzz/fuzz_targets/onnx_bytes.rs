//! ONNX bytes, up to tract's type analysis.
//! The body is `petal_fuzz::checks::onnx_bytes`, which tests/hostile_input.rs also runs on stable.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petal_fuzz::checks::onnx_bytes(data));
