//! Strategies side by side: each column is what its strategy alone produces, and the
//! log-probability is the model's own, computed on the host here as a check.

mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use duet_model::device::block_on;
use duet_model::generation::beam::BeamConfig;
use duet_model::generation::processors::softmax;
use duet_model::generation::{generate, GenerationConfig};
use duet_model::network::read_f32;
use duet_model::pipelines::strategies::{side_by_side, Strategies};
use duet_model::pipelines::text_generation::{beam_generation, eos_id};

#[test]
fn columns_are_each_strategy_alone_with_the_models_log_probability() {
    let model = load("gpt2-tiny");
    let gpt2 = model.network.gpt2().unwrap();
    let prompt = "The United Nations";
    let s = Strategies {
        max_new_tokens: 10,
        num_beams: 3,
        top_k: 20,
        top_p: 0.9,
        temperature: 1.0,
        seed: 7,
    };
    let cols = block_on(side_by_side(&model, prompt, &s)).unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c.strategy.as_str()).collect();
    assert_eq!(names, ["greedy", "beam search", "top-k", "top-p"]);
    let ids = model.tokenizer.encode(prompt, true).unwrap().ids;
    let eos = eos_id(&model);
    let greedy = GenerationConfig {
        eos_token_id: eos,
        ..GenerationConfig::greedy(10)
    };
    let g = block_on(generate(gpt2, &model.tokenizer, &ids, &greedy, |_| true)).unwrap();
    assert_eq!(cols[0].new_token_ids, g.new_token_ids);
    let beam = BeamConfig {
        eos_token_id: eos,
        ..BeamConfig::new(3, 10)
    };
    let b = block_on(beam_generation(&model, prompt, &beam)).unwrap();
    assert_eq!(cols[1].new_token_ids, b[0].new_token_ids);
    let again = block_on(side_by_side(&model, prompt, &s)).unwrap();
    assert_eq!(cols, again, "seeded: the same columns twice");
    assert_ne!(
        cols[2].new_token_ids, cols[0].new_token_ids,
        "sampling differs from greedy here"
    );
    for c in &cols {
        // The same log-probability from the full logits, log-softmaxed on the host.
        let mut all = ids.clone();
        all.extend(&c.new_token_ids);
        let t = all.len();
        let input = Tensor::<2, Int>::from_data(
            TensorData::new(all.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, t]),
            &model.device,
        );
        let logits = block_on(read_f32(gpt2.forward(input))).unwrap();
        let v = logits.len() / t;
        let want: f32 = (ids.len()..t)
            .map(|i| softmax(&logits[(i - 1) * v..i * v])[all[i] as usize].ln())
            .sum();
        assert!(
            (c.log_prob - want).abs() < 1e-3,
            "{}: {} vs {want}",
            c.strategy,
            c.log_prob
        );
        assert!(c.log_prob < 0.0 && c.log_prob.is_finite(), "{}", c.log_prob);
        assert!(c.new_token_ids.len() <= 10);
    }
}
