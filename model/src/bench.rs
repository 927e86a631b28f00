//! Throughput measurements shared by `duet bench` and the app's bench page. The clock is passed
//! in (`std::time::Instant` does not exist in the browser).

use serde::Serialize;

use crate::error::Result;
use crate::generation::{generate, GenerationConfig};
use crate::pipelines::classify::classify;
use crate::Model;

/// Sentences used for classification benchmarks (varied lengths, as users paste).
pub const SENTENCES: &[&str] = &[
    "I loved this film.",
    "The plot was thin, but the actors made it worth watching on a rainy afternoon.",
    "Terrible.",
    "Nothing about the service, the food or the prices would make me come back here again.",
    "A quiet, patient story that rewards attention.",
    "The battery lasts two days and the screen is bright enough to read in sunlight.",
    "It broke after a week.",
    "Surprisingly funny, with a soundtrack I still hum.",
];

#[derive(Debug, Clone, Serialize)]
pub struct GenerationBench {
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    pub cached_tokens_per_s: f64,
    pub uncached_tokens_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassifyBench {
    pub sentences: usize,
    pub batch_size: usize,
    pub sentences_per_s: f64,
}

/// Greedy generation of `new_tokens` after `prompt`, with and without the KV cache.
pub async fn bench_generation(
    model: &Model,
    prompt: &str,
    new_tokens: usize,
    now: impl Fn() -> f64,
) -> Result<GenerationBench> {
    let gpt2 = model.network.gpt2()?;
    let ids = model.tokenizer.encode(prompt, true)?.ids;
    let new_tokens = new_tokens.min(gpt2.n_positions().saturating_sub(ids.len() + 1));
    let mut rates = Vec::new();
    for use_cache in [true, false] {
        let cfg = GenerationConfig {
            use_cache,
            ..GenerationConfig::greedy(new_tokens)
        };
        // One warm-up step (allocations, kernel compilation on GPU), then the timed run.
        let warm = GenerationConfig {
            max_new_tokens: 1,
            ..cfg.clone()
        };
        generate(gpt2, &model.tokenizer, &ids, &warm, |_| true).await?;
        let t0 = now();
        let out = generate(gpt2, &model.tokenizer, &ids, &cfg, |_| true).await?;
        rates.push(out.new_token_ids.len() as f64 / (now() - t0).max(1e-9));
    }
    Ok(GenerationBench {
        prompt_tokens: ids.len(),
        new_tokens,
        cached_tokens_per_s: rates[0],
        uncached_tokens_per_s: rates[1],
    })
}

/// Classifies [`SENTENCES`] `rounds` times in batches of `batch_size`.
pub async fn bench_classify(
    model: &Model,
    batch_size: usize,
    rounds: usize,
    now: impl Fn() -> f64,
) -> Result<ClassifyBench> {
    let texts: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    classify(model, &texts[..batch_size.min(texts.len())]).await?; // warm-up
    let t0 = now();
    let mut n = 0;
    for _ in 0..rounds {
        for chunk in texts.chunks(batch_size.max(1)) {
            classify(model, chunk).await?;
            n += chunk.len();
        }
    }
    Ok(ClassifyBench {
        sentences: n,
        batch_size,
        sentences_per_s: n as f64 / (now() - t0).max(1e-9),
    })
}

/// Tags [`SENTENCES`] `rounds` times, one text per call as the Entities page sends them.
pub async fn bench_ner(
    model: &Model,
    rounds: usize,
    now: impl Fn() -> f64,
) -> Result<ClassifyBench> {
    use crate::pipelines::ner::{ner, NerOptions};
    let texts: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    ner(model, &texts[..1], NerOptions::default()).await?; // warm-up
    let t0 = now();
    let mut n = 0;
    for _ in 0..rounds {
        for t in &texts {
            ner(model, std::slice::from_ref(t), NerOptions::default()).await?;
            n += 1;
        }
    }
    Ok(ClassifyBench {
        sentences: n,
        batch_size: 1,
        sentences_per_s: n as f64 / (now() - t0).max(1e-9),
    })
}
