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
