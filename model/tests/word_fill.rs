//! Whole-word fill-mask accuracy (`duet eval`'s measure of the fill-mask default): a hidden
//! word counts exactly when the fill-mask pipeline, given the same masked sentence, ranks it
//! there, and the seeded choice is reproducible (that every piece of a word is hidden is a unit
//! test of `word_fill`).

mod common;

use common::*;
use duet_model::device::block_on;
use duet_model::pipelines::fill_mask::fill_mask;
use duet_model::train::word_fill::word_fill_accuracy;

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

fn score(model: &duet_model::Model, sentences: &[Vec<String>]) -> (usize, f64, f64) {
    let w = block_on(word_fill_accuracy(model, sentences, 7, 4)).unwrap();
    (w.words, w.top1_accuracy, w.top5_accuracy)
}

#[test]
fn a_hidden_word_counts_where_the_pipeline_ranks_it() {
    let mlm = load("bert-mlm-f16");
    // One word with a letter per sentence, so the hidden one is known; its fills come from the
    // pipeline on the same masked sentence. The context is the first whose top fill is a word.
    let alphabetic = |t: &str| !t.is_empty() && t.chars().all(char::is_alphabetic);
    let (context, fills) = [
        "[MASK] , 1996 .",
        "[MASK] , 1 .",
        ". [MASK] .",
        "( [MASK] )",
    ]
    .into_iter()
    .map(|c| {
        (
            c,
            block_on(fill_mask(&mlm, &[c.to_string()], 30))
                .unwrap()
                .remove(0),
        )
    })
    .find(|(_, f)| alphabetic(&f[0].token_str))
    .expect("a context whose top fill is a word");
    let ranked: Vec<(usize, &str)> = fills
        .iter()
        .enumerate()
        .filter(|(_, f)| alphabetic(&f.token_str))
        .map(|(r, f)| (r, f.token_str.as_str()))
        .collect();
    let first = ranked[0].1;
    let mid = ranked
        .iter()
        .find(|(r, _)| (1..5).contains(r))
        .expect("a word ranked 2nd to 5th")
        .1;
    let low = ranked
        .iter()
        .find(|(r, _)| *r >= 5)
        .expect("a word below the top 5")
        .1;
    let sentence = |w: &str| words(&context.replace("[MASK]", w));
    let at = |w: &str| score(&mlm, &[sentence(w)]);
    assert_eq!(at(first), (1, 1.0, 1.0), "{first}");
    assert_eq!(at(mid), (1, 0.0, 1.0), "{mid}");
    assert_eq!(at(low), (1, 0.0, 0.0), "{low}");
    // Together: shares over the sentences that have a word to hide (not "1996 .").
    let all = [
        sentence(first),
        sentence(mid),
        words("1996 ."),
        sentence(low),
    ];
    let (n, top1, top5) = score(&mlm, &all);
    assert_eq!(n, 3);
    assert!((top1 - 1.0 / 3.0).abs() < 1e-12 && (top5 - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn the_choice_of_words_is_seeded() {
    let mlm = load("bert-mlm-f16");
    let sentences: Vec<Vec<String>> = [
        "the dog is lazy .",
        "a quick brown fox jumps over the dog .",
        "paris is the capital of france .",
        "it rained all day in the city .",
    ]
    .iter()
    .map(|s| words(s))
    .collect();
    let run = |seed| block_on(word_fill_accuracy(&mlm, &sentences, seed, 3)).unwrap();
    assert_eq!(run(1), run(1));
    assert_eq!(run(1).words, 4);
    let err = block_on(word_fill_accuracy(&mlm, &[words("1 , 2")], 1, 3)).unwrap_err();
    assert!(
        err.to_string().contains("no sentence has a word to hide"),
        "{err}"
    );
}
