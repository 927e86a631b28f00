//! Evaluation metrics: accuracy and macro-F1 for classification, entity-level precision / recall
//! / F1 computed like `seqeval` (default, IOB2-lenient mode), and perplexity.

use serde::Serialize;

/// Fraction of predictions equal to the gold label.
pub fn accuracy(pred: &[usize], gold: &[usize]) -> f64 {
    if gold.is_empty() {
        return 0.0;
    }
    pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / gold.len() as f64
}

/// Unweighted mean of per-class F1 over the classes that occur in gold or predictions
/// (scikit-learn's `f1_score(average="macro")`).
pub fn macro_f1(pred: &[usize], gold: &[usize], classes: usize) -> f64 {
    let mut f1s = Vec::new();
    for c in 0..classes {
        let tp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g == c)
            .count() as f64;
        let fp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g != c)
            .count() as f64;
        let fn_ = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p != c && **g == c)
            .count() as f64;
        if tp + fp + fn_ == 0.0 {
            continue;
        }
        f1s.push(if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (2.0 * tp + fp + fn_)
        });
    }
    if f1s.is_empty() {
        0.0
    } else {
        f1s.iter().sum::<f64>() / f1s.len() as f64
    }
}

fn split_tag(tag: &str) -> (&str, &str) {
    match tag.split_once('-') {
        Some((p, t)) if matches!(p, "B" | "I" | "E" | "S") => (p, t),
        _ if tag == "O" => ("O", ""),
        _ => ("I", tag),
    }
}

fn end_of_chunk(prev: &str, tag: &str, prev_type: &str, ty: &str) -> bool {
    matches!(
        (prev, tag),
        ("E", _)
            | ("S", _)
            | ("B", "B")
            | ("B", "S")
            | ("B", "O")
            | ("I", "B")
            | ("I", "S")
            | ("I", "O")
    ) || (prev != "O" && prev != "." && prev_type != ty)
}

fn start_of_chunk(prev: &str, tag: &str, prev_type: &str, ty: &str) -> bool {
    matches!(
        (prev, tag),
        (_, "B")
            | (_, "S")
            | ("E", "E")
            | ("E", "I")
            | ("S", "E")
            | ("S", "I")
            | ("O", "E")
            | ("O", "I")
    ) || (tag != "O" && tag != "." && prev_type != ty)
}

/// `seqeval.metrics.sequence_labeling.get_entities`: `(type, start, end)` spans, end inclusive.
pub fn entities(tags: &[String]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let (mut prev_tag, mut prev_type) = ("O", "");
    let mut begin = 0;
    let padded = tags.iter().map(String::as_str).chain(std::iter::once("O"));
    for (i, t) in padded.enumerate() {
        let (tag, ty) = split_tag(t);
        if end_of_chunk(prev_tag, tag, prev_type, ty) {
            out.push((prev_type.to_string(), begin, i - 1));
        }
        if start_of_chunk(prev_tag, tag, prev_type, ty) {
            begin = i;
        }
        prev_tag = tag;
        prev_type = ty;
    }
    out
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct EntityScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Micro-averaged entity precision, recall and F1 over sentences (seqeval's defaults).
pub fn entity_scores(pred: &[Vec<String>], gold: &[Vec<String>]) -> EntityScores {
    let (mut tp, mut np, mut ng) = (0usize, 0usize, 0usize);
    for (p, g) in pred.iter().zip(gold) {
        let pe = entities(p);
        let ge = entities(g);
        np += pe.len();
        ng += ge.len();
        tp += pe.iter().filter(|e| ge.contains(e)).count();
    }
    let precision = if np == 0 { 0.0 } else { tp as f64 / np as f64 };
    let recall = if ng == 0 { 0.0 } else { tp as f64 / ng as f64 };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    EntityScores {
        precision,
        recall,
        f1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn seqeval_entities_including_lenient_i_start() {
        assert_eq!(
            entities(&t("B-PER I-PER O B-LOC I-ORG I-ORG O I-MISC")),
            vec![
                ("PER".into(), 0, 1),
                ("LOC".into(), 3, 3),
                ("ORG".into(), 4, 5),
                ("MISC".into(), 7, 7)
            ]
        );
    }

    #[test]
    fn seqeval_scores_match_its_documented_example() {
        // seqeval's README: y_true / y_pred give precision 0.5, recall 0.5, f1 0.5.
        let gold = vec![t("O O O B-MISC I-MISC I-MISC O"), t("B-PER I-PER O")];
        let pred = vec![t("O O B-MISC I-MISC I-MISC I-MISC O"), t("B-PER I-PER O")];
        let s = entity_scores(&pred, &gold);
        assert_eq!((s.precision, s.recall, s.f1), (0.5, 0.5, 0.5));
    }

    #[test]
    fn classification_metrics() {
        assert_eq!(accuracy(&[0, 1, 1], &[0, 1, 0]), 2.0 / 3.0);
        // class 0: tp1 fn1 → f1 2/3; class 1: tp1 fp1 → 2/3.
        assert!((macro_f1(&[0, 1, 1], &[0, 1, 0], 2) - 2.0 / 3.0).abs() < 1e-12);
    }
}
