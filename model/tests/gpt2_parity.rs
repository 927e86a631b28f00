//! GPT-2 against `transformers`: logits, greedy ids with and without the KV cache, and the
//! sampling distribution after each logits processor.

mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use duet_model::device::block_on;
use duet_model::generation::processors::{repetition_penalty, softmax, temperature, top_k, top_p};
use duet_model::generation::{generate, GenerationConfig};
use duet_model::network::read_f32;

#[test]
fn logits_match_transformers() {
    for name in GPT2 {
        let model = load(name);
        let gpt2 = model.network.gpt2().unwrap();
        for case in expected(name)["logits"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let ids = model.tokenizer.encode(text, true).unwrap().ids;
            assert_eq!(ids, u32s(&case["input_ids"]), "{name}: tokens of {text:?}");
            let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
            let input =
                Tensor::<2, Int>::from_data(TensorData::new(v, [1, ids.len()]), &model.device);
            let logits = block_on(read_f32(gpt2.forward(input))).unwrap();
            assert_close(
                &logits,
                &f32s(&case["logits"]),
                1e-4,
                &format!("{name}: {text:?}"),
            );
        }
    }
}

#[test]
fn greedy_ids_match_with_and_without_cache() {
    for name in GPT2 {
        let model = load(name);
        let gpt2 = model.network.gpt2().unwrap();
        for case in expected(name)["greedy"].as_array().unwrap() {
            let prompt = u32s(&case["input_ids"]);
            let want = u32s(&case["new_token_ids"]);
            assert!(want.len() >= 20);
            for use_cache in [true, false] {
                let cfg = GenerationConfig {
                    use_cache,
                    ..GenerationConfig::greedy(want.len())
                };
                let out =
                    block_on(generate(gpt2, &model.tokenizer, &prompt, &cfg, |_| true)).unwrap();
                assert_eq!(out.new_token_ids, want, "{name} cache={use_cache}");
                assert_eq!(
                    out.generated_text,
                    case["generated_text"].as_str().unwrap(),
                    "{name}: text"
                );
            }
        }
    }
}

#[test]
fn sampling_distributions_match_after_each_processor() {
    for name in GPT2 {
        for case in expected(name)["processors"].as_array().unwrap() {
            let s = &case["settings"];
            let ids = u32s(&case["input_ids"]);
            let mut scores = f32s(&case["raw_logits"]);
            let after = &case["after"];
            let check = |scores: &[f32], stage: &str| {
                assert_close(
                    &softmax(scores),
                    &f32s(&after[stage]),
                    1e-5,
                    &format!("{name}: {stage} {s}"),
                );
            };
            repetition_penalty(
                &mut scores,
                &ids,
                s["repetition_penalty"].as_f64().unwrap() as f32,
            );
            check(&scores, "repetition_penalty");
            temperature(&mut scores, s["temperature"].as_f64().unwrap() as f32);
            check(&scores, "temperature");
            top_k(&mut scores, s["top_k"].as_u64().unwrap() as usize);
            check(&scores, "top_k");
            top_p(&mut scores, s["top_p"].as_f64().unwrap() as f32);
            check(&scores, "top_p");
        }
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_seed_dependent() {
    let model = load("gpt2-tiny");
    let gpt2 = model.network.gpt2().unwrap();
    let prompt = model
        .tokenizer
        .encode("The United Nations", true)
        .unwrap()
        .ids;
    let run = |seed| {
        let cfg = GenerationConfig {
            seed,
            max_new_tokens: 20,
            temperature: 1.5,
            top_k: 0,
            ..GenerationConfig::default()
        };
        block_on(generate(gpt2, &model.tokenizer, &prompt, &cfg, |_| true))
            .unwrap()
            .new_token_ids
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}
