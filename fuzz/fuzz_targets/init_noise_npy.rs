//! `--init-noise` .npy files, with and without a required picture count.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for count in [None, Some(1), Some(4)] {
        let _ = petal::noise::npy_from_bytes(data, "fuzz.npy", [3, 32, 32], count);
    }
});
