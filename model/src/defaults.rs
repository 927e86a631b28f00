//! The embedded default models under `public/models/`, by task, and how their shipped metrics
//! are measured (`duet eval`).

pub use duet_protocol::defaults::{ENCODER, FILL_MASK, GPT2, NER, SENTIMENT};

/// The default for a CLI task name, if there is one.
pub fn for_task(task: &str) -> Option<&'static str> {
    match task {
        "generate" | "lm" => Some(GPT2),
        "classify" => Some(SENTIMENT),
        "ner" => Some(NER),
        "embed" => Some(ENCODER),
        "fill-mask" => Some(FILL_MASK),
        _ => None,
    }
}

/// Held-out splits the defaults were trained with (kept in one place so `duet eval` measures
/// exactly what training held out).
pub const SST2_EVAL_SPLIT: f64 = 0.03;
pub const LM_EVAL_SPLIT: f64 = 0.05;
pub const SEED: u64 = 42;
/// The GPT default is measured on blocks as long as it was trained on (its context).
pub const LM_BLOCK: usize = 256;

/// Held-out metrics of each default on the splits it was trained with (native: reads
/// `shared/data/…`). Keys are the folder names.
#[cfg(all(not(target_arch = "wasm32"), feature = "flex"))]
pub async fn evaluate(
    models: &std::path::Path,
    shared: &std::path::Path,
    batch_size: usize,
) -> crate::Result<serde_json::Value> {
    use crate::train::{encode_examples, evaluate, Prepared, Task, TaskData};
    use crate::{DuetError, Model};
    let read = |rel: &str| {
        let path = shared.join(rel);
        std::fs::read_to_string(&path).map_err(|e| DuetError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    };
    let mut out = serde_json::Map::new();
    let lm = TaskData::parse(Task::CausalLm, &read("data/tinyshakespeare/input.txt")?)?
        .split(LM_EVAL_SPLIT, SEED)
        .1;
    let names = [
        ("0".to_string(), "negative".to_string()),
        ("1".to_string(), "positive".to_string()),
    ];
    let sst = TaskData::parse(Task::SequenceClassification, &read("data/sst2/train.tsv")?)?
        .rename_labels(&names)
        .split(SST2_EVAL_SPLIT, SEED)
        .1;
    let dev = TaskData::parse(Task::TokenClassification, &read("data/conll2003/dev.txt")?)?;
    // The fill-mask default hides words of the same dev sentences (`train::word_fill`).
    let dev_words: Vec<Vec<String>> = match &dev {
        TaskData::Tagged(s) => s.iter().map(|s| s.words.clone()).collect(),
        _ => unreachable!("CoNLL parses as tagged sentences"),
    };
    for (name, task, data, max_len) in [
        (GPT2, Task::CausalLm, lm, LM_BLOCK),
        (SENTIMENT, Task::SequenceClassification, sst, 0),
        (NER, Task::TokenClassification, dev, 0),
    ] {
        let model = Model::from_dir(models.join(name), &crate::device::cpu())?;
        let prepared = Prepared::new(&model, task)?;
        let examples = encode_examples(&model, &prepared, &data, max_len)?;
        let metrics = evaluate(&model, &prepared, &examples, batch_size).await?;
        let mut v = serde_json::to_value(metrics).expect("json");
        v["examples"] = examples.len().into();
        out.insert(name.to_string(), v);
    }
    let model = Model::from_dir(models.join(FILL_MASK), &crate::device::cpu())?;
    let fill =
        crate::train::word_fill::word_fill_accuracy(&model, &dev_words, SEED, batch_size).await?;
    out.insert(
        FILL_MASK.to_string(),
        serde_json::to_value(fill).expect("json"),
    );
    Ok(serde_json::Value::Object(out))
}
