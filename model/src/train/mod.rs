//! Fine-tuning that runs wherever the engine runs (native, and a browser tab): sequence
//! classification, token classification, causal and masked language modelling, training the head, the
//! top layers, everything, or LoRA adapters. Progress arrives as events; returning `false` from
//! the callback cancels between steps. The loss is read back once per step, asynchronously.

pub mod data;
pub mod export;
pub mod lora;
pub mod masking;
pub mod metrics;
pub mod optim;
pub mod resume;
pub mod scratch;
pub mod setup;
pub mod side_by_side;
pub mod word_fill;

use std::cmp::Ordering;

use burn::module::{ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use crate::error::{DuetError, Result};
use crate::generation::processors::argmax;
use crate::generation::rng::Rng;
use crate::network::{read_f32, EncoderBatch, Network};
use crate::Model;
use lora::LoraConfig;
use optim::{lr_at, AdamW, Schedule};
use resume::TrainState;

pub use masking::MaskingConfig;
pub use setup::{encode_examples, prepare, Example, Masking, Prepared, Target, Task, TaskData};

/// Which parameters learn.
#[derive(Debug, Clone, PartialEq)]
pub enum Trainable {
    /// The task head only (classifier / pooler / MLM transform).
    Head,
    /// The last N transformer layers and the head.
    TopLayers(usize),
    All,
    /// LoRA adapters on the base (frozen) plus the head.
    Lora(LoraConfig),
}

impl Trainable {
    /// Parses what to train as the CLI and the app name it: `all`, `head`, `top:N` or `lora`
    /// (with `lora` the settings to use).
    pub fn parse(spec: &str, lora: LoraConfig) -> Result<Self> {
        Ok(match spec {
            "all" => Self::All,
            "head" => Self::Head,
            "lora" => Self::Lora(lora),
            other => match other.strip_prefix("top:").and_then(|n| n.parse().ok()) {
                Some(n) => Self::TopLayers(n),
                None => {
                    return Err(DuetError::InvalidOption(format!(
                        "what to train `{other}` (use all, head, top:N or lora)"
                    )))
                }
            },
        })
    }
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Stop after this many optimizer steps (overrides epochs when smaller).
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Fraction of the steps spent warming the learning rate up from 0.
    pub warmup_ratio: f64,
    /// Warm-up length in steps; overrides `warmup_ratio` when set.
    pub warmup_steps: Option<usize>,
    pub schedule: Schedule,
    pub max_grad_norm: Option<f64>,
    pub seed: u64,
    pub trainable: Trainable,
    /// Dropout as configured by the model while training (off for exact comparisons).
    pub dropout: bool,
    /// Evaluate every N steps (0: at the end of each epoch).
    pub eval_every: usize,
    /// Batch sequences of similar length together (HF's `group_by_length`): far less padding.
    pub group_by_length: bool,
    /// Causal LM only: each epoch cuts the text into blocks from a new random offset, so that no
    /// block boundary, and no token's place in its block, comes back every epoch (nanoGPT draws
    /// its windows at random). Off, the blocks are HF's fixed `group_texts` ones.
    pub random_offsets: bool,
    /// End with the weights of the evaluation with the lowest held-out loss rather than the last
    /// step's (HF's `load_best_model_at_end`, `metric_for_best_model="loss"`).
    pub load_best_model_at_end: bool,
    /// Stop once this many evaluations in a row have not lowered the held-out loss (HF's
    /// `EarlyStoppingCallback`).
    pub early_stopping_patience: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: None,
            batch_size: 16,
            learning_rate: 5e-5,
            weight_decay: 0.01,
            warmup_ratio: 0.1,
            warmup_steps: None,
            schedule: Schedule::Linear,
            max_grad_norm: Some(1.0),
            seed: 42,
            trainable: Trainable::All,
            dropout: true,
            eval_every: 0,
            group_by_length: true,
            random_offsets: false,
            load_best_model_at_end: false,
            early_stopping_patience: None,
        }
    }
}

pub use duet_protocol::outputs::Metrics;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    Step {
        step: usize,
        total_steps: usize,
        epoch: usize,
        loss: f32,
        learning_rate: f64,
        examples_per_s: f64,
        elapsed_s: f64,
    },
    Eval {
        step: usize,
        metrics: Metrics,
    },
}

/// A model being trained: the network on the autodiff device, the optimizer and the schedule.
pub struct Trainer {
    /// `None` only while the optimizer moves it.
    network: Option<Network>,
    pub task: Task,
    pub cfg: TrainConfig,
    pub total_steps: usize,
    optim: AdamW,
    device: Device,
    pad_id: u32,
}

/// Turns dropout on or off everywhere (burn keeps it as a per-module training flag).
struct DropoutSwitch(bool);
impl ModuleMapper for DropoutSwitch {
    fn map_flag(&mut self, flag: Param<burn::module::Flag>) -> Param<burn::module::Flag> {
        flag.with_value(self.0)
    }
}

impl Trainer {
    /// Prepares `model` (already holding the task's head, see [`prepare`]) for `total_steps`.
    pub fn new(model: &Model, task: Task, cfg: TrainConfig, total_steps: usize) -> Result<Self> {
        if cfg.batch_size == 0 || cfg.learning_rate.is_nan() || cfg.learning_rate <= 0.0 {
            return Err(DuetError::InvalidOption(
                "batch size and learning rate must be > 0".into(),
            ));
        }
        model.device.seed(cfg.seed);
        let mut network = model.network.clone();
        // A model that already carries adapters (loaded from PEFT files) continues with them.
        if let Trainable::Lora(l) = &cfg.trainable {
            if !lora::has_lora(&mut network) {
                lora::attach(&mut network, l, &model.device)?;
            }
        }
        let device = model.device.clone().autodiff();
        let network = network.fork(&device).train();
        let network = setup::set_trainable(network, &cfg.trainable)?;
        let network = network.map(&mut DropoutSwitch(cfg.dropout));
        Ok(Self {
            network: Some(network),
            task,
            optim: AdamW::new(cfg.weight_decay),
            total_steps,
            cfg,
            device,
            pad_id: model.tokenizer.pad_token_id,
        })
    }

    fn warmup(&self) -> usize {
        self.cfg
            .warmup_steps
            .unwrap_or_else(|| (self.cfg.warmup_ratio * self.total_steps as f64).ceil() as usize)
    }

    /// The learning rate the next step will use.
    pub fn learning_rate(&self) -> f64 {
        lr_at(
            self.cfg.learning_rate,
            self.optim.steps(),
            self.warmup(),
            self.total_steps,
            self.cfg.schedule,
        )
    }

    /// One optimizer step on `batch`, masked first (from `rng`) when `masking` is given, as a
    /// masked-LM run draws a new mask for every batch; returns the loss before the update.
    pub async fn step_masked(
        &mut self,
        batch: &[&Example],
        masking: Option<&Masking>,
        rng: &mut Rng,
    ) -> Result<f32> {
        match masking {
            Some(m) => {
                let masked = masking::mask_batch(batch, m, rng);
                self.step(&masked.iter().collect::<Vec<_>>()).await
            }
            None => self.step(batch).await,
        }
    }

    /// One optimizer step on `batch`; returns the loss before the update. Masked-LM examples
    /// must be masked already (`step_masked` does it).
    pub async fn step(&mut self, batch: &[&Example]) -> Result<f32> {
        let lr = self.learning_rate();
        // Dropout's masks depend on the run's seed and the step alone: a resumed run draws
        // the ones the uninterrupted run would have drawn.
        self.device
            .seed(resume::step_seed(self.cfg.seed, self.optim.steps()));
        let loss = task_loss(self.network(), self.task, batch, self.pad_id, &self.device)?;
        let value = read_f32(loss.clone()).await?[0];
        if !value.is_finite() {
            return Err(DuetError::Backend(format!(
                "the loss became {value}; lower the learning rate"
            )));
        }
        let grads = loss.backward();
        let network = self
            .network
            .take()
            .expect("the network is only taken inside step");
        let max_norm = self.cfg.max_grad_norm;
        self.network = Some(match network {
            Network::Gpt2(m) => {
                let g = GradientsParams::from_grads(grads, &m);
                Network::Gpt2(self.optim.step(m, g, lr, max_norm))
            }
            Network::Bert(m) => {
                let g = GradientsParams::from_grads(grads, &m);
                Network::Bert(self.optim.step(m, g, lr, max_norm))
            }
            Network::DistilBert(m) => {
                let g = GradientsParams::from_grads(grads, &m);
                Network::DistilBert(self.optim.step(m, g, lr, max_norm))
            }
        });
        Ok(value)
    }

    /// Everything needed to continue this run later (`run` describes it, see
    /// [`resume::describe_run`]); the frozen parameters too when `frozen`.
    pub async fn state(&self, run: serde_json::Value, frozen: bool) -> Result<TrainState> {
        resume::capture(self.network(), &self.optim, self.optim.steps(), run, frozen).await
    }

    /// Continues from `state`: its parameters, moments and step count replace this trainer's.
    pub fn restore(&mut self, state: &TrainState) -> Result<()> {
        let network = self
            .network
            .take()
            .expect("the network is only taken inside step");
        match resume::restore(network.clone(), &mut self.optim, state) {
            Ok(restored) => {
                self.network = Some(restored);
                Ok(())
            }
            Err(e) => {
                self.network = Some(network);
                Err(e)
            }
        }
    }

    /// Gradients of the loss on `batch` for every trainable parameter, by checkpoint key
    /// (PyTorch layout), without updating anything: for comparison with PyTorch's `.grad`.
    pub async fn named_gradients(
        &self,
        batch: &[&Example],
        arch: &crate::config::Arch,
    ) -> Result<Vec<(String, Vec<f32>)>> {
        let loss = task_loss(self.network(), self.task, batch, self.pad_id, &self.device)?;
        let grads = loss.backward();
        export::named_gradients(self.network(), arch, &grads).await
    }

    /// The network being trained (on the autodiff device).
    pub fn network(&self) -> &Network {
        self.network
            .as_ref()
            .expect("the network is only taken inside step")
    }

    /// The network as it is now, on the inference device with dropout off.
    pub fn snapshot(&self, inference_device: &Device) -> Network {
        self.network().valid().fork(inference_device)
    }

    /// The trained network back on the inference device, dropout off.
    pub fn finish(self, inference_device: &Device) -> Network {
        self.snapshot(inference_device)
    }
}

fn int_tensor(v: Vec<i64>, shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// A batch's logits where the task's loss reads them, with the gold labels there.
#[allow(clippy::large_enum_variant)] // one per batch, moved once: boxing would buy nothing
enum Scores {
    /// `[B, L]` logits and each row's class `[B, 1]`.
    Sequence(Tensor<2>, Tensor<2, Int>),
    /// `[B, T, C]` logits, labels `[B, T, 1]`, a 0/1 mask `[B, T]` of the labelled positions and
    /// their count.
    Tokens(Tensor<3>, Tensor<3, Int>, Tensor<2>, f32),
    /// `[1, N, V]` logits at the N masked positions and their ids `[1, N, 1]`.
    Masked(Tensor<3>, Tensor<3, Int>),
}

impl Scores {
    /// One forward pass of `net` over `batch`, as `task` scores it.
    fn of(
        net: &Network,
        task: Task,
        batch: &[&Example],
        pad: u32,
        device: &Device,
    ) -> Result<Self> {
        let encs: Vec<crate::tokenizer::Encoded> = batch.iter().map(|e| e.encoded()).collect();
        let eb = EncoderBatch::new(&encs, pad, device)?;
        let [b, t] = eb.input_ids.dims();
        Ok(match task {
            Task::SequenceClassification => {
                let logits = net.sequence_logits(&eb)?; // [B, L]
                let labels: Vec<i64> = batch
                    .iter()
                    .map(|e| e.class().unwrap_or(0) as i64)
                    .collect();
                Self::Sequence(logits, int_tensor(labels, [b, 1], device))
            }
            Task::MaskedLm => {
                let (logits, labels) = masked_logits(net, &eb, batch, device)?;
                Self::Masked(logits, labels)
            }
            Task::TokenClassification | Task::CausalLm => {
                let logits = match task {
                    Task::CausalLm => net.gpt2()?.forward(eb.input_ids.clone()),
                    _ => net.token_logits(&eb)?,
                }; // [B, T, C]
                let mut labels = vec![0i64; b * t];
                let mut mask = vec![0f32; b * t];
                for (row, e) in batch.iter().enumerate() {
                    for (i, &l) in e.token_labels().iter().enumerate() {
                        if l >= 0 {
                            labels[row * t + i] = l;
                            mask[row * t + i] = 1.0;
                        }
                    }
                }
                let count: f32 = mask.iter().sum();
                if count == 0.0 {
                    return Err(DuetError::EmptyInput(
                        "a batch has no labelled tokens".into(),
                    ));
                }
                let labels =
                    Tensor::<3, Int>::from_data(TensorData::new(labels, [b, t, 1]), device);
                let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, t]), device);
                Self::Tokens(logits, labels, mask, count)
            }
        })
    }

    /// Mean cross-entropy over the scored positions (HF's loss for each task).
    fn loss(&self) -> Tensor<1> {
        match self {
            Self::Sequence(logits, labels) => {
                let picked = log_softmax(logits.clone(), 1).gather(1, labels.clone()); // [B, 1]
                picked.mean().neg()
            }
            Self::Masked(logits, labels) => log_softmax(logits.clone(), 2)
                .gather(2, labels.clone())
                .mean()
                .neg(),
            Self::Tokens(logits, labels, mask, count) => {
                let [b, t, _] = logits.dims();
                let picked = log_softmax(logits.clone(), 2)
                    .gather(2, labels.clone())
                    .reshape([b, t]); // [B, T]
                (picked * mask.clone()).sum().neg() / *count
            }
        }
    }
}

/// Mean cross-entropy of the batch, HF's loss for each task (ignored positions excluded).
pub fn task_loss(
    net: &Network,
    task: Task,
    batch: &[&Example],
    pad: u32,
    device: &Device,
) -> Result<Tensor<1>> {
    Ok(Scores::of(net, task, batch, pad, device)?.loss())
}

/// Offsets the seed of a run's masking stream from its shuffling stream.
pub(crate) const MASK_STREAM: u64 = 0x6d61_736b;
/// The stream `random_offsets` draws each epoch's block offset from.
const OFFSET_STREAM: u64 = 0x6f66_6673;
/// Held-out masked-LM examples are masked with this seed, so that every evaluation of a run (and
/// of any model) scores the same positions.
const EVAL_MASK_SEED: u64 = 0;

/// The head's vocabulary logits `[1, N, V]` at the batch's N masked positions, and the ids there
/// `[1, N, 1]`. HF scores every position and ignores all but these (the same loss): only their
/// hidden states go through the vocabulary-wide projection, about 15% of the rows.
fn masked_logits(
    net: &Network,
    eb: &EncoderBatch,
    batch: &[&Example],
    device: &Device,
) -> Result<(Tensor<3>, Tensor<3, Int>)> {
    let hidden = net.hidden_states(eb)?; // [B, T, C]
    let [b, t, c] = hidden.dims();
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for (row, e) in batch.iter().enumerate() {
        for (i, &l) in e.token_labels().iter().enumerate() {
            if l >= 0 {
                rows.push((row * t + i) as i64);
                labels.push(l);
            }
        }
    }
    let n = rows.len();
    if n == 0 {
        return Err(DuetError::EmptyInput("a batch has no masked tokens".into()));
    }
    let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), device);
    let chosen = hidden
        .reshape([b * t, c])
        .select(0, rows)
        .reshape([1, n, c]);
    let labels = Tensor::<3, Int>::from_data(TensorData::new(labels, [1, n, 1]), device);
    Ok((net.token_head(chosen)?, labels))
}

/// Where each masked token's own id ranks among the head's predictions `[N]` (0 = top), computed
/// on the device so that only one count per masked token comes back.
fn ranks_of(logits: Tensor<3>, labels: Tensor<3, Int>) -> Tensor<1> {
    let own = logits.clone().gather(2, labels);
    logits.greater(own).float().sum_dim(2).flatten::<1>(0, 2)
}

/// Held-out loss and the task's metrics, in batches of `batch_size`.
pub async fn evaluate(
    model: &Model,
    prepared: &Prepared,
    examples: &[Example],
    batch_size: usize,
) -> Result<Metrics> {
    let masked: Vec<Example>;
    let examples = match &prepared.masking {
        Some(m) => {
            let mut rng = Rng::new(EVAL_MASK_SEED);
            masked = examples
                .chunks(batch_size.max(1))
                .flat_map(|c| {
                    let refs: Vec<&Example> = c.iter().collect();
                    masking::mask_batch(&refs, m, &mut rng)
                })
                .collect();
            &masked[..]
        }
        None => examples,
    };
    let net = &model.network;
    let task = prepared.task;
    let device = &model.device;
    let pad = model.tokenizer.pad_token_id;
    let mut loss_sum = 0.0f64;
    let mut weight = 0.0f64;
    let (mut pred, mut gold) = (Vec::new(), Vec::new());
    let (mut pred_tags, mut gold_tags): (Vec<Vec<String>>, Vec<Vec<String>>) =
        (Vec::new(), Vec::new());
    // Masked-LM: where each masked token's own id ranks among the predictions (0 = top).
    let mut ranks: Vec<f32> = Vec::new();
    for chunk in examples.chunks(batch_size.max(1)) {
        crate::device::yield_now().await;
        let refs: Vec<&Example> = chunk.iter().collect();
        // One forward pass gives both the loss and the metrics' predictions.
        let scores = Scores::of(net, task, &refs, pad, device)?;
        let loss = read_f32(scores.loss()).await?[0] as f64;
        let n = match task {
            Task::SequenceClassification => chunk.len() as f64,
            _ => chunk
                .iter()
                .map(|e| e.token_labels().iter().filter(|&&l| l >= 0).count())
                .sum::<usize>() as f64,
        };
        loss_sum += loss * n;
        weight += n;
        match scores {
            Scores::Sequence(logits, _) => {
                let l = logits.dims()[1];
                let flat = read_f32(logits).await?;
                for (row, e) in chunk.iter().enumerate() {
                    pred.push(argmax(&flat[row * l..(row + 1) * l]));
                    gold.push(e.class().unwrap_or(0));
                }
            }
            Scores::Tokens(logits, ..) if task == Task::TokenClassification => {
                let [_, t, l] = logits.dims();
                let flat = read_f32(logits).await?;
                for (row, e) in chunk.iter().enumerate() {
                    let (mut p, mut g) = (Vec::new(), Vec::new());
                    for (i, &lab) in e.token_labels().iter().enumerate() {
                        if lab >= 0 {
                            let at = (row * t + i) * l;
                            p.push(prepared.labels[argmax(&flat[at..at + l])].clone());
                            g.push(prepared.labels[lab as usize].clone());
                        }
                    }
                    pred_tags.push(p);
                    gold_tags.push(g);
                }
            }
            Scores::Masked(logits, labels) => {
                ranks.extend(read_f32(ranks_of(logits, labels)).await?)
            }
            Scores::Tokens(..) => {}
        }
    }
    let loss = if weight > 0.0 { loss_sum / weight } else { 0.0 };
    let mut m = Metrics {
        loss,
        ..Metrics::default()
    };
    match task {
        Task::SequenceClassification => {
            m.accuracy = Some(metrics::accuracy(&pred, &gold));
            m.macro_f1 = Some(metrics::macro_f1(&pred, &gold, prepared.labels.len()));
        }
        Task::TokenClassification => {
            let s = metrics::entity_scores(&pred_tags, &gold_tags);
            m.precision = Some(s.precision);
            m.recall = Some(s.recall);
            m.f1 = Some(s.f1);
        }
        Task::CausalLm => m.perplexity = Some(loss.exp()),
        Task::MaskedLm => {
            let share = |k: f32| {
                ranks.iter().filter(|&&r| r < k).count() as f64 / ranks.len().max(1) as f64
            };
            m.perplexity = Some(loss.exp());
            m.accuracy = Some(share(1.0));
            m.top5_accuracy = Some(share(5.0));
        }
    }
    Ok(m)
}

/// What a finished run returns.
pub struct TrainOutcome {
    pub model: Model,
    pub steps: usize,
    pub cancelled: bool,
    /// Ended by `early_stopping_patience` before its last step.
    pub stopped_early: bool,
    /// With `load_best_model_at_end`, the step whose weights `model` holds (and `metrics`
    /// describes) when an earlier evaluation beat the last step's.
    pub best_step: Option<usize>,
    pub final_loss: f32,
    pub metrics: Option<Metrics>,
}

/// Saving a run as it goes, and continuing a saved one.
pub struct Checkpoints<'a> {
    /// Continue from this state; it must come from this run (same settings and data). The
    /// caller keeps it: a refused or failed resume loses nothing.
    pub from: Option<&'a TrainState>,
    /// Hand the run's state and the model as it stands to `save` every this many steps (0:
    /// never), and whenever the run is stopped early.
    pub every: usize,
    pub save: Option<&'a mut dyn FnMut(TrainState, Model) -> Result<()>>,
    /// Whether a saved state holds the frozen parameters too (LoRA's base weights, a frozen
    /// encoder). Without them it is the trained part alone (a few MB for LoRA on MiniLM instead
    /// of ~90), and continuing it takes the frozen values from the model given: the caller must
    /// make sure that is the same base (the tab checks its files' content hash).
    pub frozen: bool,
}

impl Checkpoints<'_> {
    /// Neither saving nor resuming.
    pub fn none() -> Self {
        Checkpoints {
            from: None,
            every: 0,
            save: None,
            frozen: false,
        }
    }
}

/// The whole run: shuffled, padding-aware batches for `cfg.epochs` (or `max_steps`), evaluation on
/// `eval` as configured and at the end. `on_event` returning `false` stops after the current step.
pub async fn train(
    model: Model,
    prepared: &Prepared,
    train_set: &[Example],
    eval_set: &[Example],
    cfg: TrainConfig,
    on_event: impl FnMut(&TrainEvent) -> bool,
    now: impl Fn() -> f64,
) -> Result<TrainOutcome> {
    train_checkpointed(
        model,
        prepared,
        train_set,
        eval_set,
        cfg,
        Checkpoints::none(),
        on_event,
        now,
    )
    .await
}

/// [`train`], saving its state as `checkpoints` asks and continuing from a saved one. A resumed
/// run replays the batch order and masks of the steps already taken without computing them, then
/// takes exactly the steps the uninterrupted run would have taken.
#[allow(clippy::too_many_arguments)] // train's arguments and the checkpoints
pub async fn train_checkpointed(
    model: Model,
    prepared: &Prepared,
    train_set: &[Example],
    eval_set: &[Example],
    cfg: TrainConfig,
    checkpoints: Checkpoints<'_>,
    mut on_event: impl FnMut(&TrainEvent) -> bool,
    now: impl Fn() -> f64,
) -> Result<TrainOutcome> {
    if train_set.is_empty() {
        return Err(DuetError::EmptyInput("no training examples".into()));
    }
    if cfg.random_offsets && prepared.task != Task::CausalLm {
        return Err(DuetError::InvalidOption(
            "random block offsets are for causal-LM training only".into(),
        ));
    }
    let tracks_best = cfg.load_best_model_at_end || cfg.early_stopping_patience.is_some();
    if tracks_best && eval_set.is_empty() {
        return Err(DuetError::InvalidOption(
            "keeping the best model or stopping early needs held-out data to evaluate on".into(),
        ));
    }
    let per_epoch = train_set.len().div_ceil(cfg.batch_size.max(1));
    let mut total = per_epoch * cfg.epochs.max(1);
    if let Some(max) = cfg.max_steps {
        total = total.min(max.max(1));
    }
    let Checkpoints {
        from,
        every,
        mut save,
        frozen,
    } = checkpoints;
    let every = if save.is_some() { every } else { 0 };
    // Described (the whole data hashed) only for a run that saves or resumes.
    let run = if from.is_some() || save.is_some() {
        resume::describe_run(&cfg, prepared, train_set, total)
    } else {
        serde_json::Value::Null
    };
    if let Some(state) = from {
        state.check_run(&run)?;
    }
    let mut trainer = Trainer::new(&model, prepared.task, cfg.clone(), total)?;
    let mut best: Option<Best> = None;
    // The latest evaluation taken in the loop, and its step.
    let mut last_eval: Option<(usize, Metrics)> = None;
    let resumed_at = match from {
        Some(state) => {
            trainer.restore(state)?;
            if let Some(meta) = &state.best {
                let network = match cfg.load_best_model_at_end {
                    true => resume::best_weights(trainer.snapshot(&model.device), state)?,
                    false => None,
                };
                best = Some(Best::from_meta(meta, network)?);
            }
            state.step
        }
        None => 0,
    };
    let mut save_now = async |trainer: &Trainer, best: Option<&Best>| -> Result<()> {
        let Some(save) = save.as_mut() else {
            return Ok(());
        };
        let mut state = trainer.state(run.clone(), frozen).await?;
        if let Some(b) = best {
            resume::add_best(&mut state, b.meta(), b.network.as_ref()).await?;
        }
        let snapshot = Model {
            network: trainer.snapshot(&model.device),
            ..model.clone()
        };
        save(state, snapshot)
    };
    let mut saved_at = resumed_at;
    // A run that keeps or stops on its best must not skip an evaluation: a state saved before
    // its step's evaluation (stopped by the user, or saved at an epoch's end) takes it on resume.
    let eval_pending = tracks_best
        && from.is_some_and(|s| {
            s.best.as_ref().map(|b| b["last_eval"].as_u64()) != Some(Some(s.step as u64))
        });
    let mut rng = Rng::new(cfg.seed);
    let start = now();
    let (mut step, mut seen, mut cancelled, mut last_loss) = (0usize, 0usize, false, f32::NAN);
    let mut stopped_early = false;
    let mut metrics = None;
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    // Masked-LM batches are masked as they are drawn (a new mask each epoch, as HF's collator),
    // from a stream of their own so that the batch order is the same with or without masking.
    let mut mask_rng = Rng::new(cfg.seed.wrapping_add(MASK_STREAM));
    // So are the block offsets: each epoch draws one whether or not its steps are replayed.
    let mut offset_rng = Rng::new(cfg.seed.wrapping_add(OFFSET_STREAM));
    let block = train_set.iter().map(|e| e.ids.len()).max().unwrap_or(1) as u64;
    'epochs: for epoch in 0..cfg.epochs.max(1) {
        let recut;
        let train_set = if cfg.random_offsets {
            recut = setup::rotated_blocks(train_set, (offset_rng.next_u64() % block) as usize);
            &recut[..]
        } else {
            train_set
        };
        shuffle(&mut order, &mut rng);
        for idx in batches(&order, train_set, &cfg, &mut rng) {
            if step >= total {
                break 'epochs;
            }
            let batch: Vec<&Example> = idx.iter().map(|&i| &train_set[i]).collect();
            if step < resumed_at {
                // Taken before the state was saved: only its mask draws are replayed.
                if let Some(m) = &prepared.masking {
                    masking::mask_batch(&batch, m, &mut mask_rng);
                }
                step += 1;
                if step < resumed_at || !eval_pending {
                    continue;
                }
                // The saved step's evaluation, if it has one, is taken below.
            } else {
                crate::device::yield_now().await;
                let lr = trainer.learning_rate();
                last_loss = trainer
                    .step_masked(&batch, prepared.masking.as_ref(), &mut mask_rng)
                    .await?;
                step += 1;
                seen += batch.len();
                let elapsed = now() - start;
                let event = TrainEvent::Step {
                    step,
                    total_steps: total,
                    epoch,
                    loss: last_loss,
                    learning_rate: lr,
                    examples_per_s: seen as f64 / elapsed.max(1e-9),
                    elapsed_s: elapsed,
                };
                if !on_event(&event) {
                    cancelled = true;
                    break 'epochs;
                }
            }
            if cfg.eval_every > 0
                && step % cfg.eval_every == 0
                && !eval_set.is_empty()
                && step < total
            {
                let metrics =
                    evaluate_snapshot(&trainer, &model, prepared, eval_set, cfg.batch_size).await?;
                stopped_early = Best::observe(&mut best, &cfg, step, &metrics, || {
                    trainer.snapshot(&model.device)
                });
                let go_on = on_event(&TrainEvent::Eval {
                    step,
                    metrics: metrics.clone(),
                });
                last_eval = Some((step, metrics));
                if !go_on {
                    cancelled = true;
                    break 'epochs;
                }
            }
            // Saved after the evaluation of the same step, so that the state holds it.
            if every > 0 && step % every == 0 && step < total && step > saved_at {
                save_now(&trainer, best.as_ref()).await?;
                saved_at = step;
            }
            if stopped_early {
                break 'epochs;
            }
        }
        if cfg.eval_every == 0
            && !eval_set.is_empty()
            && epoch + 1 < cfg.epochs
            && step < total
            && (step > resumed_at || (step == resumed_at && eval_pending))
        {
            let metrics =
                evaluate_snapshot(&trainer, &model, prepared, eval_set, cfg.batch_size).await?;
            stopped_early = Best::observe(&mut best, &cfg, step, &metrics, || {
                trainer.snapshot(&model.device)
            });
            let go_on = on_event(&TrainEvent::Eval {
                step,
                metrics: metrics.clone(),
            });
            last_eval = Some((step, metrics));
            if !go_on {
                cancelled = true;
                break;
            }
            if stopped_early {
                break;
            }
        }
    }
    if cancelled && saved_at < step {
        save_now(&trainer, best.as_ref()).await?;
    }
    let device = model.device.clone();
    let mut trained = Model {
        network: trainer.finish(&device),
        ..model
    };
    let mut best_step = None;
    if !eval_set.is_empty() {
        // The last step's evaluation: the one just taken where the run ended on it (stopped
        // early, or by Stop at an evaluation), so that no step is evaluated and reported twice.
        let mut m = match last_eval {
            Some((at, m)) if at == step => m,
            _ => {
                let m = evaluate(&trained, prepared, eval_set, cfg.batch_size).await?;
                on_event(&TrainEvent::Eval {
                    step,
                    metrics: m.clone(),
                });
                m
            }
        };
        // The last step's weights are a candidate too; an earlier evaluation replaces them only
        // when strictly better.
        if let Some(Best {
            step: at,
            metrics: best_metrics,
            network: Some(network),
            ..
        }) = best.filter(|b| !cancelled && b.metrics.loss < m.loss)
        {
            trained.network = network;
            m = best_metrics;
            best_step = Some(at);
        }
        metrics = Some(m);
    }
    Ok(TrainOutcome {
        model: trained,
        steps: step,
        cancelled,
        stopped_early,
        best_step,
        final_loss: last_loss,
        metrics,
    })
}

/// The best evaluation so far, for `load_best_model_at_end` and `early_stopping_patience`.
struct Best {
    step: usize,
    metrics: Metrics,
    /// Its weights on the inference device (kept for `load_best_model_at_end` only).
    network: Option<Network>,
    /// Evaluations since, none of them better.
    waited: usize,
    /// The step of the latest evaluation (this one's or a later one).
    last_eval: usize,
}

impl Best {
    /// Records an evaluation when the run keeps or stops on its best; `true` when the run has
    /// now waited `early_stopping_patience` evaluations for a better one. Better is strictly lower
    /// held-out loss, as HF's callback compares.
    fn observe(
        best: &mut Option<Best>,
        cfg: &TrainConfig,
        step: usize,
        metrics: &Metrics,
        weights: impl FnOnce() -> Network,
    ) -> bool {
        if !cfg.load_best_model_at_end && cfg.early_stopping_patience.is_none() {
            return false;
        }
        match best {
            // Not `a >= b`: a NaN loss (a run that diverged) is never better, as HF's
            // `np.less` comparison has it.
            Some(b) if metrics.loss.partial_cmp(&b.metrics.loss) != Some(Ordering::Less) => {
                b.waited += 1;
                b.last_eval = step;
            }
            _ => {
                *best = Some(Best {
                    step,
                    metrics: metrics.clone(),
                    network: cfg.load_best_model_at_end.then(weights),
                    waited: 0,
                    last_eval: step,
                })
            }
        }
        let waited = best.as_ref().map_or(0, |b| b.waited);
        cfg.early_stopping_patience
            .is_some_and(|p| waited >= p.max(1))
    }

    /// What a saved state records of it (its weights go beside, as tensors).
    fn meta(&self) -> serde_json::Value {
        serde_json::json!({
            "step": self.step,
            "waited": self.waited,
            "last_eval": self.last_eval,
            "metrics": self.metrics,
        })
    }

    fn from_meta(meta: &serde_json::Value, network: Option<Network>) -> Result<Self> {
        let bad = || DuetError::InvalidOption(format!("the saved state's best evaluation: {meta}"));
        Ok(Self {
            step: meta["step"].as_u64().ok_or_else(bad)? as usize,
            waited: meta["waited"].as_u64().ok_or_else(bad)? as usize,
            last_eval: meta["last_eval"].as_u64().ok_or_else(bad)? as usize,
            metrics: serde_json::from_value(meta["metrics"].clone()).map_err(|_| bad())?,
            network,
        })
    }
}

/// Held-out metrics of the network as it is mid-run (dropout off, on the inference device).
async fn evaluate_snapshot(
    trainer: &Trainer,
    model: &Model,
    prepared: &Prepared,
    eval_set: &[Example],
    batch_size: usize,
) -> Result<Metrics> {
    let snapshot = Model {
        network: trainer.snapshot(&model.device),
        ..model.clone()
    };
    evaluate(&snapshot, prepared, eval_set, batch_size).await
}

/// The epoch's batches from the shuffled `order`. With `group_by_length`, windows of 50 batches
/// are sorted by length before cutting, and the batches shuffled again.
fn batches(order: &[usize], set: &[Example], cfg: &TrainConfig, rng: &mut Rng) -> Vec<Vec<usize>> {
    let bs = cfg.batch_size.max(1);
    if !cfg.group_by_length {
        return order.chunks(bs).map(<[usize]>::to_vec).collect();
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    for window in order.chunks(bs * 50) {
        let mut w = window.to_vec();
        w.sort_by_key(|&i| std::cmp::Reverse(set[i].ids.len()));
        out.extend(w.chunks(bs).map(<[usize]>::to_vec));
    }
    let mut idx: Vec<usize> = (0..out.len()).collect();
    shuffle(&mut idx, rng);
    idx.into_iter()
        .map(|i| std::mem::take(&mut out[i]))
        .collect()
}

/// Fisher–Yates with the run's seeded generator.
pub(crate) fn shuffle(v: &mut [usize], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_to_train_parses_or_names_the_choices() {
        let lora = LoraConfig {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            target_modules: vec!["query".into()],
        };
        assert_eq!(
            Trainable::parse("all", lora.clone()).unwrap(),
            Trainable::All
        );
        assert_eq!(
            Trainable::parse("head", lora.clone()).unwrap(),
            Trainable::Head
        );
        assert_eq!(
            Trainable::parse("top:2", lora.clone()).unwrap(),
            Trainable::TopLayers(2)
        );
        assert_eq!(
            Trainable::parse("lora", lora.clone()).unwrap(),
            Trainable::Lora(lora.clone())
        );
        let err = Trainable::parse("top:x", lora).unwrap_err().to_string();
        assert!(err.contains("use all, head, top:N or lora"), "{err}");
    }

    #[test]
    fn a_diverged_evaluation_is_never_the_best() {
        let cfg = TrainConfig {
            early_stopping_patience: Some(2),
            ..TrainConfig::default()
        };
        let loss = |loss: f64| Metrics {
            loss,
            ..Metrics::default()
        };
        let mut best = None;
        let no_weights = || unreachable!("weights are kept for load_best_model_at_end only");
        assert!(!Best::observe(&mut best, &cfg, 10, &loss(2.0), no_weights));
        assert!(!Best::observe(
            &mut best,
            &cfg,
            20,
            &loss(f64::NAN),
            no_weights
        ));
        assert_eq!(best.as_ref().map(|b| (b.step, b.waited)), Some((10, 1)));
        assert!(Best::observe(
            &mut best,
            &cfg,
            30,
            &loss(f64::NAN),
            no_weights
        ));
        assert!(!Best::observe(&mut best, &cfg, 40, &loss(1.5), no_weights));
        assert_eq!(best.as_ref().map(|b| (b.step, b.waited)), Some((40, 0)));
    }
}
