//! The end-to-end tests: `node --test tests/e2e/` (Playwright driving Debian's Chromium with
//! WebGPU) against the built `dist/`.

use std::io::{BufRead, BufReader};
use std::process::{exit, Command, Stdio};

use crate::{root, tools};

/// Runs the browser tests; returns (passed, failed).
pub fn browser_tests() -> (u64, u64) {
    tools::ensure_browser_tools();
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
            failed += n;
        }
        // A test that ran past its timeout is reported as cancelled, not failed: it failed too.
        if let Some(n) = count("ℹ cancelled") {
            failed += n;
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
