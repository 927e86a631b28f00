//! The Hugging Face pipelines over a loaded [`Model`](crate::Model), with the same JSON shapes:
//! text-generation, text-classification, token-classification, fill-mask, feature-extraction;
//! and the attention probabilities behind them (`attention`).
//! All are async (WebGPU reads back asynchronously); native code drives them with
//! [`block_on`](crate::device::block_on).

pub mod attention;
pub mod classify;
pub mod embed;
pub mod fill_mask;
pub mod masked_vs_next;
pub mod ner;
pub mod ner_tokens;
pub mod strategies;
pub mod text_generation;

use crate::error::{DuetError, Result};
use crate::tokenizer::{Encoded, Tokenizer};

/// Encodes texts with special tokens, rejecting empty texts and texts over `max` tokens.
pub(crate) fn encode_all(tok: &Tokenizer, texts: &[String], max: usize) -> Result<Vec<Encoded>> {
    if texts.is_empty() {
        return Err(DuetError::EmptyInput("no text given".into()));
    }
    texts
        .iter()
        .map(|t| {
            if t.trim().is_empty() {
                return Err(DuetError::EmptyInput("a text is empty".into()));
            }
            let e = tok.encode(t, true)?;
            if e.len() > max {
                return Err(DuetError::TooLong {
                    tokens: e.len(),
                    max,
                });
            }
            Ok(e)
        })
        .collect()
}
