//! Beam search with Hugging Face `generate`'s semantics (transformers 4.57, `_beam_search`), for
//! one prompt: `num_beams` hypotheses advance together; each step every beam's log-probabilities
//! (after the n-gram ban) are added to its running score, the best `2 · num_beams` continuations
//! are ranked, those ending (end token, or the length limit) among the top `num_beams` become
//! finished hypotheses scored `sum of log-probs / new_tokens^length_penalty`, and the best
//! unfinished ones run on. Scores are f32 throughout, as in PyTorch, so the ids are HF's.

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{DuetError, Result};
use crate::models::gpt2::Gpt2LmHeadModel;
use crate::network::read_f32;

/// HF's stand-in for "minus infinity" in the beam scores: masks, not probabilities.
const NEG: f32 = -1.0e9;

/// `early_stopping`: when a search with `num_beams` finished hypotheses stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStopping {
    /// As soon as `num_beams` hypotheses are finished (`True`).
    Done,
    /// When the best running beam, scored at its current length, cannot beat the worst finished
    /// one (`False`, HF's default).
    Heuristic,
    /// Only when no running beam could still win, scored at the longest length it may reach
    /// (`"never"`, for a positive length penalty).
    Never,
}

impl std::str::FromStr for EarlyStopping {
    type Err = DuetError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "true" | "True" => Ok(Self::Done),
            "false" | "False" => Ok(Self::Heuristic),
            "never" => Ok(Self::Never),
            _ => Err(DuetError::InvalidOption(format!(
                "early_stopping must be true, false or never, not `{s}`"
            ))),
        }
    }
}

/// Beam search settings, HF `GenerationConfig` names and defaults.
#[derive(Debug, Clone)]
pub struct BeamConfig {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    /// 0 disables.
    pub no_repeat_ngram_size: usize,
    pub num_return_sequences: usize,
    pub eos_token_id: Option<u32>,
}

impl BeamConfig {
    pub fn new(num_beams: usize, max_new_tokens: usize) -> Self {
        Self {
            num_beams,
            max_new_tokens,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            num_return_sequences: 1,
            eos_token_id: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(DuetError::InvalidOption(m.into()));
        if self.num_beams < 1 {
            return bad("num_beams must be at least 1");
        }
        if self.num_return_sequences < 1 || self.num_return_sequences > self.num_beams {
            return bad("num_return_sequences must be between 1 and num_beams");
        }
        if self.max_new_tokens < 1 {
            return bad("max_new_tokens must be at least 1");
        }
        if !self.length_penalty.is_finite() {
            return bad("length_penalty must be a number");
        }
        Ok(())
    }
}

/// One returned hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Generated ids, up to and including the end token when it ended with one.
    pub new_token_ids: Vec<u32>,
    /// HF's `sequences_scores`: the sum of its log-probabilities over `new_token_ids.len()` to
    /// the power `length_penalty`.
    pub score: f32,
}

/// `log_softmax` in f32, as PyTorch computes it: `x - max - log(sum(exp(x - max)))`.
fn log_softmax(x: &[f32]) -> Vec<f32> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = x.iter().map(|&v| (v - max).exp()).sum();
    let log_sum = sum.ln();
    x.iter().map(|&v| v - max - log_sum).collect()
}

/// `NoRepeatNGramLogitsProcessor`: bans every token that would complete an `n`-gram already in
/// `seq` (prompt included).
fn ban_repeated_ngrams(log_probs: &mut [f32], seq: &[u32], n: usize) {
    if n == 0 || seq.len() + 1 < n {
        return;
    }
    let prefix = &seq[seq.len() + 1 - n..];
    for gram in seq.windows(n) {
        if &gram[..n - 1] == prefix {
            if let Some(p) = log_probs.get_mut(gram[n - 1] as usize) {
                *p = f32::NEG_INFINITY;
            }
        }
    }
}

/// Indices of the `k` largest values, best first; ties go to the lower index.
fn top_indices(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    let k = k.min(idx.len());
    idx.select_nth_unstable_by(k.saturating_sub(1), |&a, &b| {
        values[b].total_cmp(&values[a]).then(a.cmp(&b))
    });
    idx.truncate(k);
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx
}

/// `length^penalty` in f32 from f64, as the Python scalar is.
fn length_norm(length: usize, penalty: f32) -> f32 {
    (length as f64).powf(penalty as f64) as f32
}

struct Slot {
    ids: Vec<u32>,
    score: f32,
    finished: bool,
}

/// Beam search from `prompt_ids`; the `num_return_sequences` best hypotheses, best first.
pub async fn beam_search(
    model: &Gpt2LmHeadModel,
    prompt_ids: &[u32],
    cfg: &BeamConfig,
) -> Result<Vec<Hypothesis>> {
    cfg.validate()?;
    if prompt_ids.is_empty() {
        return Err(DuetError::EmptyInput("the prompt has no tokens".into()));
    }
    let (n, p) = (cfg.num_beams, prompt_ids.len());
    let limit = p + cfg.max_new_tokens;
    if limit > model.n_positions() {
        return Err(DuetError::TooLong {
            tokens: limit,
            max: model.n_positions(),
        });
    }
    let device = model.transformer.wte.weight.lazy_device();
    let ids_tensor = |rows: &[Vec<u32>]| {
        let t = rows[0].len();
        let v: Vec<i64> = rows.iter().flatten().map(|&i| i as i64).collect();
        Tensor::<2, Int>::from_data(TensorData::new(v, [rows.len(), t]), &device)
    };
    let keep = 2.max(1 + usize::from(cfg.eos_token_id.is_some())) * n;
    // Each running beam's generated ids and cumulative log-probability; beam 0 alone at first,
    // so the first step's candidates all continue one prompt.
    let mut running: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut running_score: Vec<f32> = (0..n).map(|b| if b == 0 { 0.0 } else { NEG }).collect();
    let mut finished: Vec<Slot> = (0..n)
        .map(|_| Slot {
            ids: Vec::new(),
            score: NEG,
            finished: false,
        })
        .collect();
    let mut heuristic_ok = true;
    let mut cache = model.new_cache(n);
    let mut input = ids_tensor(&vec![prompt_ids.to_vec(); n]);
    let mut cur_len = p;
    loop {
        crate::device::yield_now().await;
        let logits = read_f32(model.forward_cached(input, &mut cache)).await?; // [n, V]
        let vocab = logits.len() / n;
        let mut scores = Vec::with_capacity(n * vocab);
        for (b, row) in logits.chunks(vocab).enumerate() {
            let mut lp = log_softmax(row);
            let seq: Vec<u32> = prompt_ids.iter().chain(&running[b]).copied().collect();
            ban_repeated_ngrams(&mut lp, &seq, cfg.no_repeat_ngram_size);
            scores.extend(lp.into_iter().map(|x| x + running_score[b]));
        }
        // The best `keep` continuations over every beam (beam-major flat index).
        let cand = top_indices(&scores, keep);
        let cand_beam: Vec<usize> = cand.iter().map(|&i| i / vocab).collect();
        let cand_ids: Vec<Vec<u32>> = cand
            .iter()
            .map(|&i| {
                let mut ids = running[i / vocab].clone();
                ids.push((i % vocab) as u32);
                ids
            })
            .collect();
        let cand_score: Vec<f32> = cand.iter().map(|&i| scores[i]).collect();
        let hit: Vec<bool> = cand
            .iter()
            .map(|&i| cur_len + 1 >= limit || cfg.eos_token_id == Some((i % vocab) as u32))
            .collect();
        // Unfinished candidates run on.
        let masked: Vec<f32> = (0..cand.len())
            .map(|j| cand_score[j] + if hit[j] { NEG } else { 0.0 })
            .collect();
        let sel = top_indices(&masked, n);
        running = sel.iter().map(|&j| cand_ids[j].clone()).collect();
        running_score = sel.iter().map(|&j| masked[j]).collect();
        let reorder: Vec<usize> = sel.iter().map(|&j| cand_beam[j]).collect();
        // Ending candidates among the top `n` join the finished ones, length-normalised.
        let norm = length_norm(cur_len + 1 - p, cfg.length_penalty);
        let mut merged: Vec<Slot> = std::mem::take(&mut finished);
        for j in 0..cand.len() {
            let just = hit[j] && j < n;
            let mut score = cand_score[j] / norm;
            if !just {
                score += NEG;
            }
            merged.push(Slot {
                ids: cand_ids[j].clone(),
                score,
                finished: just,
            });
        }
        let merged_scores: Vec<f32> = merged.iter().map(|s| s.score).collect();
        let best = top_indices(&merged_scores, n);
        let mut slots: Vec<Option<Slot>> = merged.into_iter().map(Some).collect();
        finished = best.iter().filter_map(|&i| slots[i].take()).collect();
        cur_len += 1;
        // Can a running beam still beat the worst finished hypothesis?
        let all_finished = finished.iter().all(|s| s.finished);
        let hyp_len = match cfg.early_stopping {
            EarlyStopping::Never if cfg.length_penalty > 0.0 => limit - p,
            _ => cur_len - p,
        };
        let best_running = running_score[0] / length_norm(hyp_len, cfg.length_penalty);
        let worst = if all_finished {
            finished
                .iter()
                .map(|s| s.score)
                .fold(f32::INFINITY, f32::min)
        } else {
            NEG
        };
        heuristic_ok = heuristic_ok && best_running > worst;
        let done =
            (all_finished && cfg.early_stopping == EarlyStopping::Done) || hit.iter().all(|&h| h);
        if !heuristic_ok || done {
            break;
        }
        if reorder.iter().enumerate().any(|(i, &b)| i != b) {
            cache.reorder(&reorder);
        }
        let last: Vec<Vec<u32>> = running.iter().map(|ids| vec![ids[ids.len() - 1]]).collect();
        input = ids_tensor(&last);
    }
    Ok(finished
        .into_iter()
        .take(cfg.num_return_sequences)
        .map(|s| Hypothesis {
            new_token_ids: s.ids,
            score: s.score,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngram_ban_covers_the_prompt_and_every_earlier_occurrence() {
        let mut lp = vec![0.0f32; 6];
        // Bigrams: (1,2), (2,3), (3,1), (1,4); the last token is 1, so 2 and 4 are banned.
        ban_repeated_ngrams(&mut lp, &[1, 2, 3, 1, 4, 1], 2);
        let banned: Vec<usize> = (0..6).filter(|&i| lp[i].is_infinite()).collect();
        assert_eq!(banned, [2, 4]);
        let mut lp = vec![0.0f32; 6];
        ban_repeated_ngrams(&mut lp, &[5, 3], 1); // size 1: every token seen
        assert!(lp[5].is_infinite() && lp[3].is_infinite() && lp[0] == 0.0);
        let mut lp = vec![0.0f32; 6];
        ban_repeated_ngrams(&mut lp, &[1], 3); // shorter than the n-gram: nothing
        assert!(lp.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn top_indices_is_sorted_and_breaks_ties_by_index() {
        assert_eq!(
            top_indices(&[1.0, 3.0, 3.0, 2.0, 3.0, 0.0], 4),
            [1, 2, 4, 3]
        );
        assert_eq!(top_indices(&[1.0, 2.0], 5), [1, 0]);
    }
}
