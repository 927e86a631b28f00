//! BERT's masked-language-model recipe, as HF's `DataCollatorForLanguageModeling` applies it to a
//! batch: each non-special token is chosen with probability `probability` (15% by default); of
//! the chosen, 80% become the mask token, 10% a random vocabulary id and 10% stay as they are;
//! the loss reads the chosen positions only (label `-100` elsewhere, as in PyTorch's
//! `ignore_index`). With `whole_word`, words are chosen and all their sub-tokens follow
//! (`DataCollatorForWholeWordMask`). Seeded: the same seed masks the same tokens on every platform.

use crate::generation::rng::Rng;
use crate::tokenizer::Encoded;
use crate::train::setup::{Example, Masking, Target};

/// What `labels` holds at a position the loss ignores.
pub const IGNORE: i64 = -100;

/// Masking settings, HF's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskingConfig {
    /// `mlm_probability`.
    pub probability: f64,
    pub whole_word: bool,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            probability: 0.15,
            whole_word: false,
        }
    }
}

/// One masked sequence: the ids the model reads and the ids the loss wants back.
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    pub input_ids: Vec<u32>,
    /// The original id at each chosen position, [`IGNORE`] elsewhere.
    pub labels: Vec<i64>,
}

/// Masks one encoded sequence. `vocab_size` bounds the random replacements (HF draws from the
/// whole vocabulary, special tokens included).
pub fn mask_tokens(
    enc: &Encoded,
    mask_id: u32,
    vocab_size: usize,
    cfg: &MaskingConfig,
    rng: &mut Rng,
) -> Masked {
    let n = enc.ids.len();
    let chosen: Vec<bool> = if cfg.whole_word {
        // One draw per word; every token of a chosen word follows it.
        let mut word_chosen = std::collections::HashMap::new();
        (0..n)
            .map(|i| match (enc.special[i], enc.word_ids[i]) {
                (false, Some(w)) => *word_chosen
                    .entry(w)
                    .or_insert_with(|| rng.next_f64() < cfg.probability),
                _ => false,
            })
            .collect()
    } else {
        (0..n)
            .map(|i| !enc.special[i] && rng.next_f64() < cfg.probability)
            .collect()
    };
    let mut input_ids = enc.ids.clone();
    let mut labels = vec![IGNORE; n];
    for i in (0..n).filter(|&i| chosen[i]) {
        labels[i] = enc.ids[i] as i64;
        let r = rng.next_f64();
        if r < 0.8 {
            input_ids[i] = mask_id;
        } else if r < 0.9 {
            input_ids[i] = (rng.next_u64() % vocab_size as u64) as u32;
        }
    }
    Masked { input_ids, labels }
}

/// A masked-LM example (stored unmasked, `Target::Unmasked`) masked for one batch: the ids the
/// model reads and `Target::Tokens` labels. Other examples come back as they are.
pub fn mask_example(e: &Example, masking: &Masking, rng: &mut Rng) -> Example {
    let Target::Unmasked { words } = &e.target else {
        return e.clone();
    };
    let n = e.ids.len();
    let enc = Encoded {
        ids: e.ids.clone(),
        type_ids: e.type_ids.clone(),
        offsets: vec![(0, 0); n],
        special: words.iter().map(Option::is_none).collect(),
        tokens: Vec::new(),
        word_ids: words.clone(),
    };
    let m = mask_tokens(
        &enc,
        masking.mask_id,
        masking.vocab_size,
        &masking.config,
        rng,
    );
    Example {
        ids: m.input_ids,
        type_ids: e.type_ids.clone(),
        target: Target::Tokens(m.labels),
    }
}

/// A batch of masked-LM examples masked with `rng`. A batch where no token was chosen (short
/// sequences, a low probability) would have no loss: then one non-special token of its first
/// example is chosen and masked, so every step learns something.
pub fn mask_batch(batch: &[&Example], masking: &Masking, rng: &mut Rng) -> Vec<Example> {
    let mut out: Vec<Example> = batch
        .iter()
        .map(|e| mask_example(e, masking, rng))
        .collect();
    let none_chosen = out.iter().all(|e| e.token_labels().iter().all(|&l| l < 0));
    if let (true, Some(first), Some(Target::Unmasked { words })) = (
        none_chosen,
        out.first_mut(),
        batch.first().map(|e| &e.target),
    ) {
        let content: Vec<usize> = (0..words.len()).filter(|&i| words[i].is_some()).collect();
        if !content.is_empty() {
            let i = content[(rng.next_u64() % content.len() as u64) as usize];
            let mut labels = vec![IGNORE; first.ids.len()];
            labels[i] = batch[0].ids[i] as i64;
            first.ids[i] = masking.mask_id;
            first.target = Target::Tokens(labels);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[CLS] w0 w0' w1 … [SEP]`: words of two tokens each, specials at both ends.
    fn sentence(words: usize) -> Encoded {
        let n = 2 * words + 2;
        let special: Vec<bool> = (0..n).map(|i| i == 0 || i == n - 1).collect();
        Encoded {
            ids: (0..n as u32).map(|i| 1000 + i).collect(),
            type_ids: vec![0; n],
            offsets: vec![(0, 0); n],
            tokens: vec![String::new(); n],
            word_ids: (0..n)
                .map(|i| (!special[i]).then(|| ((i - 1) / 2) as u32))
                .collect(),
            special,
        }
    }

    const MASK: u32 = 4;
    const VOCAB: usize = 50_000;

    #[test]
    fn proportions_match_the_recipe_and_specials_are_never_chosen() {
        let enc = sentence(200);
        let mut rng = Rng::new(1);
        let (mut tokens, mut chosen, mut masked, mut kept, mut random) = (0, 0, 0, 0, 0);
        for _ in 0..100 {
            let m = mask_tokens(&enc, MASK, VOCAB, &MaskingConfig::default(), &mut rng);
            for i in 0..enc.ids.len() {
                if enc.special[i] {
                    assert_eq!(m.labels[i], IGNORE, "a special token was chosen");
                    assert_eq!(m.input_ids[i], enc.ids[i]);
                    continue;
                }
                tokens += 1;
                if m.labels[i] == IGNORE {
                    assert_eq!(m.input_ids[i], enc.ids[i], "unchosen tokens are untouched");
                    continue;
                }
                assert_eq!(m.labels[i], enc.ids[i] as i64, "the label is the original");
                chosen += 1;
                match m.input_ids[i] {
                    MASK => masked += 1,
                    id if id == enc.ids[i] => kept += 1,
                    _ => random += 1,
                }
            }
        }
        // 40,000 tokens: 15% ± 0.6% chosen; of ~6,000 chosen, 80/10/10 ± 2%.
        let frac = |a: usize, b: usize| a as f64 / b as f64;
        assert!(
            (frac(chosen, tokens) - 0.15).abs() < 0.006,
            "{chosen}/{tokens}"
        );
        assert!(
            (frac(masked, chosen) - 0.8).abs() < 0.02,
            "{masked}/{chosen}"
        );
        assert!(
            (frac(random, chosen) - 0.1).abs() < 0.02,
            "{random}/{chosen}"
        );
        // A random draw can hit the original id (1 in 50,000): "kept" is ~10%.
        assert!((frac(kept, chosen) - 0.1).abs() < 0.02, "{kept}/{chosen}");
    }

    #[test]
    fn a_seed_reproduces_the_masks_and_another_seed_differs() {
        let enc = sentence(50);
        let cfg = MaskingConfig::default();
        let run = |seed| mask_tokens(&enc, MASK, VOCAB, &cfg, &mut Rng::new(seed));
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn whole_word_masking_takes_every_token_of_a_chosen_word() {
        let enc = sentence(300);
        let cfg = MaskingConfig {
            probability: 0.2,
            whole_word: true,
        };
        let m = mask_tokens(&enc, MASK, VOCAB, &cfg, &mut Rng::new(3));
        let mut words = 0;
        for w in 0..300 {
            let (a, b) = (1 + 2 * w, 2 + 2 * w);
            assert_eq!(
                m.labels[a] == IGNORE,
                m.labels[b] == IGNORE,
                "word {w} split"
            );
            words += usize::from(m.labels[a] != IGNORE);
        }
        assert!(
            (words as f64 / 300.0 - 0.2).abs() < 0.06,
            "{words} of 300 words"
        );
        assert_eq!(m.labels[0], IGNORE);
        assert_eq!(*m.labels.last().unwrap(), IGNORE);
    }

    #[test]
    fn a_batch_with_nothing_chosen_still_gets_one_masked_token() {
        use crate::train::setup::{Example, Masking, Target};
        let e = Example {
            ids: vec![2, 10, 11, 12, 3],
            type_ids: vec![0; 5],
            target: Target::Unmasked {
                words: vec![None, Some(0), Some(1), Some(2), None],
            },
        };
        let masking = Masking {
            mask_id: MASK,
            vocab_size: VOCAB,
            config: MaskingConfig {
                probability: 1e-12,
                whole_word: false,
            },
        };
        for seed in 0..20 {
            let out = mask_batch(&[&e, &e], &masking, &mut Rng::new(seed));
            let labels = out[0].token_labels();
            let chosen: Vec<usize> = (0..5).filter(|&i| labels[i] >= 0).collect();
            assert_eq!(chosen.len(), 1, "seed {seed}");
            let i = chosen[0];
            assert!((1..4).contains(&i), "a content token, not [CLS]/[SEP]");
            assert_eq!(labels[i], e.ids[i] as i64);
            assert_eq!(out[0].ids[i], MASK);
            assert!(out[1].token_labels().iter().all(|&l| l < 0));
        }
    }
}
