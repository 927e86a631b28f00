//! feature-extraction as sentence-transformers does it: mean of the last hidden states over real
//! tokens, then L2 normalisation.

use burn::tensor::Tensor;

use crate::error::Result;
use crate::network::{read_f32, EncoderBatch};
use crate::pipelines::encode_all;
use crate::Model;

pub async fn embed(model: &Model, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let enc = encode_all(&model.tokenizer, texts, model.config.max_positions())?;
    let batch = EncoderBatch::new(&enc, model.tokenizer.pad_token_id, &model.device)?;
    let hidden = model.network.hidden_states(&batch)?; // [B, T, C]
    let [b, t, _] = hidden.dims();
    let mask: Tensor<3> = batch.attention_mask.clone().float().reshape([b, t, 1]);
    let summed = (hidden * mask.clone()).sum_dim(1); // [B, 1, C]
    let counts = mask.sum_dim(1).clamp_min(1e-9); // [B, 1, 1]
    let mean = summed / counts;
    let norm = mean
        .clone()
        .powf_scalar(2.0)
        .sum_dim(2)
        .sqrt()
        .clamp_min(1e-12);
    let pooled = mean / norm; // [B, 1, C]
    let c = pooled.dims()[2];
    let flat = read_f32(pooled).await?;
    Ok(flat.chunks(c).map(<[f32]>::to_vec).collect())
}
