//! The tools the tasks need beyond Rust, installed when missing: the wasm target, the
//! wasm-bindgen CLI (with cargo, into `~/.cache/duet-tools`), binaryen's wasm-opt (npm), and for
//! the end-to-end tests Debian's Chromium and playwright-core (npm).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, run, run_command};

/// The `wasm-bindgen` crate version pinned in app/ and worker/ (the CLI must equal it).
const WASM_BINDGEN: &str = "0.2.130";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where cargo installs the tools: beside the reusable target dir (`~/.cache`), so CI machines
/// that keep it keep the tools too.
fn tools_root() -> PathBuf {
    std::env::var_os("DUET_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/duet-tools")
        })
}

/// `PATH` with the tools' folder first.
pub fn path_with_tools() -> std::ffi::OsString {
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

/// The wasm target and the wasm-bindgen CLI equal to the pinned crate.
pub fn ensure_build_tools() {
    if Command::new("rustup").arg("--version").output().is_ok() {
        run(
            "wasm target",
            "rustup",
            &["target", "add", "wasm32-unknown-unknown"],
        );
    }
    if !version_of("wasm-bindgen").is_some_and(|v| v.ends_with(WASM_BINDGEN)) {
        run(
            "install wasm-bindgen-cli",
            "cargo",
            // Not --locked: its published lock file names a webpki-roots release that crates.io
            // mirrors can lack (seen here); the CLI's version is what must match.
            &[
                "install",
                "wasm-bindgen-cli",
                "--version",
                WASM_BINDGEN,
                "--root",
                &tools_root().display().to_string(),
            ],
        );
    }
}

/// binaryen's wasm-opt from npm (pinned in xtask/package.json; Debian's is too old for the wasm
/// features rustc emits). None, with a notice, when npm is missing or the install fails: the app
/// then ships unoptimised, which works but is larger.
pub fn wasm_opt() -> Option<PathBuf> {
    let bin = root().join("xtask/node_modules/.bin/wasm-opt");
    let lock = root().join("xtask/package-lock.json");
    let installed = root().join("xtask/node_modules/.package-lock.json");
    let fresh = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if !bin.is_file() || fresh(&installed) < fresh(&lock) {
        let ok = Command::new("npm")
            .args(["ci", "--prefix", "xtask", "--no-audit", "--no-fund"])
            .current_dir(root())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("xtask: could not install binaryen (npm ci --prefix xtask)");
        }
    }
    bin.is_file().then_some(bin)
}

/// Debian's Chromium (with WebGPU) and playwright-core from npm, for the end-to-end tests.
pub fn ensure_browser_tools() {
    if !Path::new(CHROMIUM).exists() {
        run(
            "install Chromium",
            "apt-get",
            &["install", "-y", "chromium", "chromium-driver"],
        );
    }
    run_command(
        "install playwright-core",
        Command::new("npm").args(["ci", "--prefix", "tests", "--no-audit", "--no-fund"]),
    );
}
