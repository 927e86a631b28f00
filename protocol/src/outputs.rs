//! What the pipelines return, in the JSON shapes of Hugging Face's pipelines (field names and
//! optional fields as `transformers` writes them). The engine (`duet_model`) produces these; the
//! page only reads them.

use serde::{Deserialize, Serialize};

/// One label of `text-classification` with its score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// An entity as the HF pipeline returns it: `entity` + `index` without aggregation,
/// `entity_group` with it. `start`/`end` are char offsets into the text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_group: Option<String>,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub word: String,
    pub start: usize,
    pub end: usize,
}

/// One (sub-)token of `token-classification`, special tokens left out, with its label scores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NerToken {
    /// The token as the tokenizer spells it (`##ing`), or the text under it for an unknown one.
    pub token: String,
    /// Its position in the encoding (special tokens counted), as the `none` strategy's `index`.
    pub index: usize,
    /// Char offsets into the text.
    pub start: usize,
    pub end: usize,
    /// Continues the word before it (the word strategies merge it into that word).
    pub is_subword: bool,
    /// Softmax over the labels, in `NerTokens::labels` order.
    pub scores: Vec<f32>,
}

/// What one aggregation strategy made of the tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NerMerge {
    /// `none`, `simple`, `first`, `average` or `max`.
    pub aggregation: String,
    /// The pipeline's output for this strategy (`O` left out).
    pub entities: Vec<Entity>,
    /// For each token, the entity it is part of (an index into `entities`), or none (`O`).
    pub joined: Vec<Option<usize>>,
}

/// `token-classification` token by token: every token's label distribution and, from the same
/// run, each strategy's merge (so switching strategy needs no new run).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NerTokens {
    /// The model's labels (`id2label`), the order of every `scores`.
    pub labels: Vec<String>,
    pub tokens: Vec<NerToken>,
    /// One per strategy: `none`, `simple`, `first`, `average`, `max`.
    pub merges: Vec<NerMerge>,
}

/// One candidate of `fill-mask`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MaskFill {
    pub score: f32,
    pub token: u32,
    pub token_str: String,
    pub sequence: String,
}

/// Held-out metrics of a training run; which ones are present depends on the task.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Masked-LM: how often the masked token is among the five best predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top5_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perplexity: Option<f64>,
}

/// One parity check's outcome (the engine's self-test on whatever device it runs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub fixture: String,
    pub check: String,
    pub passed: bool,
    /// The measured difference, or what differed.
    pub detail: String,
}

/// One text's attention probabilities (HF's `output_attentions`), as the Inside page draws them
/// and `duet attention --json` prints them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttentionMap {
    pub ids: Vec<u32>,
    /// The vocabulary's spelling of each id (`convert_ids_to_tokens`).
    pub tokens: Vec<String>,
    /// `[layer][head][query][key]`; each query's row sums to 1. GPT-2's is zero above the
    /// diagonal (a query never sees a later key).
    pub attentions: Vec<Vec<Vec<Vec<f32>>>>,
}

/// One guess of a model for a position: the token as text and its probability.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Guess {
    pub token: String,
    pub score: f32,
}

/// One word of a sentence seen two ways: what a masked LM fills in with the word masked (reading
/// both sides), and what GPT expects there from the words to its left alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WordGuesses {
    pub word: String,
    /// Character offsets of the word in the sentence.
    pub start: usize,
    pub end: usize,
    /// `fill-mask` of the sentence with this word replaced by the mask token, best first.
    pub masked: Vec<Guess>,
    /// GPT's most likely next tokens after the text before the word, best first (empty for the
    /// first word: nothing is to its left).
    pub next: Vec<Guess>,
    /// GPT's probability of the token the word actually starts with (absent for the first word).
    pub next_actual: Option<f32>,
}

/// One decoding strategy's continuation of a prompt, for the Strategies view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StrategyColumn {
    /// `greedy`, `beam search`, `top-k` or `top-p`.
    pub strategy: String,
    /// Its settings, in words.
    pub settings: String,
    pub continuation: String,
    pub new_token_ids: Vec<u32>,
    /// The model's log-probability of the continuation given the prompt (raw, before any
    /// processor): the same scale for every strategy.
    pub log_prob: f32,
}
