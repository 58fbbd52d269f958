//! Display spec strings (`--display`, `display = ...`).
//! The body is `petal_fuzz::checks::display_spec`, which tests/hostile_input.rs also runs on stable.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petal_fuzz::checks::display_spec(data));
