//! Masked vs next-token against `transformers`: BERT's fills for a masked word are HF's
//! `fill-mask` output for that sentence, and GPT's guesses for a word are HF's next-token
//! distribution at the position before it.

mod common;

use common::*;
use duet_model::device::block_on;
use duet_model::generation::processors::{softmax, top_n};
use duet_model::pipelines::masked_vs_next::{masked_vs_next, words};

#[test]
fn words_are_runs_of_letters_and_digits() {
    let text = "Don't stop, Zürich 1903!";
    let got: Vec<String> = words(text)
        .into_iter()
        .map(|(s, e)| text.chars().skip(s).take(e - s).collect())
        .collect();
    assert_eq!(got, ["Don't", "stop", "Zürich", "1903"]);
    assert!(words(" ?! ").is_empty());
}

#[test]
fn bert_side_is_hf_fill_mask_of_the_masked_sentence() {
    let (gpt, mlm) = (load("gpt2-tiny"), load("bert-mlm-f16"));
    let exp = expected("bert-mlm-f16");
    // The fixture's "The [MASK] is lazy." is this sentence with its second word masked.
    let fixture = &exp["pipeline"][1];
    assert_eq!(exp["encodings"][1]["text"], "The [MASK] is lazy.");
    let got = block_on(masked_vs_next(&gpt, &mlm, "The dog is lazy.", 5)).unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(
        (got[1].word.as_str(), got[1].start, got[1].end),
        ("dog", 4, 7)
    );
    let fills = fixture.as_array().unwrap();
    assert_eq!(got[1].masked.len(), fills.len());
    for (ours, theirs) in got[1].masked.iter().zip(fills) {
        assert_eq!(ours.token, theirs["token_str"].as_str().unwrap());
        assert!((ours.score - theirs["score"].as_f64().unwrap() as f32).abs() < 1e-4);
    }
}

#[test]
fn gpt_side_is_hf_next_token_distribution_from_the_left() {
    let (gpt, mlm) = (load("gpt2-tiny"), load("bert-mlm-f16"));
    let exp = expected("gpt2-tiny");
    let rec = exp["logits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["text"] == "A café")
        .unwrap();
    let ids = u32s(&rec["input_ids"]);
    let logits = f32s(&rec["logits"]);
    let vocab = logits.len() / ids.len();
    let probs = softmax(&logits[..vocab]); // after "A"
    let got = block_on(masked_vs_next(&gpt, &mlm, "A café", 3)).unwrap();
    assert_eq!(got.len(), 2);
    assert!(
        got[0].next.is_empty() && got[0].next_actual.is_none(),
        "nothing left of the first word"
    );
    let want = top_n(&probs, 3);
    assert_eq!(got[1].next.len(), 3);
    for (g, (id, p)) in got[1].next.iter().zip(want) {
        assert_eq!(g.token, gpt.tokenizer.decode(&[id as u32], false).unwrap());
        assert!((g.score - p).abs() < 1e-5, "{} vs {p}", g.score);
    }
    let actual = got[1].next_actual.unwrap();
    assert!((actual - probs[ids[1] as usize]).abs() < 1e-5);
}

#[test]
fn a_model_without_a_mask_token_is_a_clear_error() {
    let gpt = load("gpt2-tiny");
    let err = block_on(masked_vs_next(&gpt, &gpt, "The dog.", 3)).unwrap_err();
    assert!(err.to_string().contains("mask"), "{err}");
}
