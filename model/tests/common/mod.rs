//! Shared helpers for the parity tests: fixture paths, loading, and float comparisons.
#![allow(dead_code)]

use std::path::PathBuf;

use duet_model::device::cpu;
use duet_model::Model;
use serde_json::Value;

/// `model/` of the checkout under test, as `cargo test` gives it at run time: the path compiled in
/// is stale when a checkout moves with its target dir, since cargo still finds the build fresh.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// Whether the gated GPU tests run (`DUET_GPU_TESTS` set, with `--features wgpu`); a skipped
/// test says how to run it, since it passes either way.
pub fn gpu_tests_enabled(what: &str) -> bool {
    let enabled = std::env::var_os("DUET_GPU_TESTS").is_some();
    if !enabled {
        eprintln!("skipped: set DUET_GPU_TESTS=1 to {what}");
    }
    enabled
}

pub fn fixture_dir(name: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures").join(name)
}

pub fn expected(name: &str) -> Value {
    let path = fixture_dir(name).join("expected.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("expected.json parses")
}

pub fn load(name: &str) -> Model {
    Model::from_dir(fixture_dir(name), &cpu()).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .flat_map(|x| match x {
            Value::Array(_) => f32s(x),
            Value::Null => vec![f32::NAN],
            _ => vec![x.as_f64().expect("number") as f32],
        })
        .collect()
}

pub fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("integer") as u32)
        .collect()
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

/// Largest absolute difference, failing with `what` when over `tol`.
pub fn assert_close(ours: &[f32], theirs: &[f32], tol: f32, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let mut worst = (0.0f32, 0usize);
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let d = (a - b).abs();
        if d > worst.0 || d.is_nan() {
            worst = (d, i);
        }
    }
    assert!(
        worst.0 <= tol,
        "{what}: max |diff| {} at {} (ours {}, HF {}) > {tol}",
        worst.0,
        worst.1,
        ours[worst.1],
        theirs[worst.1]
    );
}

/// The fixtures of one family, by the files the fixture script wrote.
pub const GPT2: &[&str] = &["gpt2-tiny", "gpt2-noprefix-f16", "gpt2-bf16"];
pub const SEQ_CLS: &[&str] = &["bert-seqcls", "distilbert-multilabel"];
pub const TOK_CLS: &[&str] = &["bert-tokcls-legacy", "distilbert-tokcls"];
pub const MLM: &[&str] = &["bert-mlm-f16", "distilbert-mlm"];
