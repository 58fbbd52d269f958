//! The model card JSON (`ModelCard::from_json` and what petal derives from a card).
//! The body is `petal_fuzz::checks::card_json`, which tests/hostile_input.rs also runs on stable.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| petal_fuzz::checks::card_json(data));
