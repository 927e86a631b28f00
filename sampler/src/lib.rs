//! Hugging Face's logits processors on one row of logits, and the sampler's stages for one step.
//! Plain Rust with no dependencies, so both the engine (which samples with them, on the host: the
//! row is read back once per token anyway) and the page (which redraws the stages when a setting
//! moves, without asking the engine) link the same code. Order as in `generate`: repetition
//! penalty, then temperature, top-k, top-p.

mod stages;

pub use stages::{stages, SamplerSettings, SamplerStages};

/// `RepetitionPenaltyLogitsProcessor`: every token already in the sequence has its logit divided
/// by `penalty` when positive, multiplied when negative.
pub fn repetition_penalty(scores: &mut [f32], seen: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut done = vec![false; scores.len()];
    for &id in seen {
        let i = id as usize;
        if i < scores.len() && !done[i] {
            done[i] = true;
            let s = scores[i];
            scores[i] = if s < 0.0 { s * penalty } else { s / penalty };
        }
    }
}

/// `TemperatureLogitsWarper`.
pub fn temperature(scores: &mut [f32], t: f32) {
    if t != 1.0 {
        scores.iter_mut().for_each(|s| *s /= t);
    }
}

/// `TopKLogitsWarper`: keeps every score ≥ the k-th largest (ties at the boundary survive, as in
/// `scores < topk(scores, k).values[-1]`). `k == 0` disables it.
pub fn top_k(scores: &mut [f32], k: usize) {
    if k == 0 || k >= scores.len() {
        return;
    }
    let mut sorted: Vec<f32> = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    scores
        .iter_mut()
        .filter(|s| **s < kth)
        .for_each(|s| *s = f32::NEG_INFINITY);
}

/// `TopPLogitsWarper`: sorts ascending, removes tokens whose cumulative probability is
/// ≤ `1 - p`, always keeping the most likely one. `p >= 1` disables it.
pub fn top_p(scores: &mut [f32], p: f32) {
    if p >= 1.0 {
        return;
    }
    let probs = softmax(scores);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Ascending by score; stable so equal scores keep index order.
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut cumulative = 0.0f32;
    let last = order.len() - 1;
    for (rank, &i) in order.iter().enumerate() {
        cumulative += probs[i];
        if cumulative <= 1.0 - p && rank != last {
            scores[i] = f32::NEG_INFINITY;
        }
    }
}

/// Numerically stable softmax; `-inf` scores get probability 0.
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|&s| (s - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Index of the largest score (first on ties, like `argmax`).
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

/// The `n` most likely entries as `(index, probability)`, best first.
pub fn top_n(probs: &[f32], n: usize) -> Vec<(usize, f32)> {
    // One pass keeping the best `n` in order (ties: the lower id first), not a sort of the whole
    // vocabulary: this runs for every generated token the Generate page shows.
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(n + 1);
    for (i, &p) in probs.iter().enumerate() {
        if best.len() == n && best.last().is_none_or(|&(_, q)| p.total_cmp(&q).is_le()) {
            continue;
        }
        let at = best.partition_point(|&(_, q)| q.total_cmp(&p).is_ge());
        best.insert(at, (i, p));
        best.truncate(n);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_equals_a_full_sort_ties_by_lower_id() {
        // Many ties (values repeat every 7 ids), and n below, at and above the length.
        let probs: Vec<f32> = (0..50).map(|i| ((i * 13) % 7) as f32 / 7.0).collect();
        for n in [0, 1, 5, 7, 50, 60] {
            let mut idx: Vec<usize> = (0..probs.len()).collect();
            idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
            let want: Vec<(usize, f32)> = idx.into_iter().take(n).map(|i| (i, probs[i])).collect();
            assert_eq!(top_n(&probs, n), want, "n = {n}");
        }
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative() {
        let mut s = vec![2.0, -2.0, 1.0];
        repetition_penalty(&mut s, &[0, 1, 1], 2.0);
        assert_eq!(s, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn top_k_keeps_ties_and_top_p_keeps_best() {
        let mut s = vec![1.0, 3.0, 3.0, 0.0];
        top_k(&mut s, 1);
        assert_eq!(s[1], 3.0);
        assert_eq!(s[2], 3.0);
        assert!(s[0].is_infinite() && s[3].is_infinite());
        let mut s = vec![0.0, 10.0, 0.0];
        top_p(&mut s, 0.01);
        assert_eq!(s[1], 10.0);
        assert!(s[0].is_infinite() && s[2].is_infinite());
    }
}
