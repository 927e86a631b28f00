//! From user data to training examples: parsing by task, label sets, a fresh head when the
//! checkpoint has none (or other labels), tokenization with label alignment, and which
//! parameters train.

use burn::module::Param;
use burn::tensor::Tensor;
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{Arch, Head, ModelConfig};
use crate::error::{DuetError, Result};
use crate::models::bert::Bert;
use crate::models::distilbert::DistilBert;
use crate::module_path::{MapAt, ModulePath, Tracked};
use crate::network::Network;
use crate::tokenizer::Encoded;
use crate::train::data::{self, TaggedSentence, TextExample};
use crate::train::masking::MaskingConfig;
use crate::train::Trainable;
use crate::Model;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    SequenceClassification,
    TokenClassification,
    CausalLm,
    /// BERT's own objective: predict masked tokens (see `masking`).
    MaskedLm,
}

impl std::str::FromStr for Task {
    type Err = DuetError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "classify" | "sequence-classification" => Ok(Self::SequenceClassification),
            "ner" | "token-classification" => Ok(Self::TokenClassification),
            "lm" | "causal-lm" => Ok(Self::CausalLm),
            "mlm" | "masked-lm" => Ok(Self::MaskedLm),
            _ => Err(DuetError::InvalidOption(format!(
                "task `{s}` (use classify, ner, lm or mlm)"
            ))),
        }
    }
}

/// Parsed training data.
#[derive(Debug, Clone)]
pub enum TaskData {
    Labelled(Vec<TextExample>),
    Tagged(Vec<TaggedSentence>),
    Text(String),
}

impl TaskData {
    /// Parses `content` in the format the task reads: CSV/TSV, CoNLL, or plain text.
    pub fn parse(task: Task, content: &str) -> Result<Self> {
        Ok(match task {
            Task::SequenceClassification => Self::Labelled(data::parse_labelled(content)?),
            Task::TokenClassification => Self::Tagged(data::parse_conll(content)?),
            Task::CausalLm | Task::MaskedLm => {
                if content.trim().is_empty() {
                    return Err(DuetError::EmptyInput("the text is empty".into()));
                }
                Self::Text(content.to_string())
            }
        })
    }

    /// Renames labels (`("0", "negative")`…); labels not listed stay as they are.
    pub fn rename_labels(self, names: &[(String, String)]) -> Self {
        let rename = |l: &mut String| {
            if let Some((_, to)) = names.iter().find(|(from, _)| from == l) {
                *l = to.clone();
            }
        };
        match self {
            Self::Labelled(mut v) => {
                v.iter_mut().for_each(|r| rename(&mut r.label));
                Self::Labelled(v)
            }
            Self::Tagged(mut v) => {
                v.iter_mut()
                    .for_each(|s| s.tags.iter_mut().for_each(rename));
                Self::Tagged(v)
            }
            t => t,
        }
    }

    /// Holds out `fraction` for evaluation: rows are shuffled with `seed` first (files are
    /// often sorted by label), plain text is cut at the end.
    pub fn split(self, fraction: f64, seed: u64) -> (Self, Self) {
        match self {
            Self::Labelled(v) => {
                let (a, b) = shuffled_cut(v, fraction, seed);
                (Self::Labelled(a), Self::Labelled(b))
            }
            Self::Tagged(v) => {
                let (a, b) = shuffled_cut(v, fraction, seed);
                (Self::Tagged(a), Self::Tagged(b))
            }
            Self::Text(t) => {
                let chars: Vec<char> = t.chars().collect();
                let n = ((chars.len() as f64) * (1.0 - fraction)) as usize;
                (
                    Self::Text(chars[..n].iter().collect()),
                    Self::Text(chars[n..].iter().collect()),
                )
            }
        }
    }
}

fn shuffled_cut<T: Clone>(mut v: Vec<T>, f: f64, seed: u64) -> (Vec<T>, Vec<T>) {
    let mut rng = crate::generation::rng::Rng::new(seed);
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    let n = ((v.len() as f64) * f).round() as usize;
    let n = n.min(v.len().saturating_sub(1));
    let (a, b) = v.split_at(v.len() - n);
    (a.to_vec(), b.to_vec())
}

/// What a label position holds: a class, or per-token ids with -100 for "ignore". Masked-LM
/// examples are stored unmasked, with each token's word (`None` for `[CLS]`/`[SEP]`, never
/// chosen), and masked afresh for every batch (`masking::mask_example`), as HF's collator does.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Class(usize),
    Tokens(Vec<i64>),
    Unmasked { words: Vec<Option<u32>> },
}

/// One tokenized training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub target: Target,
}

impl Example {
    pub fn encoded(&self) -> Encoded {
        let n = self.ids.len();
        Encoded {
            ids: self.ids.clone(),
            type_ids: self.type_ids.clone(),
            offsets: vec![(0, 0); n],
            special: vec![false; n],
            tokens: Vec::new(),
            word_ids: vec![None; n],
        }
    }

    pub fn class(&self) -> Option<usize> {
        match self.target {
            Target::Class(c) => Some(c),
            _ => None,
        }
    }

    pub fn token_labels(&self) -> &[i64] {
        match &self.target {
            Target::Tokens(t) => t,
            _ => &[],
        }
    }
}

/// The task and its label names, index = class id; for masked-LM, how to mask.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub task: Task,
    pub labels: Vec<String>,
    pub masking: Option<Masking>,
}

impl Prepared {
    /// What `model` needs for `task`: its label names, or for masked-LM its mask token and
    /// vocabulary with the default masking settings.
    pub fn new(model: &Model, task: Task) -> Result<Self> {
        let (labels, masking) = match task {
            Task::CausalLm => (Vec::new(), None),
            Task::MaskedLm => {
                let (_, mask_id) = model.tokenizer.mask()?;
                let masking = Masking {
                    mask_id,
                    vocab_size: model.config.vocab_size(),
                    config: MaskingConfig::default(),
                };
                (Vec::new(), Some(masking))
            }
            _ => (model.config.id2label.clone(), None),
        };
        Ok(Self {
            task,
            labels,
            masking,
        })
    }
}

/// How masked-LM batches are masked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Masking {
    pub mask_id: u32,
    pub vocab_size: usize,
    pub config: MaskingConfig,
}

/// Sorts labels so numeric ones go in number order ("0", "1", … "10").
fn sort_labels(mut labels: Vec<String>) -> Vec<String> {
    labels.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
    labels
}

/// Gives `model` the head `task` needs for the labels in `data` (keeping the checkpoint's head
/// when it already has exactly that label set), then tokenizes `data` into examples.
/// `max_len` caps sequence length (0: the model's maximum); for language modelling it is the
/// block size.
pub fn prepare(
    model: Model,
    task: Task,
    data: &TaskData,
    max_len: usize,
) -> Result<(Model, Prepared, Vec<Example>)> {
    let model = match (task, data) {
        (Task::SequenceClassification, TaskData::Labelled(rows)) => {
            let wanted = sort_labels(data::label_set(rows.iter().map(|r| r.label.as_str())));
            with_head(model, Head::SequenceClassification, &wanted)?
        }
        (Task::TokenClassification, TaskData::Tagged(sents)) => {
            let wanted =
                data::label_set(sents.iter().flat_map(|s| s.tags.iter().map(String::as_str)));
            with_head(model, Head::TokenClassification, &wanted)?
        }
        (Task::CausalLm, TaskData::Text(_)) => {
            model.network.gpt2()?;
            model
        }
        (Task::MaskedLm, TaskData::Text(_)) => with_head(model, Head::MaskedLm, &[])?,
        _ => {
            return Err(DuetError::InvalidOption(
                "the data does not match the task".into(),
            ))
        }
    };
    let prepared = Prepared::new(&model, task)?;
    let examples = encode_examples(&model, &prepared, data, max_len)?;
    Ok((model, prepared, examples))
}

/// Tokenizes `data` with the label ids of `prepared` (held-out data uses the training labels;
/// a label the model does not know is an error).
pub fn encode_examples(
    model: &Model,
    prepared: &Prepared,
    data: &TaskData,
    max_len: usize,
) -> Result<Vec<Example>> {
    let cap = if max_len == 0 {
        model.config.max_positions()
    } else {
        max_len.min(model.config.max_positions())
    };
    let labels = &prepared.labels;
    let id_of = |l: &str| {
        labels.iter().position(|x| x == l).ok_or_else(|| {
            DuetError::InvalidOption(format!(
                "label `{l}` is not among the training labels {labels:?}"
            ))
        })
    };
    match (prepared.task, data) {
        (Task::SequenceClassification, TaskData::Labelled(rows)) => {
            let mut out = Vec::new();
            for r in rows {
                let e = model.tokenizer.encode(&r.text, true)?;
                let class = id_of(&r.label)?;
                let (ids, type_ids) = truncate(e.ids, e.type_ids, cap);
                out.push(Example {
                    ids,
                    type_ids,
                    target: Target::Class(class),
                });
            }
            Ok(out)
        }
        (Task::TokenClassification, TaskData::Tagged(sents)) => {
            let mut out = Vec::new();
            for s in sents {
                let e = model.tokenizer.encode_words(&s.words)?;
                // Label the first sub-token of each word; the rest and specials are ignored.
                let mut prev = None;
                let mut tags = Vec::with_capacity(e.word_ids.len());
                for w in &e.word_ids {
                    tags.push(match w {
                        Some(w) if Some(*w) != prev => id_of(&s.tags[*w as usize])? as i64,
                        _ => -100,
                    });
                    prev = *w;
                }
                let (ids, type_ids) = truncate(e.ids, e.type_ids, cap);
                if tags.len() > cap {
                    tags.truncate(cap - 1);
                    tags.push(-100);
                }
                if tags.iter().any(|&t| t >= 0) {
                    out.push(Example {
                        ids,
                        type_ids,
                        target: Target::Tokens(tags),
                    });
                }
            }
            Ok(out)
        }
        (Task::CausalLm, TaskData::Text(text)) => {
            let ids = model.tokenizer.encode(text, false)?.ids;
            Ok(data::blocks(&ids, cap)
                .into_iter()
                .map(lm_example)
                .collect())
        }
        (Task::MaskedLm, TaskData::Text(text)) => {
            // The text in blocks of `cap` tokens, each `[CLS] … [SEP]` (HF's `group_texts`).
            let tok = &model.tokenizer;
            let special = |t: &Option<String>, what: &str| {
                t.as_deref()
                    .and_then(|t| tok.token_to_id(t))
                    .ok_or_else(|| DuetError::Tokenizer(format!("the tokenizer has no {what}")))
            };
            let (cls, sep) = (
                special(&tok.cls_token, "[CLS]")?,
                special(&tok.sep_token, "[SEP]")?,
            );
            if cap < 3 {
                return Err(DuetError::InvalidOption(
                    "masked-LM blocks need at least 3 tokens".into(),
                ));
            }
            let e = tok.encode(text, false)?;
            let words: Vec<Option<u32>> = e.word_ids.clone();
            Ok(e.ids
                .chunks(cap - 2)
                .zip(words.chunks(cap - 2))
                .map(|(ids, w)| {
                    let ids: Vec<u32> = [&[cls], ids, &[sep]].concat();
                    let words = [&[None], w, &[None]].concat();
                    Example {
                        type_ids: vec![0; ids.len()],
                        ids,
                        target: Target::Unmasked { words },
                    }
                })
                .collect())
        }
        _ => Err(DuetError::InvalidOption(
            "the data does not match the task".into(),
        )),
    }
}

/// A causal-LM block: each token's target is the next one in the block; the last has none (HF
/// shifts labels inside the block, so a block never predicts across its boundary).
fn lm_example(ids: Vec<u32>) -> Example {
    let mut targets: Vec<i64> = ids[1..].iter().map(|&i| i as i64).collect();
    targets.push(-100);
    Example {
        type_ids: vec![0; ids.len()],
        ids,
        target: Target::Tokens(targets),
    }
}

/// The causal-LM blocks of `set` (consecutive blocks of one text, as `encode_examples` cuts them)
/// cut again from the text rotated left by `offset` tokens: the same number of blocks of the same
/// lengths, one of them spanning the text's end and start. `random_offsets` draws a new offset
/// each epoch, so no block boundary repeats.
pub fn rotated_blocks(set: &[Example], offset: usize) -> Vec<Example> {
    let stream: Vec<u32> = set.iter().flat_map(|e| e.ids.iter().copied()).collect();
    if stream.is_empty() {
        return Vec::new();
    }
    let offset = offset % stream.len();
    let mut rotated = stream[offset..].iter().chain(&stream[..offset]).copied();
    set.iter()
        .map(|e| lm_example(rotated.by_ref().take(e.ids.len()).collect()))
        .collect()
}

/// Keeps at most `cap` tokens, ending on the original last token (`[SEP]`).
fn truncate(mut ids: Vec<u32>, mut types: Vec<u32>, cap: usize) -> (Vec<u32>, Vec<u32>) {
    if ids.len() > cap {
        let last = *ids.last().expect("non-empty");
        ids.truncate(cap - 1);
        ids.push(last);
        types.truncate(cap);
    }
    (ids, types)
}

/// `model` with `head` over `labels`: the checkpoint's own head when it already has it with the
/// same label set (its order kept), else a freshly initialised one (HF's initialisation:
/// normal(0.02) weights, zero biases, unit layer norms; a masked LM's decoder is tied to the
/// word embeddings the encoder keeps).
pub fn with_head(model: Model, head: Head, labels: &[String]) -> Result<Model> {
    let same_set = {
        let mut a = model.config.id2label.clone();
        let mut b = labels.to_vec();
        a.sort();
        b.sort();
        a == b
    };
    // A masked LM's head is the checkpoint's whenever it has one (its labels are the vocabulary).
    if model.config.head == head && (same_set || head == Head::MaskedLm) {
        return Ok(model);
    }
    let family = match &model.config.arch {
        Arch::Gpt2(_) => {
            return Err(DuetError::WrongHead(format!(
                "{} (GPT-2 only does language modelling)",
                head.name()
            )))
        }
        Arch::Bert(_) => "Bert",
        Arch::DistilBert(_) => "DistilBert",
    };
    let suffix = match head {
        Head::SequenceClassification => "ForSequenceClassification",
        Head::TokenClassification => "ForTokenClassification",
        Head::MaskedLm => "ForMaskedLM",
        _ => {
            return Err(DuetError::InvalidOption(format!(
                "cannot train a {} head",
                head.name()
            )))
        }
    };
    let mut raw = model.config.raw.clone();
    let obj = raw
        .as_object_mut()
        .ok_or_else(|| DuetError::Config("not an object".into()))?;
    obj.insert("architectures".into(), json!([format!("{family}{suffix}")]));
    // A masked LM's outputs are the vocabulary: it keeps the config's label fields as they are.
    if head != Head::MaskedLm {
        let id2label: serde_json::Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), json!(l)))
            .collect();
        let label2id: serde_json::Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), json!(i)))
            .collect();
        obj.insert("id2label".into(), Value::Object(id2label));
        obj.insert("label2id".into(), Value::Object(label2id));
        obj.remove("num_labels");
        obj.remove("problem_type");
    }
    let config = ModelConfig::from_json(&serde_json::to_vec(&raw).expect("json"))?;
    let device = model.device.clone();
    let n = labels.len();
    let network = match (model.network, &config.arch) {
        (Network::Bert(old), Arch::Bert(c)) => {
            let mut fresh = Bert::new(c, head, n, &device);
            fresh.bert.embeddings = old.bert.embeddings;
            fresh.bert.encoder = old.bert.encoder;
            if fresh.bert.pooler.is_some() && old.bert.pooler.is_some() {
                fresh.bert.pooler = old.bert.pooler;
            }
            Network::Bert(fresh)
        }
        (Network::DistilBert(old), Arch::DistilBert(c)) => {
            let mut fresh = DistilBert::new(c, head, n, &device);
            fresh.distilbert = old.distilbert;
            Network::DistilBert(fresh)
        }
        _ => unreachable!("family checked above"),
    };
    Ok(Model {
        config,
        network,
        ..model
    })
}

/// Whether a parameter path belongs to the task head (trained in every mode).
fn is_head(path: &str) -> bool {
    [
        "classifier",
        "pre_classifier",
        "bert.pooler",
        "cls.",
        "vocab_",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// The transformer layer a path is in, and how many layers there are, if any.
fn layer_of(path: &str) -> Option<usize> {
    for prefix in [
        "bert.encoder.layer.",
        "distilbert.transformer.layer.",
        "transformer.h.",
    ] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return rest.split('.').next()?.parse().ok();
        }
    }
    None
}

struct Trainability<'a> {
    mode: &'a Trainable,
    layers: usize,
}

impl MapAt for Trainability<'_> {
    fn map_float_at<const D: usize>(
        &mut self,
        at: &ModulePath,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let path = at.joined();
        let trains = is_head(&path)
            || match self.mode {
                Trainable::All => true,
                Trainable::Head => false,
                Trainable::Lora(_) => path.contains(".lora."),
                Trainable::TopLayers(n) => {
                    layer_of(&path).is_some_and(|l| l + n >= self.layers)
                        || path.starts_with("transformer.ln_f")
                }
            };
        param.set_require_grad(trains)
    }
}

/// Marks which parameters learn for `mode`.
pub fn set_trainable(network: Network, mode: &Trainable) -> Result<Network> {
    let layers = match &network {
        Network::Gpt2(m) => m.transformer.h.len(),
        Network::Bert(m) => m.bert.encoder.layer.len(),
        Network::DistilBert(m) => m.distilbert.transformer.layer.len(),
    };
    if matches!(network, Network::Gpt2(_)) && *mode == Trainable::Head {
        return Err(DuetError::InvalidOption(
            "GPT-2's output head is tied to its token embeddings: train the top layers, all, or LoRA".into(),
        ));
    }
    if let Trainable::TopLayers(n) = mode {
        if *n == 0 || *n > layers {
            return Err(DuetError::InvalidOption(format!(
                "top layers must be between 1 and {layers}"
            )));
        }
    }
    Ok(network.map(&mut Tracked::new(Trainability { mode, layers })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_blocks_recut_the_same_text_into_the_same_shapes() {
        let stream: Vec<u32> = (0..23).collect();
        let set: Vec<Example> = data::blocks(&stream, 5)
            .into_iter()
            .map(lm_example)
            .collect();
        assert_eq!(rotated_blocks(&set, 0), set, "offset 0 is the fixed cut");
        assert_eq!(rotated_blocks(&set, 23), set, "a whole turn too");
        let recut = rotated_blocks(&set, 7);
        let lens = |s: &[Example]| s.iter().map(|e| e.ids.len()).collect::<Vec<_>>();
        assert_eq!(lens(&recut), lens(&set));
        let ids: Vec<u32> = recut.iter().flat_map(|e| e.ids.clone()).collect();
        let expected: Vec<u32> = (7..23).chain(0..7).collect();
        assert_eq!(ids, expected);
        // Each block predicts its own next tokens and nothing past its end.
        for e in &recut {
            let Target::Tokens(t) = &e.target else {
                panic!("a causal-LM target")
            };
            let next: Vec<i64> = e.ids[1..].iter().map(|&i| i as i64).collect();
            assert_eq!(t[..t.len() - 1], next[..]);
            assert_eq!(t.last(), Some(&-100));
        }
    }
}
