//! text-classification: every label with its score, best first (`top_k=None` in HF).

use crate::config::ScoreFunction;
use crate::error::Result;
use crate::network::{read_f32, EncoderBatch};
use crate::pipelines::encode_all;
use crate::Model;

pub use duet_protocol::outputs::LabelScore;

/// Scores for each text; texts run as one padded batch.
pub async fn classify(model: &Model, texts: &[String]) -> Result<Vec<Vec<LabelScore>>> {
    let logits = classify_logits(model, texts).await?;
    Ok(logits
        .iter()
        .map(|row| scores_to_labels(model, row))
        .collect())
}

/// Raw logits per text, `[texts][labels]`.
pub async fn classify_logits(model: &Model, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let enc = encode_all(&model.tokenizer, texts, model.config.max_positions())?;
    let batch = EncoderBatch::new(&enc, model.tokenizer.pad_token_id, &model.device)?;
    let logits = model.network.sequence_logits(&batch)?;
    let [_, n] = logits.dims();
    let flat = read_f32(logits).await?;
    Ok(flat.chunks(n).map(<[f32]>::to_vec).collect())
}

fn scores_to_labels(model: &Model, logits: &[f32]) -> Vec<LabelScore> {
    let scores: Vec<f32> = match model.config.score_function() {
        ScoreFunction::Sigmoid => logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
        ScoreFunction::Softmax => crate::generation::processors::softmax(logits),
    };
    let mut out: Vec<LabelScore> = scores
        .iter()
        .enumerate()
        .map(|(i, &score)| LabelScore {
            label: model.config.label(i),
            score,
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}
