//! Logits processors with Hugging Face semantics (HF `generate`'s order: repetition penalty,
//! then temperature, top-k, top-p). They live in `duet-sampler`, which the page links too.

pub use duet_sampler::{argmax, repetition_penalty, softmax, temperature, top_k, top_n, top_p};
