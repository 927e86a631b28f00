//! GPT and BERT from nothing, side by side on one text (the Pretrain page's engine): the WordPiece
//! and the BERT made from scratch, both losses falling step for step, the probe sentence, the
//! samples, seeded reproducibility, and exports that load back and answer the same.

mod common;

use std::sync::Mutex;

use duet_model::device::{block_on, cpu};
use duet_model::generation::processors::top_n;
use duet_model::pipelines::fill_mask::fill_mask;
use duet_model::pipelines::text_generation::next_token_logits;
use duet_model::train::export::{self, DType};
use duet_model::train::scratch::{self, Shape};
use duet_model::train::side_by_side::{Pair, PairConfig, Probe};
use duet_model::{Model, ModelFiles};

/// A text with structure both models can learn in a few dozen steps: short sentences built from
/// small word sets, each line different.
fn text() -> String {
    let who = [
        "the king",
        "a sailor",
        "the old woman",
        "my brother",
        "the children",
    ];
    let did = ["found", "carried", "painted", "sold", "lost"];
    let what = [
        "a red boat",
        "the heavy stone",
        "a small bird",
        "the silver cup",
    ];
    let where_ = ["by the river", "in the market", "under the bridge"];
    let mut lines = Vec::new();
    for (i, w) in who.iter().enumerate() {
        for (j, d) in did.iter().enumerate() {
            for (k, x) in what.iter().enumerate() {
                let place = where_[(i + j + k) % where_.len()];
                lines.push(format!("Yesterday {w} {d} {x} {place} and went home."));
            }
        }
    }
    lines.join("\n")
}

/// The device's random generator (weights, dropout) is one for the process, and the tests of a
/// file run on threads at once: those that create models take turns, so a seed means the same.
static DEVICE_RNG: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn config() -> PairConfig {
    PairConfig {
        shape: Shape {
            n_layer: 2,
            n_head: 2,
            n_embd: 32,
            n_positions: 32,
            dropout: 0.1,
        },
        vocab_size: 200,
        batch_size: 8,
        learning_rate: 3e-3,
        warmup_steps: 5,
        seed: 7,
    }
}

fn files_of(model: &Model) -> ModelFiles {
    block_on(export::full_checkpoint(model, DType::F32)).unwrap()
}

#[test]
fn a_wordpiece_and_a_bert_from_nothing() {
    let _turn = turn();
    let tok = scratch::train_wordpiece(&text(), 200).unwrap();
    for (id, special) in scratch::BERT_SPECIALS.iter().enumerate() {
        assert_eq!(tok.token_to_id(special), Some(id as u32), "{special}");
    }
    assert_eq!(tok.mask_token.as_deref(), Some("[MASK]"));
    assert_eq!(tok.pad_token_id, 0);
    let e = tok.encode("Yesterday THE KING sold [MASK].", true).unwrap();
    let words: Vec<String> = e.ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    assert_eq!(
        words.first().map(String::as_str),
        Some("[CLS]"),
        "{words:?}"
    );
    assert_eq!(words.last().map(String::as_str), Some("[SEP]"), "{words:?}");
    assert!(
        words.contains(&"king".to_string()),
        "lower-cased: {words:?}"
    );
    assert!(words.contains(&"[MASK]".to_string()), "{words:?}");
    assert!(tok.vocab_size() <= 200, "{}", tok.vocab_size());
    // The same text, the same vocabulary (HF's trainer breaks ties by hash order).
    let again = scratch::train_wordpiece(&text(), 200).unwrap();
    assert_eq!(tok.to_json().unwrap(), again.to_json().unwrap());
    // Words it saw often are single pieces; continuations are spelt with ##.
    let e = tok.encode("yesterday the children painted", false).unwrap();
    let pieces: Vec<String> = e.ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    assert_eq!(pieces, ["yesterday", "the", "children", "painted"]);
    assert!(tok.token_to_id("##s").is_some());

    let shape = config().shape;
    let bert = scratch::new_bert(tok, &shape, 1, &cpu()).unwrap();
    assert_eq!(bert.config.architecture, "BertForMaskedLM");
    assert_eq!(bert.config.max_positions(), 32);
    // It is a masked LM straight away, and its files load back as one.
    let fills = block_on(fill_mask(&bert, &["the king [MASK] a boat".into()], 3)).unwrap();
    assert_eq!(fills[0].len(), 3);
    let files = files_of(&bert);
    let config: serde_json::Value =
        serde_json::from_slice(files.get("config.json").unwrap()).unwrap();
    assert_eq!(config["model_type"], "bert");
    assert_eq!(config["hidden_size"], 32);
    assert_eq!(config["intermediate_size"], 128);
    let back = Model::from_files(&files, &cpu()).unwrap();
    let again = block_on(fill_mask(&back, &["the king [MASK] a boat".into()], 3)).unwrap();
    assert_eq!(
        fills[0].iter().map(|f| f.token).collect::<Vec<_>>(),
        again[0].iter().map(|f| f.token).collect::<Vec<_>>()
    );
}

#[test]
fn the_probe_hides_a_word_of_a_sentence_of_the_text() {
    let shakespeare =
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak.";
    let p = Probe::from_text(shakespeare).unwrap();
    assert_eq!(p.prompt, "Before we proceed");
    assert_eq!(p.masked, "Before we proceed [MASK] further, hear me speak.");
    // No line long enough: the text's first words.
    let p = Probe::from_text("Alas poor\nYorick I knew\nhim Horatio well").unwrap();
    assert_eq!(p.masked.matches("[MASK]").count(), 1, "{p:?}");
    assert!(p.masked.starts_with("Alas poor Yorick"), "{p:?}");
    assert!(Probe::from_text("too short").is_err());
}

#[test]
fn gpt_and_bert_learn_one_text_side_by_side() {
    let _turn = turn();
    let text = text();
    let mut pair = Pair::new(&text, &config(), &cpu()).unwrap();
    // Of the same size: the same shape, each with its own vocabulary and head.
    let ratio = pair.gpt.parameters() as f64 / pair.bert.parameters() as f64;
    assert!(
        (0.8..1.25).contains(&ratio),
        "GPT / BERT parameters {ratio}"
    );
    assert!(pair.gpt.blocks() >= 8 && pair.bert.blocks() >= 8);
    let probe = Probe::from_text(&text).unwrap();
    let before = block_on(pair.sample(&probe, 8)).unwrap();
    let mut losses = Vec::new();
    for _ in 0..80 {
        losses.push(block_on(pair.step()).unwrap());
    }
    assert_eq!(pair.steps, 80);
    let mean = |r: std::ops::Range<usize>, side: fn(&(f32, f32)) -> f32| {
        losses[r.clone()].iter().map(side).sum::<f32>() / r.len() as f32
    };
    let (gpt0, gpt1) = (mean(0..5, |l| l.0), mean(75..80, |l| l.0));
    let (bert0, bert1) = (mean(0..5, |l| l.1), mean(75..80, |l| l.1));
    assert!(gpt1 < 0.6 * gpt0, "GPT's loss {gpt0} → {gpt1}");
    assert!(bert1 < 0.8 * bert0, "BERT's loss {bert0} → {bert1}");

    let after = block_on(pair.sample(&probe, 8)).unwrap();
    assert!(
        after.gpt_text.starts_with(&probe.prompt),
        "{}",
        after.gpt_text
    );
    assert!(
        after.gpt_text.len() > probe.prompt.len(),
        "GPT added nothing"
    );
    assert_eq!(after.bert_fills.len(), 3);
    assert!(after.bert_fills[0].score >= after.bert_fills[2].score);
    assert!(!after.bert_fills[0].sequence.contains("[MASK]"));
    assert_ne!(
        (before.gpt_text.clone(), before.bert_fills[0].token),
        (after.gpt_text.clone(), after.bert_fills[0].token),
        "the samples change as the models learn"
    );

    // The same seed trains the same: the first steps of a second pair give the same losses.
    let mut again = Pair::new(&text, &config(), &cpu()).unwrap();
    for (i, want) in losses.iter().take(3).enumerate() {
        assert_eq!(block_on(again.step()).unwrap(), *want, "step {i}");
    }

    // Both download as checkpoints that load back and answer as the models in the tab do.
    let gpt = pair.gpt.current();
    let back = Model::from_files(&files_of(&gpt), &cpu()).unwrap();
    assert_eq!(back.config.architecture, "GPT2LMHeadModel");
    let bert = pair.bert.current();
    let bert_back = Model::from_files(&files_of(&bert), &cpu()).unwrap();
    let ours = block_on(fill_mask(&bert, std::slice::from_ref(&probe.masked), 5)).unwrap();
    let theirs = block_on(fill_mask(
        &bert_back,
        std::slice::from_ref(&probe.masked),
        5,
    ))
    .unwrap();
    assert_eq!(ours, theirs);

    // For scripts/check_exports.py: transformers' tokenizers and outputs from the same files.
    if let Some(dir) = std::env::var_os("DUET_EXPORT_DIR") {
        let root = std::path::PathBuf::from(dir);
        let gpt_ids = gpt.tokenizer.encode(&probe.prompt, true).unwrap().ids;
        let logits = block_on(next_token_logits(&gpt, &gpt_ids)).unwrap();
        let top: Vec<(usize, f32)> = top_n(&logits, 5);
        let bert_ids = bert.tokenizer.encode(&probe.masked, true).unwrap().ids;
        let records = [
            (
                "pretrained-gpt",
                &gpt,
                serde_json::json!({
                    "text": probe.prompt, "input_ids": gpt_ids,
                    "top5": top.iter().map(|t| t.0).collect::<Vec<_>>(),
                    "logits": top.iter().map(|t| t.1).collect::<Vec<_>>(),
                }),
            ),
            (
                "pretrained-bert",
                &bert,
                serde_json::json!({
                    "text": probe.masked, "input_ids": bert_ids,
                    "top5": ours[0].iter().map(|f| f.token).collect::<Vec<_>>(),
                    "scores": ours[0].iter().map(|f| f.score).collect::<Vec<_>>(),
                }),
            ),
        ];
        for (name, model, record) in records {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let files = files_of(model);
            for n in files.names() {
                std::fs::write(dir.join(n), files.get(n).unwrap()).unwrap();
            }
            let json = serde_json::to_vec_pretty(&record).unwrap();
            std::fs::write(dir.join("expected.json"), json).unwrap();
        }
    }
}

#[test]
fn a_shape_that_cannot_be_built_is_an_error() {
    let _turn = turn();
    let mut c = config();
    c.shape.n_embd = 30; // not a multiple of 4 heads
    c.shape.n_head = 4;
    let err = Pair::new(&text(), &c, &cpu()).err().unwrap().to_string();
    assert!(err.contains("multiple of the heads"), "{err}");
    let mut c = config();
    c.vocab_size = 10;
    let err = Pair::new(&text(), &c, &cpu()).err().unwrap().to_string();
    assert!(err.contains("use 64 to"), "{err}");
    let mut c = config();
    c.shape.n_layer = 1000;
    let err = Pair::new(&text(), &c, &cpu()).err().unwrap().to_string();
    assert!(err.contains("at most 12 layers"), "{err}");
    let err = Pair::new("   ", &config(), &cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no text"), "{err}");
}
