//! `duet train`, `duet new-gpt2` and `duet convert` end to end on the tiny fixtures.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn duet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(args)
        .output()
        .unwrap()
}

/// A run that must succeed, with its stdout and stderr.
fn succeeds(args: &[&str]) -> Output {
    let out = duet(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(args: &[&str]) -> String {
    String::from_utf8(succeeds(args).stdout).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duet-cli-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `train --task <task> --data <data> --model <model> --output <output>`, then `extra`: the
/// arguments each training run here starts with (the three folders from [`paths`]).
fn train_args<'a>(task: &'a str, folders: &'a [String; 3], extra: &[&'a str]) -> Vec<&'a str> {
    let [data, model, output] = folders;
    let mut args = vec![
        "train", "--task", task, "--data", data, "--model", model, "--output", output,
    ];
    args.extend(extra);
    args
}

/// The data, model and output folders of a training run, as arguments.
fn paths(data: &Path, model: &Path, output: &Path) -> [String; 3] {
    [s(data), s(model), s(output)]
}

const TOY: &str = "pos,great fun\nneg,awful\npos,i love it\nneg,so bad\npos,a delight\nneg,boring mess\npos,so good\nneg,i hate it\n";

/// A scratch folder holding `data.csv`: the toy sentiment set, `repeat` times over.
fn toy_csv(name: &str, repeat: usize) -> PathBuf {
    let dir = scratch(name);
    std::fs::write(
        dir.join("data.csv"),
        format!("label,text\n{}", TOY.repeat(repeat)),
    )
    .unwrap();
    dir
}

#[test]
fn train_classifier_writes_a_loadable_checkpoint_and_reports_metrics() {
    let dir = toy_csv("cls", 4);
    let out = dir.join("model");
    let run = paths(&dir.join("data.csv"), &fixture_dir("bert-seqcls"), &out);
    let summary: Value = serde_json::from_str(&ok(&train_args(
        "classify",
        &run,
        &[
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--lr",
            "1e-3",
            "--eval-split",
            "0.25",
            "--json",
        ],
    )))
    .unwrap();
    assert!(summary["metrics"]["accuracy"].is_f64() && summary["metrics"]["macro_f1"].is_f64());
    let config: Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["id2label"],
        serde_json::json!({"0": "neg", "1": "pos"})
    );
    let v: Value = serde_json::from_str(&ok(&[
        "classify",
        "--model",
        &s(&out),
        "--text",
        "great fun",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v[0].as_array().unwrap().len(), 2);
}

#[test]
fn train_lora_writes_a_peft_adapter_the_cli_loads() {
    let dir = toy_csv("lora", 4);
    let out = dir.join("adapter");
    let run = paths(&dir.join("data.csv"), &fixture_dir("bert-seqcls"), &out);
    let train_lora = |steps: &[&str]| {
        let mut args = train_args("classify", &run, &["--train", "lora", "--lora-rank", "2"]);
        args.extend(steps);
        ok(&args);
    };
    train_lora(&["--epochs", "1", "--batch-size", "8"]);
    for f in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "config.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The model in `out` (an adapter on its base, or a full checkpoint) on one sentence.
    let classify = || -> Value {
        serde_json::from_str(&ok(&[
            "classify",
            "--model",
            &s(&out),
            "--text",
            "so good",
            "--json",
        ]))
        .unwrap()
    };
    let v = classify();
    assert_eq!(v[0].as_array().unwrap().len(), 2);

    // A full checkpoint written over the adapter replaces it (a loader would take the adapter
    // first), and gives the same answers; an adapter written back replaces the full weights.
    ok(&[
        "convert",
        "--model",
        &s(&out),
        "--output",
        &s(&out),
        "--dtype",
        "f32",
    ]);
    assert!(out.join("model.safetensors").is_file());
    for gone in ["adapter_config.json", "adapter_model.safetensors"] {
        assert!(
            !out.join(gone).exists(),
            "{gone} left beside the full checkpoint"
        );
    }
    let merged = classify();
    for (a, b) in v[0]
        .as_array()
        .unwrap()
        .iter()
        .zip(merged[0].as_array().unwrap())
    {
        assert_eq!(a["label"], b["label"]);
        assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-5);
    }
    train_lora(&["--max-steps", "1"]);
    assert!(out.join("adapter_config.json").is_file());
    assert!(!out.join("model.safetensors").exists());
}

#[test]
fn train_ner_on_conll_text() {
    let dir = scratch("ner");
    let conll = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n\nBRUSSELS B-LOC\n1996-08-22 O\n\n".repeat(6);
    std::fs::write(dir.join("train.txt"), &conll).unwrap();
    let run = paths(
        &dir.join("train.txt"),
        &fixture_dir("distilbert-tokcls"),
        &dir.join("out"),
    );
    let eval = s(&dir.join("train.txt"));
    let summary: Value = serde_json::from_str(&ok(&train_args(
        "ner",
        &run,
        &["--eval-data", &eval, "--epochs", "1", "--json"],
    )))
    .unwrap();
    assert!(summary["metrics"]["f1"].is_f64(), "{summary}");
}

#[test]
fn new_gpt2_then_lm_training_then_generation() {
    let dir = scratch("gpt2");
    let text =
        "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
            .repeat(30);
    std::fs::write(dir.join("text.txt"), &text).unwrap();
    let init = dir.join("init");
    ok(&[
        "new-gpt2",
        "--text",
        &s(&dir.join("text.txt")),
        "--vocab-size",
        "300",
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--n-embd",
        "16",
        "--n-positions",
        "64",
        "--dropout",
        "0.2",
        "--output",
        &s(&init),
    ]);
    let config: Value =
        serde_json::from_slice(&std::fs::read(init.join("config.json")).unwrap()).unwrap();
    for key in ["resid_pdrop", "embd_pdrop", "attn_pdrop"] {
        assert_eq!(config[key], 0.2, "{key}");
    }
    let out = duet(&[
        "new-gpt2",
        "--text",
        &s(&dir.join("text.txt")),
        "--dropout",
        "1",
        "--output",
        &s(&dir.join("never")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.starts_with("error: ") && err.contains("dropout 1"),
        "{err}"
    );
    assert!(!dir.join("never").exists());
    let trained = dir.join("trained");
    let run = paths(&dir.join("text.txt"), &init, &trained);
    let summary: Value = serde_json::from_str(&ok(&train_args(
        "lm",
        &run,
        &[
            "--max-length",
            "32",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
            "--random-offsets",
            "--json",
        ],
    )))
    .unwrap();
    assert!(
        summary["metrics"]["perplexity"].as_f64().unwrap() < 300.0,
        "{summary}"
    );
    let v: Value = serde_json::from_str(&ok(&[
        "generate",
        "--model",
        &s(&trained),
        "--prompt",
        "To be",
        "--max-new-tokens",
        "5",
        "--greedy",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v[0]["new_token_ids"].as_array().unwrap().len(), 5);
}

#[test]
fn train_keeps_its_best_evaluation_and_stops_early() {
    let dir = scratch("best");
    std::fs::write(
        dir.join("train.txt"),
        "the cat sat on the mat and looked at the door\na dog ran across the yard to find the ball\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("dev.txt"),
        "the old man read the paper by the fire\nchildren played in the park until sundown\n",
    )
    .unwrap();
    let run = paths(
        &dir.join("train.txt"),
        &fixture_dir("gpt2-tiny"),
        &dir.join("out"),
    );
    let dev = s(&dir.join("dev.txt"));
    let out = succeeds(&train_args(
        "lm",
        &run,
        &[
            "--eval-data",
            &dev,
            "--max-length",
            "8",
            "--batch-size",
            "2",
            "--epochs",
            "40",
            "--lr",
            "3e-2",
            "--schedule",
            "constant",
            "--warmup-ratio",
            "0",
            "--load-best-model-at-end",
            "--early-stopping-patience",
            "2",
        ],
    ));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let best = summary["best_step"]
        .as_u64()
        .unwrap_or_else(|| panic!("{summary}\n{err}"));
    assert_eq!(summary["stopped_early"], true, "{summary}");
    let steps = summary["steps"].as_u64().unwrap();
    assert!(best < steps, "{summary}");
    assert!(err.contains("stopped early at step"), "{err}");
    assert!(
        err.contains(&format!("kept the weights of step {best},")),
        "{err}"
    );
    // The metrics reported are those the run printed at the step it kept.
    let at_best = err
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("eval @ {best}: ")))
        .map(|m| {
            serde_json::from_str::<Value>(m).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .next()
        .unwrap_or_else(|| panic!("no evaluation at step {best}: {err}"));
    assert_eq!(summary["metrics"]["loss"].as_f64().unwrap(), at_best);
}

#[test]
fn convert_to_f16_keeps_outputs_close() {
    let dir = scratch("f16");
    let out = dir.join("f16");
    ok(&[
        "convert",
        "--model",
        &s(&fixture_dir("bert-seqcls")),
        "--output",
        &s(&out),
        "--dtype",
        "f16",
    ]);
    let size = |p: &Path| {
        std::fs::metadata(p.join("model.safetensors"))
            .unwrap()
            .len()
    };
    assert!(
        size(&out) * 10 < size(&fixture_dir("bert-seqcls")) * 6,
        "about half the bytes"
    );
    let a: Value = serde_json::from_str(&ok(&[
        "classify",
        "--model",
        &s(&fixture_dir("bert-seqcls")),
        "--text",
        "I love it!",
        "--json",
    ]))
    .unwrap();
    let b: Value = serde_json::from_str(&ok(&[
        "classify",
        "--model",
        &s(&out),
        "--text",
        "I love it!",
        "--json",
    ]))
    .unwrap();
    let score = |v: &Value| v[0][0]["score"].as_f64().unwrap();
    assert_eq!(a[0][0]["label"], b[0][0]["label"]);
    assert!((score(&a) - score(&b)).abs() < 1e-2);
}

#[test]
fn train_mlm_on_plain_text_then_fill_mask_with_it() {
    // A BERT without an MLM head gets one; the output answers `duet fill-mask`.
    let dir = scratch("mlm");
    let text: String = TOY
        .lines()
        .map(|l| l.split_once(',').unwrap().1)
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("text.txt"), format!("{text}\n").repeat(8)).unwrap();
    let out = dir.join("model");
    let bert = paths(&dir.join("text.txt"), &fixture_dir("bert-seqcls"), &out);
    let run = |extra: &[&str]| -> Value {
        let mut args = train_args(
            "mlm",
            &bert,
            &[
                "--epochs",
                "3",
                "--batch-size",
                "4",
                "--lr",
                "2e-3",
                "--max-length",
                "16",
                "--eval-split",
                "0.25",
                "--json",
            ],
        );
        args.extend(extra);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    let summary = run(&[]);
    let m = &summary["metrics"];
    assert!(
        m["accuracy"].is_f64() && m["top5_accuracy"].is_f64() && m["perplexity"].is_f64(),
        "{summary}"
    );
    let config: Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForMaskedLM");
    let fills: Value = serde_json::from_str(&ok(&[
        "fill-mask",
        "--model",
        &s(&out),
        "--text",
        "i [MASK] it",
        "--json",
    ]))
    .unwrap();
    assert_eq!(fills[0].as_array().unwrap().len(), 5, "{fills}");
    // Whole-word masking and another probability run too; a probability outside (0, 1] is a
    // one-line error.
    run(&["--whole-word-mask", "--mlm-probability", "0.3"]);
    let fails = |run: &[String; 3], extra: &[&str]| {
        let run = duet(&train_args("mlm", run, extra));
        let err = String::from_utf8_lossy(&run.stderr).to_string();
        assert!(!run.status.success() && err.starts_with("error: "), "{err}");
        err
    };
    let err = fails(&bert, &["--mlm-probability", "1.5"]);
    assert!(err.contains("--mlm-probability"), "{err}");
    // GPT-2 has no masked-LM head to give.
    fails(
        &paths(&dir.join("text.txt"), &fixture_dir("gpt2-tiny"), &out),
        &[],
    );
}

#[test]
fn bad_training_input_is_a_one_line_error() {
    let dir = scratch("bad");
    std::fs::write(dir.join("bad.csv"), "a,b,c\n1,2,3\n").unwrap();
    std::fs::write(
        dir.join("good.csv"),
        "text,label\n".to_string() + &"fine,1\nawful,0\n".repeat(5),
    )
    .unwrap();
    for (args, needle) in [
        (
            vec![
                "train",
                "--task",
                "classify",
                "--random-offsets",
                "--data",
                &s(&dir.join("good.csv")) as &str,
            ],
            "--random-offsets is for --task lm only",
        ),
        (
            vec![
                "train",
                "--task",
                "classify",
                "--data",
                &s(&dir.join("bad.csv")) as &str,
            ],
            "columns",
        ),
        (
            vec!["train", "--task", "classify", "--data", "/no/file.csv"],
            "/no/file.csv",
        ),
        (
            vec!["train", "--task", "poetry", "--data", "/no/file.csv"],
            "task",
        ),
    ] {
        let mut args = args;
        let model = s(&fixture_dir("bert-seqcls"));
        let output = s(&dir.join("o"));
        args.extend(["--model", &model, "--output", &output]);
        let out = duet(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn a_lora_adapter_is_not_written_over_its_base() {
    let dir = toy_csv("lora-over-base", 1);
    let base = dir.join("base");
    std::fs::create_dir_all(&base).unwrap();
    for f in std::fs::read_dir(fixture_dir("bert-seqcls")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), base.join(f.file_name())).unwrap();
    }
    let run = paths(&dir.join("data.csv"), &base, &base);
    let out = duet(&train_args(
        "classify",
        &run,
        &["--train", "lora", "--max-steps", "1"],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--output is the base model's folder"),
        "{err}"
    );
    assert!(
        base.join("model.safetensors").is_file(),
        "the base's weights are kept"
    );
    assert!(!base.join("adapter_config.json").exists());
}

/// Training on a native GPU learns what the CPU does (with `--features wgpu`, where
/// `DUET_GPU_TESTS=1`; Mesa's lavapipe is enough): the same seeded run of causal-LM training of a
/// GPT-2 and masked-LM training of a BERT, on each device, ends at the same loss and held-out
/// metrics, and the two checkpoints answer alike on the CPU. Each backend draws its own random
/// numbers, so dropout is turned off in copies of the fixtures and the BERTs already have their
/// MLM heads (a head created for the run is initialised from the device's generator); the data
/// order and the masked tokens come from Duet's own seeded generator, the same on both. This is
/// what lets the larger defaults of issue 11 be trained on a lent GPU with `duet --device gpu`.
#[cfg(feature = "wgpu")]
#[test]
fn device_gpu_trains_what_the_cpu_does() {
    if !gpu_tests_enabled("train on a wgpu adapter") {
        return;
    }
    let dir = scratch("gpu");
    let without_dropout = |fixture: &str, keys: &[&str]| -> PathBuf {
        let copy = dir.join(fixture);
        std::fs::create_dir_all(&copy).unwrap();
        for f in std::fs::read_dir(fixture_dir(fixture)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
        }
        let path = copy.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for key in keys {
            assert!(config.get(*key).is_some(), "{fixture} has no {key}");
            config[*key] = 0.0.into();
        }
        std::fs::write(&path, config.to_string()).unwrap();
        copy
    };
    let gpt2 = without_dropout("gpt2-tiny", &["attn_pdrop", "embd_pdrop", "resid_pdrop"]);
    let bert = without_dropout(
        "bert-mlm-f16",
        &["hidden_dropout_prob", "attention_probs_dropout_prob"],
    );
    let distilbert = without_dropout("distilbert-mlm", &["dropout", "attention_dropout"]);
    let text = dir.join("text.txt");
    std::fs::write(
        &text,
        "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
            .repeat(12),
    )
    .unwrap();
    // The run's summary, each step's loss (from the progress lines on stderr) and its output.
    let train = |device: &str, task: &str, model: &Path| -> (Value, Vec<Value>, PathBuf) {
        let name = model.file_name().unwrap().to_str().unwrap();
        let output = dir.join(format!("{name}-{device}"));
        let run = duet(&[
            "--device",
            device,
            "train",
            "--task",
            task,
            "--data",
            &s(&text),
            "--model",
            &s(model),
            "--output",
            &s(&output),
            "--train",
            "all",
            "--max-length",
            "24",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--lr",
            "3e-3",
            "--eval-split",
            "0.2",
            "--seed",
            "7",
            "--json",
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{device}: {stderr}");
        let losses = stderr
            .lines()
            .filter(|l| l.starts_with("step "))
            .map(|l| {
                let loss = l.split_whitespace().nth(3).expect("step N/M loss X");
                loss.parse::<f64>().expect("a loss").into()
            })
            .collect();
        let summary = serde_json::from_slice(&run.stdout).unwrap();
        (summary, losses, output)
    };
    let close = |what: &str, cpu: &Value, gpu: &Value| {
        let (c, g) = (cpu.as_f64().unwrap(), gpu.as_f64().unwrap());
        assert!(
            (c - g).abs() <= 1e-3 * c.abs().max(1.0),
            "{what}: cpu {c}, gpu {g}"
        );
    };
    const MASKED: &[&str] = &["perplexity", "accuracy", "top5_accuracy"];
    for (task, model, metrics) in [
        ("lm", &gpt2, &["perplexity"][..]),
        ("mlm", &bert, MASKED),
        ("mlm", &distilbert, MASKED),
    ] {
        let (cpu, cpu_losses, cpu_out) = train("cpu", task, model);
        let (gpu, gpu_losses, gpu_out) = train("gpu", task, model);
        let what = format!("{task} on {}", model.display());
        assert_eq!(cpu["steps"], gpu["steps"], "{what}");
        assert_eq!(
            cpu_losses.len() as u64,
            cpu["steps"].as_u64().unwrap(),
            "{what}"
        );
        for (step, (c, g)) in cpu_losses.iter().zip(&gpu_losses).enumerate() {
            close(&format!("{what}: loss at step {}", step + 1), c, g);
        }
        close(
            &format!("{what}: final loss"),
            &cpu["final_loss"],
            &gpu["final_loss"],
        );
        for m in metrics {
            close(
                &format!("{what}: {m}"),
                &cpu["metrics"][m],
                &gpu["metrics"][m],
            );
        }
        // Both checkpoints, read back on the CPU, answer alike.
        let answer = |out: &Path| -> Value {
            let m = s(out);
            let args: Vec<&str> = if task == "lm" {
                vec![
                    "generate",
                    "--model",
                    &m,
                    "--prompt",
                    "To be",
                    "--greedy",
                    "--max-new-tokens",
                    "8",
                    "--json",
                ]
            } else {
                vec![
                    "fill-mask",
                    "--model",
                    &m,
                    "--text",
                    "to be, or not to [MASK]",
                    "--json",
                ]
            };
            serde_json::from_str(&ok(&args)).unwrap()
        };
        let (a, b) = (answer(&cpu_out), answer(&gpu_out));
        if task == "lm" {
            assert_eq!(a[0]["new_token_ids"], b[0]["new_token_ids"], "{a}\n{b}");
        } else {
            let tokens = |v: &Value| -> Vec<Value> {
                v[0].as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["token"].clone())
                    .collect()
            };
            assert_eq!(tokens(&a), tokens(&b), "{a}\n{b}");
        }
    }
}

#[test]
fn a_killed_run_resumes_from_its_last_save_and_ends_as_if_never_stopped() {
    killed_and_resumed("resume", &[], true, false);
}

/// Ctrl-C stops the run after its step, saves it there, and says how to continue.
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_saves_the_run_and_resume_finishes_it() {
    killed_and_resumed("interrupt", &[], true, true);
}

/// The same on a wgpu adapter, where dropout's generator is the GPU runtime's.
#[cfg(feature = "wgpu")]
#[test]
fn device_gpu_resumes_a_killed_run_where_it_stopped() {
    if !gpu_tests_enabled("train on a wgpu adapter") {
        return;
    }
    // A GPU's own runs differ in the last bits (its reductions' order varies: two uninterrupted
    // runs here end up to 3e-3 apart after 100 steps), so the steps are compared to a tolerance.
    killed_and_resumed("resume-gpu", &["--device", "gpu"], false, false);
}

/// `(step, loss)` of each "step N/M loss X" line of a run's log.
fn step_losses(log: &str) -> Vec<(usize, f64)> {
    log.lines()
        .filter_map(|l| l.strip_prefix("step "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let step = words[0].split('/').next().unwrap().parse().unwrap();
            (step, words[2].parse().expect("step N/M loss X"))
        })
        .collect()
}

/// A run (dropout on) killed after a save and resumed by the same command takes the steps of the
/// same run never stopped and ends with its weights (`exact`: bit for bit, else to 1e-3);
/// `device` goes before the subcommand.
fn killed_and_resumed(name: &str, device: &[&str], exact: bool, interrupt: bool) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = scratch(name);
    let text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n\
                The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n"
        .repeat(12);
    std::fs::write(dir.join("text.txt"), &text).unwrap();
    let model = fixture_dir("gpt2-tiny");
    let args = |output: &Path, lr: &str| -> Vec<String> {
        let run = [
            "train",
            "--task",
            "lm",
            "--data",
            &s(&dir.join("text.txt")),
            "--model",
            &s(&model),
            "--output",
            &s(output),
            "--max-length",
            "16",
            "--epochs",
            // Long enough that Ctrl-C lands before the end even on a busy machine.
            if interrupt { "10" } else { "3" },
            "--batch-size",
            "2",
            "--lr",
            lr,
            "--seed",
            "3",
            "--save-every",
            "3",
            "--resume",
            "--json",
        ];
        device.iter().chain(&run).map(|a| a.to_string()).collect()
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    // Never stopped (`--resume` with nothing saved starts from the beginning).
    let whole = dir.join("whole");
    let out = succeeds(&strs(&args(&whole, "5e-3")));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("no saved run in") && log.contains("starting from step 0"),
        "{log}"
    );
    let whole_summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let whole_losses = step_losses(&log);
    let total = whole_summary["steps"].as_u64().unwrap() as usize;
    assert!(total > 20, "{total} steps");
    assert!(
        !whole.join("checkpoint").exists(),
        "a finished run removes its checkpoint"
    );

    // Killed after its second save, as a user stops it (or a time limit does).
    let part = dir.join("part");
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(args(&part, "5e-3"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let saved = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("saved the run at step 6"));
    assert!(saved.is_some(), "the run saved at step 6");
    let checkpoint = part.join("checkpoint");
    if interrupt {
        #[cfg(target_os = "linux")]
        // SAFETY: a signal to our own child process.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        assert!(
            !child.wait().unwrap().success(),
            "an interrupted run is not a success"
        );
        let stopped = rest
            .iter()
            .find_map(|l| l.strip_prefix("stopped at step "))
            .unwrap_or_else(|| panic!("{rest:?}"));
        let at: usize = stopped.split(':').next().unwrap().parse().unwrap();
        assert!(stopped.contains("--resume continues it"), "{stopped}");
        let state: Value =
            serde_json::from_slice(&std::fs::read(checkpoint.join("trainer_state.json")).unwrap())
                .unwrap();
        assert_eq!(state["global_step"], at, "saved at the step it stopped at");
        assert!(
            !part.join("model.safetensors").exists(),
            "nothing passed off as the result"
        );
    } else {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(checkpoint.join("trainer_state.json").is_file());
    // The model as it stood is there too, and loads.
    ok(&[
        "generate",
        "--model",
        &s(&checkpoint),
        "--prompt",
        "To be",
        "--max-new-tokens",
        "2",
        "--greedy",
    ]);

    // Another learning rate is another run: refused, in one line, and the save is kept.
    let out = duet(&strs(&args(&part, "1e-3")));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        // (The Vulkan loader may print its own lines before it.)
        err.trim().lines().last().unwrap().starts_with("error: ")
            && err.contains("learning_rate was 0.005")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(checkpoint.join("trainer_state.json").is_file());

    // The same command continues it and ends with the very weights of the run never stopped.
    let out = succeeds(&strs(&args(&part, "5e-3")));
    let log = String::from_utf8_lossy(&out.stderr);
    let resumed_at: usize = log
        .lines()
        .find_map(|l| {
            l.split(" at step ")
                .nth(1)
                .filter(|_| l.starts_with("resuming from"))
        })
        .expect("resumed")
        .trim()
        .parse()
        .unwrap();
    assert!(resumed_at >= 6 && resumed_at < total, "{log}");
    assert!(
        !log.contains(&format!("step {resumed_at}/"))
            && log.contains(&format!("step {}/", resumed_at + 1)),
        "the steps taken before the save are not taken again: {log}"
    );
    let tol = if exact { 0.0 } else { 1e-3 };
    let close = |a: f64, b: f64| (a - b).abs() <= tol * a.abs().max(1.0);
    let resumed_losses = step_losses(&log);
    assert_eq!(resumed_losses.len(), total - resumed_at);
    for ((step, loss), (_, never_stopped)) in resumed_losses.iter().zip(&whole_losses[resumed_at..])
    {
        assert!(
            close(*loss, *never_stopped),
            "step {step}: {loss} vs {never_stopped}"
        );
    }
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ppl = |v: &Value| v["metrics"]["perplexity"].as_f64().unwrap();
    assert!(
        close(ppl(&summary), ppl(&whole_summary)),
        "{summary} vs {whole_summary}"
    );
    if exact {
        assert!(
            std::fs::read(part.join("model.safetensors")).unwrap()
                == std::fs::read(whole.join("model.safetensors")).unwrap(),
            "resumed and never-stopped runs end with the same weights"
        );
    }
    assert!(!checkpoint.exists());
}

/// A saved LoRA run holds what it trained (the adapters and their moments), not its frozen base,
/// so `--resume` checks that `--model` is the base it started from: another one (here the same
/// files with one weight's bytes changed) is refused, the right one continues.
#[test]
fn a_saved_lora_run_holds_its_adapters_and_resumes_only_on_its_base() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = scratch("lora-resume");
    let text =
        "Now is the winter of our discontent\nMade glorious summer by this sun of York\n".repeat(8);
    std::fs::write(dir.join("text.txt"), &text).unwrap();
    let (base, other) = (dir.join("base"), dir.join("other"));
    for copy in [&base, &other] {
        std::fs::create_dir_all(copy).unwrap();
        for entry in std::fs::read_dir(fixture_dir("gpt2-tiny")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
        }
    }
    let weights = other.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&weights, bytes).unwrap();
    let out = dir.join("out");
    let args = |model: &Path| -> Vec<String> {
        [
            "train",
            "--task",
            "lm",
            "--train",
            "lora",
            "--data",
            &s(&dir.join("text.txt")),
            "--model",
            &s(model),
            "--output",
            &s(&out),
            "--max-length",
            "16",
            "--batch-size",
            "2",
            "--epochs",
            "40",
            "--save-every",
            "2",
            "--resume",
            "--json",
        ]
        .map(String::from)
        .to_vec()
    };

    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(args(&base))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let saved = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("saved the run at step 2"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(saved.is_some(), "the run saved at step 2");
    let checkpoint = out.join("checkpoint");
    let state = duet_model::train::resume::TrainState::from_files(
        &std::fs::read(checkpoint.join("trainer_state.json")).unwrap(),
        &std::fs::read(checkpoint.join("training_state.safetensors")).unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = state.names().collect();
    assert!(names.iter().any(|n| n.starts_with("param.")), "{names:?}");
    assert!(
        names.iter().all(|n| n.contains(".lora.")),
        "only the adapters: {names:?}"
    );

    let refused = duet(&args(&other).iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && err.trim().lines().last().unwrap().starts_with("error: ")
            && err.contains("trained from another --model"),
        "{err}"
    );
    assert!(
        checkpoint.join("trainer_state.json").is_file(),
        "the save is kept"
    );

    let done = succeeds(&args(&base).iter().map(String::as_str).collect::<Vec<_>>());
    let log = String::from_utf8_lossy(&done.stderr);
    assert!(log.contains("resuming from"), "{log}");
    let summary: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert!(summary["steps"].as_u64().unwrap() > 2, "{summary}");
}
