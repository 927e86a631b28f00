//! `cargo xtask bench --browser`: Duet and transformers.js on the same checkpoints, side by side in
//! one headless Chromium (`tests/bench/`). Builds `dist/`, writes each checkpoint once more as a
//! plain f32 HF folder with its ONNX export (`scripts/export_onnx.py`, the pinned Python
//! environment; a LoRA adapter is merged into its base first, so both engines run the same
//! weights), then runs `tests/bench/browser-bench.mjs`, which prints both engines' figures and
//! their ratios.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use crate::{bundle, ensure_python_env, root, run, run_command, tools};

/// The defaults the app ships: the GPT-2 and the BERT classifier a user meets first.
const GPT: &str = "public/models/gpt2-shakespeare";
const BERT: &str = "public/models/minilm-sst2";

/// Options passed through to the page driver unchanged.
const PASS_THROUGH: &[&str] = &["--backends", "--new-tokens", "--from", "--json", "--prompt"];

pub fn browser_bench(args: &[String]) {
    let mut gpt = GPT.to_string();
    let mut bert = BERT.to_string();
    let mut pass: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(v) = it.next() else { usage() };
        match a.as_str() {
            "--gpt" => gpt = v.clone(),
            "--bert" => bert = v.clone(),
            a if PASS_THROUGH.contains(&a) => pass.extend([a.to_string(), v.clone()]),
            _ => usage(),
        }
    }
    bundle::build_app();
    let py = ensure_python_env();
    // `none` leaves a model out (BERT on SwiftShader's WebGPU takes minutes per batch).
    let gpt = (gpt != "none").then(|| exported(&py, Path::new(&gpt)));
    let bert = (bert != "none").then(|| exported(&py, Path::new(&bert)));
    tools::ensure_browser_tools();
    if !root()
        .join("tests/bench/node_modules/@huggingface/transformers")
        .exists()
    {
        // --ignore-scripts: onnxruntime-node's install script downloads native binaries, and the
        // page needs only onnxruntime-web's files.
        run(
            "install transformers.js",
            "npm",
            &[
                "ci",
                "--prefix",
                "tests/bench",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
            ],
        );
    }
    let mut cmd = Command::new("node");
    cmd.arg("tests/bench/browser-bench.mjs")
        .arg("--dist")
        .arg(bundle::dist())
        .args(&pass);
    for (flag, dir) in [("--gpt", &gpt), ("--bert", &bert)] {
        if let Some(dir) = dir {
            cmd.arg(flag).arg(spec(dir));
        }
    }
    run_command("browser bench", &mut cmd);
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo xtask bench --browser [--gpt DIR|none] [--bert DIR|none] [--backends webgpu,cpu] \
         [--new-tokens N] [--from N] [--prompt TEXT] [--json FILE]"
    );
    exit(2)
}

/// `NAME=DIR=DIR`: the page serves one folder to both engines (Duet reads the safetensors,
/// transformers.js `onnx/model.onnx`).
fn spec(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy();
    format!("{name}={}={}", dir.display(), dir.display())
}

/// The f32 HF folder + ONNX export of `src` under the target dir, made again only when `src` or
/// the export script changed.
fn exported(py: &Path, src: &Path) -> PathBuf {
    let src = root().join(src);
    let name = src
        .file_name()
        .unwrap_or_else(|| usage())
        .to_string_lossy()
        .into_owned();
    let dst = bundle::target_dir().join("bench-models").join(&name);
    let stamp_file = dst.join(".source");
    let script = root().join("scripts/export_onnx.py");
    let stamp = fingerprint(&[&src, &script]);
    if fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        return dst;
    }
    let _ = fs::remove_dir_all(&dst);
    run_command(
        &format!("export {name} to ONNX"),
        Command::new(py).arg(&script).arg(&src).arg(&dst),
    );
    fs::write(&stamp_file, stamp).expect("write the export's stamp");
    dst
}

/// Names, sizes and modification times of the files in `paths` (a folder's files, not recursed).
fn fingerprint(paths: &[&Path]) -> String {
    let mut lines = Vec::new();
    for p in paths {
        let files: Vec<PathBuf> = if p.is_dir() {
            let mut v: Vec<PathBuf> = fs::read_dir(p)
                .unwrap_or_else(|e| {
                    eprintln!("xtask: cannot read {}: {e}", p.display());
                    exit(1)
                })
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.is_file())
                .collect();
            v.sort();
            v
        } else {
            vec![p.to_path_buf()]
        };
        for f in files {
            let meta = fs::metadata(&f).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let mtime = meta
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            lines.push(format!("{} {len} {mtime}", f.display()));
        }
    }
    lines.join("\n")
}
