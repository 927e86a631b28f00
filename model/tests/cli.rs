//! The `duet` binary: JSON shapes of every subcommand, standard input, and one-line errors with a
//! non-zero exit (never a panic) on bad input.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

fn duet(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json_ok(args: &[&str], stdin: Option<&str>) -> Value {
    let out = duet(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails_cleanly(args: &[&str], needle: &str) {
    let out = duet(args, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line, got {err}"
    );
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{args:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

fn dir(name: &str) -> String {
    fixture_dir(name).display().to_string()
}

#[test]
fn generate_greedy_json_matches_fixture() {
    let exp = &expected("gpt2-tiny")["greedy"][0];
    let n = exp["max_new_tokens"].to_string();
    let v = json_ok(
        &[
            "generate",
            "--model",
            &dir("gpt2-tiny"),
            "--prompt",
            exp["prompt"].as_str().unwrap(),
            "--greedy",
            "--max-new-tokens",
            &n,
            "--json",
        ],
        None,
    );
    assert_eq!(v[0]["new_token_ids"], exp["new_token_ids"]);
    assert_eq!(v[0]["generated_text"], exp["generated_text"]);
}

#[test]
fn generate_beam_search_json_matches_hf() {
    // The fixture's first beam case keeps the model's own end token, as the CLI does.
    let case = &expected("gpt2-tiny")["beam"][0];
    let s = &case["settings"];
    assert_eq!(s["early_stopping"], false);
    let arg = |k: &str| s[k].to_string();
    let v = json_ok(
        &[
            "generate",
            "--model",
            &dir("gpt2-tiny"),
            "--prompt",
            case["prompt"].as_str().unwrap(),
            "--num-beams",
            &arg("num_beams"),
            "--length-penalty",
            &arg("length_penalty"),
            "--no-repeat-ngram-size",
            &arg("no_repeat_ngram_size"),
            "--num-return-sequences",
            &arg("num_return_sequences"),
            "--max-new-tokens",
            &arg("max_new_tokens"),
            "--json",
        ],
        None,
    );
    let theirs = case["sequences"].as_array().unwrap();
    assert_eq!(v.as_array().unwrap().len(), theirs.len());
    for (o, t) in v.as_array().unwrap().iter().zip(theirs) {
        assert_eq!(o["new_token_ids"], t["new_token_ids"]);
        assert!(o["generated_text"]
            .as_str()
            .unwrap()
            .starts_with(case["prompt"].as_str().unwrap()));
    }
    fails_cleanly(
        &[
            "generate",
            "--model",
            &dir("gpt2-tiny"),
            "--prompt",
            "The",
            "--num-beams",
            "2",
            "--num-return-sequences",
            "3",
        ],
        "num_return_sequences",
    );
    fails_cleanly(
        &[
            "generate",
            "--model",
            &dir("gpt2-tiny"),
            "--prompt",
            "The",
            "--length-penalty",
            "2",
        ],
        "--num-beams",
    );
}

#[test]
fn attention_json_matches_fixture_for_gpt2_and_bert() {
    for name in ["gpt2-tiny", "distilbert-tokcls"] {
        let exp = &expected(name)["attentions"][1];
        let text = exp["text"].as_str().unwrap();
        let v = json_ok(
            &["attention", "--model", &dir(name), "--text", text, "--json"],
            None,
        );
        assert_eq!(v["ids"], exp["input_ids"], "{name}");
        assert_eq!(
            v["tokens"].as_array().unwrap().len(),
            v["ids"].as_array().unwrap().len()
        );
        let layers = v["attentions"].as_array().unwrap();
        assert_eq!(layers.len(), exp["attentions"].as_array().unwrap().len());
        for (ours, theirs) in layers.iter().zip(exp["attentions"].as_array().unwrap()) {
            assert_close(&f32s(ours), &f32s(theirs), 1e-5, name);
        }
    }
    fails_cleanly(
        &["attention", "--model", &dir("bert-seqcls"), "--text", " "],
        "empty",
    );
}

#[test]
fn generate_reads_prompts_from_stdin_and_seed_reproduces() {
    let args = [
        "generate",
        "--model",
        &dir("gpt2-tiny"),
        "--max-new-tokens",
        "8",
        "--seed",
        "3",
        "--json",
    ];
    let a = json_ok(&args, Some("Hello there\nThe king\n"));
    let b = json_ok(&args, Some("Hello there\nThe king\n"));
    assert_eq!(a.as_array().unwrap().len(), 2);
    assert_eq!(a, b);
    assert_eq!(a[0]["new_token_ids"].as_array().unwrap().len(), 8);
}

#[test]
fn classify_ner_fill_mask_embed_json_shapes() {
    let v = json_ok(
        &[
            "classify",
            "--model",
            &dir("bert-seqcls"),
            "--text",
            "I love it!",
            "--text",
            "Bad.",
            "--json",
        ],
        None,
    );
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0].as_array().unwrap().len(), 3);
    assert!(v[0][0]["label"].is_string() && v[0][0]["score"].is_f64());

    let text = "Angela Merkel visited Paris.";
    let exp = &expected("bert-tokcls-legacy")["pipeline"][0]["first"];
    let v = json_ok(
        &[
            "ner",
            "--model",
            &dir("bert-tokcls-legacy"),
            "--aggregation",
            "first",
            "--text",
            text,
            "--json",
        ],
        None,
    );
    let words = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["entity_group"].clone(),
                    e["start"].clone(),
                    e["end"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(words(&v[0]), words(exp));

    let v = json_ok(
        &[
            "fill-mask",
            "--model",
            &dir("bert-mlm-f16"),
            "--top-k",
            "3",
            "--json",
        ],
        Some("Paris is the capital of [MASK].\n"),
    );
    assert_eq!(v[0].as_array().unwrap().len(), 3);
    for key in ["score", "token", "token_str", "sequence"] {
        assert!(v[0][0].get(key).is_some(), "{key}");
    }

    let v = json_ok(
        &[
            "embed",
            "--model",
            &dir("distilbert-mlm"),
            "--text",
            "hello world",
            "--json",
        ],
        None,
    );
    let norm: f64 = v[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum();
    assert!((norm - 1.0).abs() < 1e-4);
}

#[test]
fn bad_input_is_one_line_error_and_nonzero_exit() {
    fails_cleanly(
        &["classify", "--model", "/no/such/folder", "--text", "x"],
        "not a folder",
    );
    fails_cleanly(
        &["classify", "--model", &dir("bert-seqcls"), "--text", ""],
        "empty",
    );
    fails_cleanly(
        &["classify", "--model", &dir("gpt2-tiny"), "--text", "hi"],
        "no",
    );
    fails_cleanly(
        &[
            "ner",
            "--model",
            &dir("bert-tokcls-legacy"),
            "--aggregation",
            "best",
            "--text",
            "x",
        ],
        "aggregation",
    );
    fails_cleanly(
        &[
            "fill-mask",
            "--model",
            &dir("bert-mlm-f16"),
            "--text",
            "no mask here",
        ],
        "[MASK]",
    );
    fails_cleanly(
        &[
            "generate",
            "--model",
            &dir("gpt2-tiny"),
            "--prompt",
            "hi",
            "--temperature",
            "0",
        ],
        "temperature",
    );
    let long = "word ".repeat(200);
    fails_cleanly(
        &["generate", "--model", &dir("gpt2-tiny"), "--prompt", &long],
        "too long",
    );
    // Every task has a default model now; bad input to one is still a one-line error.
    fails_cleanly(&["fill-mask", "--text", "no blank here"], "no [MASK]");

    // A malformed config and a truncated checkpoint, in a scratch copy of a fixture.
    let tmp = std::env::temp_dir().join(format!("duet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for f in std::fs::read_dir(fixture_dir("bert-seqcls")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), tmp.join(f.file_name())).unwrap();
    }
    let t = tmp.display().to_string();
    let weights = std::fs::read(tmp.join("model.safetensors")).unwrap();
    std::fs::write(tmp.join("model.safetensors"), &weights[..weights.len() / 3]).unwrap();
    fails_cleanly(&["classify", "--model", &t, "--text", "x"], "safetensors");
    std::fs::write(tmp.join("config.json"), "{\"model_type\": ").unwrap();
    fails_cleanly(&["classify", "--model", &t, "--text", "x"], "config.json");
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// `--device gpu` where duet was built without GPU support: a one-line error that says how to
/// build it, not a panic. (Built with `--features wgpu`, the same command runs on the adapter.)
#[cfg(not(feature = "wgpu"))]
#[test]
fn device_gpu_without_the_feature_says_how_to_build_it() {
    let model = fixture_dir("gpt2-tiny");
    fails_cleanly(
        &[
            "--device",
            "gpu",
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "Hi",
        ],
        "--features wgpu",
    );
}

/// The CLI on a native GPU gives the CPU's greedy tokens (with `--features wgpu`, where
/// `DUET_GPU_TESTS=1`; Mesa's lavapipe is enough).
#[cfg(feature = "wgpu")]
#[test]
fn device_gpu_generates_what_the_cpu_does() {
    if !gpu_tests_enabled("run the CLI on a wgpu adapter") {
        return;
    }
    let model = fixture_dir("gpt2-tiny");
    let args = |device: &'static str| {
        let m = model.to_str().unwrap().to_string();
        json_ok(
            &[
                "--device",
                device,
                "generate",
                "--model",
                &m,
                "--prompt",
                "Hello",
                "--greedy",
                "--max-new-tokens",
                "12",
                "--json",
            ],
            None,
        )
    };
    let (cpu, gpu) = (args("cpu"), args("gpu"));
    assert_eq!(gpu[0]["new_token_ids"], cpu[0]["new_token_ids"]);
}
