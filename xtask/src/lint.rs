//! Builds that lint as they compile. clippy-driver runs as `RUSTC_WORKSPACE_WRAPPER` (what
//! `cargo clippy` itself does), so the workspace's crates are linted by the compilation that
//! builds them: one compilation of the engine per target instead of a `clippy` check and a build.
//! Dependencies compile with plain rustc, as always.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{exit, Command, Stdio};

use crate::root;

/// clippy-driver, when this toolchain has it (rustup's `clippy` component).
fn clippy_driver() -> Option<PathBuf> {
    let out = Command::new("rustup")
        .args(["which", "clippy-driver"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// A cargo command whose workspace crates are compiled through clippy-driver. The same wrapper
/// must be set for every cargo command that shares those artifacts, or cargo rebuilds them.
pub fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
    if let Some(driver) = clippy_driver() {
        cmd.env("RUSTC_WORKSPACE_WRAPPER", driver);
    }
    cmd.current_dir(root());
    cmd
}

/// Runs `cargo <args>` (a build) through [`cargo`] with JSON diagnostics, prints every warning
/// and error as rustc renders it, and returns how many the workspace's crates produced (cargo
/// replays them from its cache when nothing was rebuilt). Exits when the build fails.
pub fn build(title: &str, args: &[&str]) -> usize {
    eprintln!("\n==> {title}: cargo {} (linted)", args.join(" "));
    if clippy_driver().is_none() {
        eprintln!(
            "xtask: clippy is not installed (rustup component add clippy): building without lints"
        );
    }
    let mut child = cargo()
        .args(args)
        .arg("--message-format=json-diagnostic-rendered-ansi")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("xtask: cannot run cargo: {e}");
            exit(1)
        });
    let mut count = 0;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.unwrap_or_default();
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-message" {
            continue;
        }
        let diag = &msg["message"];
        let level = diag["level"].as_str().unwrap_or("");
        // The "N warnings emitted" summaries have neither a code nor a place in the source.
        let located =
            diag["spans"].as_array().is_some_and(|s| !s.is_empty()) || !diag["code"].is_null();
        if matches!(level, "warning" | "error") && located {
            count += 1;
            eprint!("{}", diag["rendered"].as_str().unwrap_or(""));
        }
    }
    let status = child.wait().expect("cargo ran");
    if !status.success() {
        eprintln!("xtask: {title} failed");
        exit(status.code().unwrap_or(1));
    }
    count
}
