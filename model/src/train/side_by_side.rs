//! GPT and BERT learning one text side by side: a fresh GPT-2 trained left to right (causal LM,
//! its own byte-level BPE) and a fresh BERT of the same shape trained to fill blanks (masked LM,
//! its own WordPiece), step for step on the same text, with a GPT continuation and a BERT fill of
//! one sentence of that text to watch both learn. A run can stop and go on where it stopped.

use burn::tensor::Device;

use crate::error::{DuetError, Result};
use crate::generation::rng::Rng;
use crate::generation::GenerationConfig;
use crate::pipelines::fill_mask::{fill_mask, MaskFill};
use crate::pipelines::text_generation::text_generation;
use crate::train::optim::Schedule;
use crate::train::scratch::{self, Shape};
use crate::train::{prepare, Example, Prepared, Task, TaskData, TrainConfig, Trainer};
use crate::Model;

/// How both models are made and trained.
#[derive(Debug, Clone)]
pub struct PairConfig {
    /// Both models' shape; `n_positions` is also the length of the training blocks.
    pub shape: Shape,
    /// The size each tokenizer is trained to (the text may give fewer).
    pub vocab_size: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Steps of linear warm-up; the rate stays constant after, so a run can always go on.
    pub warmup_steps: usize,
    pub seed: u64,
}

impl Default for PairConfig {
    fn default() -> Self {
        Self {
            shape: Shape {
                n_layer: 2,
                n_head: 2,
                n_embd: 64,
                n_positions: 64,
                dropout: 0.1,
            },
            vocab_size: 1000,
            batch_size: 8,
            learning_rate: 1e-3,
            warmup_steps: 10,
            seed: 42,
        }
    }
}

/// One side: a model, its training blocks and its optimizer state.
pub struct Learner {
    /// The model as created; [`Learner::current`] gives it with the weights learnt so far.
    model: Model,
    prepared: Prepared,
    blocks: Vec<Example>,
    trainer: Trainer,
    order: Vec<usize>,
    next: usize,
    rng: Rng,
    mask_rng: Rng,
}

impl Learner {
    fn new(model: Model, task: Task, text: &str, cfg: &PairConfig) -> Result<Self> {
        let data = TaskData::parse(task, text)?;
        let (model, prepared, blocks) = prepare(model, task, &data, cfg.shape.n_positions)?;
        if blocks.is_empty() {
            return Err(DuetError::EmptyInput(
                "the text gives no training blocks".into(),
            ));
        }
        let train = TrainConfig {
            epochs: 1,
            max_steps: None,
            batch_size: cfg.batch_size.max(1),
            learning_rate: cfg.learning_rate,
            warmup_steps: Some(cfg.warmup_steps),
            schedule: Schedule::Constant,
            seed: cfg.seed,
            eval_every: 0,
            ..TrainConfig::default()
        };
        // The schedule is constant after warm-up, so the total only has to be past it.
        let trainer = Trainer::new(&model, task, train, usize::MAX)?;
        Ok(Self {
            model,
            prepared,
            order: Vec::new(),
            next: 0,
            rng: Rng::new(cfg.seed),
            mask_rng: Rng::new(cfg.seed.wrapping_add(super::MASK_STREAM)),
            blocks,
            trainer,
        })
    }

    /// One optimizer step on the next batch of blocks (reshuffled each pass; masked afresh each
    /// batch for BERT); the loss before the update.
    async fn step(&mut self) -> Result<f32> {
        let bs = self.trainer.cfg.batch_size.min(self.blocks.len());
        if self.next + bs > self.order.len() {
            self.order = (0..self.blocks.len()).collect();
            super::shuffle(&mut self.order, &mut self.rng);
            self.next = 0;
        }
        let batch: Vec<&Example> = self.order[self.next..self.next + bs]
            .iter()
            .map(|&i| &self.blocks[i])
            .collect();
        self.next += bs;
        self.trainer
            .step_masked(&batch, self.prepared.masking.as_ref(), &mut self.mask_rng)
            .await
    }

    /// The model with the weights learnt so far (dropout off), for sampling and export.
    pub fn current(&self) -> Model {
        Model {
            network: self.trainer.snapshot(&self.model.device),
            ..self.model.clone()
        }
    }

    /// How many training blocks the text gave this side.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    pub fn parameters(&self) -> usize {
        self.model.network.num_params()
    }

    pub fn vocab_size(&self) -> usize {
        self.model.tokenizer.vocab_size()
    }
}

/// The sentence both models are shown: GPT continues `prompt`, BERT fills the `[MASK]` of
/// `masked` (the same sentence, with the word GPT would write next hidden).
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub prompt: String,
    pub masked: String,
}

impl Probe {
    /// A line of `text` with 6 to 24 words and a word of letters only past its first three to
    /// hide (the first such line; else the text's first 12 words). GPT's prompt is the words
    /// before the hidden one.
    pub fn from_text(text: &str) -> Result<Self> {
        let plain = |w: &str| w.len() >= 3 && w.chars().all(char::is_alphabetic);
        let lines = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| (6..=24).contains(&w.len()));
        let fallback = std::iter::once(text.split_whitespace().take(12).collect::<Vec<_>>());
        for words in lines.chain(fallback) {
            let middle = words.len() / 2;
            let hidden = (3..words.len())
                .filter(|&i| plain(words[i]))
                .min_by_key(|&i| i.abs_diff(middle));
            if let Some(i) = hidden {
                let mut masked = words.clone();
                masked[i] = "[MASK]";
                return Ok(Self {
                    prompt: words[..i].join(" "),
                    masked: masked.join(" "),
                });
            }
        }
        Err(DuetError::EmptyInput(
            "the text has no sentence of at least four words to show the models".into(),
        ))
    }
}

/// What both models make of the probe at one point of the run.
#[derive(Debug, Clone)]
pub struct PairSample {
    /// The prompt and GPT's continuation.
    pub gpt_text: String,
    /// BERT's best fills of the mask, best first (HF `fill-mask` output).
    pub bert_fills: Vec<MaskFill>,
}

/// The largest shape [`Pair::new`] makes: GPT-2-small's.
pub const MAX: Shape = Shape {
    n_layer: 12,
    n_head: 12,
    n_embd: 768,
    n_positions: 1024,
    dropout: 0.1, // not a size: unused
};
/// The largest vocabulary its tokenizers are trained to.
pub const MAX_VOCAB: usize = 50_000;

/// The two learners and the steps taken so far.
pub struct Pair {
    pub gpt: Learner,
    pub bert: Learner,
    pub steps: usize,
    pub config: PairConfig,
}

impl Pair {
    /// Trains both tokenizers on `text`, creates both models and cuts the text into blocks.
    pub fn new(text: &str, config: &PairConfig, device: &Device) -> Result<Self> {
        let s = &config.shape;
        if s.n_layer == 0
            || s.n_head == 0
            || !s.n_embd.is_multiple_of(s.n_head)
            || s.n_positions < 8
        {
            return Err(DuetError::InvalidOption(format!(
                "shape {} layers × {} wide with {} heads, blocks of {}: the width must be a \
                 multiple of the heads and the blocks at least 8 tokens",
                s.n_layer, s.n_embd, s.n_head, s.n_positions
            )));
        }
        // Made and trained in a browser tab from nothing: GPT-2-small's size is the most that
        // makes sense there (and keeps a typo such as 10000 layers from exhausting memory).
        if s.n_layer > MAX.n_layer || s.n_embd > MAX.n_embd || s.n_positions > MAX.n_positions {
            return Err(DuetError::InvalidOption(format!(
                "shape {} layers × {} wide, blocks of {}: models made here have at most {} \
                 layers, width {} and blocks of {}",
                s.n_layer, s.n_embd, s.n_positions, MAX.n_layer, MAX.n_embd, MAX.n_positions
            )));
        }
        if config.vocab_size < 64 || config.vocab_size > MAX_VOCAB {
            return Err(DuetError::InvalidOption(format!(
                "a vocabulary of {}: use 64 to {MAX_VOCAB} tokens",
                config.vocab_size
            )));
        }
        let gpt = scratch::new_gpt2(
            scratch::train_bpe(text, config.vocab_size)?,
            s,
            config.seed,
            device,
        )?;
        let bert = scratch::new_bert(
            scratch::train_wordpiece(text, config.vocab_size)?,
            s,
            config.seed,
            device,
        )?;
        Ok(Self {
            gpt: Learner::new(gpt, Task::CausalLm, text, config)?,
            bert: Learner::new(bert, Task::MaskedLm, text, config)?,
            steps: 0,
            config: config.clone(),
        })
    }

    /// One step of each; their losses (GPT's per next token, BERT's per masked token).
    pub async fn step(&mut self) -> Result<(f32, f32)> {
        let gpt = self.gpt.step().await?;
        let bert = self.bert.step().await?;
        self.steps += 1;
        Ok((gpt, bert))
    }

    /// GPT's continuation of the probe's prompt (sampled with a fixed seed, so that only the
    /// weights change it from one sample to the next) and BERT's top-3 fills of its mask.
    pub async fn sample(&self, probe: &Probe, max_new_tokens: usize) -> Result<PairSample> {
        let gpt = self.gpt.current();
        let prompt_len = gpt.tokenizer.encode(&probe.prompt, true)?.ids.len();
        let room = self.config.shape.n_positions.saturating_sub(prompt_len);
        if room == 0 {
            return Err(DuetError::InvalidOption(format!(
                "GPT's prompt is {prompt_len} tokens: longer than the models' {} positions",
                self.config.shape.n_positions
            )));
        }
        let cfg = GenerationConfig {
            max_new_tokens: max_new_tokens.min(room).max(1),
            do_sample: true,
            temperature: 0.8,
            top_k: 40,
            seed: self.config.seed,
            ..GenerationConfig::default()
        };
        let gpt_text = text_generation(&gpt, &probe.prompt, &cfg, |_| true)
            .await?
            .generated_text;
        let bert_fills = fill_mask(&self.bert.current(), std::slice::from_ref(&probe.masked), 3)
            .await?
            .pop()
            .unwrap_or_default();
        Ok(PairSample {
            gpt_text,
            bert_fills,
        })
    }
}
