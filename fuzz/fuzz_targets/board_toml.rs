//! Board profile TOML (`--board FILE`).
//! The body is `petal_fuzz::checks::board_toml`, which tests/hostile_input.rs also runs on stable.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petal_fuzz::checks::board_toml(data));
