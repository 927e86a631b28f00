//! GPT-2 (`GPT2LMHeadModel`), readable top to bottom as in nanoGPT. Field names are the
//! checkpoint's: `transformer.h.{i}.attn.c_attn.weight` is the path of that parameter here too.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::config::Gpt2Config;
use crate::nn::{
    attention_merged, embedding, split_heads, Activation, Attentions, Conv1D, LayerNorm,
};

#[derive(Module, Debug)]
pub struct Gpt2Attention {
    /// Query, key and value projections fused: `[n_embd, 3 * n_embd]`.
    pub c_attn: Conv1D,
    pub c_proj: Conv1D,
    pub attn_dropout: Dropout,
    pub resid_dropout: Dropout,
    pub n_head: usize,
    pub scale: f64,
}

#[derive(Module, Debug)]
pub struct Gpt2Mlp {
    pub c_fc: Conv1D,
    pub c_proj: Conv1D,
    pub dropout: Dropout,
    #[module(skip)]
    pub act: Activation,
}

#[derive(Module, Debug)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    pub attn: Gpt2Attention,
    pub ln_2: LayerNorm,
    pub mlp: Gpt2Mlp,
}

#[derive(Module, Debug)]
pub struct Gpt2Model {
    pub wte: Embedding,
    pub wpe: Embedding,
    pub drop: Dropout,
    pub h: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
}

/// The language model. `lm_head` is not a parameter: HF ties it to `transformer.wte`.
#[derive(Module, Debug)]
pub struct Gpt2LmHeadModel {
    pub transformer: Gpt2Model,
}

/// Keys and values of past positions, per layer, so a new token costs one step.
/// Preallocated to the context length; `len` positions are filled.
/// Not `Clone`: on WebGPU a decoding step writes its key and value into these tensors in place
/// (`kernels::decode_attention`), which a copy sharing the buffers would see.
#[derive(Debug)]
pub struct KvCache {
    /// Per layer: keys and values, each `[B, H, n_positions, d]`.
    layers: Vec<(Tensor<4>, Tensor<4>)>,
    pub len: usize,
}

impl KvCache {
    pub fn capacity(&self) -> usize {
        self.layers.first().map(|(k, _)| k.dims()[2]).unwrap_or(0)
    }

    /// Row `i` of the batch becomes what row `rows[i]` was (beam search keeps the beams it
    /// continues, some twice). The gathered tensors are new, owned by the cache alone.
    pub fn reorder(&mut self, rows: &[usize]) {
        let Some((first, _)) = self.layers.first() else {
            return;
        };
        let device = first.device();
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), &device);
        for (k, v) in &mut self.layers {
            *k = k.clone().select(0, idx.clone());
            *v = v.clone().select(0, idx.clone());
        }
    }
}

impl Gpt2LmHeadModel {
    pub fn new(c: &Gpt2Config, device: &Device) -> Self {
        let d = c.n_embd;
        let dropout = |p: f64| DropoutConfig::new(p).init();
        let head_dim = (d / c.n_head) as f64;
        // GPT-2's init scales residual projections by 1/sqrt(2 · n_layer).
        let proj_std = 0.02 / (2.0 * c.n_layer as f64).sqrt();
        let h = (0..c.n_layer)
            .map(|i| {
                let mut scale = if c.scale_attn_weights {
                    1.0 / head_dim.sqrt()
                } else {
                    1.0
                };
                if c.scale_attn_by_inverse_layer_idx {
                    scale /= (i + 1) as f64;
                }
                Gpt2Block {
                    ln_1: LayerNorm::new(d, c.layer_norm_epsilon, device),
                    attn: Gpt2Attention {
                        c_attn: Conv1D::new(d, 3 * d, 0.02, device),
                        c_proj: Conv1D::new(d, d, proj_std, device),
                        attn_dropout: dropout(c.attn_pdrop),
                        resid_dropout: dropout(c.resid_pdrop),
                        n_head: c.n_head,
                        scale,
                    },
                    ln_2: LayerNorm::new(d, c.layer_norm_epsilon, device),
                    mlp: Gpt2Mlp {
                        c_fc: Conv1D::new(d, c.inner_dim(), 0.02, device),
                        c_proj: Conv1D::new(c.inner_dim(), d, proj_std, device),
                        dropout: dropout(c.resid_pdrop),
                        act: Activation::from_name(&c.activation_function),
                    },
                }
            })
            .collect();
        Self {
            transformer: Gpt2Model {
                wte: embedding(c.vocab_size, d, device),
                wpe: embedding(c.n_positions, d, device),
                drop: dropout(c.embd_pdrop),
                h,
                ln_f: LayerNorm::new(d, c.layer_norm_epsilon, device),
            },
        }
    }

    pub fn n_positions(&self) -> usize {
        self.transformer.wpe.weight.lazy_shape().dims::<2>()[0]
    }

    pub fn vocab_size(&self) -> usize {
        self.transformer.wte.weight.lazy_shape().dims::<2>()[0]
    }

    /// An empty cache for `batch` sequences.
    pub fn new_cache(&self, batch: usize) -> KvCache {
        let device = self.transformer.wte.weight.lazy_device();
        let layers = self
            .transformer
            .h
            .iter()
            .map(|b| {
                let heads = b.attn.n_head;
                let d = b.attn.c_proj.dims()[0] / heads;
                let shape = [batch, heads, self.n_positions(), d];
                (Tensor::zeros(shape, &device), Tensor::zeros(shape, &device))
            })
            .collect();
        KvCache { layers, len: 0 }
    }

    /// Logits for every position of `input_ids` `[B, T]` (no cache): `[B, T, vocab]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let hidden = self.transformer.forward(input_ids, None);
        self.lm_head(hidden)
    }

    /// Feeds `input_ids` `[B, T]` after the cached positions and returns the logits of the last
    /// position only, `[B, vocab]`: what one generation step needs.
    pub fn forward_cached(&self, input_ids: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<2> {
        let hidden = self.transformer.forward(input_ids, Some(cache)); // [B, T, C]
        let [b, t, c] = hidden.dims();
        let last = hidden.slice([0..b, t - 1..t, 0..c]);
        self.lm_head(last).reshape([b as i32, -1])
    }

    /// Every layer's attention probabilities for `input_ids` `[B, T]`, `[B, H, T, T]` each (HF's
    /// `output_attentions`); the language-model head is not run.
    pub fn attentions(&self, input_ids: Tensor<2, Int>) -> Attentions {
        let mut record = Attentions::new();
        self.transformer
            .forward_recording(input_ids, None, Some(&mut record));
        record
    }

    /// Tied output projection: `hidden @ wte^T`.
    pub fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        let wte = self.transformer.wte.weight.val(); // [V, C]
        #[cfg(feature = "wgpu")]
        {
            let wte_t = wte.clone().transpose();
            if let Some(logits) = crate::kernels::linear(&hidden, &wte_t, None, None, None) {
                return logits;
            }
        }
        crate::nn::linear(hidden, wte.transpose(), None)
    }
}

impl Gpt2Model {
    /// Hidden states after `ln_f`, `[B, T, C]`. With a cache, positions continue after it.
    pub fn forward(&self, input_ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.forward_recording(input_ids, cache, None)
    }

    /// `forward`, keeping each layer's attention probabilities in `record` when given.
    pub fn forward_recording(
        &self,
        input_ids: Tensor<2, Int>,
        mut cache: Option<&mut KvCache>,
        mut record: Option<&mut Attentions>,
    ) -> Tensor<3> {
        let device = input_ids.device();
        let [_, t] = input_ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len);
        let positions =
            Tensor::<1, Int>::arange(past as i64..(past + t) as i64, &device).reshape([1, t]);
        let mut x = self.wte.forward(input_ids) + self.wpe.forward(positions);
        x = self.drop.forward(x);
        // Query i (absolute position past+i) may not see key j > past+i.
        let mask = (t > 1).then(|| causal_mask(past, t, &device));
        for (i, block) in self.h.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (i, c));
            x = block.forward(x, mask.clone(), layer_cache, record.as_deref_mut());
        }
        if let Some(c) = cache {
            c.len += t;
        }
        self.ln_f.forward(x)
    }
}

/// `[1, 1, t, past + t]`, true where the key lies in the query's future.
fn causal_mask(past: usize, t: usize, device: &Device) -> Tensor<4, Bool> {
    let total = past + t;
    let data: Vec<bool> = (0..t)
        .flat_map(|i| (0..total).map(move |j| j > past + i))
        .collect();
    Tensor::<4, Bool>::from_data(TensorData::new(data, [1, 1, t, total]), device)
}

impl Gpt2Block {
    fn forward(
        &self,
        x: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        cache: Option<(usize, &mut KvCache)>,
        record: Option<&mut Attentions>,
    ) -> Tensor<3> {
        let x = self
            .attn
            .forward(self.ln_1.forward(x.clone()), x, mask, cache, record);
        self.mlp.forward(self.ln_2.forward(x.clone()), x)
    }
}

impl Gpt2Attention {
    /// `residual + attn(x)`: the residual joins in the output projection's launch on WebGPU.
    fn forward(
        &self,
        x: Tensor<3>,
        residual: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        cache: Option<(usize, &mut KvCache)>,
        record: Option<&mut Attentions>,
    ) -> Tensor<3> {
        let [b, t, c] = x.dims();
        let qkv = self.c_attn.forward(x); // [B, T, 3C]
        #[cfg(feature = "wgpu")]
        if let Some((layer, cache)) = cache.as_ref().filter(|_| t == 1 && record.is_none()) {
            // Decoding one token on WebGPU: cache write and attention in three launches.
            let (ck, cv) = &cache.layers[*layer];
            if let Some(y) = crate::kernels::decode_attention(&qkv, ck, cv, cache.len, self.scale) {
                return self
                    .c_proj
                    .forward_add(y, residual, Some(&self.resid_dropout));
            }
        }
        let q = split_heads(qkv.clone().slice([0..b, 0..t, 0..c]), self.n_head);
        let mut k = split_heads(qkv.clone().slice([0..b, 0..t, c..2 * c]), self.n_head);
        let mut v = split_heads(qkv.slice([0..b, 0..t, 2 * c..3 * c]), self.n_head);
        if let Some((layer, cache)) = cache {
            let past = cache.len;
            let d = c / self.n_head;
            let (ck, cv) = &mut cache.layers[layer];
            let (h, end) = (self.n_head, past + t);
            // The cache's tensors are moved out, not cloned, for the write: a tensor nothing else
            // holds is written in place, while a clone made burn copy the whole cache each step
            // (half the CPU's time per token). The new key briefly stands in for the cache.
            let owned_k = std::mem::replace(ck, k.clone());
            let owned_v = std::mem::replace(cv, v.clone());
            *ck = owned_k.slice_assign([0..b, 0..h, past..end, 0..d], k);
            *cv = owned_v.slice_assign([0..b, 0..h, past..end, 0..d], v);
            k = ck.clone().slice([0..b, 0..h, 0..end, 0..d]); // [B, H, past+T, d]
            v = cv.clone().slice([0..b, 0..h, 0..end, 0..d]);
        }
        let y = attention_merged(q, k, v, mask, self.scale, &self.attn_dropout, record); // [B, T, C]
        self.c_proj
            .forward_add(y, residual, Some(&self.resid_dropout))
    }
}

impl Gpt2Mlp {
    /// `residual + mlp(x)`.
    fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let x = self.c_fc.forward_act(x, Some(self.act));
        self.c_proj.forward_add(x, residual, Some(&self.dropout))
    }
}
