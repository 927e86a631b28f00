//! Fine-tuning against PyTorch: a few AdamW steps (HF Trainer's groups, warm-up + linear decay,
//! global-norm clipping, dropout off) give the same losses, gradients and updated weights, for
//! each task and for LoRA. Plus: training learns, and exports load back identically.

mod common;

use std::collections::HashMap;

use common::*;
use duet_model::device::block_on;
use duet_model::train::export::{self, named_tensors, DType};
use duet_model::train::lora::LoraConfig;
use duet_model::train::optim::Schedule;
use duet_model::train::{
    prepare, Example, Prepared, Target, Task, TaskData, TrainConfig, TrainEvent, TrainOutcome,
    Trainable, Trainer,
};
use duet_model::{Model, ModelFiles};
use serde_json::Value;

fn case(name: &str) -> Value {
    let path = fixture_dir("train").join(format!("{name}.json"));
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn task_of(v: &Value) -> Task {
    v["task"].as_str().unwrap().parse().unwrap()
}

fn batches(v: &Value, task: Task) -> Vec<Vec<Example>> {
    v["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let ids = b["input_ids"].as_array().unwrap();
            ids.iter()
                .enumerate()
                .map(|(i, seq)| {
                    let ids = u32s(seq);
                    let target = match task {
                        Task::SequenceClassification => {
                            Target::Class(b["labels"][i].as_u64().unwrap() as usize)
                        }
                        // Masked-LM: the fixture's ids are already masked, its labels the ids to
                        // predict at the chosen positions (-100 elsewhere).
                        Task::TokenClassification | Task::MaskedLm => Target::Tokens(
                            b["labels"][i]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|x| x.as_i64().unwrap())
                                .collect(),
                        ),
                        // HF shifts `labels = input_ids` inside the model; our targets are shifted.
                        Task::CausalLm => {
                            let l: Vec<i64> = b["labels"][i]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|x| x.as_i64().unwrap())
                                .collect();
                            let mut t: Vec<i64> = l[1..].to_vec();
                            t.push(-100);
                            Target::Tokens(t)
                        }
                    };
                    Example {
                        type_ids: vec![0; ids.len()],
                        ids,
                        target,
                    }
                })
                .collect()
        })
        .collect()
}

fn settings(v: &Value, trainable: Trainable) -> TrainConfig {
    let s = &v["settings"];
    TrainConfig {
        learning_rate: s["learning_rate"].as_f64().unwrap(),
        weight_decay: s["weight_decay"].as_f64().unwrap(),
        warmup_steps: Some(s["warmup_steps"].as_u64().unwrap() as usize),
        schedule: Schedule::Linear,
        max_grad_norm: s["max_grad_norm"].as_f64(),
        dropout: false,
        trainable,
        ..TrainConfig::default()
    }
}

fn lora_settings(v: &Value) -> Option<LoraConfig> {
    let l = &v["settings"]["lora"];
    (!l.is_null()).then(|| LoraConfig {
        rank: l["r"].as_u64().unwrap() as usize,
        alpha: l["alpha"].as_f64().unwrap(),
        dropout: l["dropout"].as_f64().unwrap(),
        target_modules: strings(&l["target_modules"]),
    })
}

/// Relative closeness for losses, absolute for tensors (both 1e-4, as the issue asks).
fn run_case(name: &str) {
    let v = case(name);
    let task = task_of(&v);
    let mut model = load(v["base"].as_str().unwrap());
    let trainable = match lora_settings(&v) {
        Some(l) => {
            let init = ModelFiles::from_dir_any(fixture_dir("train").join(format!("{name}-init")))
                .unwrap();
            model = export::load_adapter(model, &init).unwrap();
            Trainable::Lora(l)
        }
        None => Trainable::All,
    };
    let total = v["settings"]["total_steps"].as_u64().unwrap() as usize;
    let mut trainer = Trainer::new(&model, task, settings(&v, trainable), total).unwrap();
    let batches = batches(&v, task);
    let arch = model.config.arch.clone();
    // Gradients of the first step, before any update.
    let first: Vec<&Example> = batches[0].iter().collect();
    let grads: HashMap<String, Vec<f32>> = block_on(trainer.named_gradients(&first, &arch))
        .unwrap()
        .into_iter()
        .collect();
    for (key, want) in v["grads_step0"].as_object().unwrap() {
        let ours = grads.get(key).unwrap_or_else(|| {
            panic!(
                "{name}: no gradient for {key}; have {:?}",
                grads.keys().collect::<Vec<_>>()
            )
        });
        assert_close(ours, &f32s(want), 1e-4, &format!("{name}: grad {key}"));
    }
    let lrs = f32s(&v["lrs"]);
    for (step, (batch, want)) in batches.iter().zip(f32s(&v["losses"])).enumerate() {
        assert!(
            (trainer.learning_rate() as f32 - lrs[step]).abs() <= 1e-9 + lrs[step] * 1e-6,
            "{name}: lr {step}"
        );
        let refs: Vec<&Example> = batch.iter().collect();
        let loss = block_on(trainer.step(&refs)).unwrap();
        assert!(
            (loss - want).abs() <= 1e-4 * want.abs().max(1e-3),
            "{name}: loss {step}: ours {loss}, torch {want}"
        );
    }
    let trained = trainer.finish(&model.device);
    let weights: HashMap<String, Vec<f32>> = block_on(named_tensors(&trained, &arch))
        .unwrap()
        .into_iter()
        .map(|(k, _, d)| (k, d))
        .collect();
    for (key, want) in v["weights_after"].as_object().unwrap() {
        let ours = weights
            .get(key)
            .unwrap_or_else(|| panic!("{name}: no weight {key}"));
        assert_close(ours, &f32s(want), 1e-4, &format!("{name}: weight {key}"));
    }
}

#[test]
fn sequence_classification_steps_match_pytorch() {
    run_case("seqcls");
}

#[test]
fn token_classification_steps_match_pytorch() {
    run_case("tokcls");
}

#[test]
fn causal_lm_steps_match_pytorch() {
    run_case("lm");
}

#[test]
fn masked_lm_steps_match_pytorch() {
    run_case("mlm");
}

#[test]
fn lora_classification_steps_match_peft() {
    run_case("lora-seqcls");
}

#[test]
fn lora_lm_steps_match_peft() {
    run_case("lora-lm");
}

/// Sentences the tiny BERT's vocabulary covers; the label is which word list they come from.
fn toy_sentiment() -> String {
    let pos = [
        "great fun",
        "i love it",
        "a delight",
        "so good",
        "brilliant and warm",
    ];
    let neg = [
        "awful",
        "i hate it",
        "boring mess",
        "so bad",
        "dull and slow",
    ];
    let mut rows = vec!["label\ttext".to_string()];
    for i in 0..80 {
        let (l, words) = if i % 2 == 0 {
            ("pos", &pos)
        } else {
            ("neg", &neg)
        };
        rows.push(format!("{l}\t{} {}", words[i % 5], words[(i / 2 + 1) % 5]));
    }
    rows.join("\n")
}

#[test]
fn training_lowers_loss_and_raises_held_out_accuracy() {
    let base = load("bert-seqcls");
    let data = TaskData::parse(Task::SequenceClassification, &toy_sentiment()).unwrap();
    let (train_data, eval_data) = data.split(0.25, 7);
    let (model, prepared, train_set) =
        prepare(base, Task::SequenceClassification, &train_data, 0).unwrap();
    // The toy labels differ from the checkpoint's, so a fresh two-label head was made.
    assert_eq!(prepared.labels, vec!["neg", "pos"]);
    assert_eq!(model.config.architecture, "BertForSequenceClassification");
    let eval_set = duet_model::train::encode_examples(&model, &prepared, &eval_data, 0).unwrap();
    let before = block_on(duet_model::train::evaluate(
        &model, &prepared, &eval_set, 16,
    ))
    .unwrap();
    let cfg = TrainConfig {
        epochs: 10,
        batch_size: 8,
        learning_rate: 2e-3,
        ..TrainConfig::default()
    };
    let mut losses = Vec::new();
    let outcome = block_on(duet_model::train::train(
        model,
        &prepared,
        &train_set,
        &eval_set,
        cfg,
        |e| {
            if let duet_model::train::TrainEvent::Step { loss, .. } = e {
                losses.push(*loss);
            }
            true
        },
        || 0.0,
    ))
    .unwrap();
    let after = outcome.metrics.unwrap();
    let head: f32 = losses[..4].iter().sum::<f32>() / 4.0;
    let tail: f32 = losses[losses.len() - 4..].iter().sum::<f32>() / 4.0;
    assert!(tail < head * 0.7, "loss fell: {head} → {tail}");
    assert!(
        after.loss < before.loss,
        "held-out loss {} → {}",
        before.loss,
        after.loss
    );
    assert!(
        after.accuracy.unwrap() > before.accuracy.unwrap().max(0.8),
        "accuracy {:?} → {:?}",
        before.accuracy,
        after.accuracy
    );
}

#[test]
fn cancelling_stops_between_steps() {
    let base = load("bert-seqcls");
    let data = TaskData::parse(Task::SequenceClassification, &toy_sentiment()).unwrap();
    let (model, prepared, train_set) =
        prepare(base, Task::SequenceClassification, &data, 0).unwrap();
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 4,
        ..TrainConfig::default()
    };
    let mut seen = 0;
    let outcome = block_on(duet_model::train::train(
        model,
        &prepared,
        &train_set,
        &[],
        cfg,
        |_| {
            seen += 1;
            seen < 3
        },
        || 0.0,
    ))
    .unwrap();
    assert!(outcome.cancelled);
    assert_eq!(outcome.steps, 3);
}

fn logits(model: &Model, text: &str) -> Vec<f32> {
    let out = block_on(duet_model::pipelines::classify::classify_logits(
        model,
        &[text.to_string()],
    ))
    .unwrap();
    out.into_iter().next().unwrap()
}

#[test]
fn exports_round_trip_to_identical_outputs() {
    let base = load("bert-seqcls");
    let data = TaskData::parse(Task::SequenceClassification, &toy_sentiment()).unwrap();
    let (model, prepared, train_set) =
        prepare(base.clone(), Task::SequenceClassification, &data, 0).unwrap();
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["query".into(), "value".into()],
    };
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 8,
        learning_rate: 5e-3,
        trainable: Trainable::Lora(lora.clone()),
        ..TrainConfig::default()
    };
    let trained = block_on(duet_model::train::train(
        model,
        &prepared,
        &train_set,
        &[],
        cfg,
        |_| true,
        || 0.0,
    ))
    .unwrap()
    .model;
    let text = "i love it, so good";
    let want = logits(&trained, text);
    assert_ne!(want, logits(&base, text));

    // PEFT adapter onto the original base.
    let adapter = block_on(export::lora_adapter(&trained, &lora, "bert-seqcls")).unwrap();
    let reloaded = export::load_adapter(base.clone(), &adapter).unwrap();
    assert_close(&logits(&reloaded, text), &want, 1e-5, "adapter round trip");

    // Full checkpoint, LoRA merged in.
    let full = block_on(export::full_checkpoint(&trained, DType::F32)).unwrap();
    let reloaded = Model::from_files(&full, &base.device).unwrap();
    assert_eq!(reloaded.config.id2label, vec!["neg", "pos"]);
    assert_close(
        &logits(&reloaded, text),
        &want,
        1e-4,
        "full checkpoint round trip",
    );

    // For scripts/check_exports.py: the exports and what the Rust model says.
    if let Some(dir) = std::env::var_os("DUET_EXPORT_DIR") {
        let dir = std::path::PathBuf::from(dir);
        for (sub, files) in [("full", &full), ("adapter", &adapter)] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            for n in files.names() {
                std::fs::write(dir.join(sub).join(n), files.get(n).unwrap()).unwrap();
            }
        }
        let record = serde_json::json!({"base": fixture_dir("bert-seqcls"), "text": text, "input_ids": trained.tokenizer.encode(text, true).unwrap().ids, "logits": want});
        std::fs::write(
            dir.join("expected.json"),
            serde_json::to_vec_pretty(&record).unwrap(),
        )
        .unwrap();
    }
}

/// Which keys changed after a few steps in `mode`.
fn changed_keys(mode: Trainable) -> Vec<String> {
    let model = load("bert-seqcls");
    let arch = model.config.arch.clone();
    let before: HashMap<String, Vec<f32>> = block_on(named_tensors(&model.network, &arch))
        .unwrap()
        .into_iter()
        .map(|(k, _, d)| (k, d))
        .collect();
    let v = case("seqcls");
    let cfg = TrainConfig {
        learning_rate: 1e-2,
        warmup_steps: Some(0),
        trainable: mode,
        dropout: false,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, Task::SequenceClassification, cfg, 3).unwrap();
    for batch in batches(&v, Task::SequenceClassification) {
        let refs: Vec<&Example> = batch.iter().collect();
        block_on(trainer.step(&refs)).unwrap();
    }
    let after = block_on(named_tensors(&trainer.finish(&model.device), &arch)).unwrap();
    let mut changed: Vec<String> = after
        .into_iter()
        .filter(|(k, _, d)| before.get(k) != Some(d))
        .map(|(k, _, _)| k)
        .collect();
    changed.sort();
    changed
}

#[test]
fn head_only_and_top_layers_train_only_those_parameters() {
    let head = changed_keys(Trainable::Head);
    assert!(!head.is_empty());
    assert!(
        head.iter()
            .all(|k| k.starts_with("classifier") || k.starts_with("bert.pooler")),
        "{head:?}"
    );
    let top = changed_keys(Trainable::TopLayers(1));
    assert!(
        top.iter().any(|k| k.starts_with("bert.encoder.layer.1.")),
        "{top:?}"
    );
    assert!(
        !top.iter()
            .any(|k| k.starts_with("bert.encoder.layer.0.") || k.starts_with("bert.embeddings")),
        "{top:?}"
    );
    let all = changed_keys(Trainable::All);
    assert!(
        all.iter().any(|k| k.starts_with("bert.embeddings"))
            && all.iter().any(|k| k.starts_with("bert.encoder.layer.0."))
    );
}

/// The toy sentences as plain text, one per line: what a masked LM learns from.
fn toy_text() -> String {
    toy_sentiment()
        .lines()
        .skip(1)
        .map(|l| l.split_once('\t').expect("label\ttext").1)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Step losses of a masked-LM run on `model` (already holding its head) with `seed`.
fn mlm_losses(
    model: &Model,
    prepared: &duet_model::train::Prepared,
    set: &[Example],
    seed: u64,
) -> Vec<f32> {
    let cfg = TrainConfig {
        epochs: 1,
        max_steps: Some(4),
        batch_size: 8,
        learning_rate: 5e-3,
        seed,
        dropout: false,
        ..TrainConfig::default()
    };
    let mut losses = Vec::new();
    block_on(duet_model::train::train(
        model.clone(),
        prepared,
        set,
        &[],
        cfg,
        |ev| {
            if let duet_model::train::TrainEvent::Step { loss, .. } = ev {
                losses.push(*loss);
            }
            true
        },
        || 0.0,
    ))
    .unwrap();
    losses
}

#[test]
fn masked_lm_training_adds_a_head_learns_and_exports() {
    use duet_model::config::Head;
    // A BERT without an MLM head (it classifies) gets a fresh one, HF-initialised and tied.
    let base = load("bert-seqcls");
    assert_ne!(base.config.head, Head::MaskedLm);
    let data = TaskData::parse(Task::MaskedLm, &toy_text()).unwrap();
    let (train_data, eval_data) = data.split(0.25, 1);
    // Blocks of 16 tokens, so that the run has several batches.
    let (model, prepared, train_set) = prepare(base, Task::MaskedLm, &train_data, 16).unwrap();
    assert_eq!(model.config.head, Head::MaskedLm);
    assert_eq!(model.config.architecture, "BertForMaskedLM");
    let tensors: HashMap<String, Vec<f32>> =
        block_on(named_tensors(&model.network, &model.config.arch))
            .unwrap()
            .into_iter()
            .map(|(k, _, d)| (k, d))
            .collect();
    assert!(tensors["cls.predictions.bias"].iter().all(|&b| b == 0.0));
    assert!(tensors["cls.predictions.transform.LayerNorm.weight"]
        .iter()
        .all(|&w| w == 1.0));
    let dense = &tensors["cls.predictions.transform.dense.weight"];
    let std = (dense.iter().map(|w| w * w).sum::<f32>() / dense.len() as f32).sqrt();
    assert!((std - 0.02).abs() < 0.004, "dense init std {std}");
    assert!(
        !tensors.contains_key("cls.predictions.decoder.weight"),
        "the decoder is the word embeddings, not a copy"
    );
    // Blocks are [CLS] … [SEP] with the words in between; stored unmasked.
    let first = &train_set[0];
    assert_eq!(first.ids.len(), 16);
    assert!(
        matches!(&first.target, Target::Unmasked { words } if words[0].is_none() && words[15].is_none() && words[1].is_some())
    );
    let eval_set = duet_model::train::encode_examples(&model, &prepared, &eval_data, 16).unwrap();

    // The same seed masks the same tokens: the same losses; another seed, other losses.
    let a = mlm_losses(&model, &prepared, &train_set, 7);
    assert_eq!(a.len(), 4);
    assert_eq!(a, mlm_losses(&model, &prepared, &train_set, 7));
    assert_ne!(a, mlm_losses(&model, &prepared, &train_set, 8));

    // Training lowers the held-out loss; the metrics are the masked tokens' ranks.
    let before = block_on(duet_model::train::evaluate(&model, &prepared, &eval_set, 8)).unwrap();
    let cfg = TrainConfig {
        epochs: 30,
        batch_size: 8,
        learning_rate: 2e-3,
        dropout: false,
        ..TrainConfig::default()
    };
    let trained = block_on(duet_model::train::train(
        model,
        &prepared,
        &train_set,
        &eval_set,
        cfg,
        |_| true,
        || 0.0,
    ))
    .unwrap();
    let after = trained.metrics.clone().unwrap();
    assert!(after.loss < before.loss * 0.6, "{before:?} -> {after:?}");
    let (top1, top5) = (after.accuracy.unwrap(), after.top5_accuracy.unwrap());
    assert!(
        top1 > before.accuracy.unwrap() && top5 > before.top5_accuracy.unwrap() && top5 >= top1,
        "{before:?} -> {after:?}"
    );
    assert!((after.perplexity.unwrap() - after.loss.exp()).abs() < 1e-9);

    // The full checkpoint loads back with the same fill-mask answers.
    let trained = trained.model;
    let text = "i [MASK] it";
    let fills = |m: &Model| {
        block_on(duet_model::pipelines::fill_mask::fill_mask(
            m,
            &[text.to_string()],
            5,
        ))
        .unwrap()
        .remove(0)
    };
    let want = fills(&trained);
    let full = block_on(export::full_checkpoint(&trained, DType::F32)).unwrap();
    let reloaded = Model::from_files(&full, &trained.device).unwrap();
    assert_eq!(reloaded.config.head, Head::MaskedLm);
    let got = fills(&reloaded);
    assert_eq!(
        got.iter().map(|f| f.token).collect::<Vec<_>>(),
        want.iter().map(|f| f.token).collect::<Vec<_>>()
    );
    // For scripts/check_exports.py: transformers' fill-mask top 5 from the same files.
    if let Some(dir) = std::env::var_os("DUET_EXPORT_DIR") {
        let dir = std::path::PathBuf::from(dir).join("mlm");
        std::fs::create_dir_all(&dir).unwrap();
        for n in full.names() {
            std::fs::write(dir.join(n), full.get(n).unwrap()).unwrap();
        }
        let record = serde_json::json!({
            "text": text,
            "top5": want.iter().map(|f| f.token).collect::<Vec<_>>(),
            "scores": want.iter().map(|f| f.score).collect::<Vec<_>>(),
        });
        std::fs::write(
            dir.join("expected.json"),
            serde_json::to_vec_pretty(&record).unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn distilbert_gets_a_masked_lm_head_and_trains() {
    use duet_model::config::Head;
    let base = load("distilbert-tokcls");
    assert_ne!(base.config.head, Head::MaskedLm);
    let data = TaskData::parse(Task::MaskedLm, &toy_text()).unwrap();
    let (model, prepared, set) = prepare(base, Task::MaskedLm, &data, 16).unwrap();
    assert_eq!(model.config.architecture, "DistilBertForMaskedLM");
    let losses = mlm_losses(&model, &prepared, &set, 3);
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    let full = block_on(export::full_checkpoint(&model, DType::F32)).unwrap();
    let reloaded = Model::from_files(&full, &model.device).unwrap();
    assert_eq!(reloaded.config.head, Head::MaskedLm);
}

const LINES: &str = "the cat sat on the mat and looked at the door\n\
    a dog ran across the yard to find the ball\n\
    rain fell all night on the quiet little town\n\
    she opened the window and the cold air came in\n";
const HELD_OUT: &str = "the old man read the paper by the fire\n\
    children played in the park until the sun went down\n";

/// A tiny GPT-2 trained hard on four lines: its loss on two others falls, then rises.
fn overfitting(
    cfg_change: impl FnOnce(&mut TrainConfig),
) -> (Vec<(usize, f64)>, TrainOutcome, Vec<Example>, Prepared) {
    let data = TaskData::parse(Task::CausalLm, LINES).unwrap();
    let (model, prepared, train_set) =
        prepare(load("gpt2-tiny"), Task::CausalLm, &data, 16).unwrap();
    let held_out = TaskData::parse(Task::CausalLm, HELD_OUT).unwrap();
    let eval_set = duet_model::train::encode_examples(&model, &prepared, &held_out, 16).unwrap();
    let mut cfg = TrainConfig {
        epochs: 12,
        batch_size: 2,
        learning_rate: 2e-2,
        warmup_ratio: 0.0,
        schedule: Schedule::Constant,
        dropout: false,
        ..TrainConfig::default()
    };
    cfg_change(&mut cfg);
    let mut evals = Vec::new();
    let outcome = block_on(duet_model::train::train(
        model,
        &prepared,
        &train_set,
        &eval_set,
        cfg,
        |e| {
            if let TrainEvent::Eval { step, metrics } = e {
                evals.push((*step, metrics.loss));
            }
            true
        },
        || 0.0,
    ))
    .unwrap();
    (evals, outcome, eval_set, prepared)
}

#[test]
fn the_best_evaluation_is_kept_and_early_stopping_waits_its_patience() {
    // Without either: every epoch evaluated, the last step's weights returned.
    let (evals, last, ..) = overfitting(|_| {});
    let (mid, end) = evals.split_at(evals.len() - 1);
    let (best_at, best_loss) = mid
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(
        best_loss < end[0].1,
        "the held-out loss must rise for the test to mean anything: {evals:?}"
    );
    assert_eq!(last.best_step, None);
    assert!(!last.stopped_early);

    let (kept_evals, kept, eval_set, prepared) = overfitting(|c| c.load_best_model_at_end = true);
    // Every evaluation reported is its own step's: the last is the last step's, not the kept one.
    assert_eq!(kept_evals, evals, "the same run, the same evaluations");
    assert_eq!(kept.steps, last.steps);
    assert_eq!(kept.best_step, Some(best_at));
    let reported = kept.metrics.as_ref().unwrap().loss;
    assert_eq!(reported, best_loss);
    // The returned weights are the best step's: evaluated again, they give its loss.
    let again = block_on(duet_model::train::evaluate(
        &kept.model,
        &prepared,
        &eval_set,
        2,
    ))
    .unwrap();
    assert!(
        (again.loss - best_loss).abs() < 1e-6,
        "{} vs {best_loss}",
        again.loss
    );

    // Patience 2: the run ends at the second evaluation after the best that did not beat it.
    let (stopped_evals, stopped, ..) = overfitting(|c| c.early_stopping_patience = Some(2));
    let worse_after: Vec<usize> = mid
        .iter()
        .scan(f64::INFINITY, |lowest, &(step, loss)| {
            let worse = loss >= *lowest;
            *lowest = lowest.min(loss);
            Some((step, worse))
        })
        .scan(0, |waited, (step, worse)| {
            *waited = if worse { *waited + 1 } else { 0 };
            Some((step, *waited))
        })
        .filter(|&(_, waited)| waited == 2)
        .map(|(step, _)| step)
        .collect();
    let expected_stop = *worse_after
        .first()
        .unwrap_or_else(|| panic!("the loss must fail to improve twice in a row: {evals:?}"));
    assert!(stopped.stopped_early);
    assert_eq!(stopped.steps, expected_stop);
    assert!(stopped.steps < last.steps);
    // The evaluation that stopped it is reported once, and is the outcome's.
    assert_eq!(
        stopped_evals,
        evals[..stopped_evals.len()],
        "evaluated once each"
    );
    assert_eq!(stopped_evals.last().unwrap().0, expected_stop);
    assert_eq!(
        stopped.metrics.as_ref().unwrap().loss,
        stopped_evals.last().unwrap().1
    );
}
