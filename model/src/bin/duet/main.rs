//! `duet`: the engine from the command line, for scripts, benchmarks and tests.
//! Every failure is one line on stderr and a non-zero exit.

mod stream;
mod train;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use duet_model::bench;
use duet_model::defaults;
use duet_model::device::{block_on, cpu};
use duet_model::generation::beam::BeamConfig;
use duet_model::generation::{GenerationConfig, Overflow};
use duet_model::pipelines::{attention, classify, embed, fill_mask, ner, text_generation};
use duet_model::{DuetError, Model};

use stream::{Batches, Printer};

#[derive(Parser)]
#[command(
    name = "duet",
    version,
    about = "GPT-2, BERT and DistilBERT on burn, HF-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where the engine runs: `cpu` (burn's flex backend, every core) or `gpu` (wgpu: Vulkan,
    /// Metal or DX12; needs a duet built with `--features wgpu`).
    #[arg(long, global = true, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DeviceArg {
    Cpu,
    Gpu,
}

/// The device `--device` chose, started once (`main` sets it before any command runs).
static DEVICE: std::sync::OnceLock<burn::tensor::Device> = std::sync::OnceLock::new();

fn device() -> burn::tensor::Device {
    DEVICE.get().cloned().unwrap_or_else(cpu)
}

#[derive(Args)]
struct Common {
    /// Model folder (config.json, model.safetensors, tokenizer files).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Input text; repeat for several. Without any, each line of standard input is one text.
    #[arg(long)]
    text: Vec<String>,
    /// Print one JSON document instead of readable lines.
    #[arg(long)]
    json: bool,
    /// Texts per forward pass; input is read, run and printed one batch at a time.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Continue a prompt with GPT-2.
    Generate {
        #[arg(long)]
        model: Option<PathBuf>,
        /// Prompt; repeat for several. Without any, each line of standard input is a prompt.
        #[arg(long)]
        prompt: Vec<String>,
        #[arg(long, default_value_t = 50)]
        max_new_tokens: usize,
        /// Always take the most likely token.
        #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p", "seed"])]
        greedy: bool,
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        #[arg(long, default_value_t = 50)]
        top_k: usize,
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        #[arg(long, default_value_t = 1.0)]
        repetition_penalty: f32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Stop once the continuation contains this text (repeatable).
        #[arg(long)]
        stop: Vec<String>,
        /// Drop the start of prompts longer than the context instead of failing.
        #[arg(long)]
        truncate_left: bool,
        /// Re-run the whole sequence each step (for comparison with the KV cache).
        #[arg(long)]
        no_cache: bool,
        /// Beam search with this many beams (HF `num_beams`); deterministic, so it takes no
        /// sampling option.
        #[arg(long, default_value_t = 1,
            conflicts_with_all = ["greedy", "temperature", "top_k", "top_p", "seed", "repetition_penalty", "stop", "no_cache"])]
        num_beams: usize,
        /// Beam search: scores are divided by length^this (HF `length_penalty`).
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        length_penalty: f32,
        /// Beam search: never repeat an n-gram of this size (0: off).
        #[arg(long, default_value_t = 0)]
        no_repeat_ngram_size: usize,
        /// Beam search: how many hypotheses to print, best first.
        #[arg(long, default_value_t = 1)]
        num_return_sequences: usize,
        /// Beam search: stop once `num_beams` hypotheses are finished (`true`, the flag alone),
        /// or `never` before no running beam can win; without it, HF's default (`false`).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        early_stopping: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Label texts with a sequence-classification model.
    Classify {
        #[command(flatten)]
        common: Common,
    },
    /// Tag named entities.
    Ner {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value = "simple")]
        aggregation: String,
        /// Tokens shared by windows of texts longer than the model (default: a quarter).
        #[arg(long)]
        stride: Option<usize>,
    },
    /// Predict the masked token.
    FillMask {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 5)]
        top_k: usize,
    },
    /// Attention probabilities of one text, every layer and head (`output_attentions`).
    Attention {
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        text: String,
        /// Print `{"ids", "tokens", "attentions": [layer][head][query][key]}`; without it, each
        /// layer's head average as one line per token (what it attends to most).
        #[arg(long)]
        json: bool,
    },
    /// Sentence embeddings (mean-pooled, L2-normalised).
    Embed {
        #[command(flatten)]
        common: Common,
    },
    /// Throughput: tokens/s for GPT-2 generation (with and without the KV cache), sentences/s for
    /// sequence classifiers.
    Bench {
        /// Model folders; repeat for several.
        #[arg(long, required = true)]
        model: Vec<PathBuf>,
        #[arg(long, default_value_t = 64)]
        new_tokens: usize,
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// Fine-tune a model on your data (classification, NER or language modelling).
    Train(Box<train::TrainArgs>),
    /// Create a GPT-2 from scratch: a BPE tokenizer trained on a text, randomly initialised weights.
    NewGpt2(train::NewGpt2Args),
    /// Rewrite a model folder, e.g. in f16.
    Convert(train::ConvertArgs),
    /// Measure the embedded default models on their held-out data (needs ../shared/data).
    Eval {
        /// Folder holding data/sst2, data/conll2003, data/tinyshakespeare.
        #[arg(long, default_value = "../shared")]
        shared: PathBuf,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
    },
}

/// The prompt every generation benchmark continues (the PyTorch script uses the same).
const BENCH_PROMPT: &str = "The quick brown fox jumps over the lazy dog, and then";

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `public/models/` of this checkout, or `$DUET_MODELS`. The checkout is the one duet was built
/// in; where that folder is gone (a checkout moved with its target dir, whose builds cargo still
/// finds fresh), the one `cargo run` or `cargo test` names at run time.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DUET_MODELS") {
        return PathBuf::from(dir);
    }
    let built_in = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../public/models");
    if built_in.is_dir() {
        return built_in;
    }
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(|dir| PathBuf::from(dir).join("../public/models"))
        .filter(|dir| dir.is_dir())
        .unwrap_or(built_in)
}

/// The folder given, else the embedded default for the task.
fn load(model: Option<PathBuf>, task: &str) -> Result<Model, DuetError> {
    let dir = match model {
        Some(dir) => dir,
        None => {
            let name = defaults::for_task(task).ok_or_else(|| {
                DuetError::InvalidOption(format!(
                    "--model is required for {task} (there is no default model for it)"
                ))
            })?;
            models_dir().join(name)
        }
    };
    Model::from_dir(dir, &device())
}

fn print_json<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serializable")
    );
}

fn run(cli: Cli) -> Result<(), DuetError> {
    if cli.device == DeviceArg::Gpu {
        let _ = DEVICE.set(duet_model::device::gpu()?);
    }
    match cli.command {
        Command::Generate {
            model,
            prompt,
            max_new_tokens,
            greedy,
            temperature,
            top_k,
            top_p,
            repetition_penalty,
            seed,
            stop,
            truncate_left,
            no_cache,
            num_beams,
            length_penalty,
            no_repeat_ngram_size,
            num_return_sequences,
            early_stopping,
            json,
        } => {
            let model = load(model, "generate")?;
            let beam_options = no_repeat_ngram_size != 0
                || num_return_sequences != 1
                || length_penalty != 1.0
                || early_stopping.is_some();
            if num_beams > 1 || beam_options {
                let cfg = BeamConfig {
                    num_beams,
                    max_new_tokens,
                    length_penalty,
                    early_stopping: early_stopping.as_deref().unwrap_or("false").parse()?,
                    no_repeat_ngram_size,
                    num_return_sequences,
                    eos_token_id: None,
                };
                if num_beams < 2 {
                    return Err(DuetError::InvalidOption(
                        "--length-penalty, --no-repeat-ngram-size, --num-return-sequences and \
                         --early-stopping are beam search options: add --num-beams N (N >= 2)"
                            .into(),
                    ));
                }
                let mut printer = Printer::new(json);
                for batch in Batches::new(prompt, 1) {
                    for p in &batch? {
                        for out in block_on(text_generation::beam_generation(&model, p, &cfg))? {
                            printer.item(&out, |o| format!("{:.4}\t{}", o.score, o.generated_text));
                        }
                    }
                }
                printer.finish();
                return Ok(());
            }
            let cfg = GenerationConfig {
                max_new_tokens,
                do_sample: !greedy,
                temperature,
                top_k,
                top_p,
                repetition_penalty,
                seed,
                stop_strings: stop,
                overflow: if truncate_left {
                    Overflow::TruncateLeft
                } else {
                    Overflow::Error
                },
                use_cache: !no_cache,
                ..GenerationConfig::default()
            };
            #[derive(Serialize)]
            struct Out {
                generated_text: String,
                new_token_ids: Vec<u32>,
                finish_reason: duet_model::generation::FinishReason,
            }
            let mut printer = Printer::new(json);
            for batch in Batches::new(prompt, 1) {
                for p in &batch? {
                    if !json {
                        print!("{p}");
                    }
                    let g = block_on(text_generation::text_generation(&model, p, &cfg, |ev| {
                        if !json {
                            print!("{}", ev.text);
                            let _ = std::io::stdout().flush();
                        }
                        true
                    }))?;
                    let out = Out {
                        generated_text: g.generated_text,
                        new_token_ids: g.new_token_ids,
                        finish_reason: g.finish_reason,
                    };
                    // The text itself has streamed already; the readable line only ends it.
                    printer.item(&out, |_| String::new());
                }
            }
            printer.finish();
        }
        Command::Classify { common } => {
            let model = load(common.model, "classify")?;
            let mut printer = Printer::new(common.json);
            for batch in Batches::new(common.text, common.batch_size) {
                for labels in block_on(classify::classify(&model, &batch?))? {
                    printer.item(&labels, |labels| {
                        let line: Vec<String> = labels
                            .iter()
                            .map(|l| format!("{} {:.4}", l.label, l.score))
                            .collect();
                        line.join("\t")
                    });
                }
            }
            printer.finish();
        }
        Command::Ner {
            common,
            aggregation,
            stride,
        } => {
            let model = load(common.model, "ner")?;
            let opts = ner::NerOptions {
                aggregation: aggregation.parse()?,
                stride,
            };
            let mut printer = Printer::new(common.json);
            for batch in Batches::new(common.text, common.batch_size) {
                for ents in block_on(ner::ner(&model, &batch?, opts))? {
                    printer.item(&ents, |ents| {
                        let line: Vec<String> = ents
                            .iter()
                            .map(|e| {
                                let label = e.entity_group.as_ref().or(e.entity.as_ref());
                                format!(
                                    "{}[{}] {}-{} {:.3}",
                                    e.word,
                                    label.map_or("", |s| s),
                                    e.start,
                                    e.end,
                                    e.score
                                )
                            })
                            .collect();
                        line.join("\t")
                    });
                }
            }
            printer.finish();
        }
        Command::FillMask { common, top_k } => {
            let model = load(common.model, "fill-mask")?;
            let mut printer = Printer::new(common.json);
            for batch in Batches::new(common.text, common.batch_size) {
                for fills in block_on(fill_mask::fill_mask(&model, &batch?, top_k))? {
                    printer.item(&fills, |fills| {
                        let line: Vec<String> = fills
                            .iter()
                            .map(|f| format!("{} {:.4}", f.token_str, f.score))
                            .collect();
                        line.join("\t")
                    });
                }
            }
            printer.finish();
        }
        Command::Attention { model, text, json } => {
            // Any architecture has attention: the generation default when none is named.
            let model = load(model, "generate")?;
            let map = block_on(attention::attention(&model, &text))?;
            if json {
                print_json(&map);
            } else {
                for (l, layer) in map.attentions.iter().enumerate() {
                    println!("layer {l} (mean of {} heads)", layer.len());
                    for (q, token) in map.tokens.iter().enumerate() {
                        let mean: Vec<f32> = (0..map.tokens.len())
                            .map(|k| {
                                layer.iter().map(|h| h[q][k]).sum::<f32>() / layer.len() as f32
                            })
                            .collect();
                        let (k, p) = mean.iter().enumerate().fold((0, f32::MIN), |b, (k, &p)| {
                            if p > b.1 {
                                (k, p)
                            } else {
                                b
                            }
                        });
                        println!("  {token} -> {} {p:.3}", map.tokens[k]);
                    }
                }
            }
        }
        Command::Embed { common } => {
            let model = load(common.model, "embed")?;
            let mut printer = Printer::new(common.json);
            for batch in Batches::new(common.text, common.batch_size) {
                for v in block_on(embed::embed(&model, &batch?))? {
                    printer.item(&v, |v| {
                        let line: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
                        line.join(" ")
                    });
                }
            }
            printer.finish();
        }
        Command::Bench {
            model,
            new_tokens,
            batch_size,
            rounds,
            json,
        } => {
            let start = std::time::Instant::now();
            let now = || start.elapsed().as_secs_f64();
            let mut rows = Vec::new();
            for dir in model {
                let m = Model::from_dir(&dir, &device())?;
                let backend = if DEVICE.get().is_some() {
                    "burn wgpu (GPU)"
                } else {
                    "burn flex (CPU)"
                };
                let mut row = serde_json::json!({
                    "model": dir.display().to_string(),
                    "architecture": m.config.architecture,
                    "backend": backend,
                });
                if m.config.is_gpt2() {
                    let g = block_on(bench::bench_generation(&m, BENCH_PROMPT, new_tokens, now))?;
                    row["generation"] = serde_json::to_value(g).expect("serializable");
                } else if m.config.head == duet_model::Head::SequenceClassification {
                    let c = block_on(bench::bench_classify(&m, batch_size, rounds, now))?;
                    row["classify"] = serde_json::to_value(c).expect("serializable");
                } else {
                    return Err(DuetError::InvalidOption(format!(
                        "{}: bench covers GPT-2 generation and sequence classification",
                        dir.display()
                    )));
                }
                if !json {
                    println!("{row}");
                }
                rows.push(row);
            }
            if json {
                print_json(&rows);
            }
        }
        Command::Train(args) => train::train(*args)?,
        Command::NewGpt2(args) => train::new_gpt2(args)?,
        Command::Convert(args) => train::convert(args)?,
        Command::Eval { shared, batch_size } => print_json(&block_on(defaults::evaluate(
            &models_dir(),
            &shared,
            batch_size,
        ))?),
    }
    Ok(())
}
