//! token-classification, following `TokenClassificationPipeline` step by step: per-token scores
//! (`gather_pre_entities`), word aggregation (`aggregate_words`), B-/I- grouping
//! (`group_entities`), dropping `O`, and, for texts longer than the model, overlapping windows
//! merged by `aggregate_overlapping_entities`.

use crate::error::{DuetError, Result};
use crate::generation::processors::{argmax, softmax};
use crate::network::{read_f32, EncoderBatch};
use crate::tokenizer::Encoded;
use crate::Model;

pub use duet_protocol::outputs::Entity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    None,
    Simple,
    First,
    Average,
    Max,
}

impl Aggregation {
    /// The name HF's pipeline takes (`aggregation_strategy`).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Simple => "simple",
            Self::First => "first",
            Self::Average => "average",
            Self::Max => "max",
        }
    }
}

impl std::str::FromStr for Aggregation {
    type Err = DuetError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => Self::None,
            "simple" => Self::Simple,
            "first" => Self::First,
            "average" => Self::Average,
            "max" => Self::Max,
            _ => {
                return Err(DuetError::InvalidOption(format!(
                    "aggregation `{s}` (use none, simple, first, average or max)"
                )))
            }
        })
    }
}

/// Options of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct NerOptions {
    pub aggregation: Aggregation,
    /// Tokens shared by consecutive windows when a text is longer than the model's limit.
    /// `None`: a quarter of the window.
    pub stride: Option<usize>,
}

impl Default for NerOptions {
    fn default() -> Self {
        Self {
            aggregation: Aggregation::Simple,
            stride: None,
        }
    }
}

/// One token with its label scores, before aggregation.
#[derive(Debug, Clone)]
pub(crate) struct PreEntity {
    pub word: String,
    pub scores: Vec<f32>,
    pub start: usize,
    pub end: usize,
    pub index: usize,
    pub is_subword: bool,
}

/// Entities for each text.
pub async fn ner(model: &Model, texts: &[String], opts: NerOptions) -> Result<Vec<Vec<Entity>>> {
    let windows = scored_windows(model, texts, opts.stride).await?;
    Ok(windows
        .into_iter()
        .map(|w| merge(model, w, opts.aggregation))
        .collect())
}

/// Every text's windows (one, or overlapping ones for a text longer than the model), each as
/// its tokens with their label scores: one model run for all of them.
pub(crate) async fn scored_windows(
    model: &Model,
    texts: &[String],
    stride: Option<usize>,
) -> Result<Vec<Vec<Vec<PreEntity>>>> {
    if texts.is_empty() {
        return Err(DuetError::EmptyInput("no text given".into()));
    }
    let max = model.config.max_positions();
    let stride = stride.unwrap_or(max / 4);
    // Every window of every text, remembering which text it came from.
    let mut windows: Vec<(usize, Encoded)> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        if text.trim().is_empty() {
            return Err(DuetError::EmptyInput("a text is empty".into()));
        }
        let whole = model.tokenizer.encode(text, true)?;
        if whole.len() <= max {
            windows.push((i, whole));
        } else {
            for w in model.tokenizer.encode_windows(text, max, stride)? {
                windows.push((i, w));
            }
        }
    }
    let encs: Vec<Encoded> = windows.iter().map(|(_, e)| e.clone()).collect();
    let batch = EncoderBatch::new(&encs, model.tokenizer.pad_token_id, &model.device)?;
    let logits = model.network.token_logits(&batch)?; // [W, T, labels]
    let [_, t, labels] = logits.dims();
    let flat = read_f32(logits).await?;
    let mut per_text: Vec<Vec<Vec<PreEntity>>> = vec![Vec::new(); texts.len()];
    for (w, (text_idx, enc)) in windows.iter().enumerate() {
        let rows: Vec<&[f32]> = (0..enc.len())
            .map(|i| &flat[(w * t + i) * labels..(w * t + i + 1) * labels])
            .collect();
        per_text[*text_idx].push(gather_pre_entities(model, &texts[*text_idx], enc, &rows));
    }
    Ok(per_text)
}

/// One text's entities under `strategy`, from its scored windows: each window aggregated, `O`
/// dropped, and entities that overlapping windows both found kept once.
pub(crate) fn merge(
    model: &Model,
    windows: Vec<Vec<PreEntity>>,
    strategy: Aggregation,
) -> Vec<Entity> {
    let n = windows.len();
    let entities: Vec<Entity> = windows
        .into_iter()
        .flat_map(|pre| aggregate(model, pre, strategy))
        .filter(shown)
        .collect();
    if n > 1 {
        aggregate_overlapping(entities)
    } else {
        entities
    }
}

/// Whether the pipeline returns `e`: everything but the `O` (outside) label.
fn shown(e: &Entity) -> bool {
    e.entity.as_deref() != Some("O") && e.entity_group.as_deref() != Some("O")
}

fn gather_pre_entities(
    model: &Model,
    text: &str,
    enc: &Encoded,
    rows: &[&[f32]],
) -> Vec<PreEntity> {
    let chars: Vec<char> = text.chars().collect();
    let exact = model.tokenizer.marks_subwords();
    let unk = model.tokenizer.unk_token_id();
    let mut out = Vec::new();
    for (idx, row) in rows.iter().enumerate() {
        if enc.special[idx] {
            continue;
        }
        let (start, end) = enc.offsets[idx];
        let word_ref: String = chars[start.min(chars.len())..end.min(chars.len())]
            .iter()
            .collect();
        let mut word = enc.tokens[idx].clone();
        let mut is_subword = if exact {
            word.chars().count() != word_ref.chars().count()
        } else {
            // HF's fallback: a token glued to the previous character is a sub-word.
            start > 0 && !chars[start - 1..(start + 1).min(chars.len())].contains(&' ')
        };
        if Some(enc.ids[idx]) == unk {
            word = word_ref;
            is_subword = false;
        }
        out.push(PreEntity {
            word,
            scores: softmax(row),
            start,
            end,
            index: idx,
            is_subword,
        });
    }
    out
}

fn aggregate(model: &Model, pre: Vec<PreEntity>, strategy: Aggregation) -> Vec<Entity> {
    match strategy {
        Aggregation::None | Aggregation::Simple => {
            let tokens: Vec<Entity> = pre
                .into_iter()
                .map(|p| {
                    let best = argmax(&p.scores);
                    Entity {
                        entity: Some(model.config.label(best)),
                        entity_group: None,
                        score: p.scores[best],
                        index: Some(p.index),
                        word: p.word,
                        start: p.start,
                        end: p.end,
                    }
                })
                .collect();
            if strategy == Aggregation::Simple {
                group_entities(model, tokens)
            } else {
                tokens
            }
        }
        _ => {
            let words = aggregate_words(model, pre, strategy);
            group_entities(model, words)
        }
    }
}

/// Merges sub-word tokens into words, each word labelled by `strategy`.
fn aggregate_words(model: &Model, pre: Vec<PreEntity>, strategy: Aggregation) -> Vec<Entity> {
    let mut words: Vec<Vec<PreEntity>> = Vec::new();
    for p in pre {
        match words.last_mut() {
            Some(group) if p.is_subword => group.push(p),
            _ => words.push(vec![p]),
        }
    }
    words
        .into_iter()
        .map(|group| {
            let tokens: Vec<String> = group.iter().map(|p| p.word.clone()).collect();
            let (label, score) = match strategy {
                Aggregation::First => {
                    let s = &group[0].scores;
                    let i = argmax(s);
                    (i, s[i])
                }
                Aggregation::Max => {
                    // The token whose best score is highest (first on ties, like Python's max).
                    let mut best = &group[0];
                    let top = |p: &PreEntity| p.scores.iter().copied().fold(f32::MIN, f32::max);
                    for p in &group[1..] {
                        if top(p) > top(best) {
                            best = p;
                        }
                    }
                    let i = argmax(&best.scores);
                    (i, best.scores[i])
                }
                _ => {
                    let n = group.len() as f32;
                    let avg: Vec<f32> = (0..group[0].scores.len())
                        .map(|l| group.iter().map(|p| p.scores[l]).sum::<f32>() / n)
                        .collect();
                    let i = argmax(&avg);
                    (i, avg[i])
                }
            };
            Entity {
                entity: Some(model.config.label(label)),
                entity_group: None,
                score,
                index: None,
                word: model.tokenizer.tokens_to_string(&tokens),
                start: group[0].start,
                end: group[group.len() - 1].end,
            }
        })
        .collect()
}

/// `B-X`/`I-X` → (`B`|`I`, `X`); a label without prefix counts as `I`.
fn tag(label: &str) -> (&str, &str) {
    if let Some(t) = label.strip_prefix("B-") {
        ("B", t)
    } else if let Some(t) = label.strip_prefix("I-") {
        ("I", t)
    } else {
        ("I", label)
    }
}

/// Groups consecutive entities of one type into spans, a `B-` opening a new one.
fn group_entities(model: &Model, entities: Vec<Entity>) -> Vec<Entity> {
    let mut groups: Vec<Vec<Entity>> = Vec::new();
    for e in entities {
        let label = e.entity.clone().unwrap_or_default();
        let joins = groups.last().is_some_and(|g| {
            let last = g[g.len() - 1].entity.as_deref().unwrap_or("");
            let (bi, t) = tag(&label);
            t == tag(last).1 && bi != "B"
        });
        if joins {
            groups.last_mut().expect("checked").push(e);
        } else {
            groups.push(vec![e]);
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let first = g[0].entity.as_deref().unwrap_or("");
            let group = first.split_once('-').map_or(first, |(_, t)| t).to_string();
            let tokens: Vec<String> = g.iter().map(|e| e.word.clone()).collect();
            Entity {
                entity: None,
                entity_group: Some(group),
                score: g.iter().map(|e| e.score).sum::<f32>() / g.len() as f32,
                index: None,
                word: model.tokenizer.tokens_to_string(&tokens),
                start: g[0].start,
                end: g[g.len() - 1].end,
            }
        })
        .collect()
}

/// Windows overlap, so an entity can come back from two of them: keep one per overlapping
/// span, the longer, then the higher-scoring.
fn aggregate_overlapping(mut entities: Vec<Entity>) -> Vec<Entity> {
    if entities.is_empty() {
        return entities;
    }
    entities.sort_by_key(|e| e.start);
    let mut out = Vec::new();
    let mut prev = entities[0].clone();
    for e in entities.into_iter() {
        if prev.start <= e.start && e.start < prev.end {
            let (len, prev_len) = (e.end - e.start, prev.end - prev.start);
            if len > prev_len || (len == prev_len && e.score > prev.score) {
                prev = e;
            }
        } else {
            out.push(prev);
            prev = e;
        }
    }
    out.push(prev);
    out
}
