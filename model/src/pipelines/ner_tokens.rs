//! token-classification one token at a time, for the Inside view's strip of sub-tokens: every
//! token's full label distribution, and for each aggregation strategy the entities the pipeline
//! returns and which of them each token joined. One model run serves all five strategies, so
//! switching strategy re-merges without running the model again.

use super::ner::{aggregate, gather_pre_entities, shown, Aggregation, Entity};
use crate::error::{DuetError, Result};
use crate::network::{read_f32, EncoderBatch};
use crate::Model;

pub use duet_protocol::outputs::{NerMerge, NerToken, NerTokens};

const ALL: [Aggregation; 5] = [
    Aggregation::None,
    Aggregation::Simple,
    Aggregation::First,
    Aggregation::Average,
    Aggregation::Max,
];

/// The tokens of `text` with their scores and merges. The text must fit the model in one window
/// (the view shows one sequence; `ner` splits longer texts).
pub async fn ner_tokens(model: &Model, text: &str) -> Result<NerTokens> {
    let max = model.config.max_positions();
    let enc = super::encode_all(&model.tokenizer, &[text.to_string()], max)?.remove(0);
    let batch = EncoderBatch::new(
        std::slice::from_ref(&enc),
        model.tokenizer.pad_token_id,
        &model.device,
    )?;
    let logits = model.network.token_logits(&batch)?; // [1, T, labels]
    let [_, _, labels] = logits.dims();
    if labels == 0 {
        return Err(DuetError::InvalidOption("the model has no labels".into()));
    }
    let flat = read_f32(logits).await?;
    let rows: Vec<&[f32]> = flat.chunks_exact(labels).take(enc.len()).collect();
    let pre = gather_pre_entities(model, text, &enc, &rows);
    let tokens: Vec<NerToken> = pre
        .iter()
        .map(|p| NerToken {
            token: p.word.clone(),
            index: p.index,
            start: p.start,
            end: p.end,
            is_subword: p.is_subword,
            scores: p.scores.clone(),
        })
        .collect();
    let merges = ALL
        .into_iter()
        .map(|aggregation| {
            let entities: Vec<Entity> = aggregate(model, pre.clone(), aggregation)
                .into_iter()
                .filter(shown)
                .collect();
            let joined = tokens
                .iter()
                .map(|t| joined(&entities, t, aggregation))
                .collect();
            NerMerge {
                aggregation: aggregation.name().to_string(),
                entities,
                joined,
            }
        })
        .collect();
    Ok(NerTokens {
        labels: (0..labels).map(|i| model.config.label(i)).collect(),
        tokens,
        merges,
    })
}

/// The entity `t` is part of: by position for `none` (one entity per token), else the entity
/// whose character span holds the token's (a strategy's entities never overlap).
fn joined(entities: &[Entity], t: &NerToken, aggregation: Aggregation) -> Option<usize> {
    entities.iter().position(|e| match aggregation {
        Aggregation::None => e.index == Some(t.index),
        _ => e.start <= t.start && t.end <= e.end,
    })
}
