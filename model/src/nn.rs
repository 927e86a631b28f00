//! The small building blocks the architectures share, named as in Hugging Face modules so that
//! parameter paths equal checkpoint keys.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, Initializer};
use burn::tensor::activation;
use burn::tensor::module::layer_norm;
use burn::tensor::{Bool, Device, Tensor};

/// HF's initialisation (`initializer_range` 0.02): what new heads and from-scratch models get.
/// Parameters are lazy, so loading a checkpoint never pays for it.
pub fn normal_init<const D: usize>(
    shape: [usize; D],
    std: f64,
    device: &Device,
) -> Param<Tensor<D>> {
    Initializer::Normal { mean: 0.0, std }.init(shape, device)
}

/// `x @ w + b` over the last dim, `w` `[in, out]`, as one 2-D matmul. burn's own `linear` gives
/// the weight of a batch-1 input leading unit dims, and on the CPU backend that reshape copies a
/// transposed view in full on every call: each `nn.Linear` weight (burn holds them as transposed
/// views) and GPT-2's tied `lm_head`, which was half of the CPU's time per token.
pub fn linear<const D: usize>(x: Tensor<D>, w: Tensor<2>, b: Option<Tensor<1>>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::cpu_kernels::linear_applies(&x, &w, b.as_ref()) {
        return crate::cpu_kernels::linear(x, &w, b.as_ref());
    }
    let mut dims = x.dims();
    let [k, n] = w.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = x.reshape([rows, k]).matmul(w); // [rows, out]
    let y = match b {
        Some(b) => y + b.unsqueeze::<2>(),
        None => y,
    };
    dims[D - 1] = n;
    y.reshape(dims)
}

/// `nn.Embedding` with HF's N(0, 0.02) init (burn's default is N(0, 1)).
pub fn embedding(n: usize, d: usize, device: &Device) -> Embedding {
    Embedding {
        weight: normal_init([n, d], 0.02, device),
    }
}

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
            weight: Initializer::Ones.init([dim], device),
            bias: Initializer::Zeros.init([dim], device),
            eps,
        }
    }

    /// One launch on WebGPU (`kernels`); elsewhere burn's own op, one SIMD pass per row on the
    /// CPU backend (the written-out `var_mean_bias`, scale and shift took eleven ops).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        #[cfg(feature = "wgpu")]
        if let Some(y) =
            crate::kernels::layer_norm(&x, &self.weight.val(), &self.bias.val(), self.eps)
        {
            return y;
        }
        layer_norm(x, self.weight.val(), Some(self.bias.val()), self.eps)
    }
}

/// A low-rank update `scale · (dropout(x) @ a) @ b` added to a frozen projection (PEFT's LoRA).
/// `a` is `[in, r]` and `b` `[r, out]`, the transposes of PEFT's `lora_A` / `lora_B` weights.
#[derive(Module, Debug)]
pub struct Lora {
    pub a: Param<Tensor<2>>,
    pub b: Param<Tensor<2>>,
    pub scale: f64,
    pub dropout: Dropout,
}

impl Lora {
    /// PEFT's default init: `a` Kaiming-uniform (a=√5, i.e. U(±1/√in)), `b` zero, so training
    /// starts from the base model's outputs exactly.
    pub fn new(
        d_in: usize,
        d_out: usize,
        rank: usize,
        alpha: f64,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        Self {
            a: Initializer::Uniform {
                min: -bound,
                max: bound,
            }
            .init([d_in, rank], device),
            b: Initializer::Zeros.init([rank, d_out], device),
            scale: alpha / rank as f64,
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let h = linear(self.dropout.forward(x), self.a.val(), None);
        linear(h, self.b.val(), None) * self.scale
    }

    /// The dense update `scale · a @ b`, `[in, out]`, for merging into the base weight.
    pub fn delta(&self) -> Tensor<2> {
        self.a.val().matmul(self.b.val()) * self.scale
    }
}

/// `torch.nn.Linear` stored as burn does, `[in, out]`: the loader transposes PyTorch's `[out, in]`
/// for every module of this type (it is recognised by its name, `Linear`).
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub lora: Option<Lora>,
}

impl Linear {
    pub fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            weight: normal_init([d_in, d_out], 0.02, device),
            bias: Some(Initializer::Zeros.init([d_out], device)),
            lora: None,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_act(x, None)
    }

    /// `act(forward(x))`, fused into the projection's launch where `kernels` can.
    pub fn forward_act<const D: usize>(&self, x: Tensor<D>, act: Option<Activation>) -> Tensor<D> {
        #[cfg(feature = "wgpu")]
        if let (None, Some(b)) = (&self.lora, &self.bias) {
            if let Some(y) =
                crate::kernels::linear(&x, &self.weight.val(), Some(&b.val()), act, None)
            {
                return y;
            }
        }
        let y = linear(
            x.clone(),
            self.weight.val(),
            self.bias.as_ref().map(Param::val),
        );
        let y = match &self.lora {
            Some(l) => y + l.forward(x),
            None => y,
        };
        match act {
            Some(a) => a.forward(y),
            None => y,
        }
    }

    /// `dropout(forward(x)) + residual` (a sublayer's output joining the residual stream), in
    /// the projection's launch where `kernels` can: inference, where dropout is the identity.
    pub fn forward_add<const D: usize>(
        &self,
        x: Tensor<D>,
        residual: Tensor<D>,
        dropout: Option<&Dropout>,
    ) -> Tensor<D> {
        #[cfg(feature = "wgpu")]
        if let (None, Some(b)) = (&self.lora, &self.bias) {
            let w = self.weight.val();
            if let Some(y) = crate::kernels::linear(&x, &w, Some(&b.val()), None, Some(&residual)) {
                return y;
            }
        }
        let y = self.forward(x);
        dropout.map_or(y.clone(), |d| d.forward(y)) + residual
    }

    pub fn dims(&self) -> [usize; 2] {
        self.weight.lazy_shape().dims::<2>()
    }
}

/// HF's `Conv1D` (GPT-2): a linear layer whose weight is stored `[in, out]`, so it loads as is,
/// unlike `nn.Linear`'s `[out, in]`. Kept a distinct type so no loader transposes it by mistake.
#[derive(Module, Debug)]
pub struct Conv1D {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
    pub lora: Option<Lora>,
}

impl Conv1D {
    pub fn new(d_in: usize, d_out: usize, std: f64, device: &Device) -> Self {
        Self {
            weight: normal_init([d_in, d_out], std, device),
            bias: Initializer::Zeros.init([d_out], device),
            lora: None,
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_act(x, None)
    }

    /// `act(forward(x))`, fused into the projection's launch where `kernels` can.
    pub fn forward_act(&self, x: Tensor<3>, act: Option<Activation>) -> Tensor<3> {
        #[cfg(feature = "wgpu")]
        if self.lora.is_none() {
            let (w, b) = (self.weight.val(), self.bias.val());
            if let Some(y) = crate::kernels::linear(&x, &w, Some(&b), act, None) {
                return y;
            }
        }
        let y = linear(x.clone(), self.weight.val(), Some(self.bias.val()));
        let y = match &self.lora {
            Some(l) => y + l.forward(x),
            None => y,
        };
        match act {
            Some(a) => a.forward(y),
            None => y,
        }
    }

    /// `residual + dropout(forward(x))`, in one launch where `kernels` can (see
    /// `Linear::forward_add`).
    pub fn forward_add(
        &self,
        x: Tensor<3>,
        residual: Tensor<3>,
        dropout: Option<&Dropout>,
    ) -> Tensor<3> {
        #[cfg(feature = "wgpu")]
        if self.lora.is_none() {
            let (w, b) = (self.weight.val(), self.bias.val());
            if let Some(y) = crate::kernels::linear(&x, &w, Some(&b), None, Some(&residual)) {
                return y;
            }
        }
        let y = self.forward(x);
        residual + dropout.map_or(y.clone(), |d| d.forward(y))
    }

    pub fn dims(&self) -> [usize; 2] {
        self.weight.lazy_shape().dims::<2>()
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
            #[cfg(feature = "flex")]
            Activation::Gelu => crate::cpu_kernels::gelu(x),
            #[cfg(not(feature = "flex"))]
            Activation::Gelu => activation::gelu(x),
            Activation::GeluTanh => activation::gelu_approximate(x),
            Activation::Relu => activation::relu(x),
        }
    }
}

/// Where a forward pass records each layer's attention probabilities, `[B, H, Tq, Tk]` in layer
/// order (HF's `output_attentions`). Passing `None` costs nothing and keeps the fused kernels.
pub type Attentions = Vec<Tensor<4>>;

/// `softmax(q · kᵀ · scale)` with masked keys at zero: `[B, H, Tq, Tk]`, written out in PyTorch's
/// eager order of operations.
///
/// q: `[B, H, Tq, d]`, k: `[B, H, Tk, d]`, mask: `[B, 1|H, Tq|1, Tk]` true = masked out.
pub fn attention_probs(
    q: Tensor<4>,
    k: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    scale: f64,
) -> Tensor<4> {
    let mut scores = q.matmul(k.swap_dims(2, 3)) * scale; // [B, H, Tq, Tk]
    if let Some(mask) = mask {
        let [b, h, tq, tk] = scores.dims();
        // f32::MIN as in HF (torch.finfo.min): masked scores vanish after softmax.
        scores = scores.mask_fill(mask.expand([b, h, tq, tk]), f32::MIN);
    }
    #[cfg(feature = "flex")]
    return crate::cpu_kernels::softmax_last(scores);
    #[cfg(not(feature = "flex"))]
    activation::softmax(scores, 3)
}

/// Scaled dot-product attention with an additive mask, written out (not the fused op) so it runs
/// under autodiff and matches PyTorch's eager order of operations. v: `[B, H, Tk, d]`.
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    scale: f64,
    dropout: &Dropout,
) -> Tensor<4> {
    dropout
        .forward(attention_probs(q, k, mask, scale))
        .matmul(v)
}

/// `attention` with the heads merged back, `[B, Tq, H*d]`: on WebGPU one launch per layer
/// (scores, mask, softmax and values, written straight into the merged layout; `kernels`).
/// With `record`, the probabilities are kept there too (the written-out path, which has them).
pub fn attention_merged(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    scale: f64,
    dropout: &Dropout,
    record: Option<&mut Attentions>,
) -> Tensor<3> {
    if let Some(record) = record {
        let probs = attention_probs(q, k, mask, scale);
        record.push(probs.clone());
        return merge_heads(dropout.forward(probs).matmul(v));
    }
    #[cfg(feature = "wgpu")]
    if let Some(y) = crate::kernels::attention(&q, &k, &v, mask.as_ref(), scale) {
        return y;
    }
    merge_heads(attention(q, k, v, mask, scale, dropout))
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
