//! The browser side of the tasks: the tools Trunk needs (installed, never downloaded by Trunk
//! itself), the app's build, serving it, and the end-to-end tests in Debian's Chromium.

use std::path::{Path, PathBuf};
use std::process::{exit, Command, Stdio};

use crate::{root, run, run_command};

/// The `wasm-bindgen` crate version pinned in app/Cargo.toml (the CLI must equal it).
const WASM_BINDGEN: &str = "0.2.130";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the tools are installed: beside the reusable target dir (`~/.cache`), so CI machines
/// that keep it keep the tools too.
fn tools_root() -> PathBuf {
    std::env::var_os("DUET_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/duet-tools")
        })
}

/// `PATH` with the tools' folder first (Trunk finds wasm-bindgen through it).
fn path_with_tools() -> std::ffi::OsString {
    let mut dirs = vec![tools_root().join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH entries")
}

fn version_of(program: &str) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .env("PATH", path_with_tools())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs a tool found through [`path_with_tools`], exiting with its status on failure.
fn run_tool(title: &str, program: &str, args: &[&str]) {
    run_command(
        title,
        Command::new(program)
            .args(args)
            .env("PATH", path_with_tools()),
    );
}

/// Trunk 0.21 and the matching wasm-bindgen CLI, installed with cargo when missing.
pub fn ensure_build_tools() {
    let root_dir = tools_root().display().to_string();
    if Command::new("rustup").arg("--version").output().is_ok() {
        run(
            "wasm target",
            "rustup",
            &["target", "add", "wasm32-unknown-unknown"],
        );
    }
    if !version_of("trunk").is_some_and(|v| v.starts_with("trunk 0.21")) {
        run(
            "install Trunk",
            "cargo",
            &[
                "install",
                "--locked",
                "trunk",
                "--version",
                "^0.21",
                "--root",
                &root_dir,
            ],
        );
    }
    if !version_of("wasm-bindgen").is_some_and(|v| v.ends_with(WASM_BINDGEN)) {
        run(
            "install wasm-bindgen-cli",
            "cargo",
            &[
                "install",
                "wasm-bindgen-cli",
                "--version",
                WASM_BINDGEN,
                "--root",
                &root_dir,
            ],
        );
    }
}

/// Builds the app into `dist/` (release: the engine is far too slow unoptimised).
pub fn build_app() {
    ensure_build_tools();
    run_tool(
        "build the app",
        "trunk",
        &["build", "--release", "--offline"],
    );
}

/// `cargo xtask serve`: build, then serve `dist/` at http://127.0.0.1:8080.
pub fn serve() {
    ensure_build_tools();
    eprintln!("\nDuet will be at http://127.0.0.1:8080/ once built (Ctrl-C stops it).");
    run_tool(
        "serve the app",
        "trunk",
        &["serve", "--release", "--offline"],
    );
}

/// Debian's Chromium (with WebGPU) and playwright-core from npm, for the end-to-end tests.
fn ensure_browser_tools() {
    if !Path::new(CHROMIUM).exists() {
        run(
            "install Chromium",
            "apt-get",
            &["install", "-y", "chromium", "chromium-driver"],
        );
    }
    run(
        "install playwright-core",
        "npm",
        &["ci", "--prefix", "tests", "--no-audit", "--no-fund"],
    );
}

/// Runs the Playwright tests against `dist/`; returns (passed, failed).
pub fn browser_tests() -> (u64, u64) {
    ensure_browser_tools();
    eprintln!("\n==> browser tests: node --test tests/e2e/");
    let mut child = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(e2e_files())
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("xtask: cannot run node: {e}");
            exit(1)
        });
    use std::io::{BufRead, BufReader};
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.unwrap_or_default();
        println!("{line}");
        let count = |prefix: &str| {
            line.trim()
                .strip_prefix(prefix)
                .and_then(|n| n.trim().parse::<u64>().ok())
        };
        if let Some(n) = count("ℹ pass") {
            passed = n;
        }
        if let Some(n) = count("ℹ fail") {
            failed = n;
        }
    }
    let status = child.wait().expect("node ran");
    if !status.success() && failed == 0 {
        failed = 1; // the runner itself failed (a crash before any test reported)
    }
    (passed, failed)
}

fn e2e_files() -> Vec<String> {
    let dir = root().join("tests/e2e");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
                .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
