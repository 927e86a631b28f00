//! The embedded default models in `public/models/`: they load (adapters onto the shared f16
//! base), the CLI uses them when `--model` is left out, and — with `DUET_EVAL_DEFAULTS=1`, as it
//! takes minutes — they reach their reported held-out metrics.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::manifest_dir;
use duet_model::defaults;
use duet_model::device::{block_on, cpu};
use duet_model::Model;
use serde_json::Value;

fn models() -> PathBuf {
    manifest_dir().join("../public/models")
}

fn cli(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_default_has_a_model_card_and_loads() {
    for name in [
        defaults::ENCODER,
        defaults::GPT2,
        defaults::SENTIMENT,
        defaults::NER,
        defaults::FILL_MASK,
    ] {
        let dir = models().join(name);
        let card = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
        for section in ["Data", "Recipe", "Licence"] {
            assert!(
                card.contains(section) || name == defaults::ENCODER,
                "{name}: card lacks {section}"
            );
        }
        assert!(card.contains("Licence"), "{name}: licence");
        Model::from_dir(&dir, &cpu()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn cli_uses_the_defaults_without_model() {
    let v = cli(&[
        "classify",
        "--text",
        "A wonderful, moving film.",
        "--text",
        "A dull, lifeless mess.",
    ]);
    assert_eq!(v[0][0]["label"], "positive");
    assert_eq!(v[1][0]["label"], "negative");

    let v = cli(&[
        "ner",
        "--text",
        "Angela Merkel met Emmanuel Macron in Paris on Monday.",
    ]);
    let groups: Vec<&str> = v[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entity_group"].as_str().unwrap())
        .collect();
    assert!(groups.contains(&"PER") && groups.contains(&"LOC"), "{v}");

    let v = cli(&[
        "generate",
        "--prompt",
        "ROMEO:",
        "--max-new-tokens",
        "8",
        "--seed",
        "1",
    ]);
    assert_eq!(v[0]["new_token_ids"].as_array().unwrap().len(), 8);

    let v = cli(&[
        "fill-mask",
        "--text",
        "The talks in [MASK] ended on Monday.",
    ]);
    assert_eq!(v[0].as_array().unwrap().len(), 5, "{v}");

    let v = cli(&["embed", "--text", "A man is playing a guitar."]);
    assert_eq!(v[0].as_array().unwrap().len(), 384);
}

#[test]
fn f16_base_embeds_like_the_original() {
    let original = manifest_dir().join("../../shared/models/all-MiniLM-L6-v2");
    let a = Model::from_dir(&original, &cpu()).unwrap();
    let b = Model::from_dir(models().join(defaults::ENCODER), &cpu()).unwrap();
    let texts = vec![
        "A man is playing a guitar.".to_string(),
        "The weather is lovely today.".to_string(),
    ];
    let ea = block_on(duet_model::pipelines::embed::embed(&a, &texts)).unwrap();
    let eb = block_on(duet_model::pipelines::embed::embed(&b, &texts)).unwrap();
    for (x, y) in ea.iter().zip(&eb) {
        let cos: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        assert!(cos > 0.9999, "cosine {cos}");
    }
}

#[test]
fn defaults_reach_their_reported_metrics() {
    if std::env::var_os("DUET_EVAL_DEFAULTS").is_none() {
        eprintln!("set DUET_EVAL_DEFAULTS=1 to measure the defaults (minutes on CPU)");
        return;
    }
    let shared = manifest_dir().join("../../shared");
    let m = block_on(defaults::evaluate(&models(), &shared, 64)).unwrap();
    assert!(
        m[defaults::SENTIMENT]["accuracy"].as_f64().unwrap() >= 0.85,
        "{m}"
    );
    // The tagger's card: dev entity F1 0.914 (issue 11's bar: 0.91).
    assert!(m[defaults::NER]["f1"].as_f64().unwrap() >= 0.91, "{m}");
    // The GPT's card: held-out perplexity 67.3 on 256-token blocks (issue 11's bar, 60, is not
    // reached yet).
    assert!(
        m[defaults::GPT2]["perplexity"].as_f64().unwrap() < 68.3,
        "{m}"
    );
    // The fill-mask default's card: top-5 0.265 of hidden whole words of the CoNLL dev sentences
    // (issue 11's bar, 0.45, is not reached yet).
    assert!(
        m[defaults::FILL_MASK]["top5_accuracy"].as_f64().unwrap() >= 0.25,
        "{m}"
    );
}
