//! BERT (`BertModel` and its `ForSequenceClassification` / `ForTokenClassification` / `ForMaskedLM`
//! heads). Field names mirror the checkpoint (`bert.encoder.layer.{i}.attention.self.query`); the
//! one Rust keyword, `self`, is spelled `self_` and renamed back in the loader.
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, Initializer};
use burn::tensor::activation::tanh;
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::config::{BertConfig, Head};
use crate::nn::{
    attention_merged, embedding, split_heads, Activation, Attentions, LayerNorm, Linear,
};

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub dropout: Dropout,
    pub heads: usize,
}

#[derive(Module, Debug)]
pub struct BertSelfOutput {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct BertAttention {
    pub self_: BertSelfAttention,
    pub output: BertSelfOutput,
}

#[derive(Module, Debug)]
pub struct BertIntermediate {
    pub dense: Linear,
    #[module(skip)]
    pub act: Activation,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: BertIntermediate,
    /// Same shape of module as `BertSelfOutput`: dense, LayerNorm, dropout.
    pub output: BertSelfOutput,
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    pub layer: Vec<BertLayer>,
}

#[derive(Module, Debug)]
pub struct BertPooler {
    pub dense: Linear,
}

#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub encoder: BertEncoder,
    /// Only the sequence-classification head uses the pooler.
    pub pooler: Option<BertPooler>,
}

#[derive(Module, Debug)]
pub struct BertPredictionHeadTransform {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    #[module(skip)]
    pub act: Activation,
}

/// The MLM decoder: its weight is tied to `word_embeddings`; only the bias is its own.
#[derive(Module, Debug)]
pub struct BertLMPredictionHead {
    pub transform: BertPredictionHeadTransform,
    pub bias: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct BertOnlyMLMHead {
    pub predictions: BertLMPredictionHead,
}

/// `BertModel` with whichever head the checkpoint's architecture names.
#[derive(Module, Debug)]
pub struct Bert {
    pub bert: BertModel,
    pub dropout: Dropout,
    pub classifier: Option<Linear>,
    pub cls: Option<BertOnlyMLMHead>,
}

fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    Linear::new(d_in, d_out, device)
}

impl Bert {
    pub fn new(c: &BertConfig, head: Head, num_labels: usize, device: &Device) -> Self {
        let d = c.hidden_size;
        let eps = c.layer_norm_eps;
        let drop = DropoutConfig::new(c.hidden_dropout_prob).init();
        let act = Activation::from_name(&c.hidden_act);
        let output = |d_in| BertSelfOutput {
            dense: linear(d_in, d, device),
            LayerNorm: LayerNorm::new(d, eps, device),
            dropout: drop.clone(),
        };
        let layer = (0..c.num_hidden_layers)
            .map(|_| BertLayer {
                attention: BertAttention {
                    self_: BertSelfAttention {
                        query: linear(d, d, device),
                        key: linear(d, d, device),
                        value: linear(d, d, device),
                        dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
                        heads: c.num_attention_heads,
                    },
                    output: output(d),
                },
                intermediate: BertIntermediate {
                    dense: linear(d, c.intermediate_size, device),
                    act,
                },
                output: output(c.intermediate_size),
            })
            .collect();
        let bert = BertModel {
            embeddings: BertEmbeddings {
                word_embeddings: embedding(c.vocab_size, d, device),
                position_embeddings: embedding(c.max_position_embeddings, d, device),
                token_type_embeddings: embedding(c.type_vocab_size, d, device),
                LayerNorm: LayerNorm::new(d, eps, device),
                dropout: drop.clone(),
            },
            encoder: BertEncoder { layer },
            pooler: (head == Head::SequenceClassification).then(|| BertPooler {
                dense: linear(d, d, device),
            }),
        };
        let classifier = matches!(
            head,
            Head::SequenceClassification | Head::TokenClassification
        )
        .then(|| linear(d, num_labels, device));
        let cls = (head == Head::MaskedLm).then(|| BertOnlyMLMHead {
            predictions: BertLMPredictionHead {
                transform: BertPredictionHeadTransform {
                    dense: linear(d, d, device),
                    LayerNorm: LayerNorm::new(d, eps, device),
                    act,
                },
                bias: Initializer::Zeros.init([c.vocab_size], device),
            },
        });
        let classifier_dropout = c.classifier_dropout.unwrap_or(c.hidden_dropout_prob);
        Self {
            bert,
            dropout: DropoutConfig::new(classifier_dropout).init(),
            classifier,
            cls,
        }
    }

    /// Last hidden states `[B, T, C]`. `attention_mask` `[B, T]`: 1 for tokens, 0 for padding.
    /// With `record`, each layer's attention probabilities are kept there.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        mut record: Option<&mut Attentions>,
    ) -> Tensor<3> {
        let e = &self.bert.embeddings;
        let device = input_ids.device();
        let [_, t] = input_ids.dims();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]);
        let x = e.word_embeddings.forward(input_ids)
            + e.position_embeddings.forward(positions)
            + e.token_type_embeddings.forward(token_type_ids);
        let mut x = e.dropout.forward(e.LayerNorm.forward(x));
        let mask = padding_mask(attention_mask);
        for layer in &self.bert.encoder.layer {
            x = layer.forward(x, mask.clone(), record.as_deref_mut());
        }
        x
    }

    /// Sequence-classification logits `[B, labels]` from the pooled `[CLS]` state.
    pub fn sequence_logits(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        let pooler = self.bert.pooler.as_ref()?;
        let [b, _, c] = hidden.dims();
        let first = hidden.slice([0..b, 0..1, 0..c]).reshape([b, c]);
        let pooled = tanh(pooler.dense.forward(first));
        Some(
            self.classifier
                .as_ref()?
                .forward(self.dropout.forward(pooled)),
        )
    }

    /// Per-token logits `[B, T, labels]` (token classification) or `[B, T, vocab]` (masked LM).
    pub fn token_logits(&self, hidden: Tensor<3>) -> Option<Tensor<3>> {
        if let Some(cls) = &self.cls {
            let p = &cls.predictions;
            let t = &p.transform;
            let h = t
                .LayerNorm
                .forward(t.dense.forward_act(hidden, Some(t.act)));
            let wte = self.bert.embeddings.word_embeddings.weight.val(); // tied decoder
            return Some(crate::nn::linear(h, wte.transpose(), Some(p.bias.val())));
        }
        if self.bert.pooler.is_none() {
            let classifier = self.classifier.as_ref()?;
            return Some(classifier.forward(self.dropout.forward(hidden)));
        }
        None
    }
}

/// `[B, T]` 0/1 → `[B, 1, 1, T]`, true where the key is padding.
pub fn padding_mask(attention_mask: Tensor<2, Int>) -> Tensor<4, Bool> {
    let [b, t] = attention_mask.dims();
    attention_mask.equal_elem(0).reshape([b, 1, 1, t])
}

impl BertLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        mask: Tensor<4, Bool>,
        record: Option<&mut Attentions>,
    ) -> Tensor<3> {
        let a = &self.attention;
        let s = &a.self_;
        let q = split_heads(s.query.forward(x.clone()), s.heads);
        let k = split_heads(s.key.forward(x.clone()), s.heads);
        let v = split_heads(s.value.forward(x.clone()), s.heads);
        let d = q.dims()[3] as f64;
        let ctx = attention_merged(q, k, v, Some(mask), 1.0 / d.sqrt(), &s.dropout, record);
        let x = a.output.forward(ctx, x);
        let inner = self
            .intermediate
            .dense
            .forward_act(x.clone(), Some(self.intermediate.act));
        self.output.forward(inner, x)
    }
}

impl BertSelfOutput {
    /// `LayerNorm(dropout(dense(h)) + residual)`.
    fn forward(&self, h: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        self.LayerNorm
            .forward(self.dense.forward_add(h, residual, Some(&self.dropout)))
    }
}
