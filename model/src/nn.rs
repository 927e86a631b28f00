//! The small building blocks the architectures share, named as in Hugging Face modules so that
//! parameter paths equal checkpoint keys.

use burn::module::{Module, Param};
use burn::nn::Dropout;
use burn::tensor::activation;
use burn::tensor::{Bool, Device, Tensor};

/// `torch.nn.LayerNorm` with HF's parameter names (`weight`, `bias`) and the config's epsilon
/// (BERT's is 1e-12, burn's default 1e-5 would not match).
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(dim: usize, eps: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([dim], device)),
            bias: Param::from_tensor(Tensor::zeros([dim], device)),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (var, mean) = x.clone().var_mean_bias(D - 1);
        let x = (x - mean) / (var + self.eps).sqrt();
        x * self.weight.val().unsqueeze() + self.bias.val().unsqueeze()
    }
}

/// HF's `Conv1D` (GPT-2): a linear layer whose weight is stored `[in, out]`, so it loads as is,
/// unlike `nn.Linear`'s `[out, in]`. Kept a distinct type so no loader transposes it by mistake.
#[derive(Module, Debug)]
pub struct Conv1D {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Conv1D {
    pub fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::zeros([d_in, d_out], device)),
            bias: Param::from_tensor(Tensor::zeros([d_out], device)),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        burn::tensor::module::linear(x, self.weight.val(), Some(self.bias.val()))
    }
}

/// Activation functions by their HF config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact erf GELU (`gelu`): BERT, DistilBERT.
    Gelu,
    /// Tanh approximation (`gelu_new`, `gelu_pytorch_tanh`): GPT-2.
    GeluTanh,
    Relu,
}

impl Activation {
    pub fn from_name(name: &str) -> Self {
        match name {
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            _ => Activation::Gelu,
        }
    }

    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Gelu => activation::gelu(x),
            Activation::GeluTanh => activation::gelu_approximate(x),
            Activation::Relu => activation::relu(x),
        }
    }
}

/// Scaled dot-product attention with an additive mask, written out (not the fused op) so it runs
/// under autodiff and matches PyTorch's eager order of operations.
///
/// q: `[B, H, Tq, d]`, k/v: `[B, H, Tk, d]`, mask: `[B, 1|H, Tq|1, Tk]` true = masked out.
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    scale: f64,
    dropout: &Dropout,
) -> Tensor<4> {
    let mut scores = q.matmul(k.swap_dims(2, 3)) * scale; // [B, H, Tq, Tk]
    if let Some(mask) = mask {
        let [b, h, tq, tk] = scores.dims();
        // f32::MIN as in HF (torch.finfo.min): masked scores vanish after softmax.
        scores = scores.mask_fill(mask.expand([b, h, tq, tk]), f32::MIN);
    }
    dropout.forward(activation::softmax(scores, 3)).matmul(v)
}

/// `[B, T, H*d]` → `[B, H, T, d]`.
pub fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, t, c] = x.dims();
    x.reshape([b, t, heads, c / heads]).swap_dims(1, 2)
}

/// `[B, H, T, d]` → `[B, T, H*d]`.
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, t, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * d])
}
