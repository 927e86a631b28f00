//! `cargo xtask <task>`: the project's scripted tasks, in Rust rather than shell.
//!
//! - `serve`     build the browser app and serve it on the embedded defaults
//! - `test`      every check CI runs: fmt, clippy (native and wasm32), native tests, the app's
//!   build and its end-to-end tests in headless Chromium on WebGPU
//! - `bench`     engine throughput next to PyTorch's on the same checkpoints
//! - `fixtures`  regenerate the reference fixtures with the pinned Python environment
//! - `defaults`  retrain the embedded default models (the recipe their model cards cite)

use std::path::{Path, PathBuf};
use std::process::{exit, Command};

mod web;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a command from the repository root, exiting with its status on failure.
pub(crate) fn run(title: &str, program: &str, args: &[&str]) {
    run_command(title, Command::new(program).args(args));
}

/// Runs a prepared command from the repository root, echoed, exiting with its status on failure.
pub(crate) fn run_command(title: &str, cmd: &mut Command) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    eprintln!("\n==> {title}: {program} {}", args.join(" "));
    let status = cmd.current_dir(root()).status().unwrap_or_else(|e| {
        eprintln!("xtask: cannot run {program}: {e}");
        exit(1)
    });
    if !status.success() {
        eprintln!("xtask: {title} failed");
        exit(status.code().unwrap_or(1));
    }
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The Python with torch + transformers: `$DUET_PYTHON`, else the venv `fixtures` makes.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("DUET_PYTHON") {
        return p.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/duet-py/bin/python")
}

fn ensure_python_env() -> PathBuf {
    let py = python();
    if !py.exists() {
        let venv = py.parent().and_then(Path::parent).expect("venv path");
        run(
            "create venv",
            "python3",
            &["-m", "venv", &venv.display().to_string()],
        );
    }
    let py_s = py.display().to_string();
    run(
        "install pinned Python packages",
        &py_s,
        &[
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            "scripts/requirements.txt",
        ],
    );
    py
}

fn test() {
    web::ensure_build_tools();
    run("format", "cargo", &["fmt", "--all", "--", "--check"]);
    run(
        "clippy",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    );
    // The app's page and worker code exist only for wasm32: lint them there.
    run(
        "clippy (browser)",
        "cargo",
        &[
            "clippy",
            "-p",
            "duet-app",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ],
    );
    let (passed, failed, ok) = tests();
    web::build_app();
    let (web_passed, web_failed) = web::browser_tests();
    println!(
        "{} passed, {} failed",
        passed + web_passed,
        failed + web_failed
    );
    if !ok || web_failed > 0 {
        exit(1);
    }
}

/// `cargo test --workspace`, echoed, then one closing line totalling every test binary's
/// `test result:` (cargo's own last line is that of whichever binary ran last).
fn tests() -> (u64, u64, bool) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    eprintln!("\n==> tests: cargo test --workspace");
    let mut child = Command::new("cargo")
        .args(["test", "--workspace"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("xtask: cannot run cargo: {e}");
            exit(1)
        });
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.unwrap_or_default();
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .split_whitespace()
                            .last()?
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
        }
    }
    let status = child.wait().expect("cargo test ran");
    println!("native: {passed} passed, {failed} failed");
    (passed, failed, status.success())
}

const BENCH_MODELS: &[&str] = &[
    "model/tests/fixtures/gpt2-tiny",
    "model/tests/fixtures/gpt2-noprefix-f16",
    "model/tests/fixtures/bert-seqcls",
    "model/tests/fixtures/distilbert-multilabel",
];

fn bench(args: &[String]) {
    let models: Vec<String> = if args.is_empty() {
        BENCH_MODELS.iter().map(|s| s.to_string()).collect()
    } else {
        args.to_vec()
    };
    let mut duet_args = vec![
        "run",
        "--release",
        "-q",
        "-p",
        "duet-model",
        "--bin",
        "duet",
        "--",
        "bench",
        "--json",
    ];
    let mut py_args = vec!["scripts/bench_torch.py".to_string()];
    for m in &models {
        duet_args.extend(["--model", m.as_str()]);
        py_args.extend(["--model".to_string(), m.clone()]);
    }
    eprintln!("==> burn (release build)");
    let ours = output("cargo", &duet_args).unwrap_or_else(|| exit(1));
    let ours: serde_json::Value = serde_json::from_str(&ours).expect("duet bench prints JSON");
    let py = python();
    eprintln!("==> PyTorch ({})", py.display());
    let py_refs: Vec<&str> = py_args.iter().map(String::as_str).collect();
    let theirs: Option<serde_json::Value> =
        output(&py.display().to_string(), &py_refs).and_then(|s| serde_json::from_str(&s).ok());
    if theirs.is_none() {
        eprintln!("PyTorch figures unavailable: run `cargo xtask fixtures` once to set up the pinned environment");
    }
    println!(
        "{:<48} {:<26} {:>14} {:>14}",
        "model", "measure", "burn", "PyTorch"
    );
    for (i, row) in ours.as_array().unwrap().iter().enumerate() {
        let other = theirs.as_ref().and_then(|t| t.get(i));
        let name = row["model"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("model/tests/fixtures/");
        for (group, key, label) in [
            ("generation", "cached_tokens_per_s", "tokens/s (KV cache)"),
            ("generation", "uncached_tokens_per_s", "tokens/s (no cache)"),
            ("classify", "sentences_per_s", "sentences/s"),
        ] {
            let Some(v) = row[group][key].as_f64() else {
                continue;
            };
            let p = other
                .and_then(|o| o[group][key].as_f64())
                .map_or("-".to_string(), |x| format!("{x:.1}"));
            println!("{name:<48} {label:<26} {v:>14.1} {p:>14}");
        }
    }
    println!(
        "\nburn: {}; PyTorch: {}",
        ours[0]["backend"].as_str().unwrap_or(""),
        theirs
            .as_ref()
            .and_then(|t| t[0]["backend"].as_str())
            .unwrap_or("-")
    );
}

/// The recipe of the embedded defaults under `public/models/` (about an hour on 2 CPU cores):
/// MiniLM in f16, a GPT-2 trained from scratch on Tiny Shakespeare, and LoRA adapters (with
/// heads) over MiniLM for SST-2 sentiment and CoNLL-2003 entities. Then `duet eval`.
const DEFAULTS_RECIPE: &[&[&str]] = &[
    &[
        "convert",
        "--model",
        "../shared/models/all-MiniLM-L6-v2",
        "--output",
        "public/models/all-MiniLM-L6-v2",
        "--dtype",
        "f16",
    ],
    &[
        "new-gpt2",
        "--text",
        "../shared/data/tinyshakespeare/input.txt",
        "--vocab-size",
        "2048",
        "--n-layer",
        "4",
        "--n-head",
        "4",
        "--n-embd",
        "192",
        "--n-positions",
        "256",
        "--seed",
        "42",
        "--output",
        "target/gpt2-init",
    ],
    &[
        "train",
        "--task",
        "lm",
        "--data",
        "../shared/data/tinyshakespeare/input.txt",
        "--eval-split",
        "0.05",
        "--model",
        "target/gpt2-init",
        "--output",
        "public/models/gpt2-shakespeare",
        "--train",
        "all",
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--max-length",
        "128",
        "--lr",
        "1e-3",
        "--warmup-ratio",
        "0.05",
        "--schedule",
        "cosine",
        "--weight-decay",
        "0.1",
        "--seed",
        "42",
    ],
    &[
        "train",
        "--task",
        "classify",
        "--data",
        "../shared/data/sst2/train.tsv",
        "--label-names",
        "0=negative,1=positive",
        "--eval-split",
        "0.03",
        "--limit",
        "8000",
        "--model",
        "public/models/all-MiniLM-L6-v2",
        "--output",
        "public/models/minilm-sst2",
        "--train",
        "lora",
        "--lora-rank",
        "16",
        "--lora-alpha",
        "32",
        "--lora-dropout",
        "0.05",
        "--lora-targets",
        "query,key,value,dense",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--lr",
        "1e-3",
        "--seed",
        "42",
    ],
    &[
        "train",
        "--task",
        "ner",
        "--data",
        "../shared/data/conll2003/train.txt",
        "--eval-data",
        "../shared/data/conll2003/dev.txt",
        "--model",
        "public/models/all-MiniLM-L6-v2",
        "--output",
        "public/models/minilm-conll03",
        "--train",
        "lora",
        "--lora-rank",
        "16",
        "--lora-alpha",
        "32",
        "--lora-dropout",
        "0.05",
        "--lora-targets",
        "query,key,value,dense",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--lr",
        "1e-3",
        "--seed",
        "42",
    ],
    &["eval"],
];

fn defaults() {
    run(
        "build duet",
        "cargo",
        &["build", "--release", "-p", "duet-model", "--bin", "duet"],
    );
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let duet = root()
        .join(target)
        .join("release/duet")
        .display()
        .to_string();
    for step in DEFAULTS_RECIPE {
        run(step[0], &duet, step);
    }
}

fn fixtures() {
    let py = ensure_python_env();
    run(
        "make fixtures",
        &py.display().to_string(),
        &["scripts/make_fixtures.py"],
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("serve") => web::serve(),
        Some("bench") => bench(&args[1..]),
        Some("fixtures") => fixtures(),
        Some("defaults") => defaults(),
        _ => {
            eprintln!(
                "usage: cargo xtask <serve | test | bench [MODEL_DIR...] | fixtures | defaults>"
            );
            exit(2)
        }
    }
}
