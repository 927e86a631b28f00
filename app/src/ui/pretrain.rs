//! Pretrain: one text, a fresh GPT (learning to predict the next token, left to right) and a fresh
//! BERT (learning to fill hidden tokens, seeing both sides) of the same size, trained side by side
//! in this tab. Both loss curves on one chart; every few steps GPT continues a sentence of the text
//! and BERT fills a word hidden in it. Stop, continue, download either.

use leptos::prelude::*;

use super::batch::Batcher;
use super::link;
use super::loss_chart::{polyline, Scale};
use super::widgets::{
    counted, export_files, read_picked_text, DownloadList, ErrorLine, NumberField,
};
use super::{engine, shared};
use duet_protocol::outputs::MaskFill;
use duet_protocol::{DownloadFile, PretrainParams, Reply, Request};

/// Tiny Shakespeare's opening (public domain): something to start with on first open.
const SAMPLE_TEXT: &str = include_str!("sample_text.txt");

/// One sample: what both models made of the probe sentence at a step.
#[derive(Clone)]
struct Sample {
    step: usize,
    /// BERT's sentence as it was when the sample was taken.
    masked: String,
    gpt_text: String,
    bert_fills: Vec<MaskFill>,
}

/// Chart size in SVG units.
const W: f64 = 400.0;
const H: f64 = 120.0;

fn caption(name: &str, curve: &[(usize, f32)]) -> String {
    match (curve.first(), curve.last()) {
        (Some(a), Some(b)) => format!("{name} loss {:.3} → {:.3}", a.1, b.1),
        _ => String::new(),
    }
}

/// BERT's sentence with its best fill in brackets, then each fill as `word (score)`, best first.
fn fills_text(masked: &str, fills: &[MaskFill]) -> String {
    let best = fills.first().map(|f| f.token_str.trim()).unwrap_or("?");
    let scored = fills
        .iter()
        .map(|f| format!("{} ({:.2})", f.token_str.trim(), f.score))
        .collect::<Vec<_>>()
        .join(" · ");
    format!(
        "{} — {scored}",
        masked.replacen("[MASK]", &format!("[{best}]"), 1)
    )
}

#[component]
pub fn PretrainPage() -> impl IntoView {
    let s = shared();
    let d = PretrainParams::default();
    let text = RwSignal::new(String::new());
    let n_layer = RwSignal::new(d.n_layer);
    let n_head = RwSignal::new(d.n_head);
    let n_embd = RwSignal::new(d.n_embd);
    let block = RwSignal::new(d.block_size);
    let vocab = RwSignal::new(d.vocab_size);
    let batch = RwSignal::new(d.batch_size);
    let lr = RwSignal::new(d.learning_rate);
    let steps = RwSignal::new(d.steps);
    let every = RwSignal::new(d.sample_every);
    let seed = RwSignal::new(d.seed);
    let prompt = RwSignal::new(String::new());
    let masked = RwSignal::new(String::new());
    // A link carries the settings (not the text: it does not fit in an address).
    for (key, sig) in [
        ("layers", n_layer),
        ("heads", n_head),
        ("width", n_embd),
        ("block", block),
        ("vocab", vocab),
        ("batch", batch),
        ("steps", steps),
        ("every", every),
    ] {
        link::restore("pretrain", key, sig);
    }
    link::restore("pretrain", "lr", lr);
    link::restore("pretrain", "seed", seed);
    link::sync("pretrain", move || {
        vec![
            ("layers", n_layer.get().to_string()),
            ("heads", n_head.get().to_string()),
            ("width", n_embd.get().to_string()),
            ("block", block.get().to_string()),
            ("vocab", vocab.get().to_string()),
            ("batch", batch.get().to_string()),
            ("lr", lr.get().to_string()),
            ("steps", steps.get().to_string()),
            ("every", every.get().to_string()),
            ("seed", seed.get().to_string()),
        ]
    });

    let error = RwSignal::new(String::new());
    let running: RwSignal<Option<u32>> = RwSignal::new(None);
    // Whether the engine holds a run's models (so Continue and the downloads can work).
    let has_run = RwSignal::new(false);
    let summary = RwSignal::new(String::new());
    let gpt_curve: RwSignal<Vec<(usize, f32)>> = RwSignal::new(Vec::new());
    let bert_curve: RwSignal<Vec<(usize, f32)>> = RwSignal::new(Vec::new());
    let progress = RwSignal::new((0usize, 0usize, 0usize, 0.0f64));
    let samples: RwSignal<Vec<Sample>> = RwSignal::new(Vec::new());
    let downloads: RwSignal<Vec<DownloadFile>> = RwSignal::new(Vec::new());
    // Steps join the curves in batches (see batch.rs): tiny models step faster than a redraw.
    // Each: (step, total, GPT loss, BERT loss, elapsed s).
    let step_batches = Batcher::new(move |b: Vec<(usize, usize, f32, f32, f64)>| {
        if let Some(&(step, total, _, _, elapsed)) = b.last() {
            progress.update(|p| *p = (step, total, p.2, elapsed));
        }
        gpt_curve.update(|c| c.extend(b.iter().map(|x| (x.0, x.2))));
        bert_curve.update(|c| c.extend(b.iter().map(|x| (x.0, x.3))));
    });

    let run = move |resume: bool| {
        if running.get_untracked().is_some() {
            return;
        }
        error.set(String::new());
        downloads.set(Vec::new());
        step_batches.clear();
        if !resume {
            gpt_curve.set(Vec::new());
            bert_curve.set(Vec::new());
            samples.set(Vec::new());
            has_run.set(false);
        }
        summary.set(if resume {
            "Going on…".into()
        } else {
            "Training both tokenizers and creating both models…".into()
        });
        let params = PretrainParams {
            text: text.get_untracked(),
            n_layer: n_layer.get_untracked(),
            n_head: n_head.get_untracked(),
            n_embd: n_embd.get_untracked(),
            block_size: block.get_untracked(),
            vocab_size: vocab.get_untracked(),
            batch_size: batch.get_untracked(),
            learning_rate: lr.get_untracked(),
            steps: steps.get_untracked(),
            sample_every: every.get_untracked(),
            seed: seed.get_untracked(),
            prompt: prompt.get_untracked(),
            masked: masked.get_untracked(),
        };
        let id = engine::send(
            Request::Pretrain { params, resume },
            Vec::new(),
            move |reply| match reply {
                Reply::PretrainStarted {
                    gpt_parameters,
                    bert_parameters,
                    gpt_vocab,
                    bert_vocab,
                    gpt_blocks,
                    bert_blocks,
                    prompt: p,
                    masked: m,
                    from_step,
                    total_steps,
                } => {
                    has_run.set(true);
                    prompt.set(p);
                    masked.set(m);
                    progress.set((from_step, total_steps, from_step, 0.0));
                    summary.set(format!(
                        "GPT: {gpt_parameters} parameters, {gpt_vocab} tokens, {gpt_blocks} blocks · \
                         BERT: {bert_parameters} parameters, {bert_vocab} tokens, {bert_blocks} blocks · \
                         steps {from_step} to {total_steps}"
                    ));
                }
                Reply::PretrainStep {
                    step,
                    total_steps,
                    gpt_loss,
                    bert_loss,
                    elapsed_s,
                } => step_batches.push((step, total_steps, gpt_loss, bert_loss, elapsed_s)),
                Reply::PretrainSample {
                    step,
                    gpt_text,
                    bert_fills,
                } => {
                    step_batches.flush();
                    samples.update(|v| {
                        v.insert(
                            0,
                            Sample {
                                step,
                                masked: masked.get_untracked(),
                                gpt_text,
                                bert_fills,
                            },
                        )
                    });
                }
                Reply::Pretrained { steps, cancelled } => {
                    step_batches.flush();
                    running.set(None);
                    summary.set(format!(
                        "{} after {}.",
                        if cancelled { "Stopped" } else { "Finished" },
                        counted(steps, "step")
                    ));
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
    let export =
        move |which: &'static str| export_files(format!("pretrained-{which}"), downloads, error);
    let upload = move |ev: leptos::ev::Event| read_picked_text(&ev, text, error);
    let rate = move || {
        let (step, total, from, elapsed) = progress.get();
        if total == 0 {
            String::new()
        } else if elapsed > 0.0 && step > from {
            format!(
                "step {step} / {total} · {:.1} steps/s",
                (step - from) as f64 / elapsed
            )
        } else {
            format!("step {step} / {total}")
        }
    };
    let scale = move || gpt_curve.with(|g| bert_curve.with(|b| Scale::of([&g[..], &b[..]])));
    let idle = move || running.get().is_none() && s.ready.get();
    view! {
        <p class="explain">
            "The same text, learnt two ways by two new models of the same size: GPT reads left to \
             right and learns to predict each next token; BERT sees the whole block with 15% of its \
             tokens hidden and learns to fill them in from both sides. Both start from random \
             weights and train here, step for step. Every few steps GPT continues a sentence of the \
             text and BERT fills a word hidden in it, so you can watch both learn."
        </p>
        <fieldset class="controls">
            <legend>"Text"</legend>
            <label class="block">
                "Text to learn from"
                <textarea aria-label="Text to learn from" rows="8"
                    placeholder="Plain text: a few pages at least (both models learn their vocabulary from it)."
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            </label>
            <div class="actions">
                <button on:click=move |_| text.set(SAMPLE_TEXT.to_string())>
                    "Use a sample text (Shakespeare, 12 kB)"
                </button>
                <label class="field">
                    "Upload text "
                    <input type="file" aria-label="Upload text" accept=".txt,text/plain" on:change=upload />
                </label>
            </div>
        </fieldset>
        <fieldset class="controls">
            <legend>"Both models"</legend>
            <NumberField label="Layers" value=n_layer step="1" />
            <NumberField label="Heads" value=n_head step="1" />
            <NumberField label="Width" value=n_embd step="16" />
            <NumberField label="Block size (tokens)" value=block step="16" />
            <NumberField label="Vocabulary size" value=vocab step="100" />
        </fieldset>
        <fieldset class="controls">
            <legend>"Training"</legend>
            <NumberField label="Steps" value=steps step="10" />
            <NumberField label="Batch size" value=batch step="1" />
            <NumberField label="Learning rate" value=lr step="0.0005" />
            <NumberField label="Sample every (steps)" value=every step="5" />
            <NumberField label="Seed" value=seed step="1" />
        </fieldset>
        <fieldset class="controls">
            <legend>"What they are shown"</legend>
            <label class="field">
                "GPT continues "
                <input type="text" aria-label="GPT's prompt" placeholder="chosen from the text"
                    prop:value=move || prompt.get()
                    on:input=move |ev| prompt.set(event_target_value(&ev)) />
            </label>
            <label class="field">
                "BERT fills "
                <input type="text" aria-label="BERT's sentence" placeholder="chosen from the text, with one [MASK]"
                    prop:value=move || masked.get()
                    on:input=move |ev| masked.set(event_target_value(&ev)) />
            </label>
        </fieldset>
        <div class="actions">
            <button on:click=move |_| run(false) disabled=move || !idle()>"Start both"</button>
            <button disabled=move || running.get().is_none()
                on:click=move |_| if let Some(id) = running.get_untracked() { engine::cancel(id) }>
                "Stop"
            </button>
            <button on:click=move |_| run(true) disabled=move || !idle() || !has_run.get()>"Continue"</button>
            <button on:click=move |_| export("gpt") disabled=move || !idle() || !has_run.get()>"Download GPT"</button>
            <button on:click=move |_| export("bert") disabled=move || !idle() || !has_run.get()>"Download BERT"</button>
        </div>
        <ErrorLine error=error />
        <p class="status" role="status">{move || summary.get()}</p>
        <div class="progress-row">
            <progress aria-label="Pretraining progress"
                max=move || progress.get().1.max(1).to_string()
                value=move || progress.get().0.to_string()></progress>
            <span aria-label="Pretraining step">{rate}</span>
        </div>
        <figure class="chart two-curves">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label="GPT and BERT loss chart" preserveAspectRatio="none">
                <polyline class="gpt" aria-label="GPT loss" fill="none" stroke-width="1.5"
                    points=move || gpt_curve.with(|c| polyline(c, scale(), W, H)) />
                <polyline class="bert" aria-label="BERT loss" fill="none" stroke-width="1.5"
                    points=move || bert_curve.with(|c| polyline(c, scale(), W, H)) />
            </svg>
            <figcaption>
                <ul class="legend" aria-label="Legend">
                    <li class="gpt">{move || {
                        let c = gpt_curve.with(|g| caption("GPT (next token)", g));
                        if c.is_empty() { "GPT (next token)".to_string() } else { c }
                    }}</li>
                    <li class="bert">{move || {
                        let c = bert_curve.with(|b| caption("BERT (masked tokens)", b));
                        if c.is_empty() { "BERT (masked tokens)".to_string() } else { c }
                    }}</li>
                </ul>
            </figcaption>
        </figure>
        <ol class="samples" aria-label="Samples">
            {move || samples.get().into_iter().map(|x| view! {
                <li data-step=x.step.to_string()>
                    <strong>{format!("Step {}", x.step)}</strong>
                    <p class="gpt-sample"><span class="who">"GPT: "</span>{x.gpt_text.clone()}</p>
                    <p class="bert-fill"><span class="who">"BERT: "</span>{fills_text(&x.masked, &x.bert_fills)}</p>
                </li>
            }).collect_view()}
        </ol>
        <DownloadList files=downloads />
    }
}
