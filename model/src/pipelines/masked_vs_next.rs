//! Masked vs next-token, word by word: BERT's fills with the word masked (it reads both sides)
//! next to GPT's guesses from the left context alone (it reads only what came before). One
//! `fill-mask` batch (a masked copy of the sentence per word) and one GPT pass for the sentence.

use super::fill_mask::fill_mask;
use super::text_generation::score_tokens;
use crate::error::{DuetError, Result};
use crate::Model;

pub use duet_protocol::outputs::{Guess, WordGuesses};

/// The words of `text` as `(start, end)` char spans: runs of letters, digits and apostrophes.
pub fn words(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let in_word = c.is_alphanumeric() || (*c == '\'' && start.is_some());
        match (in_word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, chars.len()));
    }
    spans
}

/// Every word of `text`, with `top` guesses of each model. `mlm` must have a masked-LM head and
/// a mask token; `gpt` must be a GPT-2.
pub async fn masked_vs_next(
    gpt: &Model,
    mlm: &Model,
    text: &str,
    top: usize,
) -> Result<Vec<WordGuesses>> {
    let spans = words(text);
    if spans.is_empty() {
        return Err(DuetError::EmptyInput("the sentence has no words".into()));
    }
    let (mask, _) = mlm.tokenizer.mask()?;
    let chars: Vec<char> = text.chars().collect();
    let cut = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    let masked: Vec<String> = spans
        .iter()
        .map(|&(s, e)| format!("{}{mask}{}", cut(0, s), cut(e, chars.len())))
        .collect();
    let fills = fill_mask(mlm, &masked, top).await?;
    // GPT: the token at which each word starts (the one whose span reaches into the word, its
    // leading space included) is predicted from the tokens before it.
    let scored = score_tokens(gpt, text, top).await?;
    let offsets = gpt.tokenizer.encode(text, true)?.offsets;
    Ok(spans
        .iter()
        .zip(fills)
        .map(|(&(start, end), fills)| {
            let at = offsets
                .iter()
                .position(|&(_, e)| e > start)
                .unwrap_or(offsets.len());
            let position = scored.get(at).filter(|s| s.prob.is_some());
            WordGuesses {
                word: cut(start, end),
                start,
                end,
                masked: fills
                    .into_iter()
                    .map(|f| Guess {
                        token: f.token_str,
                        score: f.score,
                    })
                    .collect(),
                next: position
                    .map(|s| {
                        s.top
                            .iter()
                            .map(|t| Guess {
                                token: t.token.clone(),
                                score: t.prob,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                next_actual: position.and_then(|s| s.prob),
            }
        })
        .collect())
}
