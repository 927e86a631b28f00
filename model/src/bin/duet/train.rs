//! `duet train` and `duet new-gpt2`: fine-tuning and from-scratch models over the engine's code.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use duet_model::device::block_on;
use duet_model::train::export::{self, DType};
use duet_model::train::lora::LoraConfig;
use duet_model::train::optim::Schedule;
use duet_model::train::resume::{TrainState, STATE_JSON, STATE_TENSORS};
use duet_model::train::scratch::{self, Shape};
use duet_model::train::{
    self, prepare, MaskingConfig, Task, TaskData, TrainConfig, TrainEvent, Trainable,
};
use duet_model::{DuetError, Model, ModelFiles};

#[derive(Args)]
pub struct TrainArgs {
    /// classify (text,label CSV/TSV), ner (CoNLL), lm or mlm (plain text).
    #[arg(long)]
    task: String,
    /// mlm: the share of tokens chosen for prediction (of those, 80% become [MASK], 10% a
    /// random token, 10% stay).
    #[arg(long, default_value_t = 0.15)]
    mlm_probability: f64,
    /// mlm: choose whole words (all of a word's pieces together).
    #[arg(long)]
    whole_word_mask: bool,
    /// Training data file.
    #[arg(long)]
    data: PathBuf,
    /// Held-out data file (same format); without it `--eval-split` of the data is held out.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    #[arg(long, default_value_t = 0.1)]
    eval_split: f64,
    /// Base model folder.
    #[arg(long)]
    model: PathBuf,
    /// Where the trained model (or adapter) is written.
    #[arg(long)]
    output: PathBuf,
    /// all, head, top:N, or lora.
    #[arg(long, default_value = "all")]
    train: String,
    #[arg(long, default_value_t = 8)]
    lora_rank: usize,
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    #[arg(long, default_value_t = 0.05)]
    lora_dropout: f64,
    /// Comma-separated module names (default: PEFT's for the architecture).
    #[arg(long)]
    lora_targets: Option<String>,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long)]
    max_steps: Option<usize>,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    /// linear, cosine or constant.
    #[arg(long, default_value = "linear")]
    schedule: String,
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Longest sequence (block size for lm); 0 = the model's limit.
    #[arg(long, default_value_t = 0)]
    max_length: usize,
    /// lm: cut the text into blocks from a new random offset each epoch, so that no block
    /// boundary repeats (against overfitting a small text); without it, fixed blocks as HF's.
    #[arg(long)]
    random_offsets: bool,
    /// End with the weights of the evaluation with the lowest held-out loss, not the last step's
    /// (HF's load_best_model_at_end).
    #[arg(long)]
    load_best_model_at_end: bool,
    /// Stop once N evaluations in a row have not lowered the held-out loss (HF's
    /// EarlyStoppingCallback).
    #[arg(long)]
    early_stopping_patience: Option<usize>,
    /// Evaluate every N steps (0 = every epoch).
    #[arg(long, default_value_t = 0)]
    eval_every: usize,
    /// Cap on training examples (after the split), for quick runs.
    #[arg(long)]
    limit: Option<usize>,
    /// Write a LoRA run as merged full checkpoint instead of a PEFT adapter.
    #[arg(long)]
    merge: bool,
    /// Readable names for label values in the data, e.g. `0=negative,1=positive`.
    #[arg(long)]
    label_names: Option<String>,
    /// Print the final metrics as JSON.
    #[arg(long)]
    json: bool,
    /// Save the run every N steps (and the model as it stands) in `<output>/checkpoint/`, so that
    /// `--resume` can continue it; removed when the run finishes. 0: only when Ctrl-C stops it.
    #[arg(long, default_value_t = 0)]
    save_every: usize,
    /// Continue the run saved in `<output>/checkpoint/` (same command, same data); without one,
    /// start from the beginning.
    #[arg(long)]
    resume: bool,
}

#[derive(Args)]
pub struct ConvertArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    output: PathBuf,
    /// f32 or f16.
    #[arg(long, default_value = "f16")]
    dtype: String,
}

/// Rewrites a checkpoint (e.g. in f16, to ship it at half the size).
pub fn convert(a: ConvertArgs) -> Result<(), DuetError> {
    let dtype = match a.dtype.as_str() {
        "f16" => DType::F16,
        "f32" => DType::F32,
        d => {
            return Err(DuetError::InvalidOption(format!(
                "dtype `{d}` (use f32 or f16)"
            )))
        }
    };
    let model = Model::from_dir(&a.model, &crate::device())?;
    write_files(
        &a.output,
        &block_on(export::full_checkpoint(&model, dtype))?,
    )?;
    println!("{} written ({})", a.output.display(), a.dtype);
    Ok(())
}

#[derive(Args)]
pub struct NewGpt2Args {
    /// Text the BPE tokenizer is trained on.
    #[arg(long)]
    text: PathBuf,
    #[arg(long, default_value_t = 4096)]
    vocab_size: usize,
    #[arg(long, default_value_t = 4)]
    n_layer: usize,
    #[arg(long, default_value_t = 4)]
    n_head: usize,
    #[arg(long, default_value_t = 256)]
    n_embd: usize,
    #[arg(long, default_value_t = 256)]
    n_positions: usize,
    /// Dropout (GPT-2's resid/embd/attn_pdrop), used while it trains.
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long)]
    output: PathBuf,
}

fn read(path: &Path) -> Result<String, DuetError> {
    std::fs::read_to_string(path).map_err(|e| DuetError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

pub fn write_files(dir: &Path, files: &ModelFiles) -> Result<(), DuetError> {
    let io = |e: std::io::Error| DuetError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    for name in files.names() {
        std::fs::write(dir.join(name), files.get(name).expect("listed")).map_err(io)?;
    }
    for name in other_layout(files) {
        let path = dir.join(name);
        if path.is_file() {
            std::fs::remove_file(&path).map_err(io)?;
            eprintln!(
                "removed {} (left by an earlier run of the other kind)",
                path.display()
            );
        }
    }
    Ok(())
}

/// The files of the other layout, which must not stay beside what was just written: a folder
/// with `adapter_config.json` loads as an adapter over its base, so an old adapter would hide a
/// new full checkpoint, and an old `model.safetensors` beside a new adapter makes the folder read
/// as a full model where files are picked by hand (the app's Load page).
fn other_layout(files: &ModelFiles) -> &'static [&'static str] {
    if files.get("adapter_config.json").is_some() {
        &["model.safetensors"]
    } else {
        &["adapter_config.json", "adapter_model.safetensors"]
    }
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn trainable(a: &TrainArgs, model: &Model) -> Result<Trainable, DuetError> {
    let mut cfg = LoraConfig::defaults_for(&model.network);
    cfg.rank = a.lora_rank;
    cfg.alpha = a.lora_alpha;
    cfg.dropout = a.lora_dropout;
    if let Some(t) = &a.lora_targets {
        cfg.target_modules = t.split(',').map(|s| s.trim().to_string()).collect();
    }
    Trainable::parse(&a.train, cfg)
}

/// In a saved run: the content hash of the --model it was trained from.
const BASE_HASH: &str = "base_model_hash.txt";

/// Set by Ctrl-C: the run stops after its current step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn train(a: TrainArgs) -> Result<(), DuetError> {
    let task: Task = a.task.parse()?;
    if a.random_offsets && task != Task::CausalLm {
        // Refused before the model loads, as the engine would refuse it after.
        return Err(DuetError::InvalidOption(
            "--random-offsets is for --task lm only".into(),
        ));
    }
    // The hash of --model's files is saved with the run and checked on --resume (see below).
    let (base, base_hash) = Model::from_dir_hashed(&a.model, &crate::device())?;
    let mut data = TaskData::parse(task, &read(&a.data)?)?;
    if let Some(names) = &a.label_names {
        data = data.rename_labels(&parse_names(names)?);
    }
    let (train_data, eval_data) = match &a.eval_data {
        Some(p) => {
            let mut eval = TaskData::parse(task, &read(p)?)?;
            if let Some(names) = &a.label_names {
                eval = eval.rename_labels(&parse_names(names)?);
            }
            (data, eval)
        }
        None => data.split(a.eval_split, a.seed),
    };
    let (model, mut prepared, mut train_set) = prepare(base, task, &train_data, a.max_length)?;
    if let Some(m) = &mut prepared.masking {
        if !(a.mlm_probability > 0.0 && a.mlm_probability <= 1.0) {
            return Err(DuetError::InvalidOption(
                "--mlm-probability must be in (0, 1]".into(),
            ));
        }
        m.config = MaskingConfig {
            probability: a.mlm_probability,
            whole_word: a.whole_word_mask,
        };
    }
    let eval_set = train::encode_examples(&model, &prepared, &eval_data, a.max_length)?;
    if let Some(n) = a.limit {
        train_set.truncate(n);
    }
    let trainable = trainable(&a, &model)?;
    if matches!(trainable, Trainable::Lora(_)) && !a.merge && same_folder(&a.model, &a.output) {
        // The adapter would replace the base's `model.safetensors` (see `other_layout`), and the
        // adapter needs that base: refused before training, not discovered after.
        return Err(DuetError::InvalidOption(
            "--output is the base model's folder; a LoRA adapter is written beside its base, not \
             over it (pick another --output, or add --merge)"
                .into(),
        ));
    }
    let cfg = TrainConfig {
        epochs: a.epochs,
        max_steps: a.max_steps,
        batch_size: a.batch_size,
        learning_rate: a.lr,
        weight_decay: a.weight_decay,
        warmup_ratio: a.warmup_ratio,
        warmup_steps: None,
        schedule: a.schedule.parse::<Schedule>()?,
        max_grad_norm: (a.max_grad_norm > 0.0).then_some(a.max_grad_norm),
        seed: a.seed,
        trainable: trainable.clone(),
        dropout: true,
        eval_every: a.eval_every,
        group_by_length: true,
        random_offsets: a.random_offsets,
        load_best_model_at_end: a.load_best_model_at_end,
        early_stopping_patience: a.early_stopping_patience,
    };
    eprintln!(
        "training {} on {} examples ({} held out), labels {:?}",
        model.config.architecture,
        train_set.len(),
        eval_set.len(),
        prepared.labels
    );
    let checkpoint = a.output.join("checkpoint");
    // A saved state leaves the frozen parameters out (LoRA's base, a frozen encoder): they come
    // from --model, whose files' content hash is saved beside it and checked on --resume.
    let from = match (a.resume, checkpoint.join(STATE_JSON).is_file()) {
        (true, true) => {
            let saved_base = checkpoint.join(BASE_HASH);
            // A state saved before the hash was (it holds every parameter) has no such file.
            if saved_base.is_file() && read_bytes(&saved_base)? != base_hash.as_bytes() {
                return Err(DuetError::InvalidOption(format!(
                    "the run saved in {} was trained from another --model (or its files have \
                     changed since): give the model it started from, or start afresh without \
                     --resume",
                    checkpoint.display()
                )));
            }
            let state = TrainState::from_files(
                &read_bytes(&checkpoint.join(STATE_JSON))?,
                &read_bytes(&checkpoint.join(STATE_TENSORS))?,
            )?;
            eprintln!(
                "resuming from {} at step {}",
                checkpoint.display(),
                state.step
            );
            Some(state)
        }
        (true, false) => {
            eprintln!(
                "no saved run in {}: starting from step 0",
                checkpoint.display()
            );
            None
        }
        (false, saved) => {
            if saved {
                eprintln!(
                    "{} holds a saved run, which this one will replace (--resume continues it)",
                    checkpoint.display()
                );
            }
            None
        }
    };
    let mut save = |state: TrainState, snapshot: Model| -> Result<(), DuetError> {
        let files = block_on(output_files(
            &snapshot,
            &trainable,
            a.merge,
            &a.model,
            &checkpoint,
        ))?;
        // Written beside, then renamed over the last one: a run killed mid-write keeps it.
        let partial = a.output.join("checkpoint.partial");
        remove_dir(&partial)?;
        write_files(&partial, &files)?;
        let base = (BASE_HASH, base_hash.clone().into_bytes());
        for (name, bytes) in state.to_files()?.into_iter().chain([base]) {
            std::fs::write(partial.join(name), bytes).map_err(|e| io_error(&partial, e))?;
        }
        remove_dir(&checkpoint)?;
        std::fs::rename(&partial, &checkpoint).map_err(|e| io_error(&checkpoint, e))?;
        eprintln!(
            "saved the run at step {} in {}",
            state.step,
            checkpoint.display()
        );
        Ok(())
    };
    let checkpoints = train::Checkpoints {
        from: from.as_ref(),
        every: a.save_every,
        save: Some(&mut save),
        // The trained parameters alone: --resume checks --model's content hash.
        frozen: false,
    };
    // Ctrl-C stops after the step under way, and the run is saved; a second one exits at once.
    let handler = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("stopping after this step (Ctrl-C again to quit at once)");
    });
    if let Err(e) = handler {
        eprintln!("Ctrl-C will end this run without saving it ({e}); --save-every still saves");
    }
    let start = std::time::Instant::now();
    let mut first_step = None;
    let outcome = block_on(train::train_checkpointed(
        model,
        &prepared,
        &train_set,
        &eval_set,
        cfg,
        checkpoints,
        |ev| {
            match ev {
                TrainEvent::Step {
                    step,
                    total_steps,
                    loss,
                    learning_rate,
                    examples_per_s,
                    elapsed_s,
                    ..
                } => {
                    // A resumed run's clock starts at its first step, not at step 1.
                    let first = *first_step.get_or_insert(*step - 1);
                    let eta = elapsed_s / (*step - first) as f64 * (*total_steps - *step) as f64;
                    eprintln!(
                        "step {step}/{total_steps} loss {loss:.4} lr {learning_rate:.2e} {examples_per_s:.1} ex/s eta {eta:.0}s"
                    );
                }
                TrainEvent::Eval { step, metrics } => {
                    eprintln!(
                        "eval @ {step}: {}",
                        serde_json::to_string(metrics).expect("json")
                    );
                }
            }
            !INTERRUPTED.load(Ordering::SeqCst)
        },
        || start.elapsed().as_secs_f64(),
    ))?;
    if outcome.cancelled {
        eprintln!(
            "stopped at step {}: the run is saved in {} (the model as it stands, too); the same \
             command with --resume continues it",
            outcome.steps,
            checkpoint.display()
        );
        return Err(DuetError::Cancelled);
    }
    let files = block_on(output_files(
        &outcome.model,
        &trainable,
        a.merge,
        &a.model,
        &a.output,
    ))?;
    write_files(&a.output, &files)?;
    if checkpoint.is_dir() {
        remove_dir(&checkpoint)?;
        eprintln!("the run finished: {} removed", checkpoint.display());
    }
    if outcome.stopped_early {
        eprintln!(
            "stopped early at step {}: the held-out loss had not improved for {} evaluations",
            outcome.steps,
            a.early_stopping_patience.unwrap_or_default()
        );
    }
    if let Some(best) = outcome.best_step {
        eprintln!("kept the weights of step {best}, whose held-out loss was the lowest");
    }
    let summary = serde_json::json!({
        "steps": outcome.steps,
        "best_step": outcome.best_step,
        "stopped_early": outcome.stopped_early,
        "final_loss": outcome.final_loss,
        "metrics": outcome.metrics,
        "output": a.output.display().to_string(),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("json"));
    } else {
        println!("{summary}");
    }
    Ok(())
}

/// What a run writes to `out`: a PEFT adapter for LoRA (unless merged), else a full f32 checkpoint.
async fn output_files(
    model: &Model,
    trainable: &Trainable,
    merge: bool,
    base: &Path,
    out: &Path,
) -> Result<ModelFiles, DuetError> {
    match (trainable, merge) {
        (Trainable::Lora(l), false) => {
            export::lora_adapter(model, l, &base_reference(base, out)).await
        }
        _ => export::full_checkpoint(model, DType::F32).await,
    }
}

fn io_error(path: &Path, e: std::io::Error) -> DuetError {
    DuetError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, DuetError> {
    std::fs::read(path).map_err(|e| io_error(path, e))
}

/// Removes a folder of this run's own making, if it is there.
fn remove_dir(dir: &Path) -> Result<(), DuetError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(dir, e)),
        _ => Ok(()),
    }
}

fn parse_names(spec: &str) -> Result<Vec<(String, String)>, DuetError> {
    spec.split(',')
        .map(|pair| {
            pair.split_once('=')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| {
                    DuetError::InvalidOption(format!("label name `{pair}` (use value=name)"))
                })
        })
        .collect()
}

/// How the adapter names its base: `../<name>` when both folders sit side by side (so a
/// shipped pair stays relocatable), else the path as given.
fn base_reference(model: &Path, output: &Path) -> String {
    match (model.parent(), output.parent(), model.file_name()) {
        (Some(a), Some(b), Some(name)) if a == b => format!("../{}", name.to_string_lossy()),
        _ => model.display().to_string(),
    }
}

pub fn new_gpt2(a: NewGpt2Args) -> Result<(), DuetError> {
    let text = read(&a.text)?;
    let tokenizer = scratch::train_bpe(&text, a.vocab_size)?;
    let shape = Shape {
        n_layer: a.n_layer,
        n_head: a.n_head,
        n_embd: a.n_embd,
        n_positions: a.n_positions,
        dropout: a.dropout,
    };
    let model = scratch::new_gpt2(tokenizer, &shape, a.seed, &crate::device())?;
    let files = block_on(export::full_checkpoint(&model, DType::F32))?;
    write_files(&a.output, &files)?;
    println!(
        "{}: GPT-2 with {} parameters, vocabulary {}",
        a.output.display(),
        model.network.num_params(),
        model.tokenizer.vocab_size()
    );
    Ok(())
}
