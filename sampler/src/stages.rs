//! The sampler one stage at a time, for one step: what each logits processor did to the
//! distribution (the Generate page draws one set of bars per stage, and redraws them when a
//! setting moves, from logits the model already produced).

use crate::{repetition_penalty, softmax, temperature, top_k, top_p};

/// The settings of the processors, HF `GenerationConfig` names; off at 1, 1, 0, 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSettings {
    pub repetition_penalty: f32,
    pub temperature: f32,
    /// 0 disables.
    pub top_k: usize,
    pub top_p: f32,
}

/// Probabilities over the vocabulary after each stage, in HF `generate`'s order. A stage whose
/// setting leaves it off repeats the one before.
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

/// Every stage from one step's raw logits and the tokens so far (the settings are taken as
/// given: the engine validates them first).
pub fn stages(s: &SamplerSettings, raw_logits: &[f32], seen: &[u32]) -> SamplerStages {
    let mut scores = raw_logits.to_vec();
    let raw = softmax(&scores);
    repetition_penalty(&mut scores, seen, s.repetition_penalty);
    let after_penalty = softmax(&scores);
    temperature(&mut scores, s.temperature);
    let after_temperature = softmax(&scores);
    top_k(&mut scores, s.top_k);
    let after_top_k = softmax(&scores);
    top_p(&mut scores, s.top_p);
    SamplerStages {
        raw,
        repetition_penalty: after_penalty,
        temperature: after_temperature,
        top_k: after_top_k,
        top_p: softmax(&scores),
    }
}
