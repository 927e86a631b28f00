//! Duet's engine: GPT-2, BERT and DistilBERT on burn, loading Hugging Face checkpoints from bytes,
//! with the HF pipelines on top. Knows nothing of the DOM; builds for native and wasm32.

pub mod bench;
pub mod bench_ops;
pub mod config;
#[cfg(feature = "flex")]
mod cpu_kernels;
pub mod defaults;
pub mod device;
pub mod error;
pub mod files;
pub mod generation;
#[cfg(feature = "wgpu")]
mod kernels;
pub mod loader;
pub mod models;
mod module_path;
pub mod network;
pub mod nn;
pub mod pipelines;
pub mod selftest;
pub mod tokenizer;
pub mod train;
pub mod weights;

use burn::tensor::Device;

pub use config::{Head, ModelConfig};
pub use error::{DuetError, Result};
pub use files::ModelFiles;
pub use loader::LoadReport;
pub use network::Network;
pub use tokenizer::Tokenizer;

/// A model ready to run: its config, weights on a device, and tokenizer.
#[derive(Clone)]
pub struct Model {
    pub config: ModelConfig,
    pub network: Network,
    pub tokenizer: Tokenizer,
    pub device: Device,
    pub report: LoadReport,
    /// The tokenizer's side files as loaded (`tokenizer_config.json`, vocabularies…), kept so
    /// exports carry them.
    pub tokenizer_files: ModelFiles,
}

impl Model {
    /// Loads from in-memory files: `config.json`, `model.safetensors` and a tokenizer.
    pub fn from_files(files: &ModelFiles, device: &Device) -> Result<Self> {
        let config = ModelConfig::from_json(files.require("config.json")?)?;
        let tokenizer = Tokenizer::from_files(files)?;
        let (network, report) =
            loader::load_network(&config, files.require("model.safetensors")?, device)?;
        let mut tokenizer_files = ModelFiles::new();
        for name in [
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.txt",
            "vocab.json",
            "merges.txt",
        ] {
            if let Some(bytes) = files.get(name) {
                tokenizer_files.insert(name, bytes.to_vec());
            }
        }
        Ok(Self {
            config,
            network,
            tokenizer,
            device: device.clone(),
            report,
            tokenizer_files,
        })
    }

    /// Loads a model folder (native). A PEFT adapter folder (`adapter_config.json`) is loaded
    /// onto its base, found at `base_model_name_or_path` (relative to the adapter folder, else
    /// to the working directory).
    pub fn from_dir(dir: impl AsRef<std::path::Path>, device: &Device) -> Result<Self> {
        DirFiles::read(dir.as_ref())?.load(device)
    }

    /// [`from_dir`](Self::from_dir), and the content hash ([`ModelFiles::content_hash`]) of the
    /// files it loaded (an adapter's and its base's, or the model's), from one read of them.
    pub fn from_dir_hashed(
        dir: impl AsRef<std::path::Path>,
        device: &Device,
    ) -> Result<(Self, String)> {
        let files = DirFiles::read(dir.as_ref())?;
        Ok((files.load(device)?, files.content_hash()))
    }
}

/// The files [`Model::from_dir`] reads from a folder: a model's, or a PEFT adapter's and its
/// base's (found at `base_model_name_or_path`, relative to the adapter folder, else to the
/// working directory).
enum DirFiles {
    Model(ModelFiles),
    Adapter {
        adapter: ModelFiles,
        base: ModelFiles,
    },
}

impl DirFiles {
    fn read(dir: &std::path::Path) -> Result<Self> {
        if !dir.join("adapter_config.json").is_file() {
            return Ok(Self::Model(ModelFiles::from_dir(dir)?));
        }
        let adapter = ModelFiles::from_dir_any(dir)?;
        let cfg: serde_json::Value =
            serde_json::from_slice(adapter.require("adapter_config.json")?)
                .map_err(|e| DuetError::Config(format!("adapter_config.json: {e}")))?;
        let base = cfg["base_model_name_or_path"].as_str().unwrap_or_default();
        let beside = dir.join(base);
        let base_dir = if beside.is_dir() {
            beside
        } else {
            std::path::PathBuf::from(base)
        };
        let base = ModelFiles::from_dir(&base_dir)?;
        Ok(Self::Adapter { adapter, base })
    }

    fn load(&self, device: &Device) -> Result<Model> {
        match self {
            Self::Model(files) => Model::from_files(files, device),
            Self::Adapter { adapter, base } => {
                train::export::load_adapter(Model::from_files(base, device)?, adapter)
            }
        }
    }

    /// An adapter's hash joined to its base's: a run saved from one is checked against both.
    fn content_hash(&self) -> String {
        match self {
            Self::Model(files) => files.content_hash(),
            Self::Adapter { adapter, base } => {
                format!("{}+{}", adapter.content_hash(), base.content_hash())
            }
        }
    }
}
