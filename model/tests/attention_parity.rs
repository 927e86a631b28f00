//! Attention probabilities against `transformers`' `output_attentions=True`, every layer and head,
//! for GPT-2 (causal), BERT and DistilBERT (full, `[CLS]` … `[SEP]`).

mod common;

use common::*;
use duet_model::device::block_on;
use duet_model::pipelines::attention::attention;

#[test]
fn attentions_match_hf_for_every_architecture() {
    let mut checked = 0;
    for name in GPT2.iter().chain(SEQ_CLS).chain(TOK_CLS).chain(MLM) {
        let model = load(name);
        let records = expected(name)["attentions"].as_array().unwrap().clone();
        assert!(!records.is_empty(), "{name}: the fixture has attentions");
        for r in &records {
            let text = r["text"].as_str().unwrap();
            let ours = block_on(attention(&model, text)).unwrap();
            assert_eq!(ours.ids, u32s(&r["input_ids"]), "{name}: ids of {text:?}");
            assert_eq!(
                ours.tokens.len(),
                ours.ids.len(),
                "{name}: one token per id"
            );
            let theirs = r["attentions"].as_array().unwrap();
            assert_eq!(ours.attentions.len(), theirs.len(), "{name}: layers");
            for (l, (ol, tl)) in ours.attentions.iter().zip(theirs).enumerate() {
                let tl = tl.as_array().unwrap();
                assert_eq!(ol.len(), tl.len(), "{name}: heads of layer {l}");
                for (h, (oh, th)) in ol.iter().zip(tl).enumerate() {
                    let t = ours.ids.len();
                    assert_eq!(oh.len(), t, "{name}: queries");
                    assert!(oh.iter().all(|row| row.len() == t), "{name}: keys");
                    let flat: Vec<f32> = oh.concat();
                    assert_close(
                        &flat,
                        &f32s(th),
                        1e-5,
                        &format!("{name} {text:?} L{l} H{h}"),
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} texts checked");
}

#[test]
fn gpt2_attends_only_to_the_past() {
    let model = load("gpt2-tiny");
    let map = block_on(attention(&model, "Berlin, 1903")).unwrap();
    assert!(map.ids.len() > 3);
    for head in map.attentions.iter().flatten() {
        for (q, row) in head.iter().enumerate() {
            assert!(row[q + 1..].iter().all(|&p| p == 0.0), "query {q}: {row:?}");
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "query {q} sums to {sum}");
        }
    }
}

#[test]
fn attention_rejects_an_empty_text() {
    let model = load("bert-seqcls");
    let err = block_on(attention(&model, "  ")).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}
