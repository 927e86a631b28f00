//! The loaded network, whichever architecture it is, and the padded batches encoders take.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::Head;
use crate::error::{DuetError, Result};
use crate::models::bert::Bert;
use crate::models::distilbert::DistilBert;
use crate::models::gpt2::Gpt2LmHeadModel;
use crate::nn::Attentions;
use crate::tokenizer::Encoded;

#[derive(Debug, Clone)]
pub enum Network {
    Gpt2(Gpt2LmHeadModel),
    Bert(Bert),
    DistilBert(DistilBert),
}

/// Encoded texts padded on the right into one batch.
#[derive(Debug, Clone)]
pub struct EncoderBatch {
    pub input_ids: Tensor<2, Int>,
    pub token_type_ids: Tensor<2, Int>,
    pub attention_mask: Tensor<2, Int>,
    /// Unpadded length of each row.
    pub lengths: Vec<usize>,
}

impl EncoderBatch {
    pub fn new(encodings: &[Encoded], pad_id: u32, device: &Device) -> Result<Self> {
        if encodings.is_empty() {
            return Err(DuetError::EmptyInput("no texts".into()));
        }
        let lengths: Vec<usize> = encodings.iter().map(Encoded::len).collect();
        let t = lengths.iter().copied().max().unwrap_or(0).max(1);
        let b = encodings.len();
        let mut ids = vec![pad_id as i64; b * t];
        let mut types = vec![0i64; b * t];
        let mut mask = vec![0i64; b * t];
        for (row, e) in encodings.iter().enumerate() {
            for (i, (&id, &ty)) in e.ids.iter().zip(&e.type_ids).enumerate() {
                ids[row * t + i] = id as i64;
                types[row * t + i] = ty as i64;
                mask[row * t + i] = 1;
            }
        }
        let make = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [b, t]), device);
        Ok(Self {
            input_ids: make(ids),
            token_type_ids: make(types),
            attention_mask: make(mask),
            lengths,
        })
    }
}

impl Network {
    fn encoder_only(&self) -> Result<()> {
        match self {
            Network::Gpt2(_) => Err(DuetError::WrongHead(
                "encoder (this is a GPT-2 language model)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Last hidden states of an encoder, `[B, T, C]`.
    pub fn hidden_states(&self, batch: &EncoderBatch) -> Result<Tensor<3>> {
        self.encoder_hidden(batch, None)
    }

    /// Every layer's attention probabilities, `[B, H, T, T]` each (HF's `output_attentions`):
    /// an encoder runs `batch`; GPT-2 runs its `input_ids` (its own causal mask, no padding).
    pub fn attentions(&self, batch: &EncoderBatch) -> Result<Attentions> {
        if let Network::Gpt2(m) = self {
            return Ok(m.attentions(batch.input_ids.clone()));
        }
        let mut record = Attentions::new();
        self.encoder_hidden(batch, Some(&mut record))?;
        Ok(record)
    }

    fn encoder_hidden(
        &self,
        batch: &EncoderBatch,
        record: Option<&mut Attentions>,
    ) -> Result<Tensor<3>> {
        self.encoder_only()?;
        Ok(match self {
            Network::Bert(m) => m.hidden_states(
                batch.input_ids.clone(),
                batch.token_type_ids.clone(),
                batch.attention_mask.clone(),
                record,
            ),
            Network::DistilBert(m) => m.hidden_states(
                batch.input_ids.clone(),
                batch.attention_mask.clone(),
                record,
            ),
            Network::Gpt2(_) => unreachable!("checked by encoder_only"),
        })
    }

    /// `[B, labels]` for a sequence-classification head.
    pub fn sequence_logits(&self, batch: &EncoderBatch) -> Result<Tensor<2>> {
        let hidden = self.hidden_states(batch)?;
        let logits = match self {
            Network::Bert(m) => m.sequence_logits(hidden),
            Network::DistilBert(m) => m.sequence_logits(hidden),
            Network::Gpt2(_) => None,
        };
        logits.ok_or_else(|| DuetError::WrongHead(Head::SequenceClassification.name().into()))
    }

    /// `[B, T, labels]` (token classification) or `[B, T, vocab]` (masked LM).
    pub fn token_logits(&self, batch: &EncoderBatch) -> Result<Tensor<3>> {
        self.token_head(self.hidden_states(batch)?)
    }

    /// The token-level head over hidden states `[B, T, C]` (any rows of them).
    pub fn token_head(&self, hidden: Tensor<3>) -> Result<Tensor<3>> {
        let logits = match self {
            Network::Bert(m) => m.token_logits(hidden),
            Network::DistilBert(m) => m.token_logits(hidden),
            Network::Gpt2(_) => None,
        };
        logits.ok_or_else(|| DuetError::WrongHead("token-level".into()))
    }

    pub fn gpt2(&self) -> Result<&Gpt2LmHeadModel> {
        match self {
            Network::Gpt2(m) => Ok(m),
            _ => Err(DuetError::WrongHead(Head::CausalLm.name().into())),
        }
    }
}

/// Reads a tensor back to the host as f32. Async because WebGPU can only read asynchronously; on
/// the CPU backend the future is ready at once.
pub async fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| DuetError::Backend(format!("{e:?}")))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| DuetError::Backend(format!("{e:?}")))
}

/// Reads many flat tensors back to the host as f32, in as few transfers as a bound on the extra
/// device memory allows: on WebGPU each read waits a round trip for the device, so reading a
/// model's parameters one by one (hundreds of them, and the optimizer's moments) is slow.
pub async fn read_f32_all(tensors: Vec<Tensor<1>>) -> Result<Vec<Vec<f32>>> {
    // 16M values (64 MB of f32) copied at a time at most.
    read_f32_in_groups(tensors, 1 << 24).await
}

async fn read_f32_in_groups(tensors: Vec<Tensor<1>>, max_values: usize) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(tensors.len());
    let mut group: Vec<Tensor<1>> = Vec::new();
    let mut values = 0;
    for t in tensors {
        let n = t.dims()[0];
        let fits = group
            .first()
            .is_none_or(|g| g.dtype() == t.dtype() && values + n <= max_values);
        if !fits {
            read_group(std::mem::take(&mut group), &mut out).await?;
            values = 0;
        }
        values += n;
        group.push(t);
    }
    read_group(group, &mut out).await?;
    Ok(out)
}

/// Reads `group` with one transfer (concatenated on the device) and splits it again.
async fn read_group(group: Vec<Tensor<1>>, out: &mut Vec<Vec<f32>>) -> Result<()> {
    let lens: Vec<usize> = group.iter().map(|t| t.dims()[0]).collect();
    let all = match group.len() {
        0 => return Ok(()),
        1 => group.into_iter().next().expect("one"),
        _ => Tensor::cat(group, 0),
    };
    let data = read_f32(all).await?;
    let mut rest = data.as_slice();
    for n in lens {
        let (head, tail) = rest.split_at(n);
        out.push(head.to_vec());
        rest = tail;
    }
    Ok(())
}

/// Module operations over whichever architecture is loaded (burn's `Module` is per type).
macro_rules! each {
    ($net:expr, $m:ident => $body:expr) => {
        match $net {
            Network::Gpt2($m) => Network::Gpt2($body),
            Network::Bert($m) => Network::Bert($body),
            Network::DistilBert($m) => Network::DistilBert($body),
        }
    };
}

impl Network {
    pub fn map<M: burn::module::ModuleMapper>(self, mapper: &mut M) -> Self {
        use burn::module::Module;
        each!(self, m => m.map(mapper))
    }

    pub fn visit<V: burn::module::ModuleVisitor>(&self, visitor: &mut V) {
        use burn::module::Module;
        match self {
            Network::Gpt2(m) => m.visit(visitor),
            Network::Bert(m) => m.visit(visitor),
            Network::DistilBert(m) => m.visit(visitor),
        }
    }

    /// The same parameters on another device (e.g. its autodiff view for training).
    pub fn fork(self, device: &Device) -> Self {
        use burn::module::Module;
        each!(self, m => m.fork(device))
    }

    /// Evaluation mode: dropout off, no gradient tracking.
    pub fn valid(&self) -> Self {
        use burn::module::Module;
        each!(self, m => m.valid())
    }

    /// Training mode: dropout on.
    pub fn train(self) -> Self {
        use burn::module::Module;
        each!(self, m => m.train())
    }

    pub fn num_params(&self) -> usize {
        use burn::module::Module;
        match self {
            Network::Gpt2(m) => m.num_params(),
            Network::Bert(m) => m.num_params(),
            Network::DistilBert(m) => m.num_params(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{block_on, cpu};

    #[test]
    fn many_tensors_read_in_groups_come_back_whole_and_in_order() {
        let device = cpu();
        let lens = [3, 0, 5, 1, 7, 2];
        let values: Vec<Vec<f32>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 100 + j) as f32).collect())
            .collect();
        let tensors = || {
            values
                .iter()
                .map(|v| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device))
                .collect::<Vec<_>>()
        };
        // Groups of at most 6 values: some tensors share a read, the 7-value one is read alone.
        for max in [1 << 24, 6, 1] {
            let got = block_on(read_f32_in_groups(tensors(), max)).unwrap();
            assert_eq!(got, values, "groups of at most {max}");
        }
    }
}
