//! token-classification one token at a time, for the Inside view's strip of sub-tokens: every
//! token's full label distribution, and for each aggregation strategy the entities the pipeline
//! returns and which of them each token joined. One model run serves all five strategies, so
//! switching strategy re-merges without running the model again.

use super::ner::{merge, scored_windows, Aggregation, Entity};
use crate::error::Result;
use crate::Model;

pub use duet_protocol::outputs::{NerMerge, NerToken, NerTokens};

const ALL: [Aggregation; 5] = [
    Aggregation::None,
    Aggregation::Simple,
    Aggregation::First,
    Aggregation::Average,
    Aggregation::Max,
];

/// The tokens of `text` with their scores and merges. A text longer than the model runs in
/// overlapping windows, as in `ner`; a token two windows share is listed once, from the first.
pub async fn ner_tokens(model: &Model, text: &str) -> Result<NerTokens> {
    let windows = scored_windows(model, &[text.to_string()], None)
        .await?
        .remove(0);
    let labels = windows
        .iter()
        .flatten()
        .next()
        .map_or(0, |p| p.scores.len());
    let mut tokens: Vec<NerToken> = Vec::new();
    for window in &windows {
        // Where the windows before this one reached: the overlap is already listed.
        let listed = tokens.last().map(|t| t.end);
        for p in window
            .iter()
            .filter(|p| listed.is_none_or(|end| p.start >= end))
        {
            tokens.push(NerToken {
                token: p.word.clone(),
                index: p.index,
                start: p.start,
                end: p.end,
                is_subword: p.is_subword,
                scores: p.scores.clone(),
            });
        }
    }
    let merges = ALL
        .into_iter()
        .map(|aggregation| {
            let entities = merge(model, windows.clone(), aggregation);
            let joined = tokens.iter().map(|t| joined(&entities, t)).collect();
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

/// The entity whose character span holds the token's (a strategy's entities never overlap;
/// under `none` each is one token's own span).
fn joined(entities: &[Entity], t: &NerToken) -> Option<usize> {
    entities
        .iter()
        .position(|e| e.start <= t.start && t.end <= e.end)
}
