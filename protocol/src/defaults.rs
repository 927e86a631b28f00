//! The embedded default models: folder names under `public/models/`, served at `./models/<name>/`.

pub const GPT2: &str = "gpt2-shakespeare";
pub const SENTIMENT: &str = "minilm-sst2";
pub const NER: &str = "minilm-conll03";
pub const ENCODER: &str = "all-MiniLM-L6-v2";
pub const FILL_MASK: &str = "minilm-mlm";

/// Every embedded default.
pub const ALL: [&str; 5] = [GPT2, SENTIMENT, NER, ENCODER, FILL_MASK];
