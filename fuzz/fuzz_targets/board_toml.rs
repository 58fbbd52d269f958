//! Board profile TOML (`--board FILE`): parsed and checked.
#![no_main]
use libfuzzer_sys::fuzz_target;
use petal::board::Board;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Board::parse(text, "fuzz/board.toml");
});
