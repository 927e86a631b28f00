//! The messages between the page and the engine worker. Both sides serialise these as JSON
//! strings; local files travel beside the JSON as `File` objects.
//! Every request carries an id; every reply names the request it belongs to.

use serde::{Deserialize, Serialize};

use crate::outputs::{
    AttentionMap, Check, Entity, LabelScore, MaskFill, Metrics, NerTokens, StrategyColumn,
    WordGuesses,
};

/// Where the loaded models sit: one per page, so each page keeps its own.
pub const SLOTS: [&str; 5] = ["generate", "classify", "ner", "fill-mask", "embed"];

/// Where a model's files come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// One of the models shipped in `public/models/` (served at `./models/<name>/`).
    Default { name: String },
    /// A Hugging Face repo id such as `gpt2` or `dslim/bert-base-NER`, resolved to the Hub's
    /// file URLs under `endpoint` (the Hub itself unless a mirror is set).
    Hub {
        repo: String,
        revision: String,
        endpoint: String,
    },
    /// Any folder URL holding `config.json`, `model.safetensors` and a tokenizer.
    Url { base: String },
    /// Files the user picked or dropped (they travel with the message).
    Files { names: Vec<String> },
    /// The model the Fine-tune page just trained.
    Trained,
}

impl Source {
    /// The folder URL the files are fetched from (none for local files or trained models).
    pub fn base_url(&self) -> Option<String> {
        let slash = |s: &str| {
            if s.ends_with('/') {
                s.to_string()
            } else {
                format!("{s}/")
            }
        };
        match self {
            Source::Default { name } => Some(format!("./models/{name}/")),
            Source::Hub {
                repo,
                revision,
                endpoint,
            } => Some(hub_base(endpoint, repo, revision)),
            Source::Url { base } => Some(slash(base.trim())),
            Source::Files { .. } | Source::Trained => None,
        }
    }

    /// A short name for the UI.
    pub fn label(&self) -> String {
        match self {
            Source::Default { name } => name.clone(),
            Source::Hub { repo, .. } => repo.clone(),
            Source::Url { base } => base.clone(),
            Source::Files { names } => format!("{} local file(s)", names.len()),
            Source::Trained => "fine-tuned model".into(),
        }
    }
}

/// The Hub's file URL prefix for a repo: `{endpoint}/{repo}/resolve/{revision}/`.
pub fn hub_base(endpoint: &str, repo: &str, revision: &str) -> String {
    let endpoint = endpoint.trim().trim_end_matches('/');
    let endpoint = if endpoint.is_empty() {
        "https://huggingface.co"
    } else {
        endpoint
    };
    let revision = if revision.trim().is_empty() {
        "main"
    } else {
        revision.trim()
    };
    format!(
        "{endpoint}/{}/resolve/{revision}/",
        repo.trim().trim_matches('/')
    )
}

/// Checks a repo id the way the Hub names them: `name` or `owner/name`, of letters, digits,
/// `-`, `_` and `.`.
pub fn valid_repo_id(repo: &str) -> bool {
    let parts: Vec<&str> = repo.trim().split('/').collect();
    !repo.trim().is_empty()
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateParams {
    pub prompt: String,
    pub max_new_tokens: usize,
    pub do_sample: bool,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub repetition_penalty: f32,
    pub seed: u64,
    /// How many of the most likely next tokens to report per step.
    pub top_probs: usize,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            prompt: String::new(),
            max_new_tokens: 40,
            do_sample: true,
            temperature: 0.8,
            top_k: 50,
            top_p: 0.95,
            repetition_penalty: 1.0,
            seed: 42,
            top_probs: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainParams {
    /// `classify`, `ner`, `lm` or `mlm`.
    pub task: String,
    /// The examples as pasted or uploaded (TSV/CSV, CoNLL, or plain text).
    pub data: String,
    /// `head`, `top:N`, `all` or `lora`.
    pub trainable: String,
    pub lora_rank: usize,
    pub epochs: usize,
    pub max_steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Fraction of the data held out for evaluation.
    pub eval_fraction: f64,
    pub seed: u64,
    /// End with the weights of the evaluation with the lowest held-out loss (HF's
    /// `load_best_model_at_end`).
    pub load_best: bool,
    /// Stop after this many evaluations in a row without a lower held-out loss; 0: never.
    pub early_stopping_patience: usize,
    /// Language models only: each epoch cuts the text into blocks from a new random offset.
    pub random_offsets: bool,
}

/// The Pretrain page: one text, a fresh GPT and a fresh BERT of one shape, trained side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainParams {
    pub text: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    /// Both models' context, and the length of their training blocks.
    pub block_size: usize,
    /// The size both tokenizers are trained to.
    pub vocab_size: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Steps to take now (each a step of both models).
    pub steps: usize,
    /// A GPT continuation and a BERT fill every this many steps.
    pub sample_every: usize,
    pub seed: u64,
    /// GPT's prompt and BERT's sentence with one `[MASK]`; empty: chosen from the text.
    pub prompt: String,
    pub masked: String,
}

impl Default for PretrainParams {
    fn default() -> Self {
        Self {
            text: String::new(),
            n_layer: 2,
            n_head: 2,
            n_embd: 64,
            block_size: 64,
            vocab_size: 1000,
            batch_size: 8,
            learning_rate: 2e-3,
            steps: 200,
            sample_every: 25,
            seed: 42,
            prompt: String::new(),
            masked: String::new(),
        }
    }
}

/// Where the engine should run (the page's address says: `?cpu=1`, `?gpu=1`, or nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// WebGPU on a hardware adapter; the CPU where WebGPU is missing, fails, or is a software
    /// renderer (SwiftShader runs Duet's models 20 to 100 times slower than its CPU engine).
    #[default]
    Auto,
    Cpu,
    /// WebGPU whatever the adapter, software renderers included.
    Gpu,
}

impl DeviceChoice {
    /// From the page address's query string.
    pub fn from_query(query: &str) -> Self {
        let has = |flag: &str| query.trim_start_matches('?').split('&').any(|p| p == flag);
        if has("cpu=1") {
            Self::Cpu
        } else if has("gpu=1") {
            Self::Gpu
        } else {
            Self::Auto
        }
    }
}

/// What the page asks of the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the compute device and report which one it is.
    Init {
        device: DeviceChoice,
    },
    Load {
        slot: String,
        source: Source,
    },
    /// Stop whatever runs for request `target` (a download, a generation, a training run).
    Cancel {
        target: u32,
    },
    Generate {
        slot: String,
        params: GenerateParams,
    },
    Classify {
        slot: String,
        text: String,
    },
    /// Several texts in one forward pass (HF's pipeline given a list); the browser benchmark's
    /// batch of 8.
    ClassifyBatch {
        slot: String,
        texts: Vec<String>,
    },
    /// `token-classification` of one text, token by token, with every strategy's merge.
    NerTokens {
        slot: String,
        text: String,
    },
    FillMask {
        slot: String,
        text: String,
        top_k: usize,
    },
    /// Every layer's and head's attention probabilities over one text, for the Inside page: the
    /// model of page `slot`, its default loaded first when that page has none yet.
    Attention {
        slot: String,
        text: String,
    },
    /// One prompt continued by greedy decoding, beam search, top-k and top-p sampling, with the
    /// generation model; answered with all four columns at once.
    Strategies {
        prompt: String,
        max_new_tokens: usize,
        num_beams: usize,
        top_k: usize,
        top_p: f32,
        temperature: f32,
        seed: u64,
    },
    /// Sentence embeddings (`feature-extraction`, mean-pooled and L2-normalised) of the model on
    /// slot `embed`, the MiniLM default loaded first when it has none.
    Embed {
        texts: Vec<String>,
    },
    /// The raw logits the generation model gives after `ids` (prompt and the tokens generated
    /// before a step): the Generate page redraws the sampler's stages from them.
    StepLogits {
        ids: Vec<u32>,
    },
    /// Word by word: the Fill-mask page's model filling the word masked, next to GPT's guesses
    /// from the left context (the Compare page's masked vs next-token table).
    MaskedVsNext {
        text: String,
    },
    /// Per-token view of one sentence for the Compare page.
    Compare {
        text: String,
    },
    /// Fine-tune `base`; with `resume`, continue the run the page stopped last (same base,
    /// settings and data) from the step it stopped at, to its end.
    Train {
        base: Source,
        params: TrainParams,
        #[serde(default)]
        resume: bool,
    },
    /// Train a fresh GPT and a fresh BERT on one text side by side; with `resume`, go on with
    /// the models of the last run for `params.steps` more (their shape and text stay).
    Pretrain {
        params: PretrainParams,
        resume: bool,
    },
    /// The last trained model as files (`full` checkpoint or LoRA `adapter`), or one of the
    /// Pretrain page's models (`pretrained-gpt`, `pretrained-bert`).
    Export {
        kind: String,
    },
    CachedModels,
    DeleteCached {
        base: String,
    },
    Bench,
    /// Time each building block of a transformer layer on this device (`seq` tokens, `reps`
    /// calls each): the profile behind the speed work. Answered with `BenchResult`, in ms.
    BenchOps {
        seq: usize,
        reps: usize,
    },
    /// Run the engine's parity checks (the committed fixtures, served at `./fixtures/`).
    SelfTest,
}

/// Shown under the model picker once a model is in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub label: String,
    pub architecture: String,
    pub task: String,
    pub parameters: usize,
    pub labels: Vec<String>,
    pub max_positions: usize,
    pub has_mask_token: bool,
    /// Bytes fetched over the network (0 when everything came from the cache).
    pub downloaded: u64,
    pub from_cache: bool,
    /// A short fingerprint of the model's files (`ModelFiles::content_hash`); empty for a model
    /// trained in the tab. Shared links carry it.
    #[serde(default)]
    pub hash: String,
    /// Where it came from, when a link can name it again (not local files or a trained model).
    #[serde(default)]
    pub source: Option<Source>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    pub token: String,
    pub id: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub token: String,
    pub prob: f32,
}

/// One position of the Compare page: what GPT predicted there from the left context, and what
/// BERT tagged it as seeing both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparePosition {
    pub token: String,
    /// GPT's probability of this token given the tokens before it (None for the first).
    pub gpt_prob: Option<f32>,
    pub gpt_top: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    pub base: String,
    pub files: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadFile {
    pub name: String,
    /// Base64 is avoided: bytes travel as a JSON array only for small files; the worker sends
    /// large ones as Blob URLs it creates itself.
    pub url: String,
    pub bytes: u64,
}

/// What the worker says back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    Ready {
        backend: String,
        note: String,
    },
    /// Bytes of one file so far (`total` 0 when the server gave no length).
    Progress {
        file: String,
        loaded: u64,
        total: u64,
    },
    Loaded {
        info: ModelInfo,
    },
    PromptTokens {
        tokens: Vec<TokenView>,
    },
    Token {
        index: usize,
        text: String,
        token: String,
        /// The vocabulary id (what the browser benchmark compares with transformers.js's).
        token_id: u32,
        top: Vec<Candidate>,
        tokens_per_s: f64,
    },
    Generated {
        text: String,
        finish_reason: String,
        new_tokens: usize,
        tokens_per_s: f64,
    },
    /// HF `text-classification` output: labels with scores, best first.
    Labels {
        labels: Vec<LabelScore>,
    },
    /// One `Labels` list per text of a `ClassifyBatch`, in order.
    LabelsBatch {
        labels: Vec<Vec<LabelScore>>,
    },
    /// The answer to `NerTokens`: each merge's `entities` are HF `token-classification` output.
    NerTokens {
        result: NerTokens,
    },
    Fills {
        fills: Vec<MaskFill>,
    },
    /// The answer to `StepLogits`: the whole vocabulary's logits, and the spelling of every token
    /// a stage can rank among its most likely (the raw top and every token already seen).
    StepLogits {
        logits: Vec<f32>,
        names: Vec<TokenView>,
    },
    /// The answer to `MaskedVsNext`, with the two models' labels.
    MaskedVsNext {
        gpt_label: String,
        mlm_label: String,
        words: Vec<WordGuesses>,
    },
    /// The answer to `Strategies`: greedy, beam search, top-k, top-p.
    Strategies {
        columns: Vec<StrategyColumn>,
    },
    /// The answer to `Embed`: one unit vector per text, in order.
    Embeddings {
        model: String,
        vectors: Vec<Vec<f32>>,
    },
    /// The answer to `Attention`, with the label of the model that ran.
    Attention {
        model: String,
        result: AttentionMap,
    },
    Compared {
        positions: Vec<ComparePosition>,
        gpt_label: String,
        bert_label: String,
        sentiment: Vec<LabelScore>,
        entities: Vec<Entity>,
    },
    TrainStarted {
        train_examples: usize,
        eval_examples: usize,
        total_steps: usize,
        labels: Vec<String>,
    },
    TrainStep {
        step: usize,
        total_steps: usize,
        loss: f32,
        examples_per_s: f64,
        elapsed_s: f64,
    },
    TrainEval {
        step: usize,
        metrics: Metrics,
    },
    Trained {
        steps: usize,
        cancelled: bool,
        /// Ended by early stopping before its last step.
        stopped_early: bool,
        /// Where an earlier evaluation beat the last one and the best was kept: its step (the
        /// weights, and `metrics`, are that step's).
        best_step: Option<usize>,
        final_loss: f32,
        metrics: Option<Metrics>,
        info: ModelInfo,
    },
    /// A side-by-side run began (or went on from `from_step`).
    PretrainStarted {
        gpt_parameters: usize,
        bert_parameters: usize,
        gpt_vocab: usize,
        bert_vocab: usize,
        /// Training blocks the text gave each model.
        gpt_blocks: usize,
        bert_blocks: usize,
        /// What the samples show: GPT's prompt and BERT's masked sentence.
        prompt: String,
        masked: String,
        from_step: usize,
        total_steps: usize,
    },
    /// Both models' training loss at one step: GPT's per next token, BERT's per masked token.
    PretrainStep {
        step: usize,
        total_steps: usize,
        gpt_loss: f32,
        bert_loss: f32,
        elapsed_s: f64,
    },
    /// What both models make of the probe sentence at `step`.
    PretrainSample {
        step: usize,
        gpt_text: String,
        bert_fills: Vec<MaskFill>,
    },
    Pretrained {
        steps: usize,
        cancelled: bool,
    },
    Files {
        files: Vec<DownloadFile>,
    },
    Cached {
        models: Vec<CachedModel>,
    },
    BenchResult {
        lines: Vec<BenchLine>,
    },
    Checks {
        checks: Vec<Check>,
        /// Fixtures checked so far, and in all (the reply streams one fixture at a time).
        done: usize,
        total: usize,
    },
    Done,
    Error {
        message: String,
    },
}

impl Reply {
    /// Whether this reply ends its request: the streamed kinds (progress, tokens, training steps
    /// and samples, check batches) come before the one that does.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Reply::Progress { .. }
                | Reply::PromptTokens { .. }
                | Reply::Token { .. }
                | Reply::TrainStarted { .. }
                | Reply::TrainStep { .. }
                | Reply::TrainEval { .. }
                | Reply::PretrainStarted { .. }
                | Reply::PretrainStep { .. }
                | Reply::PretrainSample { .. }
                | Reply::Checks { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchLine {
    pub model: String,
    pub what: String,
    pub value: f64,
    pub unit: String,
}

/// A message with its request id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u32,
    #[serde(flatten)]
    pub body: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_resolve_to_file_urls() {
        let s = Source::Hub {
            repo: "dslim/bert-base-NER".into(),
            revision: String::new(),
            endpoint: String::new(),
        };
        assert_eq!(
            s.base_url().unwrap(),
            "https://huggingface.co/dslim/bert-base-NER/resolve/main/"
        );
        assert_eq!(
            hub_base("http://127.0.0.1:9/", "gpt2", "v1"),
            "http://127.0.0.1:9/gpt2/resolve/v1/"
        );
    }

    #[test]
    fn the_address_chooses_the_device() {
        assert_eq!(DeviceChoice::from_query(""), DeviceChoice::Auto);
        assert_eq!(DeviceChoice::from_query("?cpu=1"), DeviceChoice::Cpu);
        assert_eq!(DeviceChoice::from_query("?x=2&gpu=1"), DeviceChoice::Gpu);
        assert_eq!(DeviceChoice::from_query("?gpu=10"), DeviceChoice::Auto);
        let json = serde_json::to_string(&Request::Init {
            device: DeviceChoice::Gpu,
        })
        .unwrap();
        assert_eq!(json, r#"{"op":"init","device":"gpu"}"#);
    }

    #[test]
    fn a_pretraining_run_streams_until_its_last_reply() {
        let streamed = [
            Reply::PretrainStarted {
                gpt_parameters: 1,
                bert_parameters: 1,
                gpt_vocab: 1,
                bert_vocab: 1,
                gpt_blocks: 1,
                bert_blocks: 1,
                prompt: String::new(),
                masked: String::new(),
                from_step: 0,
                total_steps: 1,
            },
            Reply::PretrainStep {
                step: 1,
                total_steps: 1,
                gpt_loss: 1.0,
                bert_loss: 1.0,
                elapsed_s: 0.0,
            },
            Reply::PretrainSample {
                step: 1,
                gpt_text: String::new(),
                bert_fills: vec![],
            },
        ];
        assert!(streamed.iter().all(|r| !r.is_final()));
        let done = Reply::Pretrained {
            steps: 1,
            cancelled: false,
        };
        assert!(done.is_final());
        assert!(Reply::Error {
            message: String::new()
        }
        .is_final());
    }

    #[test]
    fn repo_ids_are_checked() {
        for ok in ["gpt2", "distilgpt2", "dslim/bert-base-NER", "a.b/c_d-1"] {
            assert!(valid_repo_id(ok), "{ok}");
        }
        for bad in ["", "a/b/c", "/gpt2", "gpt 2", "../x", "https://x"] {
            assert!(!valid_repo_id(bad), "{bad}");
        }
    }

    #[test]
    fn requests_round_trip_as_json() {
        let r = Envelope {
            id: 7,
            body: Request::Load {
                slot: "ner".into(),
                source: Source::Default {
                    name: "minilm-conll03".into(),
                },
            },
        };
        let json = serde_json::to_string(&r).unwrap();
        let back: Envelope<Request> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id, 7);
        assert!(matches!(back.body, Request::Load { slot, .. } if slot == "ner"));
    }

    /// The browser bench page (tests/bench/bench.html) writes and reads these by hand.
    #[test]
    fn the_bench_pages_messages_keep_their_shape() {
        let r: Envelope<Request> = serde_json::from_str(
            r#"{"id": 3, "op": "classify_batch", "slot": "classify", "texts": ["a", "b"]}"#,
        )
        .unwrap();
        assert!(matches!(r.body, Request::ClassifyBatch { texts, .. } if texts.len() == 2));
        let token = Envelope {
            id: 4,
            body: Reply::Token {
                index: 0,
                text: "Hi".into(),
                token: "Hi".into(),
                token_id: 17,
                top: vec![],
                tokens_per_s: 1.0,
            },
        };
        let v = serde_json::to_value(&token).unwrap();
        assert_eq!(
            (v["id"].as_u64(), v["kind"].as_str()),
            (Some(4), Some("token"))
        );
        assert_eq!(v["token_id"], 17);
        let batch = Reply::LabelsBatch {
            labels: vec![vec![LabelScore {
                label: "positive".into(),
                score: 0.5,
            }]],
        };
        let v = serde_json::to_value(&batch).unwrap();
        assert_eq!(v["kind"], "labels_batch");
        assert_eq!(v["labels"][0][0]["label"], "positive");
    }
}
