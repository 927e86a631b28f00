//! Tokenizers from a model's files: `tokenizer.json` when present (any HF fast tokenizer), else
//! rebuilt from `vocab.txt` (BERT WordPiece) or `vocab.json` + `merges.txt` (GPT-2 byte-level BPE)
//! exactly as `transformers` converts those slow-tokenizer files.

use ahash::AHashMap;

use serde_json::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{
    AddedToken, Decoder, ModelWrapper, PostProcessor, Tokenizer as HfTokenizer,
    TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{DuetError, Result};
use crate::files::ModelFiles;

/// One encoded text: ids with char offsets into the original string (Python `str` indices, as the
/// HF pipelines report them).
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// `(start, end)` in chars; `(0, 0)` for special tokens.
    pub offsets: Vec<(usize, usize)>,
    pub special: Vec<bool>,
    pub tokens: Vec<String>,
    /// Index of the pre-tokenized word each token belongs to (`None` for special tokens).
    pub word_ids: Vec<Option<u32>>,
}

impl Encoded {
    fn from_hf(e: &tokenizers::Encoding) -> Self {
        Self {
            ids: e.get_ids().to_vec(),
            type_ids: e.get_type_ids().to_vec(),
            offsets: e.get_offsets().to_vec(),
            special: e
                .get_special_tokens_mask()
                .iter()
                .map(|&m| m == 1)
                .collect(),
            tokens: e.get_tokens().to_vec(),
            word_ids: e.get_word_ids().to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[derive(Clone)]
pub struct Tokenizer {
    inner: HfTokenizer,
    /// `[MASK]` (BERT) — the token fill-mask looks for.
    pub mask_token: Option<String>,
    pub cls_token: Option<String>,
    pub sep_token: Option<String>,
    pub pad_token_id: u32,
}

fn tok_err(e: impl std::fmt::Display) -> DuetError {
    DuetError::Tokenizer(e.to_string())
}

impl Tokenizer {
    pub fn from_files(files: &ModelFiles) -> Result<Self> {
        let config: Value = files
            .get("tokenizer_config.json")
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let mut inner = if let Some(json) = files.get("tokenizer.json") {
            HfTokenizer::from_bytes(json).map_err(tok_err)?
        } else if let Some(vocab) = files.get("vocab.txt") {
            wordpiece_from_vocab(vocab, &config)?
        } else if let (Some(vocab), Some(merges)) =
            (files.get("vocab.json"), files.get("merges.txt"))
        {
            bpe_from_vocab_merges(vocab, merges)?
        } else {
            return Err(DuetError::MissingFile(
                "tokenizer.json (or vocab.txt, or vocab.json + merges.txt)".into(),
            ));
        };
        // Files such as all-MiniLM-L6-v2's pin padding/truncation in tokenizer.json; transformers
        // overrides both per call, and so do we (batches are padded by `EncoderBatch`, long texts
        // are an error or split into windows).
        inner.with_padding(None);
        inner.with_truncation(None).map_err(tok_err)?;
        let find = |candidates: &[&str]| {
            candidates
                .iter()
                .find(|t| inner.token_to_id(t).is_some())
                .map(|t| t.to_string())
        };
        let pad_token_id = find(&["[PAD]", "<pad>"])
            .and_then(|t| inner.token_to_id(&t))
            .unwrap_or(0);
        Ok(Self {
            mask_token: find(&["[MASK]", "<mask>"]),
            cls_token: find(&["[CLS]", "<s>"]),
            sep_token: find(&["[SEP]", "</s>"]),
            pad_token_id,
            inner,
        })
    }

    /// Encodes `text`, with `[CLS]`/`[SEP]` etc. when `special` and the tokenizer defines them.
    pub fn encode(&self, text: &str, special: bool) -> Result<Encoded> {
        let e = self
            .inner
            .encode_char_offsets(text, special)
            .map_err(tok_err)?;
        Ok(Encoded::from_hf(&e))
    }

    /// Encodes text already split into words (CoNLL), so `word_ids` index those words.
    pub fn encode_words(&self, words: &[String]) -> Result<Encoded> {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let e = self
            .inner
            .encode_char_offsets(words, true)
            .map_err(tok_err)?;
        Ok(Encoded::from_hf(&e))
    }

    /// The tokenizer as `tokenizer.json` (for exports).
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(tok_err)
    }

    /// Wraps a tokenizer built elsewhere (e.g. one trained by Duet).
    pub fn from_hf(inner: HfTokenizer) -> Self {
        let json = inner.to_string(false).unwrap_or_default();
        let files = ModelFiles::new().with("tokenizer.json", json.into_bytes());
        Self::from_files(&files).expect("a tokenizer re-reads its own JSON")
    }

    /// Encodes a text too long for the model as overlapping windows of at most `max_len` tokens
    /// (special tokens included), consecutive windows sharing `stride` tokens — the fast
    /// tokenizer's `return_overflowing_tokens` that HF pipelines use.
    pub fn encode_windows(
        &self,
        text: &str,
        max_len: usize,
        stride: usize,
    ) -> Result<Vec<Encoded>> {
        let mut tok = self.inner.clone();
        let specials = tok
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_len <= specials + stride {
            return Err(DuetError::InvalidOption(format!(
                "stride {stride} leaves no room in windows of {max_len} tokens"
            )));
        }
        tok.with_truncation(Some(TruncationParams {
            max_length: max_len,
            stride,
            strategy: TruncationStrategy::LongestFirst,
            direction: TruncationDirection::Right,
        }))
        .map_err(tok_err)?;
        let first = tok.encode_char_offsets(text, true).map_err(tok_err)?;
        let mut all = vec![first.clone()];
        all.extend(first.get_overflowing().iter().cloned());
        Ok(all.iter().map(Encoded::from_hf).collect())
    }

    /// Whether sub-word pieces are marked (WordPiece `##`, BPE with a continuing prefix), so the
    /// NER pipeline can tell them from whole words exactly rather than by the space heuristic.
    pub fn marks_subwords(&self) -> bool {
        match self.inner.get_model() {
            ModelWrapper::WordPiece(w) => !w.continuing_subword_prefix.is_empty(),
            ModelWrapper::BPE(b) => b.continuing_subword_prefix.is_some(),
            _ => false,
        }
    }

    /// `convert_tokens_to_string`: joins tokens with the tokenizer's decoder.
    pub fn tokens_to_string(&self, tokens: &[String]) -> String {
        match self.inner.get_decoder() {
            Some(d) => d
                .decode(tokens.to_vec())
                .unwrap_or_else(|_| tokens.join(" ")),
            None => tokens.join(" "),
        }
    }

    /// The mask token and its id: what fill-mask looks for and masked-LM training writes. GPT-2's
    /// tokenizer has none, so a model with it can neither fill nor learn masks.
    pub fn mask(&self) -> Result<(&str, u32)> {
        self.mask_token
            .as_deref()
            .and_then(|t| Some((t, self.inner.token_to_id(t)?)))
            .ok_or_else(|| {
                DuetError::Tokenizer(
                    "no mask token, so this model cannot fill masks or learn them".into(),
                )
            })
    }

    pub fn unk_token_id(&self) -> Option<u32> {
        ["[UNK]", "<unk>", "<|endoftext|>"]
            .iter()
            .find_map(|t| self.inner.token_to_id(t))
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(tok_err)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Ids of the special tokens (added tokens marked special), e.g. to skip them.
    pub fn is_special_id(&self, id: u32) -> bool {
        self.inner
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special)
    }
}

/// `BertTokenizerFast` built from `vocab.txt`, as transformers' converter does.
fn wordpiece_from_vocab(vocab: &[u8], config: &Value) -> Result<HfTokenizer> {
    let text = std::str::from_utf8(vocab).map_err(|_| tok_err("vocab.txt is not UTF-8"))?;
    let vocab: AHashMap<String, u32> = text
        .lines()
        .enumerate()
        .map(|(i, t)| (t.trim_end_matches('\r').to_string(), i as u32))
        .collect();
    let lowercase = config
        .get("do_lower_case")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let strip_accents = config.get("strip_accents").and_then(Value::as_bool);
    let chinese = config
        .get("tokenize_chinese_chars")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let id = |t: &str| {
        vocab
            .get(t)
            .copied()
            .ok_or_else(|| tok_err(format!("vocab.txt has no `{t}` token")))
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    let specials: Vec<AddedToken> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .filter(|t| vocab.contains_key(**t))
        .map(|t| AddedToken::from(t.to_string(), true))
        .collect();
    let model = WordPiece::builder()
        .vocab(vocab)
        .unk_token("[UNK]".into())
        .build()
        .map_err(tok_err)?;
    let mut tok = HfTokenizer::new(model);
    tok.with_normalizer(Some(BertNormalizer::new(
        true,
        chinese,
        strip_accents,
        lowercase,
    )))
    .with_pre_tokenizer(Some(BertPreTokenizer))
    .with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), sep),
        ("[CLS]".into(), cls),
    )))
    .with_decoder(Some(WordPieceDecoder::new("##".into(), true)));
    tok.add_special_tokens(&specials);
    Ok(tok)
}

/// `GPT2TokenizerFast` built from `vocab.json` + `merges.txt`.
fn bpe_from_vocab_merges(vocab: &[u8], merges: &[u8]) -> Result<HfTokenizer> {
    let vocab: AHashMap<String, u32> =
        serde_json::from_slice(vocab).map_err(|e| tok_err(format!("vocab.json: {e}")))?;
    let merges_text =
        std::str::from_utf8(merges).map_err(|_| tok_err("merges.txt is not UTF-8"))?;
    let merges: Vec<(String, String)> = merges_text
        .lines()
        .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split(' ');
            match (parts.next(), parts.next()) {
                (Some(a), Some(b)) => Ok((a.to_string(), b.to_string())),
                _ => Err(tok_err(format!("merges.txt: bad line `{l}`"))),
            }
        })
        .collect::<Result<_>>()?;
    let eos = vocab.contains_key("<|endoftext|>");
    let model = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(tok_err)?;
    let mut tok = HfTokenizer::new(model);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(Some(ByteLevel::new(true, false, true)))
        .with_decoder(Some(ByteLevelDecoder::default()));
    if eos {
        tok.add_special_tokens(&[AddedToken::from("<|endoftext|>", true)]);
    }
    Ok(tok)
}
