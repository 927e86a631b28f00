//! GPT-2 against `transformers`: logits, greedy ids with and without the KV cache, and the
//! sampling distribution after each logits processor (`GenerationConfig::stages`).

mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use duet_model::device::block_on;
use duet_model::generation::processors::softmax;
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
fn sampler_stages_in_one_call_match_hf_and_end_where_sampling_draws() {
    for name in GPT2 {
        for case in expected(name)["processors"].as_array().unwrap() {
            let s = &case["settings"];
            let cfg = GenerationConfig {
                do_sample: true,
                repetition_penalty: s["repetition_penalty"].as_f64().unwrap() as f32,
                temperature: s["temperature"].as_f64().unwrap() as f32,
                top_k: s["top_k"].as_u64().unwrap() as usize,
                top_p: s["top_p"].as_f64().unwrap() as f32,
                ..GenerationConfig::default()
            };
            let (ids, raw) = (u32s(&case["input_ids"]), f32s(&case["raw_logits"]));
            let stages = cfg.stages(&raw, &ids).unwrap();
            let after = &case["after"];
            let what = format!("{name}: {s}");
            assert_close(&stages.raw, &softmax(&raw), 1e-6, &what);
            for (ours, stage) in [
                (&stages.repetition_penalty, "repetition_penalty"),
                (&stages.temperature, "temperature"),
                (&stages.top_k, "top_k"),
                (&stages.top_p, "top_p"),
            ] {
                assert_close(ours, &f32s(&after[stage]), 1e-5, &format!("{what} {stage}"));
            }
            let mut processed = raw.clone();
            cfg.process(&mut processed, &ids);
            assert_eq!(
                stages.top_p,
                softmax(&processed),
                "{what}: the last stage is what sampling draws from"
            );
        }
    }
}

#[test]
fn sampler_stages_refuse_settings_generate_refuses() {
    let cfg = GenerationConfig {
        top_p: 0.0,
        ..GenerationConfig::default()
    };
    assert!(cfg.stages(&[0.0, 1.0], &[]).is_err());
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

fn tiny() -> (duet_model::Model, Vec<u32>) {
    let model = load("gpt2-tiny");
    let case = &expected("gpt2-tiny")["greedy"][0];
    (model, u32s(&case["input_ids"]))
}

#[test]
fn streaming_callback_sees_every_token_and_can_stop() {
    let (model, prompt) = tiny();
    let gpt2 = model.network.gpt2().unwrap();
    let mut seen = Vec::new();
    let out = block_on(generate(
        gpt2,
        &model.tokenizer,
        &prompt,
        &GenerationConfig::greedy(10),
        |e| {
            seen.push(e.id);
            seen.len() < 4
        },
    ))
    .unwrap();
    assert_eq!(
        out.finish_reason,
        duet_model::generation::FinishReason::Cancelled
    );
    assert_eq!(out.new_token_ids, seen);
    assert_eq!(seen.len(), 4);
    // The streamed pieces add up to the decoded continuation.
    let mut text = String::new();
    let full = block_on(generate(
        gpt2,
        &model.tokenizer,
        &prompt,
        &GenerationConfig::greedy(24),
        |e| {
            text.push_str(&e.text);
            true
        },
    ))
    .unwrap();
    let cont = model.tokenizer.decode(&full.new_token_ids, false).unwrap();
    assert_eq!(text, cont.trim_end_matches('\u{FFFD}'));
}

#[test]
fn no_new_tokens_asked_for_is_an_error_not_one_token() {
    let (model, prompt) = tiny();
    let gpt2 = model.network.gpt2().unwrap();
    let err = block_on(generate(
        gpt2,
        &model.tokenizer,
        &prompt,
        &GenerationConfig::greedy(0),
        |_| true,
    ))
    .unwrap_err();
    assert!(
        matches!(&err, duet_model::DuetError::InvalidOption(m) if m.contains("max_new_tokens")),
        "{err}"
    );
}

#[test]
fn eos_and_stop_strings_end_generation() {
    let (model, prompt) = tiny();
    let gpt2 = model.network.gpt2().unwrap();
    let want = u32s(&expected("gpt2-tiny")["greedy"][0]["new_token_ids"]);
    // Declare the 3rd greedy token the end of sequence: generation stops right after it.
    let cfg = GenerationConfig {
        eos_token_id: Some(want[2]),
        ..GenerationConfig::greedy(24)
    };
    let out = block_on(generate(gpt2, &model.tokenizer, &prompt, &cfg, |_| true)).unwrap();
    let first = want.iter().position(|&t| t == want[2]).unwrap();
    assert_eq!(out.new_token_ids, want[..=first]);
    assert_eq!(out.finish_reason, duet_model::generation::FinishReason::Eos);
    // A stop string made of the continuation's text so far stops there too.
    let piece = model.tokenizer.decode(&want[..3], false).unwrap();
    let stop: String = piece.chars().filter(|c| *c != '\u{FFFD}').collect();
    assert!(
        !stop.is_empty(),
        "the fixture's first tokens decode to text"
    );
    let cfg = GenerationConfig {
        stop_strings: vec![stop.clone()],
        ..GenerationConfig::greedy(24)
    };
    let out = block_on(generate(gpt2, &model.tokenizer, &prompt, &cfg, |_| true)).unwrap();
    assert_eq!(
        out.finish_reason,
        duet_model::generation::FinishReason::StopString
    );
    assert!(out.new_token_ids.len() <= 3);
    assert!(model
        .tokenizer
        .decode(&out.new_token_ids, false)
        .unwrap()
        .contains(&stop));
}

#[test]
fn top_next_token_probabilities_are_the_models_softmax() {
    let model = load("gpt2-tiny");
    let gpt2 = model.network.gpt2().unwrap();
    let case = &expected("gpt2-tiny")["processors"][0];
    let ids = u32s(&case["input_ids"]);
    let want = softmax(&f32s(&case["raw_logits"]));
    let mut first = None;
    let cfg = GenerationConfig {
        top_probs: 5,
        ..GenerationConfig::greedy(1)
    };
    block_on(generate(gpt2, &model.tokenizer, &ids, &cfg, |e| {
        first = Some(e.top.clone());
        true
    }))
    .unwrap();
    let top = first.unwrap();
    assert_eq!(top.len(), 5);
    for w in top.windows(2) {
        assert!(w[0].prob >= w[1].prob);
    }
    for t in &top {
        assert!((t.prob - want[t.id as usize]).abs() < 1e-5, "{t:?}");
        assert_eq!(t.token, model.tokenizer.decode(&[t.id], false).unwrap());
    }
    let best = want.iter().cloned().fold(0.0f32, f32::max);
    assert!((top[0].prob - best).abs() < 1e-6);
}

#[test]
fn long_prompts_error_or_truncate_from_the_left() {
    let (model, _) = tiny();
    let gpt2 = model.network.gpt2().unwrap();
    let n = gpt2.n_positions();
    let prompt: Vec<u32> = (0..n as u32 + 10).map(|i| 5 + i % 50).collect();
    let err = block_on(generate(
        gpt2,
        &model.tokenizer,
        &prompt,
        &GenerationConfig::greedy(4),
        |_| true,
    ))
    .unwrap_err();
    assert!(
        matches!(err, duet_model::DuetError::TooLong { .. }),
        "{err}"
    );
    let cfg = GenerationConfig {
        overflow: duet_model::generation::Overflow::TruncateLeft,
        ..GenerationConfig::greedy(4)
    };
    let out = block_on(generate(gpt2, &model.tokenizer, &prompt, &cfg, |_| true)).unwrap();
    assert_eq!(out.new_token_ids.len(), 4);
    assert_eq!(out.prompt_ids, prompt[prompt.len() - (n - 4)..]);
    assert_eq!(out.truncated, prompt.len() - (n - 4));
}

#[test]
fn scored_tokens_are_the_softmax_of_their_left_context() {
    use duet_model::pipelines::text_generation::score_tokens;
    let model = load("gpt2-tiny");
    let case = &expected("gpt2-tiny")["logits"][0];
    let text = case["text"].as_str().unwrap();
    let ids = u32s(&case["input_ids"]);
    let logits = f32s(&case["logits"]);
    let v = logits.len() / ids.len();
    let scored = block_on(score_tokens(&model, text, 3)).unwrap();
    assert_eq!(scored.len(), ids.len());
    assert!(scored[0].prob.is_none() && scored[0].top.is_empty());
    for i in 1..ids.len() {
        let want = softmax(&logits[(i - 1) * v..i * v]);
        let got = scored[i].prob.unwrap();
        assert!((got - want[ids[i] as usize]).abs() < 1e-5, "position {i}");
        assert_eq!(scored[i].id, ids[i]);
        assert_eq!(scored[i].top.len(), 3);
        let best = want.iter().cloned().fold(0.0f32, f32::max);
        assert!((scored[i].top[0].prob - best).abs() < 1e-5);
    }
    assert!(matches!(
        block_on(score_tokens(&model, "  ", 3)),
        Err(duet_model::DuetError::EmptyInput(_))
    ));
}

#[test]
fn beam_search_ids_and_scores_match_hf_generate() {
    use duet_model::generation::beam::beam_search;
    let mut checked = 0;
    for name in GPT2 {
        let model = load(name);
        let gpt2 = model.network.gpt2().unwrap();
        for case in expected(name)["beam"].as_array().unwrap() {
            let s = &case["settings"];
            let cfg = duet_model::selftest::beam_config(case).unwrap();
            let prompt = u32s(&case["input_ids"]);
            let ours = block_on(beam_search(gpt2, &prompt, &cfg)).unwrap();
            let theirs = case["sequences"].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{name} {s}");
            for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
                assert_eq!(
                    o.new_token_ids,
                    u32s(&t["new_token_ids"]),
                    "{name} {s}: hypothesis {i}"
                );
                let want = t["score"].as_f64().unwrap() as f32;
                assert!(
                    (o.score - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{name} {s}: score {} vs {want}",
                    o.score
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 15);
}
