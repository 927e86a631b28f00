//! The embedded default models under `public/models/`, by task, and how their shipped metrics
//! are measured (`duet eval`).

/// Folder names under `public/models/`.
pub const GPT2: &str = "gpt2-shakespeare";
pub const SENTIMENT: &str = "minilm-sst2";
pub const NER: &str = "minilm-conll03";
pub const ENCODER: &str = "all-MiniLM-L6-v2";

/// The default for a CLI task name, if there is one.
pub fn for_task(task: &str) -> Option<&'static str> {
    match task {
        "generate" | "lm" => Some(GPT2),
        "classify" => Some(SENTIMENT),
        "ner" => Some(NER),
        "embed" => Some(ENCODER),
        _ => None,
    }
}

/// Held-out splits the defaults were trained with (kept in one place so `duet eval` measures
/// exactly what training held out).
pub const SST2_EVAL_SPLIT: f64 = 0.03;
pub const LM_EVAL_SPLIT: f64 = 0.05;
pub const SEED: u64 = 42;
pub const LM_BLOCK: usize = 128;
