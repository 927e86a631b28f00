//! The one place that knows checkpoint key strings: how a parameter path of our modules maps to
//! keys in Hugging Face files, which tensors are transposed, and which are tied.
//!
//! Our modules are named like HF's, so a parameter's path (`transformer.h.0.attn.c_attn.weight`)
//! already is its key in the canonical layout. This table only lists the *variations* real
//! checkpoints use:
//! - a missing model prefix (`h.0…` in the original `gpt2` upload, `embeddings…` in a bare
//!   `BertModel` such as all-MiniLM-L6-v2), or a present one where our root has none;
//! - TensorFlow-era LayerNorm names `gamma` / `beta`;
//! - `self_` (our spelling of BERT's `attention.self`, a Rust keyword);
//! - BERT's MLM bias, saved as `cls.predictions.bias` and/or `cls.predictions.decoder.bias`.
//!
//! Transposes: PyTorch `nn.Linear` stores `[out, in]`, burn's `Linear` `[in, out]`, so every
//! weight whose module is a burn `Linear` is transposed. GPT-2's `Conv1D` is already `[in, out]`
//! and is its own type, so it is never transposed.
//!
//! Tying: GPT-2's `lm_head`, BERT's `cls.predictions.decoder` and DistilBERT's `vocab_projector`
//! reuse the word embedding matrix in `forward`; they have no parameter to load.

use std::collections::BTreeSet;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::{Arch, ModelConfig};
use crate::error::{DuetError, Result};
use crate::models::bert::Bert;
use crate::models::distilbert::DistilBert;
use crate::models::gpt2::Gpt2LmHeadModel;
use crate::module_path::{MapAt, ModulePath, Tracked, VisitAt};
use crate::network::Network;
use crate::weights::Weights;

/// The root prefix HF puts before the base model's keys in `…LMHeadModel` / `…For…` checkpoints.
fn root_prefix(arch: &Arch) -> &'static str {
    match arch {
        Arch::Gpt2(_) => "transformer.",
        Arch::Bert(_) => "bert.",
        Arch::DistilBert(_) => "distilbert.",
    }
}

/// Keys a parameter path may be stored under, canonical first.
pub fn checkpoint_keys(arch: &Arch, path: &str) -> Vec<String> {
    let canonical = path.replace(".self_.", ".self.");
    let prefix = root_prefix(arch);
    let mut keys = vec![canonical.clone()];
    if let Some(bare) = canonical.strip_prefix(prefix) {
        keys.push(bare.to_string());
    }
    if canonical == "cls.predictions.bias" {
        keys.push("cls.predictions.decoder.bias".into());
    }
    let legacy: Vec<String> = keys
        .iter()
        .filter(|k| k.contains("LayerNorm."))
        .map(|k| {
            k.replace("LayerNorm.weight", "LayerNorm.gamma")
                .replace("LayerNorm.bias", "LayerNorm.beta")
        })
        .collect();
    keys.extend(legacy);
    keys
}

/// Keys in files that are buffers, not parameters, and are expected to go unused.
fn is_known_buffer(key: &str) -> bool {
    key.ends_with(".attn.bias")
        || key.ends_with(".attn.masked_bias")
        || key.ends_with("position_ids")
        || key.ends_with("cls.predictions.decoder.weight")
        || key.ends_with("vocab_projector.weight")
        || key == "lm_head.weight"
}

/// What loading found besides the parameters it used.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Keys in the file no parameter used (pooler of a token classifier, MLM head of a base…).
    pub unused_keys: Vec<String>,
}

/// Builds the network the config names and fills every parameter from `safetensors`.
pub fn load_network(
    config: &ModelConfig,
    safetensors: &[u8],
    device: &Device,
) -> Result<(Network, LoadReport)> {
    let weights = Weights::parse(safetensors)?;
    let labels = config.num_labels();
    let network = match &config.arch {
        Arch::Gpt2(c) => Network::Gpt2(Gpt2LmHeadModel::new(c, device)),
        Arch::Bert(c) => Network::Bert(Bert::new(c, config.head, labels, device)),
        Arch::DistilBert(c) => Network::DistilBert(DistilBert::new(c, config.head, labels, device)),
    };
    let arch = &config.arch;
    let (network, used) = load_params(
        network,
        &weights,
        &|path| Some(checkpoint_keys(arch, path)),
        device,
    )?;
    let unused_keys = weights
        .keys()
        .into_iter()
        .filter(|k| !used.contains(k) && !is_known_buffer(k))
        .collect();
    Ok((network, LoadReport { unused_keys }))
}

/// Replaces the parameters of `network` for which `keys` names candidate checkpoint keys
/// (`None`: leave the parameter as it is) with tensors from `weights`. Returns the keys used.
pub(crate) fn load_params(
    network: Network,
    weights: &Weights<'_>,
    keys: &dyn Fn(&str) -> Option<Vec<String>>,
    device: &Device,
) -> Result<(Network, BTreeSet<String>)> {
    let mut mapper = Tracked::new(LoadMapper::new(keys, weights, device));
    let network = network.map(&mut mapper);
    let mapper = mapper.inner;
    if let Some(err) = mapper.errors.into_iter().next() {
        return Err(err);
    }
    Ok((network, mapper.used))
}

/// Walks the module tree, replacing each parameter with the checkpoint tensor for its path.
struct LoadMapper<'a> {
    keys: &'a dyn Fn(&str) -> Option<Vec<String>>,
    weights: &'a Weights<'a>,
    device: Device,
    used: BTreeSet<String>,
    errors: Vec<DuetError>,
}

impl<'a> LoadMapper<'a> {
    fn new(
        keys: &'a dyn Fn(&str) -> Option<Vec<String>>,
        weights: &'a Weights<'a>,
        device: &Device,
    ) -> Self {
        Self {
            keys,
            weights,
            device: device.clone(),
            used: BTreeSet::new(),
            errors: Vec::new(),
        }
    }
}

/// Whether the parameter being visited is stored transposed by PyTorch: weights of `Linear`
/// (`[out, in]` there, `[in, out]` here) and LoRA's `a`/`b` (PEFT keeps them as `nn.Linear`s).
pub(crate) fn transposed(containers: &[String], rank: usize) -> bool {
    rank == 2
        && containers
            .last()
            .is_some_and(|c| c == "Struct:Linear" || c == "Struct:Lora")
}

impl MapAt for LoadMapper<'_> {
    fn map_float_at<const D: usize>(
        &mut self,
        at: &ModulePath,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let path = at.joined();
        let ours = param.lazy_shape().dims::<D>().to_vec();
        let transpose = transposed(at.containers(), D);
        // The shape as PyTorch stores it.
        let expected: Vec<usize> = if transpose {
            ours.iter().rev().copied().collect()
        } else {
            ours.clone()
        };
        let Some(keys) = (self.keys)(&path) else {
            return param;
        };
        let Some(key) = keys.iter().find(|k| self.weights.contains(k)) else {
            self.errors.push(DuetError::MissingTensor {
                key: keys[0].clone(),
                expected,
            });
            return param;
        };
        let host = match self.weights.get(key) {
            Ok(h) => h,
            Err(e) => {
                self.errors.push(e);
                return param;
            }
        };
        if host.shape != expected {
            self.errors.push(DuetError::ShapeMismatch {
                key: key.clone(),
                expected,
                found: host.shape,
            });
            return param;
        }
        self.used.insert(key.clone());
        let tensor = Tensor::<D>::from_data(TensorData::new(host.data, host.shape), &self.device);
        let tensor = if transpose {
            tensor.transpose()
        } else {
            tensor
        };
        Param::initialized(param.id, tensor)
    }
}

/// Every checkpoint key (canonical layout) the module expects, for tests and exports.
pub fn expected_keys(network: &Network, arch: &Arch) -> BTreeSet<String> {
    struct Keys<'a> {
        arch: &'a Arch,
        keys: BTreeSet<String>,
    }
    impl VisitAt for Keys<'_> {
        fn visit_float_at<const D: usize>(&mut self, at: &ModulePath, _: &Param<Tensor<D>>) {
            let keys = checkpoint_keys(self.arch, &at.joined());
            self.keys.insert(keys[0].clone());
        }
    }
    let mut v = Tracked::new(Keys {
        arch,
        keys: BTreeSet::new(),
    });
    network.visit(&mut v);
    v.inner.keys
}
