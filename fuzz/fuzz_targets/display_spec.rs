//! Display spec strings (`--display`, `display = ...`): parsed in full, for every kind, as
//! `petal frame` does before it opens anything.
#![no_main]
use libfuzzer_sys::fuzz_target;
use petal::display::spec::DisplaySpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = DisplaySpec::parse_any(text);
    let _ = text.parse::<DisplaySpec>();
});
