//! BERT and DistilBERT against `transformers`: padded-batch logits, and the text-classification,
//! token-classification and fill-mask pipelines' outputs.

mod common;

use common::*;
use duet_model::device::block_on;
use duet_model::generation::processors::softmax;
use duet_model::network::{read_f32, EncoderBatch};
use duet_model::pipelines::ner::{ner, Aggregation, NerOptions};
use duet_model::pipelines::ner_tokens::ner_tokens;
use duet_model::pipelines::{classify, fill_mask};
use serde_json::Value;

fn texts(exp: &Value) -> Vec<String> {
    exp["encodings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

/// HF pipelines sometimes wrap a single result in one more list.
fn unwrap_single(v: &Value) -> &Value {
    match v.as_array() {
        Some(a) if a.len() == 1 && a[0].is_array() => &a[0],
        _ => v,
    }
}

/// The mask id is the one HF's tokenizer gives `[MASK]` inside a sentence (the fixtures' masked
/// texts), and a tokenizer without a mask token (GPT-2's) is an error, not a panic.
#[test]
fn mask_token_is_hfs() {
    for name in MLM {
        let model = load(name);
        let (token, id) = model.tokenizer.mask().unwrap();
        let masked = expected(name)["encodings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["text"].as_str().unwrap().contains(token))
            .cloned()
            .unwrap_or_else(|| panic!("{name}: a fixture text with {token}"));
        assert_eq!(
            u32s(&masked["input_ids"])
                .iter()
                .filter(|&&i| i == id)
                .count(),
            1,
            "{name}: {token} = {id} in {}",
            masked["text"]
        );
    }
    let err = load("gpt2-tiny").tokenizer.mask().unwrap_err();
    assert!(err.to_string().contains("no mask token"), "{err}");
}

#[test]
fn tokenization_matches_hf() {
    for name in SEQ_CLS.iter().chain(TOK_CLS).chain(MLM) {
        let model = load(name);
        for e in expected(name)["encodings"].as_array().unwrap() {
            let enc = model
                .tokenizer
                .encode(e["text"].as_str().unwrap(), true)
                .unwrap();
            assert_eq!(
                enc.ids,
                u32s(&e["input_ids"]),
                "{name}: ids of {}",
                e["text"]
            );
            assert_eq!(enc.type_ids, u32s(&e["token_type_ids"]), "{name}: types");
            let offsets: Vec<(usize, usize)> = e["offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_u64().unwrap() as usize,
                        p[1].as_u64().unwrap() as usize,
                    )
                })
                .collect();
            assert_eq!(enc.offsets, offsets, "{name}: offsets");
        }
    }
}

#[test]
fn padded_batch_logits_match_unpadded_hf() {
    for name in SEQ_CLS.iter().chain(TOK_CLS).chain(MLM) {
        let model = load(name);
        let exp = expected(name);
        let encs: Vec<_> = texts(&exp)
            .iter()
            .map(|t| model.tokenizer.encode(t, true).unwrap())
            .collect();
        let batch = EncoderBatch::new(&encs, model.tokenizer.pad_token_id, &model.device).unwrap();
        let cases = exp["encodings"].as_array().unwrap();
        if SEQ_CLS.contains(name) {
            let logits =
                block_on(read_f32(model.network.sequence_logits(&batch).unwrap())).unwrap();
            let n = logits.len() / cases.len();
            for (i, c) in cases.iter().enumerate() {
                assert_close(
                    &logits[i * n..(i + 1) * n],
                    &f32s(&c["logits"]),
                    1e-4,
                    &format!("{name} #{i}"),
                );
            }
        } else {
            let logits = model.network.token_logits(&batch).unwrap();
            let [_, t, v] = logits.dims();
            let flat = block_on(read_f32(logits)).unwrap();
            for (i, c) in cases.iter().enumerate() {
                let len = encs[i].len();
                let ours = &flat[i * t * v..i * t * v + len * v];
                assert_close(ours, &f32s(&c["logits"]), 1e-4, &format!("{name} #{i}"));
            }
        }
    }
}

#[test]
fn text_classification_pipeline_matches() {
    for name in SEQ_CLS {
        let model = load(name);
        let exp = expected(name);
        let out = block_on(classify::classify(&model, &texts(&exp))).unwrap();
        for (ours, theirs) in out.iter().zip(exp["pipeline"].as_array().unwrap()) {
            let theirs = unwrap_single(theirs).as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{name}: every label");
            for (o, t) in ours.iter().zip(theirs) {
                assert_eq!(o.label, t["label"].as_str().unwrap(), "{name}: order");
                assert!(
                    (o.score - t["score"].as_f64().unwrap() as f32).abs() <= 1e-5,
                    "{name}: {o:?} vs {t}"
                );
            }
        }
    }
}

fn assert_entities(ours: &[duet_model::pipelines::ner::Entity], theirs: &Value, what: &str) {
    let theirs = theirs.as_array().unwrap();
    let fmt = |v: &Value| serde_json::to_string(v).unwrap();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: count\nours: {}\nHF:   {}",
        serde_json::to_string(ours).unwrap(),
        fmt(&Value::Array(theirs.clone()))
    );
    for (o, t) in ours.iter().zip(theirs) {
        let key = if t.get("entity_group").is_some() {
            "entity_group"
        } else {
            "entity"
        };
        let label = o.entity_group.as_ref().or(o.entity.as_ref()).unwrap();
        assert_eq!(
            label,
            t[key].as_str().unwrap(),
            "{what}: label of {}",
            fmt(t)
        );
        assert_eq!(o.word, t["word"].as_str().unwrap(), "{what}: word");
        assert_eq!(
            o.start as u64,
            t["start"].as_u64().unwrap(),
            "{what}: start of {}",
            fmt(t)
        );
        assert_eq!(
            o.end as u64,
            t["end"].as_u64().unwrap(),
            "{what}: end of {}",
            fmt(t)
        );
        if let Some(i) = t.get("index") {
            assert_eq!(o.index.map(|x| x as u64), i.as_u64(), "{what}: index");
        }
        assert!(
            (o.score - t["score"].as_f64().unwrap() as f32).abs() <= 1e-5,
            "{what}: score {}",
            fmt(t)
        );
    }
}

const STRATEGIES: &[(&str, Aggregation)] = &[
    ("none", Aggregation::None),
    ("simple", Aggregation::Simple),
    ("first", Aggregation::First),
    ("average", Aggregation::Average),
    ("max", Aggregation::Max),
];

#[test]
fn token_classification_pipeline_matches_every_strategy() {
    for name in TOK_CLS {
        let model = load(name);
        let exp = expected(name);
        let texts = texts(&exp);
        let mut seen_entities = 0;
        for (key, strategy) in STRATEGIES {
            let opts = NerOptions {
                aggregation: *strategy,
                stride: None,
            };
            let out = block_on(ner(&model, &texts, opts)).unwrap();
            for (i, (ours, case)) in out
                .iter()
                .zip(exp["pipeline"].as_array().unwrap())
                .enumerate()
            {
                seen_entities += ours.len();
                assert_entities(ours, &case[key], &format!("{name} text {i} {key}"));
            }
        }
        assert!(
            seen_entities > 0,
            "{name}: the fixture must produce entities"
        );
    }
}

#[test]
fn per_token_scores_and_merges_match_the_pipeline_for_every_strategy() {
    for name in TOK_CLS {
        let model = load(name);
        let exp = expected(name);
        let cases = exp["encodings"].as_array().unwrap();
        for (i, case) in cases.iter().enumerate() {
            let text = case["text"].as_str().unwrap();
            let what = format!("{name} text {i}");
            let out = block_on(ner_tokens(&model, text)).unwrap();
            let logits = case["logits"].as_array().unwrap();
            assert_eq!(
                out.labels.len(),
                logits[0].as_array().unwrap().len(),
                "{what}"
            );
            assert!(!out.tokens.is_empty(), "{what}");
            for t in &out.tokens {
                // HF's logits of the same position, through softmax.
                let theirs = softmax(&f32s(&logits[t.index]));
                assert_close(
                    &t.scores,
                    &theirs,
                    1e-5,
                    &format!("{what} token {}", t.index),
                );
            }
            assert_eq!(out.merges.len(), STRATEGIES.len());
            for ((key, strategy), merged) in STRATEGIES.iter().zip(&out.merges) {
                let what = format!("{what} {key}");
                assert_eq!(merged.aggregation, strategy.name(), "{what}");
                assert_entities(&merged.entities, &exp["pipeline"][i][key], &what);
                assert_eq!(merged.joined.len(), out.tokens.len(), "{what}");
                for (t, j) in out.tokens.iter().zip(&merged.joined) {
                    if let Some(j) = j {
                        let e = &merged.entities[*j];
                        assert!(
                            e.start <= t.start && t.end <= e.end,
                            "{what}: token {t:?} in {e:?}"
                        );
                    }
                }
                for e in 0..merged.entities.len() {
                    assert!(
                        merged.joined.contains(&Some(e)),
                        "{what}: entity {e} has tokens"
                    );
                }
            }
        }
    }
}

#[test]
fn per_token_view_of_a_long_text_lists_each_token_once_and_merges_as_the_pipeline() {
    let name = "bert-tokcls-legacy";
    let model = load(name);
    let text = expected(name)["long"]["text"].as_str().unwrap().to_string();
    let out = block_on(ner_tokens(&model, &text)).unwrap();
    let whole = model.tokenizer.encode(&text, true).unwrap();
    let specials = whole.special.iter().filter(|&&s| s).count();
    assert_eq!(out.tokens.len(), whole.len() - specials, "every token once");
    assert!(
        out.tokens.windows(2).all(|w| w[0].end <= w[1].start),
        "in text order"
    );
    for ((key, strategy), merged) in STRATEGIES.iter().zip(&out.merges) {
        let opts = NerOptions {
            aggregation: *strategy,
            stride: None,
        };
        let theirs = block_on(ner(&model, std::slice::from_ref(&text), opts)).unwrap();
        assert_eq!(merged.entities, theirs[0], "long {key}");
    }
}

#[test]
fn long_text_is_split_with_overlap_and_entities_come_back_once() {
    let name = "bert-tokcls-legacy";
    let model = load(name);
    let long = &expected(name)["long"];
    let text = long["text"].as_str().unwrap().to_string();
    let stride = long["stride"].as_u64().unwrap() as usize;
    assert!(long["num_tokens"].as_u64().unwrap() as usize > model.config.max_positions());
    for (key, strategy) in STRATEGIES {
        let Some(theirs) = long.get(*key) else {
            continue;
        };
        let opts = NerOptions {
            aggregation: *strategy,
            stride: Some(stride),
        };
        let out = block_on(ner(&model, std::slice::from_ref(&text), opts)).unwrap();
        assert_entities(&out[0], theirs, &format!("long {key}"));
        for e in &out[0] {
            let chars: String = text.chars().skip(e.start).take(e.end - e.start).collect();
            assert!(!chars.is_empty(), "offsets point into the text");
        }
        for w in out[0].windows(2) {
            assert!(w[0].end <= w[1].start, "entities never overlap: {w:?}");
        }
    }
}

#[test]
fn fill_mask_pipeline_matches_top5() {
    for name in MLM {
        let model = load(name);
        let exp = expected(name);
        let out = block_on(fill_mask::fill_mask(&model, &texts(&exp), 5)).unwrap();
        for (ours, theirs) in out.iter().zip(exp["pipeline"].as_array().unwrap()) {
            let theirs = unwrap_single(theirs).as_array().unwrap();
            assert_eq!(ours.len(), 5);
            for (o, t) in ours.iter().zip(theirs) {
                assert_eq!(o.token as u64, t["token"].as_u64().unwrap(), "{name}: {t}");
                assert_eq!(
                    o.token_str,
                    t["token_str"].as_str().unwrap(),
                    "{name}: token_str"
                );
                assert_eq!(
                    o.sequence,
                    t["sequence"].as_str().unwrap(),
                    "{name}: sequence"
                );
                assert!(
                    (o.score - t["score"].as_f64().unwrap() as f32).abs() <= 1e-5,
                    "{name}: score"
                );
            }
        }
    }
}
