//! One handler per request: each turns a request into engine calls and replies.

use std::rc::Rc;

use burn::tensor::Device;
use duet_model::generation::GenerationConfig;
use duet_model::pipelines::{
    attention, classify, embed, fill_mask, masked_vs_next, ner, ner_tokens, strategies,
    text_generation,
};
use duet_model::train::export::{self, DType};
use duet_model::train::lora::LoraConfig;
use duet_model::train::resume::TrainState;
use duet_model::train::{
    self, prepare, Checkpoints, Task, TaskData, TrainConfig, TrainEvent, Trainable,
};
use duet_model::{Model, ModelFiles};
use js_sys::{Array, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::fetch;
use crate::load::{self, info};
use crate::messages::{is_cancelled, now_s, post, scope};
use crate::pretrain;
use crate::settings;
use crate::state::{self, Trained, STATE};
use duet_protocol::{
    BenchLine, Candidate, ComparePosition, DeviceChoice, DownloadFile, GenerateParams, Reply,
    Request, Source, TokenView, TrainParams, SLOTS,
};

pub async fn handle(id: u32, req: Request, files: Array) -> Result<Reply, String> {
    match req {
        Request::Init { device } => init(device).await,
        Request::Load { slot, source } => {
            if !SLOTS.contains(&slot.as_str()) {
                return Err(format!("unknown page `{slot}`"));
            }
            let mut loaded = load::load(id, &source, files).await?;
            state::set_model(&slot, &loaded.info.label, loaded.model);
            // A link can name a download again; local files and a tab's training it cannot.
            if !matches!(source, Source::Files { .. } | Source::Trained) {
                loaded.info.source = Some(source);
            }
            Ok(Reply::Loaded { info: loaded.info })
        }
        Request::Cancel { .. } => Ok(Reply::Done),
        Request::Generate { slot, params } => generate(id, &slot, params).await,
        Request::Classify { slot, text } => {
            let model = state::model(&slot)?;
            let mut out = classify::classify(&model, &[text])
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::Labels {
                labels: out.pop().unwrap_or_default(),
            })
        }
        Request::ClassifyBatch { slot, texts } => {
            let model = state::model(&slot)?;
            let labels = classify::classify(&model, &texts)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::LabelsBatch { labels })
        }
        Request::NerTokens { slot, text } => {
            let model = state::model(&slot)?;
            let result = ner_tokens::ner_tokens(&model, &text)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::NerTokens { result })
        }
        Request::FillMask { slot, text, top_k } => {
            let model = state::model(&slot)?;
            settings::fills(top_k)?;
            let mut out = fill_mask::fill_mask(&model, &[text], top_k)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::Fills {
                fills: out.pop().unwrap_or_default(),
            })
        }
        Request::Attention { slot, text } => {
            // The page's own model, else its default.
            let model = match duet_model::defaults::for_task(&slot) {
                Some(default) if SLOTS.contains(&slot.as_str()) => ensure(&slot, default).await?,
                _ => state::model(&slot)?,
            };
            let result = attention::attention(&model, &text)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::Attention {
                model: state::label(&slot),
                result,
            })
        }
        Request::StepLogits { ids } => step_logits(&ids).await,
        Request::Strategies {
            prompt,
            max_new_tokens,
            num_beams,
            top_k,
            top_p,
            temperature,
            seed,
        } => {
            let model = state::model("generate")?;
            settings::beams(num_beams)?;
            let settings = strategies::Strategies {
                // 0 reaches the engine, which refuses it; a long run is capped (four texts).
                max_new_tokens: max_new_tokens.min(256),
                num_beams,
                top_k,
                top_p,
                temperature,
                seed,
            };
            let columns = strategies::side_by_side(&model, &prompt, &settings)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::Strategies { columns })
        }
        Request::Embed { texts } => {
            let model = ensure("embed", duet_model::defaults::ENCODER).await?;
            let vectors = embed::embed(&model, &texts)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::Embeddings {
                model: state::label("embed"),
                vectors,
            })
        }
        Request::MaskedVsNext { text } => {
            let gpt = ensure("generate", duet_model::defaults::GPT2).await?;
            // The Fill-mask page's model: its default until another is loaded there.
            let mlm = ensure("fill-mask", duet_model::defaults::FILL_MASK).await?;
            let words = masked_vs_next::masked_vs_next(&gpt, &mlm, &text, 3)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::MaskedVsNext {
                gpt_label: state::label("generate"),
                mlm_label: state::label("fill-mask"),
                words,
            })
        }
        Request::Compare { text } => compare(&text).await,
        Request::Train {
            base,
            params,
            resume,
        } => train_model(id, base, params, resume).await,
        Request::Pretrain { params, resume } => pretrain::pretrain(id, params, resume).await,
        Request::Export { kind } => export_trained(&kind).await,
        Request::CachedModels => Ok(Reply::Cached {
            models: fetch::cached_models().await?,
        }),
        Request::DeleteCached { base } => {
            fetch::delete_cached(&base).await?;
            Ok(Reply::Cached {
                models: fetch::cached_models().await?,
            })
        }
        Request::Bench => bench().await,
        Request::BenchOps { seq, reps } => bench_ops(seq, reps).await,
        Request::SelfTest => self_test(id).await,
    }
}

/// What the worker needs to know of the browser's WebGPU adapter before starting on it.
struct Adapter {
    /// The largest buffer it accepts, in bytes.
    max_buffer: u64,
    /// A software renderer (Chromium's SwiftShader): WebGPU emulated on the CPU.
    software: bool,
}

/// The adapter the browser offers, if any.
async fn adapter() -> Option<Adapter> {
    let nav = Reflect::get(&scope(), &"navigator".into()).ok()?;
    let gpu = Reflect::get(&nav, &"gpu".into()).ok()?;
    if gpu.is_undefined() {
        return None;
    }
    let request: js_sys::Function = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let limits = Reflect::get(&adapter, &"limits".into()).ok()?;
    let get = |k: &str| {
        Reflect::get(&limits, &k.into())
            .ok()
            .and_then(|v| v.as_f64())
    };
    let flag = |obj: &wasm_bindgen::JsValue, k: &str| {
        Reflect::get(obj, &k.into())
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or_default();
    let text = |k: &str| {
        Reflect::get(&info, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let software = flag(&info, "isFallbackAdapter")
        || flag(&adapter, "isFallbackAdapter")
        || ["architecture", "description", "device"]
            .iter()
            .any(|k| text(k).contains("swiftshader"));
    Some(Adapter {
        max_buffer: get("maxStorageBufferBindingSize")?.min(get("maxBufferSize")?) as u64,
        software,
    })
}

async fn init(choice: DeviceChoice) -> Result<Reply, String> {
    if STATE.with(|s| s.borrow().device.is_some()) {
        let backend = STATE.with(|s| s.borrow().backend.clone());
        return Ok(Reply::Ready {
            backend,
            note: String::new(),
        });
    }
    let cpu = |note: &str| (Device::flex(), "CPU".to_string(), note.to_string(), None);
    let (device, backend, note, max_buffer) = if choice == DeviceChoice::Cpu {
        cpu("running on the CPU as asked")
    } else {
        match adapter().await {
            None => {
                cpu("WebGPU is not available in this browser, so Duet runs on the CPU (slower)")
            }
            Some(a) if a.software && choice == DeviceChoice::Auto => cpu(
                "This browser's WebGPU is a software renderer (no GPU is in use), which runs \
                 Duet's models far slower than its own CPU engine, so Duet runs on the CPU. \
                 Add ?gpu=1 to the address to use WebGPU anyway.",
            ),
            Some(a) => match Device::wgpu_options().init_async().await {
                Ok(d) => {
                    duet_model::device::set_software_adapter(a.software);
                    (d, "WebGPU".into(), String::new(), Some(a.max_buffer))
                }
                Err(e) => cpu(&format!(
                    "WebGPU failed to start ({e}), so Duet runs on the CPU (slower)"
                )),
            },
        }
    };
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.device = Some(device);
        s.backend = backend.clone();
        s.max_buffer = max_buffer;
    });
    Ok(Reply::Ready { backend, note })
}

/// The engine reports candidates already decoded to text.
fn candidates(top: &[duet_model::generation::TokenProb]) -> Vec<Candidate> {
    top.iter()
        .map(|t| Candidate {
            token: t.token.clone(),
            prob: t.prob,
        })
        .collect()
}

async fn generate(id: u32, slot: &str, p: GenerateParams) -> Result<Reply, String> {
    let model = state::model(slot)?;
    model.network.gpt2().map_err(|_| {
        format!(
            "{} is an encoder (BERT-style): text generation needs a GPT-2 model",
            state::label(slot)
        )
    })?;
    if p.prompt.trim().is_empty() {
        return Err("the prompt is empty: type a few words to continue".into());
    }
    let enc = model
        .tokenizer
        .encode(&p.prompt, true)
        .map_err(|e| e.to_string())?;
    post(
        id,
        Reply::PromptTokens {
            tokens: enc
                .tokens
                .iter()
                .zip(&enc.ids)
                .map(|(_, &id)| TokenView {
                    token: model.tokenizer.decode(&[id], false).unwrap_or_default(),
                    id,
                })
                .collect(),
        },
    );
    let cfg = GenerationConfig {
        // 0 reaches the engine, which refuses it (as HF does) rather than making one anyway.
        max_new_tokens: p.max_new_tokens.min(1024),
        do_sample: p.do_sample,
        temperature: p.temperature,
        top_k: p.top_k,
        top_p: p.top_p,
        repetition_penalty: p.repetition_penalty,
        seed: p.seed,
        top_probs: p.top_probs.min(20),
        ..GenerationConfig::default()
    };
    let start = now_s();
    let mut count = 0usize;
    let out = text_generation::text_generation(&model, &p.prompt, &cfg, |ev| {
        count += 1;
        let rate = count as f64 / (now_s() - start).max(1e-6);
        post(
            id,
            Reply::Token {
                index: ev.index,
                text: ev.text.clone(),
                token: model.tokenizer.decode(&[ev.id], false).unwrap_or_default(),
                token_id: ev.id,
                top: candidates(&ev.top),
                tokens_per_s: rate,
            },
        );
        !is_cancelled(id)
    })
    .await
    .map_err(|e| e.to_string())?;
    let n = out.new_token_ids.len();
    Ok(Reply::Generated {
        text: out.generated_text,
        finish_reason: serde_json::to_value(out.finish_reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        new_tokens: n,
        tokens_per_s: n as f64 / (now_s() - start).max(1e-6),
    })
}

/// Loads a page's default model when its slot is empty (the Compare page uses three).
/// Bars per stage on the Generate page: a stage's top tokens are among the raw top this many plus
/// the tokens the repetition penalty lowered (temperature keeps the order; top-k/p only cut).
const STAGE_BARS: usize = 8;

async fn step_logits(ids: &[u32]) -> Result<Reply, String> {
    use duet_model::generation::processors::top_n;
    let model = state::model("generate")?;
    let logits = text_generation::next_token_logits(&model, ids)
        .await
        .map_err(|e| e.to_string())?;
    let mut named: Vec<u32> = ids.to_vec();
    named.sort_unstable();
    named.dedup();
    let top = top_n(&logits, STAGE_BARS + named.len());
    named.extend(top.into_iter().map(|(i, _)| i as u32));
    named.sort_unstable();
    named.dedup();
    let names = named
        .into_iter()
        .map(|id| TokenView {
            token: model.tokenizer.decode(&[id], false).unwrap_or_default(),
            id,
        })
        .collect();
    Ok(Reply::StepLogits { logits, names })
}

async fn ensure(slot: &str, default: &str) -> Result<Rc<Model>, String> {
    if let Ok(m) = state::model(slot) {
        return Ok(m);
    }
    let source = Source::Default {
        name: default.into(),
    };
    let loaded = load::load(0, &source, Array::new()).await?;
    state::set_model(slot, &loaded.info.label, loaded.model.clone());
    Ok(loaded.model)
}

async fn compare(text: &str) -> Result<Reply, String> {
    use duet_model::defaults as d;
    if text.trim().is_empty() {
        return Err("the sentence is empty".into());
    }
    let gpt = ensure("generate", d::GPT2).await?;
    let sentiment_model = ensure("classify", d::SENTIMENT).await?;
    let ner_model = ensure("ner", d::NER).await?;
    let scored = text_generation::score_tokens(&gpt, text, 3)
        .await
        .map_err(|e| format!("GPT: {e}"))?;
    let positions = scored
        .iter()
        .map(|s| ComparePosition {
            token: s.token.clone(),
            gpt_prob: s.prob,
            gpt_top: candidates(&s.top),
        })
        .collect();
    let sentiment = classify::classify(&sentiment_model, &[text.to_string()])
        .await
        .map_err(|e| format!("BERT: {e}"))?
        .pop()
        .unwrap_or_default();
    let entities = ner::ner(&ner_model, &[text.to_string()], ner::NerOptions::default())
        .await
        .map_err(|e| format!("BERT: {e}"))?
        .pop()
        .unwrap_or_default();
    Ok(Reply::Compared {
        positions,
        gpt_label: state::label("generate"),
        bert_label: format!("{} · {}", state::label("classify"), state::label("ner")),
        sentiment,
        entities,
    })
}

fn trainable(p: &TrainParams, model: &Model) -> Result<Trainable, String> {
    let mut lora = LoraConfig::defaults_for(&model.network);
    lora.rank = p.lora_rank.max(1);
    lora.alpha = 2.0 * lora.rank as f64;
    Trainable::parse(&p.trainable, lora).map_err(|e| e.to_string())
}

/// The stopped run Continue goes on with (taken out of the state; put back if it cannot), or
/// none for a new run, which discards a stopped one.
fn stopped_run(resume: bool) -> Result<Option<(String, TrainState)>, String> {
    let stopped = STATE.with(|s| s.borrow_mut().stopped_run.take());
    if !resume {
        return Ok(None);
    }
    stopped
        .map(Some)
        .ok_or_else(|| "there is no stopped run to continue: start one".to_string())
}

/// What a stopped run remembers of its base model, for Continue to check it is given the same:
/// the loaded files' content hash (two picked folders with the same file names differ), or the
/// source itself where there are no files (the model just fine-tuned).
fn base_key(base: &Source, loaded_hash: &str) -> String {
    if loaded_hash.is_empty() {
        serde_json::to_string(base).unwrap_or_default()
    } else {
        loaded_hash.to_string()
    }
}

async fn train_model(id: u32, base: Source, p: TrainParams, resume: bool) -> Result<Reply, String> {
    let stopped = stopped_run(resume)?;
    let result = fine_tune(id, base, p, stopped.as_ref()).await;
    // A run that stopped again replaces the one it continued; one that failed (another base or
    // other settings, say) leaves that one continuable.
    let (result, keep) = match result {
        Ok((reply, now_stopped)) => (Ok(reply), now_stopped),
        Err(e) => (Err(e), stopped),
    };
    STATE.with(|s| s.borrow_mut().stopped_run = keep);
    result
}

/// One fine-tuning run (continuing the stopped run `from`, with its base's key, when given); its
/// reply, and its state if it was stopped.
async fn fine_tune(
    id: u32,
    base: Source,
    p: TrainParams,
    from: Option<&(String, TrainState)>,
) -> Result<(Reply, Option<(String, TrainState)>), String> {
    let task: Task = p
        .task
        .parse()
        .map_err(|e: duet_model::DuetError| e.to_string())?;
    if p.data.trim().is_empty() {
        return Err("there are no examples: paste or upload training data".into());
    }
    settings::fine_tune(&p)?;
    let data = TaskData::parse(task, &p.data).map_err(|e| e.to_string())?;
    let (train_data, eval_data) = data.split(p.eval_fraction, p.seed);
    let base_label = base.label();
    let loaded = load::load(id, &base, Array::new()).await?;
    let key = base_key(&base, &loaded.info.hash);
    if from.is_some_and(|(k, _)| *k != key) {
        return Err(
            "Continue goes on with the stopped run's base model: put it back, or start afresh \
             with this one"
                .into(),
        );
    }
    // Masked-LM text is cut into blocks of 128 tokens (HF's run_mlm uses 128 for speed, too):
    // the model's 512 would make each step in the tab four times as long.
    let max_len = if task == Task::MaskedLm { 128 } else { 0 };
    let (model, prepared, train_set) =
        prepare((*loaded.model).clone(), task, &train_data, max_len).map_err(|e| e.to_string())?;
    let eval_set = train::encode_examples(&model, &prepared, &eval_data, max_len)
        .map_err(|e| e.to_string())?;
    let trainable = trainable(&p, &model)?;
    let cfg = TrainConfig {
        epochs: p.epochs,
        max_steps: (p.max_steps > 0).then_some(p.max_steps),
        batch_size: p.batch_size,
        learning_rate: p.learning_rate,
        seed: p.seed,
        trainable: trainable.clone(),
        load_best_model_at_end: p.load_best,
        early_stopping_patience: (p.early_stopping_patience > 0)
            .then_some(p.early_stopping_patience),
        random_offsets: p.random_offsets,
        ..TrainConfig::default()
    };
    let per_epoch = train_set.len().div_ceil(cfg.batch_size);
    let mut total = per_epoch * cfg.epochs;
    if let Some(m) = cfg.max_steps {
        total = total.min(m);
    }
    post(
        id,
        Reply::TrainStarted {
            train_examples: train_set.len(),
            eval_examples: eval_set.len(),
            total_steps: total,
            labels: prepared.labels.clone(),
        },
    );
    let saved = std::cell::RefCell::new(None);
    let mut save = |state: TrainState, _: Model| {
        *saved.borrow_mut() = Some(state);
        Ok(())
    };
    let checkpoints = Checkpoints {
        from: from.map(|(_, state)| state),
        // Only when stopped: kept in memory for Continue.
        every: 0,
        save: Some(&mut save),
        // The trained part alone where Continue checks the base by its files' content hash
        // (`base_key`): its frozen weights need not be read back and kept. The model just
        // fine-tuned has no files, and a Stop replaces it, so that base's are kept.
        frozen: loaded.info.hash.is_empty(),
    };
    let outcome = train::train_checkpointed(
        model,
        &prepared,
        &train_set,
        &eval_set,
        cfg,
        checkpoints,
        |ev| {
            match ev {
                TrainEvent::Step {
                    step,
                    total_steps,
                    loss,
                    examples_per_s,
                    elapsed_s,
                    ..
                } => post(
                    id,
                    Reply::TrainStep {
                        step: *step,
                        total_steps: *total_steps,
                        loss: *loss,
                        examples_per_s: *examples_per_s,
                        elapsed_s: *elapsed_s,
                    },
                ),
                TrainEvent::Eval { step, metrics } => post(
                    id,
                    Reply::TrainEval {
                        step: *step,
                        metrics: metrics.clone(),
                    },
                ),
            }
            !is_cancelled(id)
        },
        now_s,
    )
    .await
    .map_err(|e| e.to_string())?;
    let model_info = info(
        &outcome.model,
        format!("{base_label}, fine-tuned"),
        0,
        false,
    );
    let lora = match trainable {
        Trainable::Lora(cfg) => Some(cfg),
        _ => None,
    };
    STATE.with(|s| {
        s.borrow_mut().trained = Some(Trained {
            model: Rc::new(outcome.model),
            lora,
            base_name: base_name(&base),
        })
    });
    let stopped = saved
        .into_inner()
        .filter(|_| outcome.cancelled)
        .map(|state| (key, state));
    let reply = Reply::Trained {
        steps: outcome.steps,
        cancelled: outcome.cancelled,
        stopped_early: outcome.stopped_early,
        best_step: outcome.best_step,
        final_loss: outcome.final_loss,
        metrics: outcome.metrics,
        info: model_info,
    };
    Ok((reply, stopped))
}

/// What an exported adapter names as its base (`base_model_name_or_path`).
fn base_name(base: &Source) -> String {
    match base {
        Source::Default { name } => format!("../{name}"),
        Source::Hub { repo, .. } => repo.clone(),
        Source::Url { base } => base.clone(),
        _ => String::new(),
    }
}

/// Turns files into Blob URLs the page can offer as downloads.
fn blob_urls(files: &ModelFiles) -> Result<Vec<DownloadFile>, String> {
    let mut out = Vec::new();
    for name in files.names() {
        let bytes = files.get(name).expect("listed");
        let arr = js_sys::Uint8Array::from(bytes);
        let parts = Array::of1(&arr);
        let blob =
            web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(|e| format!("{e:?}"))?;
        let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
        out.push(DownloadFile {
            name: name.to_string(),
            url,
            bytes: bytes.len() as u64,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn export_trained(kind: &str) -> Result<Reply, String> {
    if let Some(which) = kind.strip_prefix("pretrained-") {
        return Ok(Reply::Files {
            files: blob_urls(&pretrain::export(which).await?)?,
        });
    }
    let (model, lora, base) = STATE
        .with(|s| {
            s.borrow()
                .trained
                .as_ref()
                .map(|t| (t.model.clone(), t.lora.clone(), t.base_name.clone()))
        })
        .ok_or("nothing has been fine-tuned yet")?;
    let mut files = match (kind, &lora) {
        ("adapter", Some(cfg)) => export::lora_adapter(&model, cfg, &base).await,
        ("adapter", None) => {
            return Err("only a LoRA run gives an adapter: download the full checkpoint".into())
        }
        _ => export::full_checkpoint(&model, DType::F32).await,
    }
    .map_err(|e| e.to_string())?;
    if kind != "adapter" {
        let json = model.tokenizer.to_json().map_err(|e| e.to_string())?;
        files.insert("tokenizer.json", json.into_bytes());
    }
    Ok(Reply::Files {
        files: blob_urls(&files)?,
    })
}

async fn bench() -> Result<Reply, String> {
    use duet_model::bench;
    use duet_model::defaults as d;
    let mut lines = Vec::new();
    let gpt = ensure("generate", d::GPT2).await?;
    let prompt = "ROMEO:";
    let g = bench::bench_generation(&gpt, prompt, 16, now_s)
        .await
        .map_err(|e| e.to_string())?;
    lines.push(BenchLine {
        model: d::GPT2.into(),
        what: "generation, KV cache".into(),
        value: g.cached_tokens_per_s,
        unit: "tokens/s".into(),
    });
    lines.push(BenchLine {
        model: d::GPT2.into(),
        what: "generation, no cache".into(),
        value: g.uncached_tokens_per_s,
        unit: "tokens/s".into(),
    });
    let classifier = ensure("classify", d::SENTIMENT).await?;
    let c = bench::bench_classify(&classifier, 8, 1, now_s)
        .await
        .map_err(|e| e.to_string())?;
    lines.push(BenchLine {
        model: d::SENTIMENT.into(),
        what: "classification, batch 8".into(),
        value: c.sentences_per_s,
        unit: "sentences/s".into(),
    });
    let tagger = ensure("ner", d::NER).await?;
    let n = bench::bench_ner(&tagger, 1, now_s)
        .await
        .map_err(|e| e.to_string())?;
    lines.push(BenchLine {
        model: d::NER.into(),
        what: "NER, one text per call".into(),
        value: n.sentences_per_s,
        unit: "sentences/s".into(),
    });
    Ok(Reply::BenchResult { lines })
}

async fn bench_ops(seq: usize, reps: usize) -> Result<Reply, String> {
    let device = state::device()?;
    let rows =
        duet_model::bench_ops::bench_ops(&device, seq.clamp(1, 512), reps.clamp(1, 100), now_s)
            .await
            .map_err(|e| e.to_string())?;
    let lines = rows
        .into_iter()
        .map(|r| BenchLine {
            model: "ops".into(),
            what: r.op,
            value: r.ms,
            unit: "ms".into(),
        })
        .collect();
    Ok(Reply::BenchResult { lines })
}

/// Fetches each fixture (not cached: they are test data), runs its checks on this device and
/// streams the results fixture by fixture.
async fn self_test(id: u32) -> Result<Reply, String> {
    use duet_model::selftest::{check_fixture, FIXTURES, FIXTURE_FILES};
    let device = state::device()?;
    let total = FIXTURES.len();
    for (done, (name, kind)) in FIXTURES.iter().enumerate() {
        if is_cancelled(id) {
            return Err("cancelled".into());
        }
        let base = fetch::absolute(&format!("./fixtures/{name}/"))?;
        let mut files = ModelFiles::new();
        for file in FIXTURE_FILES {
            if let Some(bytes) = fetch::fetch_uncached(&format!("{base}{file}")).await? {
                files.insert(*file, bytes);
            }
        }
        let expected = fetch::fetch_uncached(&format!("{base}expected.json"))
            .await?
            .ok_or_else(|| format!("the fixture {name} is not served at {base}"))?;
        let expected: serde_json::Value =
            serde_json::from_slice(&expected).map_err(|e| format!("{name}/expected.json: {e}"))?;
        let checks = check_fixture(name, *kind, &files, &expected, &device).await;
        post(
            id,
            Reply::Checks {
                checks,
                done: done + 1,
                total,
            },
        );
    }
    Ok(Reply::Done)
}
