//! Autoregressive generation for GPT-2: prompt → new tokens, one forward step per token with the
//! KV cache, logits read back once per step (asynchronously, so it runs in a browser tab).

pub mod beam;
pub mod processors;
pub mod rng;
mod stages;

pub use stages::{SamplerSettings, SamplerStages};

use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use crate::error::{DuetError, Result};
use crate::models::gpt2::Gpt2LmHeadModel;
use crate::network::read_f32;
use crate::tokenizer::Tokenizer;
use processors::{argmax, repetition_penalty, softmax, temperature, top_k, top_n, top_p};
use rng::Rng;

/// What to do with a prompt longer than the model's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Error,
    /// Keep the last tokens, leaving room for the new ones (as a chat UI would).
    TruncateLeft,
}

/// Generation settings, HF `GenerationConfig` names and defaults where they exist.
#[derive(Debug, Clone)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    /// Sample from the processed distribution; greedy (argmax) when false.
    pub do_sample: bool,
    pub temperature: f32,
    /// 0 disables.
    pub top_k: usize,
    pub top_p: f32,
    pub repetition_penalty: f32,
    pub seed: u64,
    /// Stop after generating this token (it is kept in the output, as HF does).
    pub eos_token_id: Option<u32>,
    /// Stop once the new text contains one of these (kept in the output).
    pub stop_strings: Vec<String>,
    /// Report this many most likely next tokens per step (0 = none).
    pub top_probs: usize,
    pub overflow: Overflow,
    /// Use the KV cache (each token one step) rather than re-running the whole sequence.
    pub use_cache: bool,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 50,
            do_sample: true,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 42,
            eos_token_id: None,
            stop_strings: Vec::new(),
            top_probs: 0,
            overflow: Overflow::Error,
            use_cache: true,
        }
    }
}

impl GenerationConfig {
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            do_sample: false,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(DuetError::InvalidOption(m.into()));
        if self.temperature.is_nan() || self.temperature <= 0.0 || !self.temperature.is_finite() {
            return bad("temperature must be > 0");
        }
        if self.top_p.is_nan() || self.top_p <= 0.0 || self.top_p > 1.0 {
            return bad("top_p must be in (0, 1]");
        }
        if self.repetition_penalty.is_nan()
            || self.repetition_penalty <= 0.0
            || !self.repetition_penalty.is_finite()
        {
            return bad("repetition_penalty must be > 0");
        }
        Ok(())
    }

    /// The sampling distribution for one step, from raw logits and the tokens so far.
    pub fn process(&self, logits: &mut [f32], seen: &[u32]) {
        repetition_penalty(logits, seen, self.repetition_penalty);
        if self.do_sample {
            temperature(logits, self.temperature);
            top_k(logits, self.top_k);
            top_p(logits, self.top_p);
        }
    }
}

/// A candidate next token and its probability under the model (before any processor).
#[derive(Debug, Clone, Serialize)]
pub struct TokenProb {
    pub id: u32,
    pub token: String,
    pub prob: f32,
}

/// One generated token, as the streaming callback sees it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenEvent {
    pub index: usize,
    pub id: u32,
    /// Text this token adds (may be empty while a multi-byte character is incomplete).
    pub text: String,
    /// The model's most likely next tokens at this step, when asked for.
    pub top: Vec<TokenProb>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// `max_new_tokens` reached.
    Length,
    Eos,
    StopString,
    /// The context window is full.
    ContextFull,
    /// The callback asked to stop.
    Cancelled,
}

#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    pub new_token_ids: Vec<u32>,
    /// Prompt and continuation, as the HF text-generation pipeline returns it.
    pub generated_text: String,
    pub finish_reason: FinishReason,
    /// Prompt tokens dropped from the left to fit the context.
    pub truncated: usize,
}

/// Generates from `prompt_ids`. `on_token` sees each token as it comes; returning `false` stops.
pub async fn generate(
    model: &Gpt2LmHeadModel,
    tokenizer: &Tokenizer,
    prompt_ids: &[u32],
    cfg: &GenerationConfig,
    mut on_token: impl FnMut(&TokenEvent) -> bool,
) -> Result<Generation> {
    cfg.validate()?;
    // As HF's `generate` refuses it: asked for none, the loop below would still make one.
    if cfg.max_new_tokens == 0 {
        return Err(DuetError::InvalidOption(
            "max_new_tokens must be at least 1".into(),
        ));
    }
    if prompt_ids.is_empty() {
        return Err(DuetError::EmptyInput("the prompt has no tokens".into()));
    }
    let context = model.n_positions();
    let mut prompt = prompt_ids.to_vec();
    let mut truncated = 0;
    if prompt.len() >= context {
        match cfg.overflow {
            Overflow::Error => {
                return Err(DuetError::TooLong {
                    tokens: prompt.len(),
                    max: context - 1,
                })
            }
            Overflow::TruncateLeft => {
                let keep = context.saturating_sub(cfg.max_new_tokens.max(1)).max(1);
                truncated = prompt.len() - keep;
                prompt.drain(..truncated);
            }
        }
    }
    let device = model.transformer.wte.weight.lazy_device();
    let ids_tensor = |ids: &[u32]| {
        let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        Tensor::<2, Int>::from_data(TensorData::new(v, [1, ids.len()]), &device)
    };
    let mut rng = Rng::new(cfg.seed);
    let mut cache = cfg.use_cache.then(|| model.new_cache(1));
    let mut all = prompt.clone();
    let mut new_ids: Vec<u32> = Vec::new();
    let mut emitted = String::new();
    let mut finish = FinishReason::Length;
    let mut pending: Vec<u32> = prompt.clone();
    while new_ids.len() < cfg.max_new_tokens {
        crate::device::yield_now().await;
        if all.len() >= context {
            finish = FinishReason::ContextFull;
            break;
        }
        let logits = match cache.as_mut() {
            Some(cache) => model.forward_cached(ids_tensor(&pending), cache),
            None => {
                let full = model.forward(ids_tensor(&all)); // [1, T, V]
                let [_, t, v] = full.dims();
                full.slice([0..1, t - 1..t, 0..v]).reshape([1, v])
            }
        };
        let mut scores = read_f32(logits).await?;
        let top = if cfg.top_probs > 0 {
            top_n(&softmax(&scores), cfg.top_probs)
                .into_iter()
                .map(|(i, prob)| TokenProb {
                    id: i as u32,
                    token: tokenizer.decode(&[i as u32], false).unwrap_or_default(),
                    prob,
                })
                .collect()
        } else {
            Vec::new()
        };
        cfg.process(&mut scores, &all);
        let next = if cfg.do_sample {
            rng.sample(&softmax(&scores))
        } else {
            argmax(&scores)
        } as u32;
        all.push(next);
        new_ids.push(next);
        // Decode the whole continuation and emit what is new, holding back an incomplete
        // multi-byte character (shown as U+FFFD) until its last byte arrives.
        let text = tokenizer.decode(&new_ids, false)?;
        let stable = text.trim_end_matches('\u{FFFD}');
        let piece = stable.get(emitted.len()..).unwrap_or("").to_string();
        if stable.starts_with(&emitted) {
            emitted = stable.to_string();
        }
        let event = TokenEvent {
            index: new_ids.len() - 1,
            id: next,
            text: piece,
            top,
        };
        if !on_token(&event) {
            finish = FinishReason::Cancelled;
            break;
        }
        if cfg.eos_token_id == Some(next) {
            finish = FinishReason::Eos;
            break;
        }
        if cfg
            .stop_strings
            .iter()
            .any(|s| !s.is_empty() && text.contains(s.as_str()))
        {
            finish = FinishReason::StopString;
            break;
        }
        pending = vec![next];
    }
    let generated_text = tokenizer.decode(&all, false)?;
    Ok(Generation {
        prompt_ids: prompt,
        new_token_ids: new_ids,
        generated_text,
        finish_reason: finish,
        truncated,
    })
}
