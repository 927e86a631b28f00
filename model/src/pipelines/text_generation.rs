//! text-generation: prompt → `{"generated_text", "new_token_ids"}` per prompt.

use crate::error::{DuetError, Result};
use crate::generation::{generate, Generation, GenerationConfig, TokenEvent};
use crate::Model;

/// Generates for one prompt, streaming tokens to `on_token` (return `false` to stop).
pub async fn text_generation(
    model: &Model,
    prompt: &str,
    cfg: &GenerationConfig,
    on_token: impl FnMut(&TokenEvent) -> bool,
) -> Result<Generation> {
    let (gpt2, ids, eos) = prompt_ids(model, prompt)?;
    let mut cfg = cfg.clone();
    cfg.eos_token_id = cfg.eos_token_id.or(eos);
    generate(gpt2, &model.tokenizer, &ids, &cfg, on_token).await
}

/// What every generation from a text prompt starts with: the GPT-2, the prompt's ids (an empty
/// prompt is an error) and the model's end token.
fn prompt_ids<'a>(
    model: &'a Model,
    prompt: &str,
) -> Result<(
    &'a crate::models::gpt2::Gpt2LmHeadModel,
    Vec<u32>,
    Option<u32>,
)> {
    if prompt.is_empty() {
        return Err(DuetError::EmptyInput("the prompt is empty".into()));
    }
    let gpt2 = model.network.gpt2()?;
    let ids = model.tokenizer.encode(prompt, true)?.ids;
    Ok((gpt2, ids, eos_id(model)))
}

/// One hypothesis of a beam search, as the CLI prints it and the Strategies view shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BeamOutput {
    /// Prompt and continuation (the end token, when the hypothesis ended with one, included).
    pub generated_text: String,
    pub new_token_ids: Vec<u32>,
    /// HF's `sequences_scores`: summed log-probability over length^length_penalty.
    pub score: f32,
}

/// Beam search for one prompt (HF `generate` with `num_beams`), best hypothesis first. The end
/// token is the model's unless `cfg` names one.
pub async fn beam_generation(
    model: &Model,
    prompt: &str,
    cfg: &crate::generation::beam::BeamConfig,
) -> Result<Vec<BeamOutput>> {
    let (gpt2, ids, eos) = prompt_ids(model, prompt)?;
    let mut cfg = cfg.clone();
    cfg.eos_token_id = cfg.eos_token_id.or(eos);
    let hyps = crate::generation::beam::beam_search(gpt2, &ids, &cfg).await?;
    hyps.into_iter()
        .map(|h| {
            let all: Vec<u32> = ids.iter().chain(&h.new_token_ids).copied().collect();
            Ok(BeamOutput {
                generated_text: model.tokenizer.decode(&all, false)?,
                new_token_ids: h.new_token_ids,
                score: h.score,
            })
        })
        .collect()
}

/// The config's `eos_token_id`, else the tokenizer's `<|endoftext|>`.
pub fn eos_id(model: &Model) -> Option<u32> {
    match &model.config.arch {
        crate::config::Arch::Gpt2(c) => c.eos_token_id,
        _ => None,
    }
    .or_else(|| model.tokenizer.token_to_id("<|endoftext|>"))
}

/// One token of a scored text: how likely GPT found it given only the tokens to its left.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoredToken {
    pub id: u32,
    /// The token as text (decoded, so `Ġ`-style byte markers become spaces).
    pub token: String,
    /// `p(token | tokens before it)`; `None` for the first token, which has no left context.
    pub prob: Option<f32>,
    /// The model's most likely tokens at this position, from the left context alone.
    pub top: Vec<crate::generation::TokenProb>,
}

/// Scores every token of `text` in one forward pass (the causal mask makes each position see
/// only its left): the teaching view of "autoregressive". One read-back for the whole text.
pub async fn score_tokens(model: &Model, text: &str, top: usize) -> Result<Vec<ScoredToken>> {
    use crate::generation::processors::{softmax, top_n};
    use burn::tensor::{Int, Tensor, TensorData};
    if text.trim().is_empty() {
        return Err(DuetError::EmptyInput("the text is empty".into()));
    }
    let gpt2 = model.network.gpt2()?;
    let enc = model.tokenizer.encode(text, true)?;
    let max = gpt2.n_positions();
    if enc.len() > max {
        return Err(DuetError::TooLong {
            tokens: enc.len(),
            max,
        });
    }
    let ids: Vec<i64> = enc.ids.iter().map(|&i| i as i64).collect();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, enc.len()]), &model.device);
    let logits = gpt2.forward(input); // [1, T, V]
    let v = logits.dims()[2];
    let flat = crate::network::read_f32(logits).await?;
    let name = |id: u32| model.tokenizer.decode(&[id], false).unwrap_or_default();
    Ok(enc
        .ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            // Position i is predicted by the logits at i - 1.
            let (prob, top) = if i == 0 {
                (None, Vec::new())
            } else {
                let probs = softmax(&flat[(i - 1) * v..i * v]);
                let best = top_n(&probs, top)
                    .into_iter()
                    .map(|(t, p)| crate::generation::TokenProb {
                        id: t as u32,
                        token: name(t as u32),
                        prob: p,
                    })
                    .collect();
                (Some(probs[id as usize]), best)
            };
            ScoredToken {
                id,
                token: name(id),
                prob,
                top,
            }
        })
        .collect())
}

/// The raw next-token logits after `ids` (one forward pass, no cache): what one generation step
/// saw before any processor, for the sampler's stage-by-stage view.
pub async fn next_token_logits(model: &Model, ids: &[u32]) -> Result<Vec<f32>> {
    use burn::tensor::{Int, Tensor, TensorData};
    let gpt2 = model.network.gpt2()?;
    if ids.is_empty() {
        return Err(DuetError::EmptyInput("no tokens before the step".into()));
    }
    let max = gpt2.n_positions();
    if ids.len() > max {
        return Err(DuetError::TooLong {
            tokens: ids.len(),
            max,
        });
    }
    let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    let input = Tensor::<2, Int>::from_data(TensorData::new(v, [1, ids.len()]), &model.device);
    let logits = gpt2.forward(input); // [1, T, V]
    let [_, t, vocab] = logits.dims();
    crate::network::read_f32(logits.slice([0..1, t - 1..t, 0..vocab])).await
}
