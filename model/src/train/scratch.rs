//! A GPT-2 from nothing: a byte-level BPE tokenizer trained on the user's text, and a model with
//! GPT-2's initialisation, ready for causal-LM training.

use std::collections::HashSet;

use burn::tensor::Device;
use serde_json::json;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

use crate::config::ModelConfig;
use crate::error::{DuetError, Result};
use crate::files::ModelFiles;
use crate::loader::LoadReport;
use crate::models::gpt2::Gpt2LmHeadModel;
use crate::network::Network;
use crate::tokenizer::Tokenizer;
use crate::Model;

pub const EOS: &str = "<|endoftext|>";

/// Trains GPT-2's byte-level BPE (no prefix space, `<|endoftext|>` as id 0) on `text`.
pub fn train_bpe(text: &str, vocab_size: usize) -> Result<Tokenizer> {
    if text.trim().is_empty() {
        return Err(DuetError::EmptyInput(
            "no text to train a tokenizer on".into(),
        ));
    }
    let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(EOS, true)])
        .initial_alphabet(alphabet)
        .build();
    let mut trainer: TrainerWrapper = trainer.into();
    let mut tok = HfTokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(Some(ByteLevel::new(true, false, true)))
        .with_decoder(Some(ByteLevelDecoder::default()));
    // Train on lines so no merge crosses a line break.
    tok.train(&mut trainer, text.lines().map(str::to_string))
        .map_err(|e| DuetError::Tokenizer(e.to_string()))?;
    Ok(Tokenizer::from_hf(tok))
}

/// Shape of a new GPT-2.
#[derive(Debug, Clone)]
pub struct Gpt2Shape {
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub n_positions: usize,
}

/// A randomly initialised `GPT2LMHeadModel` (GPT-2's init, seeded) over `tokenizer`.
pub fn new_gpt2(
    tokenizer: Tokenizer,
    shape: &Gpt2Shape,
    seed: u64,
    device: &Device,
) -> Result<Model> {
    let eos = tokenizer
        .token_to_id(EOS)
        .ok_or_else(|| DuetError::Tokenizer(format!("the tokenizer has no {EOS}")))?;
    let raw = json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": tokenizer.vocab_size(),
        "n_positions": shape.n_positions,
        "n_ctx": shape.n_positions,
        "n_embd": shape.n_embd,
        "n_layer": shape.n_layer,
        "n_head": shape.n_head,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "resid_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "attn_pdrop": 0.1,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    });
    let config = ModelConfig::from_json(&serde_json::to_vec(&raw).expect("json"))?;
    let crate::config::Arch::Gpt2(c) = &config.arch else {
        unreachable!("built as gpt2")
    };
    device.seed(seed);
    let network = Network::Gpt2(Gpt2LmHeadModel::new(c, device));
    let tokenizer_config = json!({
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": EOS, "eos_token": EOS, "unk_token": EOS,
        "add_prefix_space": false,
        "model_max_length": shape.n_positions,
    });
    let tokenizer_files = ModelFiles::new().with(
        "tokenizer_config.json",
        serde_json::to_vec_pretty(&tokenizer_config).expect("json"),
    );
    Ok(Model {
        config,
        network,
        tokenizer,
        device: device.clone(),
        report: LoadReport::default(),
        tokenizer_files,
    })
}
