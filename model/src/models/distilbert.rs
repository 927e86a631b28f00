//! DistilBERT (`DistilBertModel` and its heads): BERT without token types or pooler, six layers
//! by default, and its own parameter names (`q_lin`, `sa_layer_norm`, `ffn.lin1`…).
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, Initializer};
use burn::tensor::activation::relu;
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::config::{DistilBertConfig, Head};
use crate::models::bert::padding_mask;
use crate::nn::{
    attention_merged, embedding, split_heads, Activation, Attentions, LayerNorm, Linear,
};

/// DistilBERT's LayerNorm epsilon is fixed in the HF code, not in the config.
const EPS: f64 = 1e-12;

#[derive(Module, Debug)]
pub struct DistilEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct MultiHeadSelfAttention {
    pub q_lin: Linear,
    pub k_lin: Linear,
    pub v_lin: Linear,
    pub out_lin: Linear,
    pub dropout: Dropout,
    pub heads: usize,
}

#[derive(Module, Debug)]
pub struct Ffn {
    pub lin1: Linear,
    pub lin2: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub act: Activation,
}

#[derive(Module, Debug)]
pub struct TransformerBlock {
    pub attention: MultiHeadSelfAttention,
    pub sa_layer_norm: LayerNorm,
    pub ffn: Ffn,
    pub output_layer_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct Transformer {
    pub layer: Vec<TransformerBlock>,
}

#[derive(Module, Debug)]
pub struct DistilBertModel {
    pub embeddings: DistilEmbeddings,
    pub transformer: Transformer,
}

/// The MLM output projection: weight tied to `word_embeddings`, bias its own.
#[derive(Module, Debug)]
pub struct TiedProjection {
    pub bias: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct DistilBert {
    pub distilbert: DistilBertModel,
    pub pre_classifier: Option<Linear>,
    pub classifier: Option<Linear>,
    pub dropout: Dropout,
    pub vocab_transform: Option<Linear>,
    pub vocab_layer_norm: Option<LayerNorm>,
    pub vocab_projector: Option<TiedProjection>,
    #[module(skip)]
    pub act: Activation,
}

impl DistilBert {
    pub fn new(c: &DistilBertConfig, head: Head, num_labels: usize, device: &Device) -> Self {
        let d = c.dim;
        let lin = |i, o| Linear::new(i, o, device);
        let act = Activation::from_name(&c.activation);
        let layer = (0..c.n_layers)
            .map(|_| TransformerBlock {
                attention: MultiHeadSelfAttention {
                    q_lin: lin(d, d),
                    k_lin: lin(d, d),
                    v_lin: lin(d, d),
                    out_lin: lin(d, d),
                    dropout: DropoutConfig::new(c.attention_dropout).init(),
                    heads: c.n_heads,
                },
                sa_layer_norm: LayerNorm::new(d, EPS, device),
                ffn: Ffn {
                    lin1: lin(d, c.hidden_dim),
                    lin2: lin(c.hidden_dim, d),
                    dropout: DropoutConfig::new(c.dropout).init(),
                    act,
                },
                output_layer_norm: LayerNorm::new(d, EPS, device),
            })
            .collect();
        let seq = head == Head::SequenceClassification;
        let mlm = head == Head::MaskedLm;
        Self {
            distilbert: DistilBertModel {
                embeddings: DistilEmbeddings {
                    word_embeddings: embedding(c.vocab_size, d, device),
                    position_embeddings: embedding(c.max_position_embeddings, d, device),
                    LayerNorm: LayerNorm::new(d, EPS, device),
                    dropout: DropoutConfig::new(c.dropout).init(),
                },
                transformer: Transformer { layer },
            },
            pre_classifier: seq.then(|| lin(d, d)),
            classifier: (seq || head == Head::TokenClassification).then(|| lin(d, num_labels)),
            dropout: DropoutConfig::new(if seq {
                c.seq_classif_dropout
            } else {
                c.dropout
            })
            .init(),
            vocab_transform: mlm.then(|| lin(d, d)),
            vocab_layer_norm: mlm.then(|| LayerNorm::new(d, EPS, device)),
            vocab_projector: mlm.then(|| TiedProjection {
                bias: Initializer::Zeros.init([c.vocab_size], device),
            }),
            act,
        }
    }

    /// Last hidden states `[B, T, C]`; DistilBERT has no token types. With `record`, each layer's
    /// attention probabilities are kept there.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        mut record: Option<&mut Attentions>,
    ) -> Tensor<3> {
        let e = &self.distilbert.embeddings;
        let device = input_ids.device();
        let [_, t] = input_ids.dims();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]);
        let x = e.word_embeddings.forward(input_ids) + e.position_embeddings.forward(positions);
        let mut x = e.dropout.forward(e.LayerNorm.forward(x));
        let mask = padding_mask(attention_mask);
        for layer in &self.distilbert.transformer.layer {
            x = layer.forward(x, mask.clone(), record.as_deref_mut());
        }
        x
    }

    /// `[B, labels]` from the first token through `pre_classifier` and ReLU.
    pub fn sequence_logits(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        let pre = self.pre_classifier.as_ref()?;
        let [b, _, c] = hidden.dims();
        let first = hidden.slice([0..b, 0..1, 0..c]).reshape([b, c]);
        let pooled = self.dropout.forward(relu(pre.forward(first)));
        Some(self.classifier.as_ref()?.forward(pooled))
    }

    /// `[B, T, labels]` (token classification) or `[B, T, vocab]` (masked LM).
    pub fn token_logits(&self, hidden: Tensor<3>) -> Option<Tensor<3>> {
        if let (Some(t), Some(ln), Some(p)) = (
            &self.vocab_transform,
            &self.vocab_layer_norm,
            &self.vocab_projector,
        ) {
            let h = ln.forward(t.forward_act(hidden, Some(self.act)));
            let wte = self.distilbert.embeddings.word_embeddings.weight.val();
            return Some(crate::nn::linear(h, wte.transpose(), Some(p.bias.val())));
        }
        if self.pre_classifier.is_none() {
            let classifier = self.classifier.as_ref()?;
            return Some(classifier.forward(self.dropout.forward(hidden)));
        }
        None
    }
}

impl TransformerBlock {
    fn forward(
        &self,
        x: Tensor<3>,
        mask: Tensor<4, Bool>,
        record: Option<&mut Attentions>,
    ) -> Tensor<3> {
        let a = &self.attention;
        let q = split_heads(a.q_lin.forward(x.clone()), a.heads);
        let k = split_heads(a.k_lin.forward(x.clone()), a.heads);
        let v = split_heads(a.v_lin.forward(x.clone()), a.heads);
        let d = q.dims()[3] as f64;
        let ctx = attention_merged(q, k, v, Some(mask), 1.0 / d.sqrt(), &a.dropout, record);
        let x = self
            .sa_layer_norm
            .forward(a.out_lin.forward_add(ctx, x, None));
        let f = &self.ffn;
        let inner = f.lin1.forward_act(x.clone(), Some(f.act));
        self.output_layer_norm
            .forward(f.lin2.forward_add(inner, x, Some(&f.dropout)))
    }
}
