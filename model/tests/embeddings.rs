//! Sentence embeddings on the real pretrained all-MiniLM-L6-v2 (`../shared/models`), against the
//! sentence-transformers recipe computed by `scripts/make_fixtures.py`.

mod common;

use std::path::PathBuf;

use common::*;
use duet_model::device::{block_on, cpu};
use duet_model::pipelines::embed::embed;
use duet_model::Model;

fn minilm_dir() -> PathBuf {
    let dir = std::env::var_os("DUET_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../../shared/models/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found at {} (set DUET_MINILM_DIR)",
        dir.display()
    );
    dir
}

#[test]
fn minilm_embeddings_match_sentence_transformers() {
    let model = Model::from_dir(minilm_dir(), &cpu()).unwrap();
    let exp = expected("minilm");
    let texts = strings(&exp["texts"]);
    for (t, ids) in texts.iter().zip(exp["input_ids"].as_array().unwrap()) {
        assert_eq!(
            model.tokenizer.encode(t, true).unwrap().ids,
            u32s(ids),
            "tokens of {t:?}"
        );
    }
    // One padded batch: padding must not change any sentence's embedding.
    let ours = block_on(embed(&model, &texts)).unwrap();
    for (i, (o, t)) in ours
        .iter()
        .zip(exp["embeddings"].as_array().unwrap())
        .enumerate()
    {
        assert_eq!(o.len(), 384);
        assert_close(o, &f32s(t), 1e-4, &format!("embedding {i}"));
        let norm: f32 = o.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
