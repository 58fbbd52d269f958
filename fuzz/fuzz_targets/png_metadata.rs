//! The PNG that `petal generate --from` reads: its petal text chunk, parsed into settings and
//! checked against the embedded model as a run would be.
#![no_main]
use libfuzzer_sys::fuzz_target;
use petal::generate::GenerateParams;
use petal::picture::{png_text, METADATA_KEY};

fuzz_target!(|data: &[u8]| {
    let Ok(Some(text)) = png_text(std::io::Cursor::new(data), "fuzz.png", METADATA_KEY) else {
        return;
    };
    let Ok(params) = GenerateParams::from_metadata(&text, "fuzz.png") else {
        return;
    };
    if let Ok(model) = petal::model::Model::embedded() {
        let _ = params.validate(&model.card);
    }
});
