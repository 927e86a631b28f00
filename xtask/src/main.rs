//! `cargo xtask <task>`: the project's scripted tasks, in Rust rather than shell.
//!
//! - `serve`     build the browser app and serve it on the embedded defaults (`--watch`: rebuild
//!   and reload on changes; `--port N`)
//! - `build`     build the browser app into `dist/`
//! - `test`      every check CI runs: fmt, clippy (native and wasm32, by the builds themselves),
//!   native tests, the app's build and its end-to-end tests in headless Chromium on WebGPU
//! - `bench`     engine throughput next to PyTorch's on the same checkpoints; `--browser`: the app's
//!   engine next to transformers.js in the same headless Chromium
//! - `fixtures`  regenerate the reference fixtures with the pinned Python environment
//! - `defaults`  retrain the embedded default models (the recipe their model cards cite)

use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::time::{Duration, Instant};

mod browser_bench;
mod bundle;
mod e2e;
mod lint;
mod serve;
mod server;
mod tools;

/// The checkout `cargo xtask` runs in: cargo sets `CARGO_MANIFEST_DIR` for the process it runs.
/// The path compiled in is only the fallback: cargo keeps a build fresh when its checkout moves
/// with its target dir (renamed, or another clone sharing `CARGO_TARGET_DIR`), and that path then
/// names a folder that is gone, or another checkout.
pub(crate) fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
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

pub(crate) fn ensure_python_env() -> PathBuf {
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

/// The steps of `cargo xtask test` with how long each took, printed at the end (CI's budget is
/// watched with these).
struct Steps(Vec<(String, Duration)>, Instant);

impl Steps {
    fn new() -> Self {
        Steps(Vec::new(), Instant::now())
    }
    fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.0.push((name.to_string(), start.elapsed()));
        out
    }
    fn print(&self) {
        eprintln!("\n==> time per step");
        for (name, d) in &self.0 {
            eprintln!("    {:>6.1} min  {name}", d.as_secs_f64() / 60.0);
        }
        eprintln!(
            "    {:>6.1} min  in all",
            self.1.elapsed().as_secs_f64() / 60.0
        );
    }
}

fn test() {
    let mut steps = Steps::new();
    steps.time("tools (wasm target, wasm-bindgen, wasm-opt)", || {
        tools::ensure_build_tools();
        tools::wasm_opt();
    });
    steps.time("format", || {
        run("format", "cargo", &["fmt", "--all", "--", "--check"])
    });
    // The workspace's crates are linted by the builds that compile them (see lint.rs); xtask is
    // linted on its own, so the binary running this is never rebuilt under it.
    let mut warnings = steps.time("clippy xtask", || {
        run(
            "clippy (xtask)",
            "cargo",
            &[
                "clippy",
                "-p",
                "xtask",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        );
        0
    });
    warnings += steps.time("native build, linted (engine, CLI, tests)", || {
        lint::build(
            "native build",
            &[
                "test",
                "--workspace",
                "--exclude",
                "xtask",
                "--all-targets",
                "--no-run",
            ],
        )
    });
    let (passed, failed, ok) = steps.time("native tests", tests);
    warnings += steps.time(
        "app build, linted (wasm32, wasm-bindgen, wasm-opt)",
        bundle::build_app,
    );
    let (web_passed, web_failed) = steps.time("browser tests", e2e::browser_tests);
    steps.print();
    if warnings > 0 {
        eprintln!("xtask: {warnings} lint warning(s) above: fix them (CI denies warnings)");
    }
    println!(
        "{} passed, {} failed",
        passed + web_passed,
        failed + web_failed
    );
    if !ok || web_failed > 0 || warnings > 0 {
        exit(1);
    }
}

/// Runs a test command, echoing its output, and totals every test binary's `test result:` line.
fn run_tests(mut cmd: Command, title: &str) -> (u64, u64, bool) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    eprintln!("\n==> {title}");
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| {
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
    (passed, failed, status.success())
}

/// The native tests: the workspace (built by the linted build above, same wrapper) and xtask's
/// own; then one closing line (cargo's last line is that of whichever binary ran last).
fn tests() -> (u64, u64, bool) {
    let mut workspace = lint::cargo();
    workspace.args(["test", "--workspace", "--exclude", "xtask"]);
    let (p1, f1, ok1) = run_tests(workspace, "tests: cargo test --workspace --exclude xtask");
    let mut xtask = Command::new("cargo");
    xtask.args(["test", "-p", "xtask"]).current_dir(root());
    let (p2, f2, ok2) = run_tests(xtask, "tests: cargo test -p xtask");
    let (passed, failed) = (p1 + p2, f1 + f2);
    println!("native: {passed} passed, {failed} failed");
    (passed, failed, ok1 && ok2)
}

const BENCH_MODELS: &[&str] = &[
    "model/tests/fixtures/gpt2-tiny",
    "model/tests/fixtures/gpt2-noprefix-f16",
    "model/tests/fixtures/bert-seqcls",
    "model/tests/fixtures/distilbert-multilabel",
];

/// `cargo xtask bench [--device gpu] [MODEL_DIR...]`: `duet bench` next to PyTorch on the same
/// checkpoints. With `--device gpu`, Duet runs on wgpu natively (built with the `wgpu` feature)
/// and PyTorch on CUDA.
fn bench(args: &[String]) {
    let mut gpu = false;
    let mut models = Vec::new();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--device" => match rest.next().map(String::as_str) {
                Some("gpu") => gpu = true,
                Some("cpu") => gpu = false,
                other => {
                    eprintln!("xtask bench: --device takes cpu or gpu, not {other:?}");
                    exit(2)
                }
            },
            _ => models.push(a.clone()),
        }
    }
    if models.is_empty() {
        models = BENCH_MODELS.iter().map(|s| s.to_string()).collect();
    }
    let mut duet_args = vec!["run", "--release", "-q", "-p", "duet-model"];
    if gpu {
        duet_args.extend(["--features", "wgpu"]);
    }
    duet_args.extend(["--bin", "duet", "--"]);
    if gpu {
        duet_args.extend(["--device", "gpu"]);
    }
    duet_args.extend(["bench", "--json"]);
    let mut py_args = vec!["scripts/bench_torch.py".to_string()];
    if gpu {
        py_args.extend(["--device".to_string(), "cuda".to_string()]);
    }
    for m in &models {
        duet_args.extend(["--model", m.as_str()]);
        py_args.extend(["--model".to_string(), m.clone()]);
    }
    eprintln!(
        "==> burn (release build{})",
        if gpu { ", wgpu" } else { "" }
    );
    let ours = output("cargo", &duet_args).unwrap_or_else(|| exit(1));
    let ours: serde_json::Value = serde_json::from_str(&ours).expect("duet bench prints JSON");
    let py = python();
    eprintln!("==> PyTorch ({})", py.display());
    let py_refs: Vec<&str> = py_args.iter().map(String::as_str).collect();
    let theirs: Option<serde_json::Value> =
        output(&py.display().to_string(), &py_refs).and_then(|s| serde_json::from_str(&s).ok());
    if theirs.is_none() && gpu {
        eprintln!(
            "PyTorch figures unavailable: it needs a CUDA device here (see its message above)"
        );
    } else if theirs.is_none() {
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

/// The recipe of the embedded defaults under `public/models/` (about four and a half hours on 2
/// CPU cores, two of them the GPT's): MiniLM in f16, a GPT-2 trained from scratch on Tiny
/// Shakespeare, a LoRA adapter (with a head) over MiniLM for SST-2 sentiment, MiniLM trained as a
/// masked LM (the fill-mask default), and that encoder fine-tuned whole for CoNLL-2003 entities.
/// Then `duet eval`.
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
    // The GPT: 6 layers, width 384, context 256, from nothing, 12 epochs of 256-token blocks with
    // dropout 0.2 (small data seen many times; over 24 epochs it overfits after 12), each epoch's
    // blocks cut from a new random offset (the same 1 MB seen 12 times, never in the same 256-token
    // windows), saved every 30 steps so an interrupted run continues where it stopped (the same
    // weights as one never stopped), then halved to f16.
    &[
        "new-gpt2",
        "--text",
        "../shared/data/tinyshakespeare/input.txt",
        "--vocab-size",
        "2048",
        "--n-layer",
        "6",
        "--n-head",
        "6",
        "--n-embd",
        "384",
        "--n-positions",
        "256",
        "--dropout",
        "0.2",
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
        "target/gpt2-shakespeare-f32",
        "--train",
        "all",
        "--epochs",
        "12",
        "--batch-size",
        "16",
        "--max-length",
        "256",
        "--lr",
        "1e-3",
        "--warmup-ratio",
        "0.02",
        "--schedule",
        "cosine",
        "--weight-decay",
        "0.1",
        "--seed",
        "42",
        "--random-offsets",
        "--save-every",
        "30",
        "--resume",
    ],
    &[
        "convert",
        "--model",
        "target/gpt2-shakespeare-f32",
        "--output",
        "public/models/gpt2-shakespeare",
        "--dtype",
        "f16",
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
    // The fill-mask default: MiniLM's encoder with a new MLM head, every weight trained as a masked
    // LM on the CoNLL-2003 training sentences (whole words masked, as they are scored), then halved
    // to f16. `conll_text` writes the sentences beforehand.
    &[
        "train",
        "--task",
        "mlm",
        "--whole-word-mask",
        "--data",
        "target/conll2003-train.txt",
        "--eval-data",
        "target/conll2003-dev.txt",
        "--model",
        "public/models/all-MiniLM-L6-v2",
        "--output",
        "target/minilm-mlm-f32",
        "--train",
        "all",
        "--epochs",
        "5",
        "--batch-size",
        "16",
        "--max-length",
        "128",
        "--lr",
        "2e-4",
        "--warmup-ratio",
        "0.05",
        "--seed",
        "42",
    ],
    &[
        "convert",
        "--model",
        "target/minilm-mlm-f32",
        "--output",
        "public/models/minilm-mlm",
        "--dtype",
        "f16",
    ],
    // The tagger: every weight of the fill-mask default's encoder (MiniLM after masked-LM training
    // on the same news sentences) fine-tuned with a token-classification head, then halved to f16.
    // Full fine-tuning beats LoRA here (dev F1 0.909 after 3 epochs against 0.889 for LoRA rank 16
    // over MiniLM and 0.900 for rank 32 over this encoder); 5 epochs reach 0.914 (the card).
    &[
        "train",
        "--task",
        "ner",
        "--data",
        "../shared/data/conll2003/train.txt",
        "--eval-data",
        "../shared/data/conll2003/dev.txt",
        "--model",
        "public/models/minilm-mlm",
        "--output",
        "target/minilm-conll03-f32",
        "--train",
        "all",
        "--epochs",
        "5",
        "--batch-size",
        "16",
        "--lr",
        "1e-4",
        "--seed",
        "42",
    ],
    &[
        "convert",
        "--model",
        "target/minilm-conll03-f32",
        "--output",
        "public/models/minilm-conll03",
        "--dtype",
        "f16",
    ],
    &["eval"],
];

/// A CoNLL file's sentences as plain text, one per line (words joined by spaces, document
/// markers dropped): the masked LM trains on the text the tagger tags.
fn conll_text(conll: &str) -> String {
    let mut out = String::new();
    let mut sentence: Vec<&str> = Vec::new();
    for line in conll.lines().chain(std::iter::once("")) {
        match line.split_whitespace().next() {
            None if !sentence.is_empty() => {
                out.push_str(&sentence.join(" "));
                out.push('\n');
                sentence.clear();
            }
            Some(word) if word != "-DOCSTART-" => sentence.push(word),
            _ => {}
        }
    }
    out
}

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
    for split in ["train", "dev"] {
        let src = format!("../shared/data/conll2003/{split}.txt");
        let text = std::fs::read_to_string(root().join(&src)).unwrap_or_else(|e| {
            eprintln!("xtask: cannot read {src}: {e}");
            exit(1)
        });
        let dst = root().join(format!("target/conll2003-{split}.txt"));
        std::fs::create_dir_all(dst.parent().expect("target")).expect("target dir");
        std::fs::write(&dst, conll_text(&text)).expect("write the CoNLL text");
    }
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
        Some("serve") => serve::serve(&args[1..]),
        Some("build") => {
            bundle::build_app();
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("--browser") => {
            browser_bench::browser_bench(&args[2..])
        }
        Some("bench") => bench(&args[1..]),
        Some("fixtures") => fixtures(),
        Some("defaults") => defaults(),
        _ => {
            eprintln!(
                "usage: cargo xtask <serve [--watch] [--port N] | build | test | bench [--device gpu] [MODEL_DIR...] | bench --browser [--gpt DIR] [--bert DIR] | fixtures | defaults>"
            );
            exit(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::conll_text;

    #[test]
    fn conll_text_is_one_sentence_a_line_without_document_markers() {
        let conll = "-DOCSTART- O\n\nEU B-ORG\nrejects O\n.  O\n\n\nPeter B-PER\nBlackburn I-PER";
        assert_eq!(conll_text(conll), "EU rejects .\nPeter Blackburn\n");
        assert_eq!(conll_text(""), "");
    }

    #[test]
    fn conll_text_of_the_shared_training_file_keeps_every_sentence() {
        let path = super::root().join("../shared/data/conll2003/train.txt");
        let conll = std::fs::read_to_string(path).expect("../shared beside the repository");
        let text = conll_text(&conll);
        let sentences = conll
            .split("\n\n")
            .filter(|s| !s.trim().is_empty() && !s.contains("-DOCSTART-"))
            .count();
        assert_eq!(text.lines().count(), sentences);
    }
}
