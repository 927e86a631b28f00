//! Exports other tools load, built in memory (a browser download button has no filesystem):
//! a full `transformers` checkpoint, and LoRA adapters in PEFT's layout; plus loading such an
//! adapter back onto its base model.

use std::collections::HashMap;

use burn::module::Param;
use burn::tensor::Tensor;
use serde_json::{json, Value};

use crate::config::Arch;
use crate::error::{DuetError, Result};
use crate::files::ModelFiles;
use crate::loader::{checkpoint_keys, load_params, transposed};
use crate::module_path::{ModulePath, Tracked, VisitAt};
use crate::network::{read_f32_all, Network};
use crate::train::lora::{self, LoraConfig};
use crate::weights::Weights;
use crate::Model;

/// Element type of exported tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
}

/// A parameter as PyTorch lays it out, ready to be read back.
struct Collected {
    path: String,
    shape: Vec<usize>,
    flat: Tensor<1>,
}

#[derive(Default)]
struct Collector {
    out: Vec<Collected>,
}

impl Collector {
    fn collect<const D: usize>(&mut self, at: &ModulePath, mut value: Tensor<D>) {
        let mut shape = value.dims().to_vec();
        if transposed(at.containers(), D) {
            value = value.transpose();
            shape.reverse();
        }
        let n: usize = shape.iter().product();
        self.out.push(Collected {
            path: at.joined(),
            shape,
            flat: value.reshape([n]),
        });
    }
}

impl VisitAt for Collector {
    fn visit_float_at<const D: usize>(&mut self, at: &ModulePath, param: &Param<Tensor<D>>) {
        self.collect(at, param.val());
    }
}

/// Every parameter by checkpoint key (PEFT's `base_model.model.…lora_A.weight` for adapters),
/// PyTorch layout, as `(key, shape, values)`.
pub async fn named_tensors(
    net: &Network,
    arch: &Arch,
) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
    let params = read_params(net, |_| true).await?;
    Ok(params
        .into_iter()
        .map(|(p, s, d)| {
            let key = if p.contains(".lora.") {
                peft_key(arch, &p)
            } else {
                checkpoint_keys(arch, &p).remove(0)
            };
            (key, s, d)
        })
        .collect())
}

/// Gradients from `grads` of every parameter that has one, keyed like [`named_tensors`].
pub async fn named_gradients(
    net: &Network,
    arch: &Arch,
    grads: &burn::tensor::Gradients,
) -> Result<Vec<(String, Vec<f32>)>> {
    struct GradCollector<'a> {
        grads: &'a burn::tensor::Gradients,
        collected: Collector,
    }
    impl VisitAt for GradCollector<'_> {
        fn visit_float_at<const D: usize>(&mut self, at: &ModulePath, param: &Param<Tensor<D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                self.collected.collect(at, g);
            }
        }
    }
    let mut c = Tracked::new(GradCollector {
        grads,
        collected: Collector::default(),
    });
    net.visit(&mut c);
    let (keys, flats): (Vec<_>, Vec<_>) = c
        .inner
        .collected
        .out
        .into_iter()
        .map(|p| {
            let key = if p.path.contains(".lora.") {
                peft_key(arch, &p.path)
            } else {
                checkpoint_keys(arch, &p.path).remove(0)
            };
            (key, p.flat)
        })
        .unzip();
    Ok(keys.into_iter().zip(read_f32_all(flats).await?).collect())
}

/// Serializes named f32 tensors as safetensors bytes.
pub fn safetensors_bytes(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    dtype: DType,
) -> Result<Vec<u8>> {
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, s, d)| {
            let bytes = match dtype {
                DType::F32 => d.iter().flat_map(|x| x.to_le_bytes()).collect(),
                DType::F16 => d
                    .iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
            };
            (k.clone(), s.clone(), bytes)
        })
        .collect();
    let st_dtype = match dtype {
        DType::F32 => safetensors::Dtype::F32,
        DType::F16 => safetensors::Dtype::F16,
    };
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = encoded
        .iter()
        .map(|(k, s, b)| {
            safetensors::tensor::TensorView::new(st_dtype, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| DuetError::Safetensors(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::serialize(views, Some(meta)).map_err(|e| DuetError::Safetensors(e.to_string()))
}

/// Reads every parameter (optionally only those `keep` accepts) in PyTorch layout, by path.
async fn read_params(
    net: &Network,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
    let mut c = Tracked::new(Collector::default());
    net.visit(&mut c);
    let (named, flats): (Vec<_>, Vec<_>) = c
        .inner
        .out
        .into_iter()
        .filter(|p| keep(&p.path))
        .map(|p| ((p.path, p.shape), p.flat))
        .unzip();
    let values = read_f32_all(flats).await?;
    Ok(named
        .into_iter()
        .zip(values)
        .map(|((path, shape), data)| (path, shape, data))
        .collect())
}

/// Files `transformers` can load: `config.json`, `model.safetensors` (LoRA merged in), the
/// tokenizer. Tied weights are left out, as `save_pretrained` does.
pub async fn full_checkpoint(model: &Model, dtype: DType) -> Result<ModelFiles> {
    let mut net = model.network.clone();
    if lora::has_lora(&mut net) {
        net = lora::merge(net);
    }
    let arch = &model.config.arch;
    let params = read_params(&net, |_| true).await?;
    let named: Vec<_> = params
        .into_iter()
        .map(|(path, shape, data)| (checkpoint_keys(arch, &path).remove(0), shape, data))
        .collect();
    let mut config = model.config.raw.clone();
    if dtype == DType::F16 {
        config["torch_dtype"] = json!("float16");
    }
    let mut files = model.tokenizer_files.clone();
    files.insert(
        "config.json",
        serde_json::to_vec_pretty(&config).expect("json"),
    );
    files.insert("model.safetensors", safetensors_bytes(&named, dtype)?);
    files.insert("tokenizer.json", model.tokenizer.to_json()?.into_bytes());
    Ok(files)
}

const PEFT_PREFIX: &str = "base_model.model.";

/// Head modules PEFT must save along with the adapters (`modules_to_save`).
const HEAD_MODULES: &[&str] = &["classifier", "pre_classifier", "pooler"];

fn is_head_path(path: &str) -> bool {
    path.starts_with("classifier")
        || path.starts_with("pre_classifier")
        || path.starts_with("bert.pooler")
}

/// PEFT's key for one of our parameter paths.
fn peft_key(arch: &Arch, path: &str) -> String {
    if let Some(base) = path.strip_suffix(".lora.a") {
        format!(
            "{PEFT_PREFIX}{}.lora_A.weight",
            checkpoint_keys(arch, &format!("{base}.weight"))[0].trim_end_matches(".weight")
        )
    } else if let Some(base) = path.strip_suffix(".lora.b") {
        format!(
            "{PEFT_PREFIX}{}.lora_B.weight",
            checkpoint_keys(arch, &format!("{base}.weight"))[0].trim_end_matches(".weight")
        )
    } else {
        format!("{PEFT_PREFIX}{}", checkpoint_keys(arch, path)[0])
    }
}

/// `adapter_config.json` + `adapter_model.safetensors` in PEFT's layout (and the task's
/// `config.json`, so the head's labels travel with it).
pub async fn lora_adapter(model: &Model, cfg: &LoraConfig, base_model: &str) -> Result<ModelFiles> {
    let arch = &model.config.arch;
    let params = read_params(&model.network, |p| p.contains(".lora.") || is_head_path(p)).await?;
    if !params.iter().any(|(p, _, _)| p.contains(".lora.")) {
        return Err(DuetError::InvalidOption(
            "this model has no LoRA adapters".into(),
        ));
    }
    let named: Vec<_> = params
        .into_iter()
        .map(|(p, s, d)| (peft_key(arch, &p), s, d))
        .collect();
    let task_type = match model.config.head {
        crate::config::Head::SequenceClassification => "SEQ_CLS",
        crate::config::Head::TokenClassification => "TOKEN_CLS",
        crate::config::Head::CausalLm => "CAUSAL_LM",
        _ => "FEATURE_EXTRACTION",
    };
    let heads: Vec<&str> = HEAD_MODULES
        .iter()
        .copied()
        .filter(|m| named.iter().any(|(k, _, _)| k.contains(&format!(".{m}."))))
        .collect();
    let adapter_config = json!({
        "peft_type": "LORA",
        "task_type": task_type,
        "base_model_name_or_path": base_model,
        "r": cfg.rank,
        "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.dropout,
        "target_modules": cfg.target_modules,
        "modules_to_save": if heads.is_empty() { Value::Null } else { json!(heads) },
        "fan_in_fan_out": model.config.is_gpt2(),
        "bias": "none",
        "inference_mode": true,
        "init_lora_weights": true,
    });
    Ok(ModelFiles::new()
        .with(
            "adapter_config.json",
            serde_json::to_vec_pretty(&adapter_config).expect("json"),
        )
        .with(
            "adapter_model.safetensors",
            safetensors_bytes(&named, DType::F32)?,
        )
        .with(
            "config.json",
            serde_json::to_vec_pretty(&model.config.raw).expect("json"),
        ))
}

/// Reads `adapter_config.json`'s LoRA settings.
pub fn adapter_config(files: &ModelFiles) -> Result<LoraConfig> {
    let v: Value = serde_json::from_slice(files.require("adapter_config.json")?)
        .map_err(|e| DuetError::Config(format!("adapter_config.json: {e}")))?;
    if v["peft_type"].as_str() != Some("LORA") {
        return Err(DuetError::Unsupported {
            found: format!("adapter type {}", v["peft_type"]),
            supported: "LORA".into(),
        });
    }
    let targets = match &v["target_modules"] {
        Value::Array(a) => a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    };
    Ok(LoraConfig {
        rank: v["r"].as_u64().unwrap_or(8) as usize,
        alpha: v["lora_alpha"].as_f64().unwrap_or(8.0),
        dropout: v["lora_dropout"].as_f64().unwrap_or(0.0),
        target_modules: targets,
    })
}

/// Puts a PEFT LoRA adapter (and the head it saved) onto `base`. When the adapter folder has a
/// `config.json` with labels, the head is created for them first.
pub fn load_adapter(base: Model, files: &ModelFiles) -> Result<Model> {
    let cfg = adapter_config(files)?;
    let mut model = base;
    if let Some(config) = files.get("config.json") {
        let task = crate::ModelConfig::from_json(config)?;
        if task.head != model.config.head || task.id2label != model.config.id2label {
            model = crate::train::setup::with_head(model, task.head, &task.id2label)?;
        }
    }
    lora::attach(&mut model.network, &cfg, &model.device)?;
    let weights = Weights::parse(files.require("adapter_model.safetensors")?)?;
    let arch = model.config.arch.clone();
    let keys = |path: &str| -> Option<Vec<String>> {
        let k = peft_key(&arch, path);
        (path.contains(".lora.") || (is_head_path(path) && weights.contains(&k))).then(|| vec![k])
    };
    let (network, _) = load_params(model.network, &weights, &keys, &model.device)?;
    Ok(Model { network, ..model })
}
