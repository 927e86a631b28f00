//! Reading tensors out of `model.safetensors` bytes, upcasting f16/bf16 to f32 (WebGPU and the
//! CPU backend both compute in f32; upcasting keeps parity with PyTorch on the same weights).

use safetensors::{Dtype, SafeTensors};

use crate::error::{DuetError, Result};

/// A checkpoint file opened in place: header parsed, data still the caller's bytes.
pub struct Weights<'a> {
    st: SafeTensors<'a>,
}

/// One tensor from the file, as f32 in row-major order.
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl<'a> Weights<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| DuetError::Safetensors(e.to_string()))?;
        Ok(Self { st })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.st.tensor(key).is_ok()
    }

    pub fn keys(&self) -> Vec<String> {
        self.st.names().into_iter().map(str::to_string).collect()
    }

    pub fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.st.tensor(key).ok().map(|t| t.shape().to_vec())
    }

    /// The tensor `key` converted to f32.
    pub fn get(&self, key: &str) -> Result<HostTensor> {
        let view = self
            .st
            .tensor(key)
            .map_err(|e| DuetError::Safetensors(format!("{key}: {e}")))?;
        let bytes = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(DuetError::DType {
                    key: key.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        Ok(HostTensor {
            shape: view.shape().to_vec(),
            data,
        })
    }
}
