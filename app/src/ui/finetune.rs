//! Fine-tune: task, base model, data (pasted or uploaded), what to train and how; then a live loss
//! chart, progress with ETA, held-out metrics and Stop; then use the result on another page or
//! download it as files.

use duet_protocol::outputs::Metrics;
use leptos::prelude::*;

use super::batch::Batcher;
use super::link;
use super::loss_chart::{polyline, Scale};
use super::widgets::{
    counted, export_files, fmt_bytes, read_picked_text, DownloadList, ErrorLine, NumberField,
};
use super::{engine, shared};
use duet_protocol::{DownloadFile, Reply, Request, Source, TrainParams};

/// The task's page and slot, and the base model it starts from by default.
fn task_target(task: &str) -> (&'static str, &'static str, &'static str) {
    match task {
        "ner" => ("entities", "ner", duet_protocol::defaults::ENCODER),
        "lm" => ("generate", "generate", duet_protocol::defaults::GPT2),
        "mlm" => ("fill-mask", "fill-mask", duet_protocol::defaults::ENCODER),
        _ => ("classify", "classify", duet_protocol::defaults::ENCODER),
    }
}

fn data_hint(task: &str) -> &'static str {
    match task {
        "ner" => "CoNLL: one `token tag` per line, a blank line between sentences.",
        "lm" => "Plain text: the model learns to continue it.",
        "mlm" => "Plain text: the model learns to fill in its words, 15% of them hidden at a time.",
        _ => "TSV or CSV: `text<TAB>label` per line (a header line `sentence label` is fine).",
    }
}

/// An example of the task's data, shown in the empty box (the hint under it says the format).
fn data_example(task: &str) -> &'static str {
    match task {
        "ner" => "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER",
        "lm" | "mlm" => "First Citizen:\nBefore we proceed any further, hear me speak.",
        _ => "a gripping, beautifully acted film\tpositive\nthe plot never comes alive\tnegative",
    }
}

fn metrics_rows(m: &Metrics) -> Vec<(&'static str, String)> {
    let mut rows = vec![("loss", format!("{:.4}", m.loss))];
    for (name, v) in [
        ("accuracy", m.accuracy),
        ("top-5 accuracy", m.top5_accuracy),
        ("macro F1", m.macro_f1),
        ("precision", m.precision),
        ("recall", m.recall),
        ("F1", m.f1),
        ("perplexity", m.perplexity),
    ] {
        if let Some(v) = v {
            rows.push((name, format!("{v:.4}")));
        }
    }
    rows
}

/// What a run that was not stopped by hand ended with: its steps, and where early stopping ended
/// it and which evaluation's weights it kept.
fn finished(
    steps: usize,
    final_loss: f32,
    stopped_early: bool,
    best_step: Option<usize>,
) -> String {
    let mut line = if stopped_early {
        format!(
            "Stopped early after {}: the held-out loss stopped improving; last loss \
             {final_loss:.4}.",
            counted(steps, "step")
        )
    } else {
        format!(
            "Finished after {}; last loss {final_loss:.4}.",
            counted(steps, "step")
        )
    };
    if let Some(step) = best_step {
        line.push_str(&format!(
            " Kept the weights of step {step}, the lowest held-out loss."
        ));
    }
    line
}

#[component]
pub fn FineTunePage() -> impl IntoView {
    let s = shared();
    let task = RwSignal::new("classify".to_string());
    let base = RwSignal::new(String::new());
    let data = RwSignal::new(String::new());
    let trainable = RwSignal::new("lora".to_string());
    let lora_rank = RwSignal::new(8usize);
    let epochs = RwSignal::new(3usize);
    let max_steps = RwSignal::new(0usize);
    let batch = RwSignal::new(8usize);
    let lr = RwSignal::new(1e-3f64);
    let eval_fraction = RwSignal::new(0.2f64);
    let seed = RwSignal::new(42u64);
    let keep_best = RwSignal::new(false);
    let patience = RwSignal::new(0usize);
    let random_offsets = RwSignal::new(false);
    // A link carries the settings (not the data: pasted examples do not fit in an address).
    link::restore("fine-tune", "task", task);
    link::restore("fine-tune", "base", base);
    link::restore("fine-tune", "train", trainable);
    link::restore("fine-tune", "rank", lora_rank);
    link::restore("fine-tune", "epochs", epochs);
    link::restore("fine-tune", "steps", max_steps);
    link::restore("fine-tune", "batch", batch);
    link::restore("fine-tune", "lr", lr);
    link::restore("fine-tune", "eval", eval_fraction);
    link::restore("fine-tune", "seed", seed);
    link::restore("fine-tune", "best", keep_best);
    link::restore("fine-tune", "patience", patience);
    link::restore("fine-tune", "offsets", random_offsets);
    link::sync("fine-tune", move || {
        vec![
            ("task", task.get()),
            ("base", base.get()),
            ("train", trainable.get()),
            ("rank", lora_rank.get().to_string()),
            ("epochs", epochs.get().to_string()),
            ("steps", max_steps.get().to_string()),
            ("batch", batch.get().to_string()),
            ("lr", lr.get().to_string()),
            ("eval", eval_fraction.get().to_string()),
            ("seed", seed.get().to_string()),
            ("best", keep_best.get().to_string()),
            ("patience", patience.get().to_string()),
            ("offsets", random_offsets.get().to_string()),
        ]
    });
    let error = RwSignal::new(String::new());
    let running: RwSignal<Option<u32>> = RwSignal::new(None);
    let losses: RwSignal<Vec<(usize, f32)>> = RwSignal::new(Vec::new());
    let progress = RwSignal::new((0usize, 0usize, 0.0f64, 0.0f64));
    let evals: RwSignal<Vec<(usize, Metrics)>> = RwSignal::new(Vec::new());
    let summary = RwSignal::new(String::new());
    let downloads: RwSignal<Vec<DownloadFile>> = RwSignal::new(Vec::new());
    let used = RwSignal::new(String::new());
    // Whether the last run was stopped before its end (the worker keeps it for Continue).
    let stopped = RwSignal::new(false);
    // The step whose weights the result holds, where "Keep the best" took an earlier one.
    let best: RwSignal<Option<usize>> = RwSignal::new(None);
    // Steps join the curve in batches (see batch.rs): a small model trains faster than the page
    // can redraw the chart per step. Each: (step, total steps, loss, examples/s, elapsed s).
    let step_batches = Batcher::new(move |batch: Vec<(usize, usize, f32, f64, f64)>| {
        if let Some(&(step, total, _, rate, elapsed)) = batch.last() {
            progress.set((step, total, rate, elapsed));
        }
        losses.update(|l| l.extend(batch.into_iter().map(|(step, _, loss, _, _)| (step, loss))));
    });

    // Start begins a new run; Continue takes the run Stop ended to its end, its curve kept.
    let start = move |resume: bool| {
        if running.get_untracked().is_some() {
            return;
        }
        error.set(String::new());
        step_batches.clear();
        if !resume {
            losses.set(Vec::new());
            evals.set(Vec::new());
            // No step count until the new run says how many it takes: the last run's would read
            // as this one's while it prepares.
            progress.set((0, 0, 0.0, 0.0));
            stopped.set(false);
            // (A continued run keeps the stopped one's result until it has its own.)
            s.trained.set(None);
        }
        downloads.set(Vec::new());
        used.set(String::new());
        best.set(None);
        summary.set(
            if resume {
                "Continuing…"
            } else {
                "Preparing…"
            }
            .into(),
        );
        let t = task.get_untracked();
        let base_src = {
            let b = base.get_untracked();
            let b = b.trim();
            if b.is_empty() {
                Source::Default {
                    name: task_target(&t).2.into(),
                }
            } else if b.contains("://") || b.starts_with('.') || b.starts_with('/') {
                Source::Url { base: b.into() }
            } else if duet_protocol::defaults::ALL.contains(&b) {
                Source::Default { name: b.into() }
            } else {
                Source::Hub {
                    repo: b.into(),
                    revision: "main".into(),
                    endpoint: s.hub.get_untracked(),
                }
            }
        };
        let mode = match trainable.get_untracked().as_str() {
            "top" => "top:2".to_string(),
            m => m.to_string(),
        };
        let params = TrainParams {
            // Re-cut blocks are a language model's: the box is off for other tasks.
            random_offsets: t == "lm" && random_offsets.get_untracked(),
            task: t,
            data: data.get_untracked(),
            trainable: mode,
            lora_rank: lora_rank.get_untracked(),
            epochs: epochs.get_untracked(),
            max_steps: max_steps.get_untracked(),
            batch_size: batch.get_untracked(),
            learning_rate: lr.get_untracked(),
            eval_fraction: eval_fraction.get_untracked(),
            seed: seed.get_untracked(),
            load_best: keep_best.get_untracked(),
            early_stopping_patience: patience.get_untracked(),
        };
        let id = engine::send(
            Request::Train {
                base: base_src,
                params,
                resume,
            },
            Vec::new(),
            move |reply| match reply {
                Reply::Progress {
                    file,
                    loaded,
                    total,
                } => summary.set(format!(
                    "Loading the base model: {file} {} of {}",
                    fmt_bytes(loaded),
                    fmt_bytes(total)
                )),
                Reply::TrainStarted {
                    train_examples,
                    eval_examples,
                    total_steps,
                    labels,
                } => {
                    if !resume {
                        progress.set((0, total_steps, 0.0, 0.0));
                    }
                    summary.set(format!(
                        "Training on {train_examples} examples ({eval_examples} held out) for {total_steps} steps{}",
                        if labels.is_empty() { String::new() } else { format!("; labels {}", labels.join(", ")) }
                    ));
                }
                Reply::TrainStep {
                    step,
                    total_steps,
                    loss,
                    examples_per_s,
                    elapsed_s,
                } => step_batches.push((step, total_steps, loss, examples_per_s, elapsed_s)),
                Reply::TrainEval { step, metrics } => {
                    step_batches.flush();
                    evals.update(|e| e.push((step, metrics)));
                }
                Reply::Trained {
                    steps,
                    cancelled,
                    stopped_early,
                    best_step,
                    final_loss,
                    info,
                    ..
                } => {
                    step_batches.flush();
                    running.set(None);
                    stopped.set(cancelled);
                    best.set(best_step);
                    summary.set(if cancelled {
                        format!(
                            "Stopped after {}; last loss {final_loss:.4}. Continue goes on \
                             from step {steps} with these settings.",
                            counted(steps, "step")
                        )
                    } else {
                        finished(steps, final_loss, stopped_early, best_step)
                    });
                    s.trained.set(Some(info));
                }
                Reply::Error { message } => {
                    step_batches.flush();
                    running.set(None);
                    summary.set(String::new());
                    error.set(message);
                }
                _ => {}
            },
        );
        running.set(Some(id));
    };

    let use_result = move || {
        let (page, slot, _) = task_target(&task.get_untracked());
        used.set("Loading…".into());
        engine::send(
            Request::Load {
                slot: slot.into(),
                source: Source::Trained,
            },
            Vec::new(),
            move |reply| match reply {
                Reply::Loaded { info } => {
                    s.models.update(|m| {
                        m.insert(slot.to_string(), info);
                    });
                    used.set(format!("The fine-tuned model is now on the {page} page."));
                }
                Reply::Error { message } => {
                    used.set(String::new());
                    error.set(message);
                }
                _ => {}
            },
        );
    };
    let export = move |kind: &'static str| export_files(kind.into(), downloads, error);
    let upload = move |ev: leptos::ev::Event| read_picked_text(&ev, data, error);
    let eta = move || {
        let (step, total, _, elapsed) = progress.get();
        if step == 0 || step >= total {
            String::new()
        } else {
            format!("ETA {:.0} s", elapsed / step as f64 * (total - step) as f64)
        }
    };
    view! {
        <p class="explain">
            "Fine-tuning runs here, in this tab: forward pass, loss, gradients by back-propagation, an \
             AdamW step — repeated over your examples while a part of the model held out measures how \
             well it generalises."
        </p>
        <fieldset class="controls">
            <legend>"Task and data"</legend>
            <label class="field">
                "Task "
                <select aria-label="Task" prop:value=move || task.get()
                    on:change=move |ev| task.set(event_target_value(&ev))>
                    <option value="classify">"Text classification"</option>
                    <option value="ner">"Named entities (token classification)"</option>
                    <option value="lm">"Language model (GPT)"</option>
                    <option value="mlm">"Masked language model (BERT)"</option>
                </select>
            </label>
            <label class="field">
                "Base model "
                <input type="text" aria-label="Base model"
                    placeholder=move || task_target(&task.get()).2
                    prop:value=move || base.get()
                    on:input=move |ev| base.set(event_target_value(&ev)) />
            </label>
            <label class="block">
                "Training data"
                <textarea aria-label="Training data" rows="8"
                    placeholder=move || data_example(&task.get())
                    prop:value=move || data.get()
                    on:input=move |ev| data.set(event_target_value(&ev))></textarea>
            </label>
            <p class="hint">{move || data_hint(&task.get())}</p>
            <label class="field">
                "Upload data (CSV, TSV, CoNLL, text) "
                <input type="file" aria-label="Upload data" accept=".csv,.tsv,.txt,.conll" on:change=upload />
            </label>
        </fieldset>
        <fieldset class="controls">
            <legend>"What to train and how"</legend>
            <label class="field">
                "Train "
                <select aria-label="What to train" prop:value=move || trainable.get()
                    on:change=move |ev| trainable.set(event_target_value(&ev))>
                    <option value="lora">"LoRA adapters + head"</option>
                    <option value="head">"Head only"</option>
                    <option value="top">"Top 2 layers + head"</option>
                    <option value="all">"All weights"</option>
                </select>
            </label>
            <NumberField label="LoRA rank" value=lora_rank step="1" />
            <NumberField label="Epochs" value=epochs step="1" />
            <NumberField label="Max steps (0: no limit)" value=max_steps step="1" />
            <NumberField label="Batch size" value=batch step="1" />
            <NumberField label="Learning rate" value=lr step="0.0001" />
            <NumberField label="Held-out fraction" value=eval_fraction step="0.05" />
            <NumberField label="Seed" value=seed step="1" />
        </fieldset>
        <fieldset class="controls">
            <legend>"Held-out evaluation (after each epoch)"</legend>
            <label class="field">
                <input type="checkbox" aria-label="Keep the best"
                    prop:checked=move || keep_best.get()
                    on:change=move |ev| keep_best.set(event_target_checked(&ev)) />
                "Keep the best: end with the weights of the lowest held-out loss"
            </label>
            <NumberField label="Stop after evaluations without improvement (0: never)" value=patience step="1" />
            <label class="field">
                <input type="checkbox" aria-label="Re-cut the text each epoch"
                    disabled=move || task.get() != "lm"
                    prop:checked=move || random_offsets.get()
                    on:change=move |ev| random_offsets.set(event_target_checked(&ev)) />
                "Re-cut the text each epoch (language model): blocks start at a new random offset"
            </label>
        </fieldset>
        <div class="actions">
            <button on:click=move |_| start(false) disabled=move || running.get().is_some() || !s.ready.get()>
                "Start training"
            </button>
            <button on:click=move |_| start(true) disabled=move || running.get().is_some() || !stopped.get()>
                "Continue training"
            </button>
            <button disabled=move || running.get().is_none()
                on:click=move |_| if let Some(id) = running.get_untracked() { engine::cancel(id) }>
                "Stop training"
            </button>
        </div>
        <ErrorLine error=error />
        <p class="status" role="status">{move || summary.get()}</p>
        <div class="progress-row">
            <progress aria-label="Training progress"
                max=move || progress.get().1.max(1).to_string()
                value=move || progress.get().0.to_string()></progress>
            <span aria-label="Training step">
                {move || {
                    let (step, total, rate, _) = progress.get();
                    if total == 0 { String::new() } else { format!("step {step} / {total} · {rate:.1} examples/s") }
                }}
            </span>
            <span class="eta">{eta}</span>
        </div>
        <figure class="chart">
            <svg viewBox="0 0 400 120" role="img" aria-label="Training loss chart" preserveAspectRatio="none">
                <polyline fill="none" stroke="currentColor" stroke-width="1.5"
                    points=move || losses.with(|l| polyline(l, Scale::of([&l[..]]), 400.0, 120.0)) />
            </svg>
            <figcaption>
                {move || losses.with(|l| match (l.first(), l.last()) {
                    (Some(a), Some(b)) => format!("Loss: {:.4} at step {} → {:.4} at step {}", a.1, a.0, b.1, b.0),
                    _ => "Loss per step appears here.".to_string(),
                })}
            </figcaption>
        </figure>
        <Show when=move || evals.with(|e| !e.is_empty())>
        <table aria-label="Evaluation metrics">
            <thead><tr><th>"Step"</th><th>"Metric"</th><th>"Value"</th></tr></thead>
            <tbody>
                {move || evals.get().into_iter().flat_map(|(step, m)| {
                    // The kept evaluation's rows are marked: the result is that step's.
                    let kept = best.get() == Some(step);
                    metrics_rows(&m).into_iter().map(move |(name, v)| view! {
                        <tr class:best=kept><td>{step}</td><td>{name}</td><td>{v}</td></tr>
                    })
                }).collect_view()}
            </tbody>
        </table>
        </Show>
        <Show when=move || s.trained.get().is_some()>
            <div class="actions">
                <button on:click=move |_| use_result()>
                    {move || format!("Use it on the {} page", task_target(&task.get()).0)}
                </button>
                <button on:click=move |_| export("full")>"Download full checkpoint"</button>
                <button on:click=move |_| export("adapter") disabled=move || trainable.get() != "lora">
                    "Download LoRA adapter"
                </button>
            </div>
            <p class="status" role="status">{move || used.get()}</p>
            <DownloadList files=downloads />
        </Show>
    }
}
