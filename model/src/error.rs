//! Typed errors for everything a user can get wrong: the UI and CLI show these as they are.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DuetError {
    #[error("missing file `{0}` in the model folder")]
    MissingFile(String),
    #[error("cannot read `{path}`: {message}")]
    Io { path: String, message: String },
    #[error("malformed config.json: {0}")]
    Config(String),
    #[error("unsupported model: {found}. Supported: {supported}")]
    Unsupported { found: String, supported: String },
    #[error("model.safetensors is not a valid safetensors file: {0}")]
    Safetensors(String),
    #[error("missing tensor `{key}` (expected shape {expected:?})")]
    MissingTensor { key: String, expected: Vec<usize> },
    #[error("tensor `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{key}` has unsupported dtype {dtype} (supported: F32, F16, BF16)")]
    DType { key: String, dtype: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("empty input: {0}")]
    EmptyInput(String),
    #[error("input too long: {tokens} tokens, the model accepts at most {max}")]
    TooLong { tokens: usize, max: usize },
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("this model has no {0} head")]
    WrongHead(String),
    #[error("tensor read-back failed: {0}")]
    Backend(String),
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, DuetError>;
