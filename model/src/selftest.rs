//! Parity checks that run on whatever device the engine has: the committed fixtures (tiny
//! checkpoints with `transformers`' outputs in `expected.json`) checked with the tolerances of
//! the native parity suite. The app runs them in the browser on WebGPU, so a GPU that computes
//! differently from PyTorch is caught where users run.

use serde_json::Value;

use crate::generation::beam::{beam_search, BeamConfig};
use crate::generation::{generate, GenerationConfig};
use crate::network::{read_f32, EncoderBatch};
use crate::pipelines::attention::attention;
use crate::pipelines::{classify, fill_mask};
use crate::{Model, ModelFiles};

/// The fixtures under `model/tests/fixtures/`, with the kind of checks each gets.
pub const FIXTURES: &[(&str, Kind)] = &[
    ("gpt2-tiny", Kind::Gpt2),
    ("gpt2-noprefix-f16", Kind::Gpt2),
    ("gpt2-bf16", Kind::Gpt2),
    ("bert-seqcls", Kind::SequenceClassification),
    ("distilbert-multilabel", Kind::SequenceClassification),
    ("bert-tokcls-legacy", Kind::TokenClassification),
    ("distilbert-tokcls", Kind::TokenClassification),
    ("bert-mlm-f16", Kind::MaskedLm),
    ("distilbert-mlm", Kind::MaskedLm),
];

/// Files a fixture folder may hold (besides `expected.json`): those any model folder may.
pub use crate::files::KNOWN_FILES as FIXTURE_FILES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gpt2,
    SequenceClassification,
    TokenClassification,
    MaskedLm,
}

pub use duet_protocol::outputs::Check;

fn f32s(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(f32s).collect(),
        Value::Null => vec![f32::NAN],
        x => vec![x.as_f64().unwrap_or(f64::NAN) as f32],
    }
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as u32)
                .collect()
        })
        .unwrap_or_default()
}

fn unwrap_single(v: &Value) -> &Value {
    match v.as_array() {
        Some(a) if a.len() == 1 && a[0].is_array() => &a[0],
        _ => v,
    }
}

/// Largest absolute difference (NaN counts as infinitely far); lengths must agree.
fn max_diff(ours: &[f32], theirs: &[f32]) -> f32 {
    if ours.len() != theirs.len() {
        return f32::INFINITY;
    }
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| {
            let d = (a - b).abs();
            if d.is_nan() {
                f32::INFINITY
            } else {
                d
            }
        })
        .fold(0.0, f32::max)
}

struct Report {
    fixture: String,
    checks: Vec<Check>,
}

impl Report {
    fn close(&mut self, check: &str, ours: &[f32], theirs: &[f32], tol: f32) {
        let d = max_diff(ours, theirs);
        self.checks.push(Check {
            fixture: self.fixture.clone(),
            check: check.into(),
            passed: d <= tol,
            detail: format!("max |diff| {d:.2e} (tolerance {tol:.0e})"),
        });
    }

    fn equal<T: PartialEq + std::fmt::Debug>(&mut self, check: &str, ours: T, theirs: T) {
        let passed = ours == theirs;
        self.checks.push(Check {
            fixture: self.fixture.clone(),
            check: check.into(),
            passed,
            detail: if passed {
                "identical".into()
            } else {
                format!("ours {ours:?}, transformers {theirs:?}")
            },
        });
    }

    fn failed(&mut self, check: &str, error: impl std::fmt::Display) {
        self.checks.push(Check {
            fixture: self.fixture.clone(),
            check: check.into(),
            passed: false,
            detail: error.to_string(),
        });
    }
}

/// Runs a fixture's checks on `device`. Errors become failed checks, never panics.
pub async fn check_fixture(
    name: &str,
    kind: Kind,
    files: &ModelFiles,
    expected: &Value,
    device: &burn::tensor::Device,
) -> Vec<Check> {
    let mut r = Report {
        fixture: name.into(),
        checks: Vec::new(),
    };
    match Model::from_files(files, device) {
        Ok(model) => {
            let result = match kind {
                Kind::Gpt2 => gpt2(&model, expected, &mut r).await,
                _ => encoder(&model, kind, expected, &mut r).await,
            };
            if let Err(e) = result {
                r.failed("run", e);
            }
        }
        Err(e) => r.failed("load", e),
    }
    r.checks
}

async fn gpt2(model: &Model, exp: &Value, r: &mut Report) -> crate::Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    let gpt2 = model.network.gpt2()?;
    for (i, case) in exp["logits"].as_array().into_iter().flatten().enumerate() {
        let ids = model
            .tokenizer
            .encode(case["text"].as_str().unwrap_or(""), true)?
            .ids;
        r.equal(
            &format!("tokens #{i}"),
            ids.clone(),
            u32s(&case["input_ids"]),
        );
        let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        let input =
            Tensor::<2, Int>::from_data(TensorData::new(v.clone(), [1, ids.len()]), &model.device);
        let logits = read_f32(gpt2.forward(input)).await?;
        r.close(
            &format!("logits #{i}"),
            &logits,
            &f32s(&case["logits"]),
            1e-4,
        );
        // The same logits one token at a time through the KV cache: the decode path, which on
        // WebGPU runs its own kernels (`kernels::decode_attention`).
        let mut cache = gpt2.new_cache(1);
        let mut rows = Vec::new();
        for &id in &v {
            let step =
                Tensor::<2, Int>::from_data(TensorData::new(vec![id], [1, 1]), &model.device);
            rows.extend(read_f32(gpt2.forward_cached(step, &mut cache)).await?);
        }
        r.close(
            &format!("logits #{i}, token by token (KV cache)"),
            &rows,
            &f32s(&case["logits"]),
            1e-4,
        );
    }
    for (i, case) in exp["greedy"].as_array().into_iter().flatten().enumerate() {
        let prompt = u32s(&case["input_ids"]);
        let want = u32s(&case["new_token_ids"]);
        for use_cache in [true, false] {
            let cfg = GenerationConfig {
                use_cache,
                ..GenerationConfig::greedy(want.len())
            };
            let out = generate(gpt2, &model.tokenizer, &prompt, &cfg, |_| true).await?;
            let what = if use_cache { "KV cache" } else { "no cache" };
            r.equal(
                &format!("greedy #{i} ({what})"),
                out.new_token_ids,
                want.clone(),
            );
        }
    }
    // Beam search: several beams in one batch through the cache, reordered each step.
    for (i, case) in exp["beam"].as_array().into_iter().flatten().enumerate() {
        let Some(cfg) = beam_config(case) else {
            r.failed(&format!("beam #{i}"), "unreadable settings");
            continue;
        };
        let out = beam_search(gpt2, &u32s(&case["input_ids"]), &cfg).await?;
        let want: Vec<Vec<u32>> = case["sequences"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| u32s(&s["new_token_ids"]))
            .collect();
        r.equal(
            &format!("beam search #{i}"),
            out.into_iter().map(|h| h.new_token_ids).collect::<Vec<_>>(),
            want,
        );
    }
    attentions(model, exp, r).await
}

/// A fixture's beam settings (HF `generate` keyword names) as a `BeamConfig`.
pub fn beam_config(case: &Value) -> Option<BeamConfig> {
    let s = &case["settings"];
    let n = |k: &str| s[k].as_u64().map(|v| v as usize);
    let early = match &s["early_stopping"] {
        Value::Bool(b) => b.to_string(),
        v => v.as_str()?.to_string(),
    };
    Some(BeamConfig {
        num_beams: n("num_beams")?,
        max_new_tokens: n("max_new_tokens")?,
        length_penalty: s["length_penalty"].as_f64()? as f32,
        early_stopping: early.parse().ok()?,
        no_repeat_ngram_size: n("no_repeat_ngram_size")?,
        num_return_sequences: n("num_return_sequences")?,
        eos_token_id: case["eos_token_id"].as_u64().map(|v| v as u32),
    })
}

/// Every layer's and head's attention probabilities against `output_attentions`.
async fn attentions(model: &Model, exp: &Value, r: &mut Report) -> crate::Result<()> {
    for (i, case) in exp["attentions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let map = attention(model, case["text"].as_str().unwrap_or("")).await?;
        let ours: Vec<f32> = map
            .attentions
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .copied()
            .collect();
        r.close(
            &format!("attentions #{i}"),
            &ours,
            &f32s(&case["attentions"]),
            1e-4,
        );
    }
    Ok(())
}

async fn encoder(model: &Model, kind: Kind, exp: &Value, r: &mut Report) -> crate::Result<()> {
    let cases: Vec<&Value> = exp["encodings"].as_array().into_iter().flatten().collect();
    let texts: Vec<String> = cases
        .iter()
        .map(|c| c["text"].as_str().unwrap_or("").to_string())
        .collect();
    let mut encs = Vec::new();
    for (i, (t, c)) in texts.iter().zip(&cases).enumerate() {
        let e = model.tokenizer.encode(t, true)?;
        r.equal(
            &format!("tokens #{i}"),
            e.ids.clone(),
            u32s(&c["input_ids"]),
        );
        encs.push(e);
    }
    let batch = EncoderBatch::new(&encs, model.tokenizer.pad_token_id, &model.device)?;
    if kind == Kind::SequenceClassification {
        let logits = read_f32(model.network.sequence_logits(&batch)?).await?;
        let n = logits.len() / cases.len().max(1);
        for (i, c) in cases.iter().enumerate() {
            let ours = &logits[i * n..(i + 1) * n];
            r.close(
                &format!("padded-batch logits #{i}"),
                ours,
                &f32s(&c["logits"]),
                1e-4,
            );
        }
        let out = classify::classify(model, &texts).await?;
        for (i, (ours, theirs)) in out
            .iter()
            .zip(exp["pipeline"].as_array().into_iter().flatten())
            .enumerate()
        {
            let theirs = unwrap_single(theirs)
                .as_array()
                .cloned()
                .unwrap_or_default();
            let labels: Vec<String> = theirs
                .iter()
                .map(|t| t["label"].as_str().unwrap_or("").to_string())
                .collect();
            r.equal(
                &format!("pipeline labels #{i}"),
                ours.iter().map(|o| o.label.clone()).collect::<Vec<_>>(),
                labels,
            );
            let scores: Vec<f32> = theirs
                .iter()
                .map(|t| t["score"].as_f64().unwrap_or(f64::NAN) as f32)
                .collect();
            let ours: Vec<f32> = ours.iter().map(|o| o.score).collect();
            r.close(&format!("pipeline scores #{i}"), &ours, &scores, 1e-5);
        }
    } else {
        let logits = model.network.token_logits(&batch)?;
        let [_, t, v] = logits.dims();
        let flat = read_f32(logits).await?;
        for (i, c) in cases.iter().enumerate() {
            let len = encs[i].len();
            let ours = &flat[i * t * v..i * t * v + len * v];
            r.close(
                &format!("padded-batch logits #{i}"),
                ours,
                &f32s(&c["logits"]),
                1e-4,
            );
        }
        if kind == Kind::MaskedLm {
            let out = fill_mask::fill_mask(model, &texts, 5).await?;
            for (i, (ours, theirs)) in out
                .iter()
                .zip(exp["pipeline"].as_array().into_iter().flatten())
                .enumerate()
            {
                let theirs = unwrap_single(theirs)
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                r.equal(
                    &format!("fill-mask top-5 #{i}"),
                    ours.iter()
                        .map(|o| (o.token as u64, o.sequence.clone()))
                        .collect::<Vec<_>>(),
                    theirs
                        .iter()
                        .map(|t| {
                            (
                                t["token"].as_u64().unwrap_or(0),
                                t["sequence"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect(),
                );
            }
        }
    }
    attentions(model, exp, r).await
}
