//! The sampler, stage by stage, for one step of a generation: the distribution after each of HF's
//! processors in `generate`'s order (raw softmax → repetition penalty → temperature → top-k →
//! top-p), the token that was picked marked in each. The step's raw logits are fetched once; the
//! sliders redraw every stage here, with the same code the engine samples with (`duet-sampler`),
//! without asking the engine again.

use std::collections::HashMap;

use duet_protocol::{Reply, Request};
use duet_sampler::{stages, top_n, SamplerSettings};
use leptos::prelude::*;

use super::engine;
use super::widgets::{shown_token, ErrorLine};

/// Bars per stage (the worker names every token that can rank this high in a stage).
const BARS: usize = 8;

/// The step whose stages are shown: which token it picked, from which context.
#[derive(Clone, PartialEq)]
pub struct StageStep {
    pub index: usize,
    pub chosen: u32,
    /// Prompt and the tokens generated before this step.
    pub ids: Vec<u32>,
}

/// One step's logits, as fetched.
struct Fetched {
    index: usize,
    logits: Vec<f32>,
    names: HashMap<u32, String>,
    seen: Vec<u32>,
    chosen: u32,
}

#[component]
pub fn SamplerStages(
    step: Memo<Option<StageStep>>,
    sample: RwSignal<bool>,
    temperature: RwSignal<f32>,
    top_k: RwSignal<usize>,
    top_p: RwSignal<f32>,
    repetition_penalty: RwSignal<f32>,
    /// A generation is running (its steps are still arriving).
    running: Signal<bool>,
) -> impl IntoView {
    let fetched: RwSignal<Option<Fetched>> = RwSignal::new(None);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(String::new());
    let current = move || {
        let index = step.with(|s| s.as_ref().map(|s| s.index));
        fetched.with(|f| f.as_ref().map(|f| f.index)) == index && index.is_some()
    };
    let fetch = move || {
        let Some(st) = step.get_untracked() else {
            return;
        };
        error.set(String::new());
        busy.set(true);
        engine::send(
            Request::StepLogits {
                ids: st.ids.clone(),
            },
            Vec::new(),
            move |reply| {
                busy.set(false);
                match reply {
                    Reply::StepLogits { logits, names } => fetched.set(Some(Fetched {
                        index: st.index,
                        logits,
                        names: names.into_iter().map(|t| (t.id, t.token)).collect(),
                        seen: st.ids.clone(),
                        chosen: st.chosen,
                    })),
                    Reply::Error { message } => error.set(message),
                    _ => {}
                }
            },
        );
    };
    // (stage name, top bars as (token, prob, chosen), the chosen token's probability)
    let drawn = Memo::new(move |_| {
        let settings = SamplerSettings {
            repetition_penalty: repetition_penalty.get(),
            temperature: temperature.get().max(0.01),
            top_k: top_k.get(),
            top_p: top_p.get().clamp(0.01, 1.0),
        };
        fetched.with(|f| {
            let Some(f) = f else { return Vec::new() };
            let st = stages(&settings, &f.logits, &f.seen);
            [
                ("Raw softmax", st.raw),
                ("Repetition penalty", st.repetition_penalty),
                ("Temperature", st.temperature),
                ("Top-k", st.top_k),
                ("Top-p", st.top_p),
            ]
            .into_iter()
            .map(|(name, probs)| {
                let bars: Vec<(String, f32, bool)> = top_n(&probs, BARS)
                    .into_iter()
                    .filter(|&(_, p)| p > 0.0)
                    .map(|(id, p)| {
                        let id = id as u32;
                        let token = f
                            .names
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| format!("#{id}"));
                        (token, p, id == f.chosen)
                    })
                    .collect();
                let chosen = probs.get(f.chosen as usize).copied().unwrap_or(0.0);
                (name, bars, chosen)
            })
            .collect::<Vec<_>>()
        })
    });
    view! {
        <h3>"The sampler, stage by stage"</h3>
        <p class="explain">
            "Before a token is drawn, the model's scores pass through processors in this order: the \
             repetition penalty lowers tokens already in the text, temperature flattens or sharpens the \
             distribution, top-k keeps the k most likely, top-p the smallest set holding p of the \
             probability. Move a slider: every stage redraws from the same scores."
        </p>
        <div class="actions">
            <button on:click=move |_| fetch()
                disabled=move || busy.get() || running.get() || step.with(Option::is_none)>
                {move || step.with(|s| match s {
                    Some(s) => format!("Show the stages of step {}", s.index + 1),
                    None => "Show the stages of a step".to_string(),
                })}
            </button>
            <Show when=move || busy.get()><span role="status">"Running the model on the step's context…"</span></Show>
            <Show when=move || !sample.get()>
                <span class="hint">"Greedy decoding takes the most likely token after the repetition \
                    penalty; the other stages apply when sampling."</span>
            </Show>
        </div>
        <ErrorLine error=error />
        <Show when=current>
            <fieldset class="controls" aria-label="Stage settings">
                {[
                    ("Temperature", "0.1", "2", "0.05"),
                    ("Top-k", "0", "100", "1"),
                    ("Top-p", "0.05", "1", "0.05"),
                    ("Repetition penalty", "1", "2", "0.05"),
                ]
                .into_iter()
                .map(|(label, min, max, step_by)| {
                    let value = move || match label {
                        "Temperature" => temperature.get().to_string(),
                        "Top-k" => top_k.get().to_string(),
                        "Top-p" => top_p.get().to_string(),
                        _ => repetition_penalty.get().to_string(),
                    };
                    let set = move |v: String| match label {
                        "Temperature" => temperature.set(v.parse().unwrap_or(1.0)),
                        "Top-k" => top_k.set(v.parse().unwrap_or(0)),
                        "Top-p" => top_p.set(v.parse().unwrap_or(1.0)),
                        _ => repetition_penalty.set(v.parse().unwrap_or(1.0)),
                    };
                    view! {
                        <label class="field">{label}
                            <input type="range" aria-label=format!("{label} slider") min=min max=max step=step_by
                                prop:value=value
                                on:input=move |ev| set(event_target_value(&ev)) />
                            <span class="slider-value">{value}</span>
                        </label>
                    }
                })
                .collect_view()}
            </fieldset>
            <div class="stages" aria-label="Stages of the step">
                {move || drawn.get().into_iter().map(|(name, bars, chosen)| {
                    let picked = fetched.with(|f| f.as_ref().and_then(|f| f.names.get(&f.chosen).cloned()).unwrap_or_default());
                    view! {
                        <section class="stage" aria-label=format!("Stage: {name}")>
                            <h4>{name}</h4>
                            <ul class="bars">
                                {bars.into_iter().map(|(token, p, is_chosen)| {
                                    let shown = shown_token(&token);
                                    view! {
                                        <li class="bar-row" class:chosen=is_chosen>
                                            <span class="bar-label">{if is_chosen { format!("{shown} ✓") } else { shown }}</span>
                                            <span class="bar" role="meter" aria-label=token.clone()
                                                aria-valuemin="0" aria-valuemax="1" aria-valuenow=p.to_string()>
                                                <span class="fill" style:width=format!("{:.1}%", p * 100.0)></span>
                                            </span>
                                            <span class="bar-value">{format!("{p:.3}")}</span>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                            <p class="hint chosen-prob">{format!("picked “{}”: {chosen:.3}", shown_token(&picked))}</p>
                        </section>
                    }
                }).collect_view()}
            </div>
        </Show>
    }
}
