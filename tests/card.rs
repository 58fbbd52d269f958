//! Model card versions: version 2 (v-prediction) loads, version-1 cards still load as epsilon
//! models, and cards that claim what their version cannot say are refused with a clear error.

use std::path::Path;

use petal::card::ModelCard;
use petal::model::Model;
use petal::sampler::Prediction;
use serde_json::{json, Value};

const V1_CARD: &str = include_str!("fixtures/card-v1-emoji32.json");

fn parse(card: &Value) -> petal::Result<ModelCard> {
    ModelCard::from_json(&card.to_string(), Path::new("test/card.json"))
}

fn v1() -> Value {
    serde_json::from_str(V1_CARD).unwrap()
}

#[test]
fn version_1_cards_still_load_as_epsilon_models() {
    let card = parse(&v1()).unwrap();
    assert_eq!(card.schema_version, 1);
    assert_eq!(card.prediction, Prediction::Epsilon);
    assert_eq!(card.output.name, "eps");
}

#[test]
fn version_2_cards_say_what_the_network_predicts() {
    for (name, want) in [("v", Prediction::V), ("epsilon", Prediction::Epsilon)] {
        let mut c = v1();
        c["schema_version"] = json!(2);
        c["prediction"] = json!(name);
        assert_eq!(parse(&c).unwrap().prediction, want, "{name}");
    }
}

#[test]
fn a_version_1_card_cannot_claim_v_prediction() {
    let mut c = v1();
    c["prediction"] = json!("v");
    let err = parse(&c).unwrap_err().to_string();
    assert!(
        err.contains("test/card.json") && err.contains("schema_version 2"),
        "{err}"
    );
}

#[test]
fn unknown_versions_and_predictions_are_refused_by_name() {
    let mut c = v1();
    c["schema_version"] = json!(4);
    let err = parse(&c).unwrap_err().to_string();
    assert!(
        err.contains("schema_version 4") && err.contains("1 to 3"),
        "{err}"
    );

    let mut c = v1();
    c["schema_version"] = json!(2);
    c["prediction"] = json!("x0");
    let err = parse(&c).unwrap_err().to_string();
    assert!(err.contains("x0") && err.contains("epsilon"), "{err}");
}

/// The shipped model's card is the version the recipe writes for it (3 for a themed network,
/// 2 otherwise, so older petals still read unthemed cards) and names its output after its
/// prediction.
#[test]
fn the_shipped_card_is_current() {
    let model = Model::embedded().unwrap();
    let card = &model.card;
    let want = if card.themes.is_empty() {
        2
    } else {
        petal::card::SCHEMA_VERSION
    };
    assert_eq!(card.schema_version, want);
    let want_output = match card.prediction {
        Prediction::Epsilon => "eps",
        Prediction::V => "v",
    };
    assert_eq!(card.output.name, want_output);
}
