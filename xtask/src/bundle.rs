//! The browser app's build: both wasm modules in one release build for wasm32, wasm-bindgen,
//! wasm-opt, the static files, and precompressed copies, into `dist/`. (No Trunk: installing it
//! took a new user 22 minutes, and its server answers missing files with the page.)
//!
//! - the page (`duet-app`): wasm-bindgen `--target web`, started by `index.html`;
//! - the engine worker (`duet-worker`): `--target no-modules`, started by the page through
//!   `duet-worker_loader.js` as a classic Web Worker.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{lint, root, run_command, tools};

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The wasm features the modules use: LLVM's "generic" CPU for wasm32-unknown-unknown, plus
/// SIMD (the CPU backend's kernels). wasm-opt must accept exactly these and introduce no others.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-bulk-memory-opt",
    "--enable-call-indirect-overlong",
    "--enable-multivalue",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-sign-ext",
    "--enable-simd",
];

/// One of the two wasm modules.
struct Module {
    /// The crate (`cargo -p`).
    package: &'static str,
    /// The crate's library name (`<lib>.wasm` in cargo's output).
    lib: &'static str,
    /// Its Cargo profile (Cargo.toml: `web` puts size first, `web-engine` speed; both fat LTO).
    profile: &'static str,
    /// The name of the files in `dist/`.
    out_name: &'static str,
    bindgen_target: &'static str,
    /// wasm-opt's optimisation passes, if any (names and debug sections are always stripped).
    opt_passes: Option<&'static str>,
}

const MODULES: [Module; 2] = [
    Module {
        package: "duet-app",
        lib: "duet_app",
        profile: "web",
        out_name: "duet-app",
        bindgen_target: "web",
        // Small, and on the network's critical path: optimised for size (-57% here).
        opt_passes: Some("-Oz"),
    },
    Module {
        package: "duet-worker",
        lib: "duet_worker",
        profile: "web-engine",
        out_name: "duet-worker",
        bindgen_target: "no-modules",
        // Already optimised by LLVM with fat LTO; binaryen's passes over its 20+ MB took 2 to 10
        // minutes on 2 cores for 3-5% smaller: stripped only.
        opt_passes: None,
    },
];

/// What the classic worker runs first: the no-modules glue defines `wasm_bindgen`.
const WORKER_LOADER: &str = r#"// The engine worker (duet-worker, wasm-bindgen --target no-modules), started by the page.
importScripts("./duet-worker.js");
wasm_bindgen({ module_or_path: "./duet-worker_bg.wasm" }).catch((e) => {
  // The page would otherwise wait for the engine forever: say why it cannot start.
  postMessage(JSON.stringify({ id: 0, kind: "unavailable", message: String((e && e.message) || e) }));
});
"#;

/// Files compressed ahead of time (the server sends `.br` / `.gz` to browsers that accept them).
const COMPRESSED: &[&str] = &["html", "js", "wasm", "css", "json", "txt"];

/// The workspace's target directory (wherever CARGO_TARGET_DIR or a config puts it).
pub fn target_dir() -> PathBuf {
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    PathBuf::from(meta["target_directory"].as_str().expect("target_directory"))
}

pub fn dist() -> PathBuf {
    root().join("dist")
}

/// Sizes of the app's wasm, for the build's closing lines and the tests.
pub struct Size {
    pub name: String,
    pub raw: u64,
    pub gzip: u64,
    pub brotli: u64,
}

/// Builds the app into `dist/`; returns the lint warnings of the wasm crates.
pub fn build_app() -> usize {
    tools::ensure_build_tools();
    let started = Instant::now();
    // One build per module: each has its own profile, and they share few dependencies.
    let mut warnings = 0;
    for m in &MODULES {
        warnings += lint::build(
            &format!("build {} (wasm32, profile {})", m.package, m.profile),
            &[
                "build",
                "--profile",
                m.profile,
                "--target",
                WASM_TARGET,
                "-p",
                m.package,
            ],
        );
    }
    let stage = target_dir().join("duet-web");
    fs::create_dir_all(&stage).expect("target dir is writable");
    for m in &MODULES {
        let wasm = target_dir()
            .join(WASM_TARGET)
            .join(m.profile)
            .join(format!("{}.wasm", m.lib));
        bindgen_and_optimise(m, &wasm, &stage);
    }
    assemble(&stage, &dist());
    eprintln!(
        "\n==> the app is in {} ({:.0} s)",
        dist().display(),
        started.elapsed().as_secs_f64()
    );
    for s in wasm_sizes(&dist()) {
        eprintln!(
            "    {:<24} {:>6.2} MB   gzip {:>5.2} MB   brotli {:>5.2} MB",
            s.name,
            s.raw as f64 / 1e6,
            s.gzip as f64 / 1e6,
            s.brotli as f64 / 1e6
        );
    }
    warnings
}

/// wasm-bindgen, wasm-opt and compression of one module into `stage`, skipped when its input is
/// the one the stage was made from (wasm-opt takes minutes on the engine).
fn bindgen_and_optimise(m: &Module, input: &Path, stage: &Path) {
    let meta = fs::metadata(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    let opt = tools::wasm_opt();
    let stamp_text = format!(
        "{} {:?} {} {} {}",
        meta.len(),
        meta.modified().ok(),
        m.bindgen_target,
        m.opt_passes.unwrap_or("strip"),
        opt.as_ref()
            .map_or("no-wasm-opt".into(), |p| p.display().to_string())
    );
    let stamp = stage.join(format!("{}.stamp", m.out_name));
    if fs::read_to_string(&stamp).ok().as_deref() == Some(stamp_text.as_str()) {
        return;
    }
    let _ = fs::remove_file(&stamp);
    let started = Instant::now();
    run_command(
        &format!("wasm-bindgen {}", m.out_name),
        Command::new("wasm-bindgen")
            .env("PATH", tools::path_with_tools())
            .args([
                "--target",
                m.bindgen_target,
                "--no-typescript",
                "--out-name",
            ])
            .arg(m.out_name)
            .arg("--out-dir")
            .arg(stage)
            .arg(input),
    );
    let wasm = stage.join(format!("{}_bg.wasm", m.out_name));
    match &opt {
        Some(wasm_opt) => {
            run_command(
                &format!("wasm-opt {}", m.out_name),
                Command::new(wasm_opt)
                    .args(m.opt_passes)
                    .args(WASM_FEATURES)
                    .args(["--strip-debug", "--strip-producers"])
                    .arg(&wasm)
                    .arg("-o")
                    .arg(&wasm),
            );
        }
        None => eprintln!(
            "xtask: wasm-opt is not available: {} stays unoptimised",
            m.out_name
        ),
    }
    for file in [wasm, stage.join(format!("{}.js", m.out_name))] {
        compress(&file);
    }
    fs::write(&stamp, stamp_text).expect("stage is writable");
    eprintln!(
        "    {} bound, optimised and compressed in {:.0} s",
        m.out_name,
        started.elapsed().as_secs_f64()
    );
}

/// Writes `file.gz` and `file.br` beside `file` when they are smaller.
fn compress(file: &Path) {
    let bytes = fs::read(file).expect("file to compress");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes).expect("in memory");
    let gz = gz.finish().expect("in memory");
    let mut br = Vec::new();
    {
        // Quality 11 costs minutes on the engine's module for a few percent: large files get 9.
        let params = brotli::enc::BrotliEncoderParams {
            quality: if bytes.len() > 1 << 20 { 9 } else { 11 },
            lgwin: 24,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &bytes[..], &mut br, &params).expect("in memory");
    }
    for (ext, data) in [("gz", gz), ("br", br)] {
        let path = PathBuf::from(format!("{}.{ext}", file.display()));
        if (data.len() as f64) < bytes.len() as f64 * 0.9 {
            fs::write(&path, data).expect("writable");
        } else {
            let _ = fs::remove_file(&path);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("writable");
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("entry");
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            fs::copy(&path, &dest).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// Lays `dist/` out anew: the page, the worker, the static files, the embedded models and the
/// parity fixtures (for the Bench page's device check), with compressed copies.
fn assemble(stage: &Path, dist: &Path) {
    let r = root();
    let next = dist.with_extension("new");
    let _ = fs::remove_dir_all(&next);
    fs::create_dir_all(&next).expect("writable");
    for m in &MODULES {
        for suffix in [".js", "_bg.wasm"] {
            for ext in ["", ".gz", ".br"] {
                let name = format!("{}{suffix}{ext}", m.out_name);
                if stage.join(&name).is_file() {
                    fs::copy(stage.join(&name), next.join(&name)).expect("copy");
                }
            }
        }
    }
    fs::write(next.join("duet-worker_loader.js"), WORKER_LOADER).expect("writable");
    fs::copy(r.join("index.html"), next.join("index.html")).expect("index.html");
    for file in ["style.css", "sw.js", "manifest.json"] {
        fs::copy(r.join("public").join(file), next.join(file)).expect("public file");
    }
    copy_dir(&r.join("public/models"), &next.join("models"));
    copy_dir(&r.join("model/tests/fixtures"), &next.join("fixtures"));
    compress_tree(&next, stage);
    let _ = fs::remove_dir_all(dist);
    fs::rename(&next, dist).expect("dist is replaceable");
}

/// Compresses the text files of `dir` that the stage did not already compress.
fn compress_tree(dir: &Path, stage: &Path) {
    for entry in fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            compress_tree(&path, stage);
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let staged = stage.join(path.file_name().expect("name")).is_file();
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        if COMPRESSED.contains(&ext) && !staged && size > 1024 {
            compress(&path);
        }
    }
}

/// Raw, gzip and brotli sizes of the two wasm modules in `dist`.
pub fn wasm_sizes(dist: &Path) -> Vec<Size> {
    let len = |p: PathBuf| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    MODULES
        .iter()
        .map(|m| {
            let name = format!("{}_bg.wasm", m.out_name);
            Size {
                raw: len(dist.join(&name)),
                gzip: len(dist.join(format!("{name}.gz"))),
                brotli: len(dist.join(format!("{name}.br"))),
                name,
            }
        })
        .collect()
}
