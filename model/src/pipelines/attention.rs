//! Attention probabilities of one text, every layer and head (HF's `output_attentions=True`):
//! what the Inside page draws, GPT-2's causal triangle beside an encoder's full square.

use crate::error::Result;
use crate::network::{read_f32, EncoderBatch};
use crate::pipelines::encode_all;
use crate::Model;

pub use duet_protocol::outputs::AttentionMap;

/// `text` encoded as the model's tokenizer does for the pipelines (an encoder's `[CLS]` … `[SEP]`,
/// GPT-2's ids alone), run once with the probabilities recorded.
pub async fn attention(model: &Model, text: &str) -> Result<AttentionMap> {
    let tok = &model.tokenizer;
    let enc = encode_all(tok, &[text.to_string()], model.config.max_positions())?;
    let ids = enc[0].ids.clone();
    let batch = EncoderBatch::new(&enc, tok.pad_token_id, &model.device)?;
    let mut attentions = Vec::new();
    for layer in model.network.attentions(&batch)? {
        let [_, heads, t, _] = layer.dims(); // [1, H, T, T]
        let flat = read_f32(layer).await?;
        let rows: Vec<Vec<f32>> = flat.chunks(t).map(<[f32]>::to_vec).collect();
        attentions.push(rows.chunks(t).take(heads).map(<[_]>::to_vec).collect());
    }
    let tokens = ids
        .iter()
        .map(|&id| tok.id_to_token(id).unwrap_or_default())
        .collect();
    Ok(AttentionMap {
        ids,
        tokens,
        attentions,
    })
}
