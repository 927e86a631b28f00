//! `config.json` as Hugging Face writes it: one struct per architecture, field names = HF keys,
//! plus the detection of which architecture and head a checkpoint holds.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{DuetError, Result};

pub const SUPPORTED: &str =
    "GPT2LMHeadModel, GPT2Model, BertModel, BertForSequenceClassification, \
BertForTokenClassification, BertForMaskedLM, BertForPreTraining, DistilBertModel, \
DistilBertForSequenceClassification, DistilBertForTokenClassification, DistilBertForMaskedLM";

fn default_gelu_new() -> String {
    "gelu_new".into()
}
fn default_gelu() -> String {
    "gelu".into()
}
fn default_eps_gpt2() -> f64 {
    1e-5
}
fn default_eps_bert() -> f64 {
    1e-12
}
fn default_true() -> bool {
    true
}
fn default_absolute() -> String {
    "absolute".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_dropout() -> f64 {
    0.1
}

#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_gelu_new")]
    pub activation_function: String,
    #[serde(default = "default_eps_gpt2")]
    pub layer_norm_epsilon: f64,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default = "default_dropout")]
    pub resid_pdrop: f64,
    #[serde(default = "default_dropout")]
    pub embd_pdrop: f64,
    #[serde(default = "default_dropout")]
    pub attn_pdrop: f64,
}

impl Gpt2Config {
    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_gelu")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps_bert")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_absolute")]
    pub position_embedding_type: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DistilBertConfig {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub hidden_dim: usize,
    #[serde(default = "default_gelu")]
    pub activation: String,
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    #[serde(default = "default_dropout")]
    pub attention_dropout: f64,
    #[serde(default = "default_seq_dropout")]
    pub seq_classif_dropout: f64,
}
fn default_seq_dropout() -> f64 {
    0.2
}

/// What sits on top of the network: decides the outputs and which pipelines a model serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Causal language modelling (GPT-2's `lm_head`, tied to `wte`).
    CausalLm,
    /// The bare encoder: hidden states, used for embeddings.
    Base,
    SequenceClassification,
    TokenClassification,
    MaskedLm,
}

impl Head {
    pub fn name(self) -> &'static str {
        match self {
            Head::CausalLm => "causal language modelling",
            Head::Base => "base encoder",
            Head::SequenceClassification => "sequence classification",
            Head::TokenClassification => "token classification",
            Head::MaskedLm => "masked language modelling",
        }
    }
}

/// How classifier scores are turned into probabilities (HF `problem_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreFunction {
    Softmax,
    Sigmoid,
}

#[derive(Debug, Clone)]
pub enum Arch {
    Gpt2(Gpt2Config),
    Bert(BertConfig),
    DistilBert(DistilBertConfig),
}

/// A parsed `config.json`: the architecture, its head and the label names.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub arch: Arch,
    pub head: Head,
    /// `architectures[0]` as written, or the one implied by `model_type`.
    pub architecture: String,
    /// Labels by id, from `id2label` (empty when the config has none).
    pub id2label: Vec<String>,
    pub problem_type: Option<String>,
    /// The whole JSON, kept so exports can write it back with only what changed.
    pub raw: Value,
}

impl ModelConfig {
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let raw: Value =
            serde_json::from_slice(bytes).map_err(|e| DuetError::Config(e.to_string()))?;
        let obj = raw
            .as_object()
            .ok_or_else(|| DuetError::Config("not a JSON object".into()))?;
        let model_type = obj
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let architecture = obj
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| match model_type.as_str() {
                "gpt2" => "GPT2LMHeadModel".into(),
                "bert" => "BertModel".into(),
                "distilbert" => "DistilBertModel".into(),
                other => other.to_string(),
            });
        let unsupported = || DuetError::Unsupported {
            found: if model_type.is_empty() {
                format!("architecture `{architecture}`")
            } else {
                format!("architecture `{architecture}` (model_type `{model_type}`)")
            },
            supported: SUPPORTED.into(),
        };
        let (family, head) = match architecture.as_str() {
            "GPT2LMHeadModel" | "GPT2Model" => ("gpt2", Head::CausalLm),
            "BertModel" => ("bert", Head::Base),
            "BertForSequenceClassification" => ("bert", Head::SequenceClassification),
            "BertForTokenClassification" => ("bert", Head::TokenClassification),
            "BertForMaskedLM" | "BertForPreTraining" => ("bert", Head::MaskedLm),
            "DistilBertModel" => ("distilbert", Head::Base),
            "DistilBertForSequenceClassification" => ("distilbert", Head::SequenceClassification),
            "DistilBertForTokenClassification" => ("distilbert", Head::TokenClassification),
            "DistilBertForMaskedLM" => ("distilbert", Head::MaskedLm),
            _ => return Err(unsupported()),
        };
        if !model_type.is_empty() && model_type != family {
            return Err(unsupported());
        }
        let parse = |what: &str| -> DuetError { DuetError::Config(what.to_string()) };
        let arch = match family {
            "gpt2" => {
                let c: Gpt2Config =
                    serde_json::from_value(raw.clone()).map_err(|e| parse(&e.to_string()))?;
                check_heads(c.n_embd, c.n_head, "n_embd", "n_head")?;
                if !matches!(
                    c.activation_function.as_str(),
                    "gelu_new" | "gelu" | "gelu_pytorch_tanh" | "relu"
                ) {
                    return Err(DuetError::Unsupported {
                        found: format!("activation_function `{}`", c.activation_function),
                        supported: "gelu_new, gelu, gelu_pytorch_tanh, relu".into(),
                    });
                }
                Arch::Gpt2(c)
            }
            "bert" => {
                let c: BertConfig =
                    serde_json::from_value(raw.clone()).map_err(|e| parse(&e.to_string()))?;
                check_heads(
                    c.hidden_size,
                    c.num_attention_heads,
                    "hidden_size",
                    "num_attention_heads",
                )?;
                if c.position_embedding_type != "absolute" {
                    return Err(DuetError::Unsupported {
                        found: format!("position_embedding_type `{}`", c.position_embedding_type),
                        supported: "absolute".into(),
                    });
                }
                check_act(&c.hidden_act)?;
                Arch::Bert(c)
            }
            _ => {
                let c: DistilBertConfig =
                    serde_json::from_value(raw.clone()).map_err(|e| parse(&e.to_string()))?;
                check_heads(c.dim, c.n_heads, "dim", "n_heads")?;
                check_act(&c.activation)?;
                Arch::DistilBert(c)
            }
        };
        let id2label = parse_id2label(obj.get("id2label"))?;
        let problem_type = obj
            .get("problem_type")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(Self {
            arch,
            head,
            architecture,
            id2label,
            problem_type,
            raw,
        })
    }

    /// Number of labels of a classification head (`id2label`, else `num_labels`, else 2 as HF).
    pub fn num_labels(&self) -> usize {
        if !self.id2label.is_empty() {
            return self.id2label.len();
        }
        self.raw
            .get("num_labels")
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .unwrap_or(2)
    }

    /// Label name for an id, HF's `LABEL_{i}` when the config names none.
    pub fn label(&self, id: usize) -> String {
        self.id2label
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("LABEL_{id}"))
    }

    /// HF's text-classification pipeline: sigmoid for multi-label or single-logit heads.
    pub fn score_function(&self) -> ScoreFunction {
        if self.problem_type.as_deref() == Some("multi_label_classification")
            || self.num_labels() == 1
        {
            ScoreFunction::Sigmoid
        } else {
            ScoreFunction::Softmax
        }
    }

    /// Longest input in tokens the position embeddings allow.
    pub fn max_positions(&self) -> usize {
        match &self.arch {
            Arch::Gpt2(c) => c.n_positions,
            Arch::Bert(c) => c.max_position_embeddings,
            Arch::DistilBert(c) => c.max_position_embeddings,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match &self.arch {
            Arch::Gpt2(c) => c.vocab_size,
            Arch::Bert(c) => c.vocab_size,
            Arch::DistilBert(c) => c.vocab_size,
        }
    }

    pub fn is_gpt2(&self) -> bool {
        matches!(self.arch, Arch::Gpt2(_))
    }
}

fn check_heads(width: usize, heads: usize, w: &str, h: &str) -> Result<()> {
    if heads == 0 || !width.is_multiple_of(heads) {
        return Err(DuetError::Config(format!(
            "{w} ({width}) must be a multiple of {h} ({heads})"
        )));
    }
    Ok(())
}

fn check_act(act: &str) -> Result<()> {
    if matches!(act, "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu") {
        Ok(())
    } else {
        Err(DuetError::Unsupported {
            found: format!("activation `{act}`"),
            supported: "gelu, gelu_new, gelu_pytorch_tanh, relu".into(),
        })
    }
}

fn parse_id2label(v: Option<&Value>) -> Result<Vec<String>> {
    let Some(map) = v.and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut by_id = BTreeMap::new();
    for (k, v) in map {
        let id: usize = k
            .parse()
            .map_err(|_| DuetError::Config(format!("id2label key `{k}` is not a number")))?;
        let label = v
            .as_str()
            .ok_or_else(|| DuetError::Config(format!("id2label[{k}] is not a string")))?;
        by_id.insert(id, label.to_string());
    }
    let n = by_id.len();
    if by_id.keys().copied().ne(0..n) {
        return Err(DuetError::Config("id2label ids must be 0..n".into()));
    }
    Ok(by_id.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_architecture_says_what_is_supported() {
        let err = ModelConfig::from_json(br#"{"model_type":"t5","architectures":["T5Model"]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("T5Model") && err.contains("GPT2LMHeadModel"),
            "{err}"
        );
    }

    #[test]
    fn malformed_config_is_an_error() {
        assert!(matches!(
            ModelConfig::from_json(b"{not json"),
            Err(DuetError::Config(_))
        ));
        assert!(matches!(
            ModelConfig::from_json(br#"{"model_type":"gpt2","n_embd":10}"#),
            Err(DuetError::Config(_))
        ));
    }

    #[test]
    fn labels_and_score_function() {
        let c = ModelConfig::from_json(
            br#"{"architectures":["DistilBertForSequenceClassification"],"model_type":"distilbert",
            "vocab_size":10,"dim":8,"n_layers":1,"n_heads":2,"hidden_dim":16,
            "max_position_embeddings":16,"id2label":{"1":"b","0":"a"},
            "problem_type":"multi_label_classification"}"#,
        )
        .unwrap();
        assert_eq!(c.id2label, vec!["a", "b"]);
        assert_eq!(c.score_function(), ScoreFunction::Sigmoid);
        assert_eq!(c.label(5), "LABEL_5");
    }
}
