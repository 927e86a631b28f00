//! Decoding strategies side by side: one prompt continued greedily, by beam search, by top-k and
//! by top-p sampling, each with the total log-probability the model gives its continuation (so
//! the columns compare on one scale: how likely the model finds what each strategy chose).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

use super::text_generation::{beam_generation, eos_id};
use crate::error::{DuetError, Result};
use crate::generation::beam::BeamConfig;
use crate::generation::{generate, GenerationConfig};
use crate::models::gpt2::Gpt2LmHeadModel;
use crate::network::read_f32;
use crate::Model;

pub use duet_protocol::outputs::StrategyColumn;

/// The settings of the four columns.
#[derive(Debug, Clone)]
pub struct Strategies {
    pub max_new_tokens: usize,
    pub num_beams: usize,
    pub top_k: usize,
    pub top_p: f32,
    /// The sampling columns' temperature and seed.
    pub temperature: f32,
    pub seed: u64,
}

/// `log p(new | prompt)`: the sum of the model's log-probabilities of each new token given
/// everything before it, from one forward pass, summed on the device (one number read back).
pub async fn continuation_log_prob(
    model: &Gpt2LmHeadModel,
    prompt: &[u32],
    new: &[u32],
) -> Result<f32> {
    if new.is_empty() {
        return Ok(0.0);
    }
    let device = model.transformer.wte.weight.lazy_device();
    let all: Vec<i64> = prompt.iter().chain(new).map(|&i| i as i64).collect();
    let t = all.len();
    let logits = model.forward(Tensor::<2, Int>::from_data(
        TensorData::new(all, [1, t]),
        &device,
    ));
    let v = logits.dims()[2];
    let (p, n) = (prompt.len(), new.len());
    // Token p + i is predicted at position p + i - 1.
    let lp = log_softmax(logits.slice([0..1, p - 1..p - 1 + n, 0..v]), 2); // [1, n, V]
    let targets: Vec<i64> = new.iter().map(|&i| i as i64).collect();
    let idx = Tensor::<3, Int>::from_data(TensorData::new(targets, [1, n, 1]), &device);
    Ok(read_f32(lp.gather(2, idx).sum()).await?[0])
}

/// The four columns for `prompt`, in order: greedy, beam search, top-k, top-p.
pub async fn side_by_side(
    model: &Model,
    prompt: &str,
    s: &Strategies,
) -> Result<Vec<StrategyColumn>> {
    if prompt.is_empty() {
        return Err(DuetError::EmptyInput("the prompt is empty".into()));
    }
    let gpt2 = model.network.gpt2()?;
    let tok = &model.tokenizer;
    let prompt_ids = tok.encode(prompt, true)?.ids;
    let eos = eos_id(model);
    let sampled = |top_k: usize, top_p: f32| GenerationConfig {
        max_new_tokens: s.max_new_tokens,
        do_sample: true,
        temperature: s.temperature,
        top_k,
        top_p,
        seed: s.seed,
        eos_token_id: eos,
        ..GenerationConfig::default()
    };
    let runs = [
        (
            "greedy",
            "the most likely token each step".to_string(),
            GenerationConfig {
                eos_token_id: eos,
                ..GenerationConfig::greedy(s.max_new_tokens)
            },
        ),
        (
            "top-k",
            format!(
                "k = {}, temperature {}, seed {}",
                s.top_k, s.temperature, s.seed
            ),
            sampled(s.top_k, 1.0),
        ),
        (
            "top-p",
            format!(
                "p = {}, temperature {}, seed {}",
                s.top_p, s.temperature, s.seed
            ),
            sampled(0, s.top_p),
        ),
    ];
    let mut columns = Vec::new();
    for (name, settings, cfg) in runs {
        let g = generate(gpt2, tok, &prompt_ids, &cfg, |_| true).await?;
        columns.push(StrategyColumn {
            strategy: name.into(),
            settings,
            continuation: tok.decode(&g.new_token_ids, false)?,
            log_prob: continuation_log_prob(gpt2, &prompt_ids, &g.new_token_ids).await?,
            new_token_ids: g.new_token_ids,
        });
    }
    let beam = BeamConfig {
        eos_token_id: eos,
        ..BeamConfig::new(s.num_beams, s.max_new_tokens)
    };
    let best = beam_generation(model, prompt, &beam)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| DuetError::InvalidOption("beam search returned nothing".into()))?;
    columns.insert(
        1,
        StrategyColumn {
            strategy: "beam search".into(),
            settings: format!("{} beams", s.num_beams),
            continuation: tok.decode(&best.new_token_ids, false)?,
            log_prob: continuation_log_prob(gpt2, &prompt_ids, &best.new_token_ids).await?,
            new_token_ids: best.new_token_ids,
        },
    );
    Ok(columns)
}
