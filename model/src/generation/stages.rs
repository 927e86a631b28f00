//! The sampler one stage at a time, for one step: what each logits processor did to the
//! distribution (the Inside view draws one set of bars per stage, and redraws them when a setting
//! moves, from logits the model already produced).

use super::processors::{repetition_penalty, softmax, temperature, top_k, top_p};
use super::GenerationConfig;
use crate::error::Result;

/// Probabilities over the vocabulary after each stage, in HF `generate`'s order. A stage whose
/// setting leaves it off (penalty 1, temperature 1, top-k 0, top-p 1) repeats the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerStages {
    /// Softmax of the raw logits.
    pub raw: Vec<f32>,
    pub repetition_penalty: Vec<f32>,
    pub temperature: Vec<f32>,
    pub top_k: Vec<f32>,
    /// The distribution sampling draws from.
    pub top_p: Vec<f32>,
}

impl GenerationConfig {
    /// The stages of [`process`](Self::process) as if sampling (`do_sample` is ignored: greedy
    /// takes the argmax of the first two), from one step's raw logits and the tokens so far.
    pub fn stages(&self, raw_logits: &[f32], seen: &[u32]) -> Result<SamplerStages> {
        self.validate()?;
        let mut scores = raw_logits.to_vec();
        let raw = softmax(&scores);
        repetition_penalty(&mut scores, seen, self.repetition_penalty);
        let after_penalty = softmax(&scores);
        temperature(&mut scores, self.temperature);
        let after_temperature = softmax(&scores);
        top_k(&mut scores, self.top_k);
        let after_top_k = softmax(&scores);
        top_p(&mut scores, self.top_p);
        Ok(SamplerStages {
            raw,
            repetition_penalty: after_penalty,
            temperature: after_temperature,
            top_k: after_top_k,
            top_p: softmax(&scores),
        })
    }
}
