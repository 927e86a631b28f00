//! The loader's contract: every parameter maps to a checkpoint key, the layouts real checkpoints
//! use load, and a wrong file is an error that says what is wrong.

mod common;

use std::collections::BTreeSet;

use common::*;
use duet_model::device::cpu;
use duet_model::loader::expected_keys;
use duet_model::weights::Weights;
use duet_model::{DuetError, Model, ModelFiles};

const ALL: &[&str] = &[
    "gpt2-tiny",
    "gpt2-noprefix-f16",
    "gpt2-bf16",
    "bert-seqcls",
    "bert-tokcls-legacy",
    "bert-mlm-f16",
    "distilbert-multilabel",
    "distilbert-tokcls",
    "distilbert-mlm",
];

fn files(name: &str) -> ModelFiles {
    ModelFiles::from_dir(fixture_dir(name)).unwrap()
}

/// Canonical form of a file key: prefix restored, legacy LayerNorm names updated.
fn canonical(file_key: &str, prefix: &str, model_keys: &BTreeSet<String>) -> String {
    let k = file_key
        .replace("LayerNorm.gamma", "LayerNorm.weight")
        .replace("LayerNorm.beta", "LayerNorm.bias");
    if model_keys.contains(&k) {
        k
    } else {
        format!("{prefix}{k}")
    }
}

#[test]
fn remapped_checkpoint_keys_equal_the_module_keys() {
    for name in ALL {
        let model = load(name);
        let ours = expected_keys(&model.network, &model.config.arch);
        let f = files(name);
        let weights = Weights::parse(f.get("model.safetensors").unwrap()).unwrap();
        let prefix = match name.split('-').next().unwrap() {
            "gpt2" => "transformer.",
            "bert" => "bert.",
            _ => "distilbert.",
        };
        let theirs: BTreeSet<String> = weights
            .keys()
            .iter()
            .filter(|k| !k.ends_with(".attn.bias") && !k.ends_with(".attn.masked_bias"))
            .map(|k| canonical(k, prefix, &ours))
            .collect();
        assert_eq!(ours, theirs, "{name}");
        assert!(
            model.report.unused_keys.is_empty(),
            "{name}: {:?}",
            model.report.unused_keys
        );
    }
}

fn rewrite_safetensors(
    name: &str,
    edit: impl Fn(&str, Vec<usize>, Vec<f32>) -> Option<(Vec<usize>, Vec<f32>)>,
) -> ModelFiles {
    let f = files(name);
    let w = Weights::parse(f.get("model.safetensors").unwrap()).unwrap();
    let mut tensors = Vec::new();
    for k in w.keys() {
        let t = w.get(&k).unwrap();
        if let Some((shape, data)) = edit(&k, t.shape, t.data) {
            tensors.push((k, shape, data));
        }
    }
    let bytes_store: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(k, s, d)| (k, s, d.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes_store
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    f.with("model.safetensors", bytes)
}

#[test]
fn missing_tensor_names_key_and_shape() {
    let f = rewrite_safetensors("bert-seqcls", |k, s, d| {
        (k != "bert.encoder.layer.1.attention.self.query.weight").then_some((s, d))
    });
    let err = Model::from_files(&f, &cpu()).err().unwrap();
    assert!(matches!(err, DuetError::MissingTensor { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("bert.encoder.layer.1.attention.self.query.weight")
            && msg.contains("[32, 32]"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_names_key_expected_and_found() {
    let f = rewrite_safetensors("gpt2-tiny", |k, s, d| {
        if k == "transformer.h.0.attn.c_proj.weight" {
            Some((vec![s[0] * s[1] / 2, 2], d))
        } else {
            Some((s, d))
        }
    });
    let msg = Model::from_files(&f, &cpu()).err().unwrap().to_string();
    assert!(
        msg.contains("transformer.h.0.attn.c_proj.weight")
            && msg.contains("[512, 2]")
            && msg.contains("[32, 32]"),
        "{msg}"
    );
}

#[test]
fn truncated_or_garbage_safetensors_is_an_error() {
    let f = files("gpt2-tiny");
    let bytes = f.get("model.safetensors").unwrap();
    let cut = f
        .clone()
        .with("model.safetensors", bytes[..bytes.len() / 2].to_vec());
    assert!(matches!(
        Model::from_files(&cut, &cpu()),
        Err(DuetError::Safetensors(_))
    ));
    let junk = f.with("model.safetensors", b"<html>404</html>".to_vec());
    assert!(matches!(
        Model::from_files(&junk, &cpu()),
        Err(DuetError::Safetensors(_))
    ));
}

#[test]
fn missing_files_and_unsupported_architectures_are_errors() {
    let f = files("bert-seqcls");
    let mut no_tok = ModelFiles::new();
    for n in ["config.json", "model.safetensors"] {
        no_tok.insert(n, f.get(n).unwrap().to_vec());
    }
    let msg = Model::from_files(&no_tok, &cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("tokenizer.json"), "{msg}");
    let t5 = f.clone().with(
        "config.json",
        br#"{"model_type":"t5","architectures":["T5ForConditionalGeneration"]}"#.to_vec(),
    );
    let msg = Model::from_files(&t5, &cpu()).err().unwrap().to_string();
    assert!(
        msg.contains("T5ForConditionalGeneration") && msg.contains("BertForMaskedLM"),
        "{msg}"
    );
    assert!(matches!(
        ModelFiles::from_dir("/nonexistent/model"),
        Err(DuetError::Io { .. })
    ));
}

#[test]
fn vocab_fallbacks_tokenize_like_tokenizer_json() {
    // bert-tokcls-legacy ships only vocab.txt; gpt2-noprefix-f16 only vocab.json + merges.txt.
    assert!(files("bert-tokcls-legacy").get("tokenizer.json").is_none());
    assert!(files("gpt2-noprefix-f16").get("tokenizer.json").is_none());
    for (fallback, full) in [
        ("bert-tokcls-legacy", "bert-seqcls"),
        ("gpt2-noprefix-f16", "gpt2-tiny"),
    ] {
        let a = load(fallback).tokenizer;
        let b = load(full).tokenizer;
        for text in [
            "Angela Merkel visited the café in Zürich, didn't she?",
            "  spaces\tand\nlines 42 ",
        ] {
            let (x, y) = (a.encode(text, true).unwrap(), b.encode(text, true).unwrap());
            assert_eq!(x.ids, y.ids, "{fallback}: {text:?}");
            assert_eq!(x.offsets, y.offsets, "{fallback}: offsets");
            assert_eq!(
                a.decode(&x.ids, true).unwrap(),
                b.decode(&y.ids, true).unwrap()
            );
        }
    }
}
