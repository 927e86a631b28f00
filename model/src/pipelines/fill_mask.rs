//! fill-mask: the top-k tokens for the `[MASK]` with scores and the completed sentence.

use crate::error::{DuetError, Result};
use crate::generation::processors::{softmax, top_n};
use crate::network::{read_f32, EncoderBatch};
use crate::pipelines::encode_all;
use crate::Model;

pub use duet_protocol::outputs::MaskFill;

/// For each text (exactly one mask token each), the `top_k` fills, best first.
pub async fn fill_mask(
    model: &Model,
    texts: &[String],
    top_k: usize,
) -> Result<Vec<Vec<MaskFill>>> {
    let tok = &model.tokenizer;
    let (mask_token, mask_id) = tok.mask()?;
    let enc = encode_all(tok, texts, model.config.max_positions())?;
    let mut positions = Vec::new();
    for e in &enc {
        let found: Vec<usize> = (0..e.len()).filter(|&i| e.ids[i] == mask_id).collect();
        match found.as_slice() {
            [p] => positions.push(*p),
            [] => {
                return Err(DuetError::InvalidOption(format!(
                    "no {mask_token} in the text"
                )))
            }
            _ => {
                return Err(DuetError::InvalidOption(format!(
                    "more than one {mask_token} in the text"
                )))
            }
        }
    }
    let batch = EncoderBatch::new(&enc, tok.pad_token_id, &model.device)?;
    let logits = model.network.token_logits(&batch)?; // [B, T, V]
    let [_, t, v] = logits.dims();
    let flat = read_f32(logits).await?;
    let mut out = Vec::new();
    for (row, (e, &pos)) in enc.iter().zip(&positions).enumerate() {
        let start = (row * t + pos) * v;
        let probs = softmax(&flat[start..start + v]);
        let mut fills = Vec::new();
        for (id, score) in top_n(&probs, top_k) {
            let mut ids = e.ids.clone();
            ids[pos] = id as u32;
            ids.retain(|&i| i != tok.pad_token_id);
            fills.push(MaskFill {
                score,
                token: id as u32,
                token_str: tok.decode(&[id as u32], false)?,
                sequence: tok.decode(&ids, true)?,
            });
        }
        out.push(fills);
    }
    Ok(out)
}
