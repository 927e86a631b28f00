//! Whole-word fill-mask accuracy: how often a masked LM puts a hidden word back.
//!
//! One word per sentence is hidden, as someone on the Fill-mask page hides one: every piece of
//! it becomes the mask token, and the word counts as found within k when each of its pieces is
//! among the head's top k at its own position. Only words with a letter are chosen —
//! punctuation is too easy and a number is not a word to guess — and the choice is seeded, so
//! every model is scored on the same words.

use serde::Serialize;

use super::{masked_logits, ranks_of, Example, Target};
use crate::error::{DuetError, Result};
use crate::generation::rng::Rng;
use crate::network::{read_f32, EncoderBatch};
use crate::Model;

/// Share of hidden words found at rank 1 and within the top 5.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WordFill {
    pub words: usize,
    pub top1_accuracy: f64,
    pub top5_accuracy: f64,
}

/// A sentence with one seeded word hidden: the model's input and, per piece, the id to find
/// there (`-100` elsewhere). `None` when the sentence has no word with a letter or is too long.
fn hide_one_word(
    model: &Model,
    words: &[String],
    mask: u32,
    rng: &mut Rng,
) -> Result<Option<Example>> {
    let candidates: Vec<usize> = (0..words.len())
        .filter(|&w| words[w].chars().any(char::is_alphabetic))
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let pick = candidates[(rng.next_u64() % candidates.len() as u64) as usize] as u32;
    let e = model.tokenizer.encode_words(words)?;
    if e.ids.len() > model.config.max_positions() {
        return Ok(None);
    }
    let mut ids = e.ids;
    let labels: Vec<i64> = e
        .word_ids
        .iter()
        .zip(ids.iter_mut())
        .map(|(w, id)| {
            if *w == Some(pick) {
                std::mem::replace(id, mask) as i64
            } else {
                -100
            }
        })
        .collect();
    if labels.iter().all(|&l| l < 0) {
        return Ok(None); // the word left no piece (nothing to find)
    }
    Ok(Some(Example {
        type_ids: vec![0; ids.len()],
        ids,
        target: Target::Tokens(labels),
    }))
}

/// Hides one word in each sentence (seeded) and scores the model's fills, `batch_size`
/// sentences per forward pass.
pub async fn word_fill_accuracy(
    model: &Model,
    sentences: &[Vec<String>],
    seed: u64,
    batch_size: usize,
) -> Result<WordFill> {
    let (_, mask) = model.tokenizer.mask()?;
    let mut rng = Rng::new(seed);
    let mut examples = Vec::new();
    for words in sentences {
        examples.extend(hide_one_word(model, words, mask, &mut rng)?);
    }
    if examples.is_empty() {
        return Err(DuetError::EmptyInput(
            "no sentence has a word to hide".into(),
        ));
    }
    let pad = model.tokenizer.pad_token_id;
    let (mut top1, mut top5) = (0usize, 0usize);
    for chunk in examples.chunks(batch_size.max(1)) {
        crate::device::yield_now().await;
        let refs: Vec<&Example> = chunk.iter().collect();
        let encs: Vec<_> = chunk.iter().map(Example::encoded).collect();
        let eb = EncoderBatch::new(&encs, pad, &model.device)?;
        let (logits, labels) = masked_logits(&model.network, &eb, &refs, &model.device)?;
        let ranks: Vec<f32> = read_f32(ranks_of(logits, labels)).await?;
        // The ranks come in the order of the batch's masked pieces: each sentence's word in turn.
        let mut at = 0;
        for e in chunk {
            let pieces = e.token_labels().iter().filter(|&&l| l >= 0).count();
            let worst = ranks[at..at + pieces].iter().fold(0f32, |a, &r| a.max(r));
            at += pieces;
            top1 += (worst < 1.0) as usize;
            top5 += (worst < 5.0) as usize;
        }
    }
    let n = examples.len() as f64;
    Ok(WordFill {
        words: examples.len(),
        top1_accuracy: top1 as f64 / n,
        top5_accuracy: top5 as f64 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_of_the_chosen_word_and_nothing_else_is_hidden() {
        // `cargo test` gives the checkout at run time; the compiled-in path may be a moved one's.
        let manifest =
            std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
        let dir = std::path::Path::new(&manifest).join("tests/fixtures/bert-mlm-f16");
        let model = Model::from_dir(dir, &crate::device::cpu()).unwrap();
        let words: Vec<String> = ["1996", "zqxv", ","].map(String::from).to_vec();
        let plain = model.tokenizer.encode_words(&words).unwrap();
        let e = hide_one_word(&model, &words, 4, &mut Rng::new(3))
            .unwrap()
            .unwrap();
        let Target::Tokens(labels) = &e.target else {
            panic!("labels")
        };
        let pieces: Vec<usize> = (0..plain.ids.len())
            .filter(|&i| plain.word_ids[i] == Some(1))
            .collect();
        assert!(pieces.len() > 1, "{:?}", plain.tokens);
        for (i, &id) in plain.ids.iter().enumerate() {
            if pieces.contains(&i) {
                assert_eq!((e.ids[i], labels[i]), (4, id as i64));
            } else {
                assert_eq!((e.ids[i], labels[i]), (id, -100));
            }
        }
        let none = hide_one_word(&model, &["1", "."].map(String::from), 4, &mut Rng::new(3));
        assert!(none.unwrap().is_none());
    }
}
