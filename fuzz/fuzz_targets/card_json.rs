//! The model card JSON: parsed, checked, and everything petal derives from it before a model
//! runs (the schedule, the variants, the tensor sizes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use petal::card::ModelCard;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(card) = ModelCard::from_json(text, std::path::Path::new("fuzz/card.json")) {
        let _ = card.image_len();
        let _ = card.variant("int8w");
        if let Ok(schedule) = card.schedule.schedule() {
            for kind in ["ddim", "dpmpp-2m", "ddpm"] {
                if let Ok(k) = kind.parse() {
                    let config = petal::sampler::SamplerConfig {
                        kind: k,
                        steps: 20,
                        spacing: petal::schedule::Spacing::default(),
                        clip_x0: true,
                    };
                    let _ = config.build(&schedule);
                }
            }
        }
    }
});
