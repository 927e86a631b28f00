//! The sampler one stage at a time for one step (`duet_sampler::stages`), with this
//! configuration's settings, validated.

use super::GenerationConfig;
use crate::error::Result;

pub use duet_sampler::{SamplerSettings, SamplerStages};

impl GenerationConfig {
    pub fn sampler_settings(&self) -> SamplerSettings {
        SamplerSettings {
            repetition_penalty: self.repetition_penalty,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
        }
    }

    /// The stages of [`process`](Self::process) as if sampling (`do_sample` is ignored: greedy
    /// takes the argmax of the first two), from one step's raw logits and the tokens so far.
    pub fn stages(&self, raw_logits: &[f32], seen: &[u32]) -> Result<SamplerStages> {
        self.validate()?;
        Ok(duet_sampler::stages(
            &self.sampler_settings(),
            raw_logits,
            seen,
        ))
    }
}
