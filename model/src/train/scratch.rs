//! Models from nothing: a GPT-2 (byte-level BPE trained on the user's text, GPT-2's
//! initialisation) ready for causal-LM training, and a BERT (a lower-cased WordPiece trained on the
//! text, BERT's initialisation, an MLM head tied to its embeddings) ready for masked-LM training.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use burn::module::{ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use serde_json::json;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
    Tokenizer as HfTokenizer,
};

use crate::config::Head;
use crate::config::ModelConfig;
use crate::error::{DuetError, Result};
use crate::files::ModelFiles;
use crate::loader::LoadReport;
use crate::models::bert::Bert;
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

/// Draws every lazily initialised parameter now, in module order: a new model's weights then
/// depend on its seed alone, not on when (or next to which other model) it first runs.
fn materialize(network: &Network) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    network.visit(&mut Touch);
}

/// BERT's special tokens, ids 0 to 4 of a WordPiece trained here.
pub const BERT_SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Trains a lower-casing WordPiece as `BertTokenizerFast` runs it (BERT's normaliser and
/// pre-tokeniser, `[CLS] … [SEP]` around each text, `##` continuations) on `text`: the vocabulary
/// of [`wordpiece_vocab`], read as transformers reads a `vocab.txt`.
pub fn train_wordpiece(text: &str, vocab_size: usize) -> Result<Tokenizer> {
    if text.trim().is_empty() {
        return Err(DuetError::EmptyInput(
            "no text to train a tokenizer on".into(),
        ));
    }
    let normalizer = BertNormalizer::new(true, true, None, true);
    let mut words: BTreeMap<String, u64> = BTreeMap::new();
    for line in text.lines() {
        let mut pre = PreTokenizedString::from(line);
        pre.normalize(|n| normalizer.normalize(n))
            .and_then(|_| BertPreTokenizer.pre_tokenize(&mut pre))
            .map_err(|e| DuetError::Tokenizer(e.to_string()))?;
        for (word, _, _) in pre.get_splits(OffsetReferential::Original, OffsetType::Char) {
            *words.entry(word.to_string()).or_default() += 1;
        }
    }
    let mut vocab: Vec<String> = BERT_SPECIALS.iter().map(|t| t.to_string()).collect();
    vocab.extend(wordpiece_vocab(
        &words,
        vocab_size.saturating_sub(vocab.len()),
        2,
    ));
    let files = ModelFiles::new().with("vocab.txt", (vocab.join("\n") + "\n").into_bytes());
    Tokenizer::from_files(&files)
}

/// WordPiece pieces as HF's `WordPieceTrainer` learns them — BPE merges over the words weighted
/// by count, every piece but a word's first spelt with `##` — up to `size` pieces, merging pairs
/// seen at least `min_frequency` times. Ties go to the first pair in spelling order (HF's trainer
/// breaks them by hash order, so the same text could give another vocabulary on each run).
pub fn wordpiece_vocab(
    words: &BTreeMap<String, u64>,
    size: usize,
    min_frequency: u64,
) -> Vec<String> {
    let piece = |c: char, first: bool| {
        if first {
            c.to_string()
        } else {
            format!("##{c}")
        }
    };
    let alphabet: BTreeSet<String> = words
        .keys()
        .flat_map(|w| w.chars().enumerate().map(move |(i, c)| piece(c, i == 0)))
        .collect();
    let mut pieces: Vec<String> = alphabet.into_iter().collect();
    let mut id: HashMap<String, u32> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), i as u32))
        .collect();
    let mut split: Vec<(Vec<u32>, u64)> = words
        .iter()
        .map(|(w, &n)| {
            let ids = w
                .chars()
                .enumerate()
                .map(|(i, c)| id[&piece(c, i == 0)])
                .collect();
            (ids, n)
        })
        .collect();
    while pieces.len() < size {
        let mut pairs: HashMap<(u32, u32), u64> = HashMap::new();
        for (ids, n) in &split {
            for w in ids.windows(2) {
                *pairs.entry((w[0], w[1])).or_default() += n;
            }
        }
        let spelling = |&(a, b): &(u32, u32)| (&pieces[a as usize], &pieces[b as usize]);
        let Some((&best, &count)) = pairs
            .iter()
            .max_by(|x, y| x.1.cmp(y.1).then_with(|| spelling(y.0).cmp(&spelling(x.0))))
        else {
            break;
        };
        if count < min_frequency {
            break;
        }
        let (a, b) = spelling(&best);
        let merged = format!("{a}{}", b.trim_start_matches("##"));
        let new = match id.get(&merged) {
            Some(&i) => i,
            None => {
                pieces.push(merged.clone());
                id.insert(merged, pieces.len() as u32 - 1);
                pieces.len() as u32 - 1
            }
        };
        for (ids, _) in &mut split {
            let mut out = Vec::with_capacity(ids.len());
            let mut i = 0;
            while i < ids.len() {
                if i + 1 < ids.len() && (ids[i], ids[i + 1]) == best {
                    out.push(new);
                    i += 2;
                } else {
                    out.push(ids[i]);
                    i += 1;
                }
            }
            *ids = out;
        }
    }
    pieces.truncate(size);
    pieces
}

/// Shape of a new model, in GPT-2's names (a BERT gets the same: `hidden_size` = `n_embd`, a
/// feed-forward 4 × as wide, `max_position_embeddings` = `n_positions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub n_positions: usize,
    /// Dropout everywhere it applies (GPT-2's `resid/embd/attn_pdrop`, BERT's hidden and
    /// attention dropout); HF's default is 0.1, and small data trained for many epochs wants more.
    pub dropout: f64,
}

fn check_dropout(shape: &Shape) -> Result<()> {
    if (0.0..1.0).contains(&shape.dropout) {
        Ok(())
    } else {
        Err(DuetError::InvalidOption(format!(
            "dropout {} (use a probability from 0 up to, not including, 1)",
            shape.dropout
        )))
    }
}

/// A randomly initialised `GPT2LMHeadModel` (GPT-2's init, seeded) over `tokenizer`.
pub fn new_gpt2(tokenizer: Tokenizer, shape: &Shape, seed: u64, device: &Device) -> Result<Model> {
    check_dropout(shape)?;
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
        "resid_pdrop": shape.dropout,
        "embd_pdrop": shape.dropout,
        "attn_pdrop": shape.dropout,
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
    materialize(&network);
    let tokenizer_config = json!({
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": EOS, "eos_token": EOS, "unk_token": EOS,
        "add_prefix_space": false,
        "model_max_length": shape.n_positions,
    });
    Ok(assemble(
        config,
        network,
        tokenizer,
        tokenizer_config,
        device,
    ))
}

/// A randomly initialised `BertForMaskedLM` (BERT's init, seeded; the MLM decoder tied to the word
/// embeddings) over a WordPiece `tokenizer` from [`train_wordpiece`].
pub fn new_bert(tokenizer: Tokenizer, shape: &Shape, seed: u64, device: &Device) -> Result<Model> {
    check_dropout(shape)?;
    let pad = tokenizer
        .token_to_id("[PAD]")
        .ok_or_else(|| DuetError::Tokenizer("the tokenizer has no [PAD]".into()))?;
    let raw = json!({
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": tokenizer.vocab_size(),
        "hidden_size": shape.n_embd,
        "num_hidden_layers": shape.n_layer,
        "num_attention_heads": shape.n_head,
        "intermediate_size": 4 * shape.n_embd,
        "hidden_act": "gelu",
        "hidden_dropout_prob": shape.dropout,
        "attention_probs_dropout_prob": shape.dropout,
        "max_position_embeddings": shape.n_positions,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": pad,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
    });
    let config = ModelConfig::from_json(&serde_json::to_vec(&raw).expect("json"))?;
    let crate::config::Arch::Bert(c) = &config.arch else {
        unreachable!("built as bert")
    };
    device.seed(seed);
    let network = Network::Bert(Bert::new(c, Head::MaskedLm, 0, device));
    materialize(&network);
    let tokenizer_config = json!({
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": true,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "mask_token": "[MASK]",
        "model_max_length": shape.n_positions,
    });
    Ok(assemble(
        config,
        network,
        tokenizer,
        tokenizer_config,
        device,
    ))
}

/// A new model's parts as one [`Model`], its `tokenizer_config.json` among the tokenizer's files.
fn assemble(
    config: ModelConfig,
    network: Network,
    tokenizer: Tokenizer,
    tokenizer_config: serde_json::Value,
    device: &Device,
) -> Model {
    let tokenizer_files = ModelFiles::new().with(
        "tokenizer_config.json",
        serde_json::to_vec_pretty(&tokenizer_config).expect("json"),
    );
    Model {
        config,
        network,
        tokenizer,
        device: device.clone(),
        report: LoadReport::default(),
        tokenizer_files,
    }
}
