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
    if prompt.is_empty() {
        return Err(DuetError::EmptyInput("the prompt is empty".into()));
    }
    let gpt2 = model.network.gpt2()?;
    let mut cfg = cfg.clone();
    if cfg.eos_token_id.is_none() {
        cfg.eos_token_id = eos_id(model);
    }
    let ids = model.tokenizer.encode(prompt, true)?.ids;
    generate(gpt2, &model.tokenizer, &ids, &cfg, on_token).await
}

/// The config's `eos_token_id`, else the tokenizer's `<|endoftext|>`.
pub fn eos_id(model: &Model) -> Option<u32> {
    match &model.config.arch {
        crate::config::Arch::Gpt2(c) => c.eos_token_id,
        _ => None,
    }
    .or_else(|| model.tokenizer.token_to_id("<|endoftext|>"))
}
