//! Strategies side by side, on the Generate page: the same prompt continued greedily, by beam
//! search, by top-k and by top-p sampling, generated together, each column with the model's
//! total log-probability of its continuation (higher: the model finds it more likely).

use duet_protocol::outputs::StrategyColumn;
use duet_protocol::{Reply, Request};
use leptos::prelude::*;

use super::widgets::{ErrorLine, NumberField};
use super::{engine, shared};

/// The Generate page's settings the columns share.
#[derive(Clone, Copy)]
pub struct Shared {
    pub prompt: RwSignal<String>,
    pub max_new: RwSignal<usize>,
    pub temperature: RwSignal<f32>,
    pub top_k: RwSignal<usize>,
    pub top_p: RwSignal<f32>,
    pub seed: RwSignal<u64>,
}

#[component]
pub fn StrategyColumns(settings: Shared) -> impl IntoView {
    let s = shared();
    let beams = RwSignal::new(4usize);
    let columns: RwSignal<Vec<StrategyColumn>> = RwSignal::new(Vec::new());
    let shown_prompt = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let run = move || {
        error.set(String::new());
        busy.set(true);
        let prompt = settings.prompt.get_untracked();
        engine::send(
            Request::Strategies {
                prompt: prompt.clone(),
                max_new_tokens: settings.max_new.get_untracked(),
                num_beams: beams.get_untracked(),
                top_k: settings.top_k.get_untracked(),
                top_p: settings.top_p.get_untracked(),
                temperature: settings.temperature.get_untracked(),
                seed: settings.seed.get_untracked(),
            },
            Vec::new(),
            move |reply| {
                busy.set(false);
                match reply {
                    Reply::Strategies { columns: c } => {
                        shown_prompt.set(prompt.clone());
                        columns.set(c);
                    }
                    Reply::Error { message } => error.set(message),
                    _ => {}
                }
            },
        );
    };
    let loaded = move || s.models.with(|m| m.contains_key("generate"));
    view! {
        <h3>"Strategies side by side"</h3>
        <p class="explain">
            "The same prompt and model, four ways to choose each next token: greedy takes the most likely, \
             beam search keeps several candidate texts and returns the best overall, top-k and top-p \
             sample among the likeliest (the settings above, with its seed). Log p is how likely the \
             model finds each continuation: closer to 0 is more likely, and rarely more interesting."
        </p>
        <div class="actions">
            <NumberField label="Beams" value=beams step="1" />
            <button on:click=move |_| run() disabled=move || busy.get() || !loaded()>"Compare strategies"</button>
            <Show when=move || busy.get()><span role="status">"Generating four ways…"</span></Show>
        </div>
        <ErrorLine error=error />
        <div class="strategies">
            {move || columns.get().into_iter().map(|c| {
                let n = c.new_token_ids.len();
                let mean = if n > 0 { c.log_prob / n as f32 } else { 0.0 };
                view! {
                    <section class="strategy" aria-label=format!("Strategy: {}", c.strategy)>
                        <h4>{c.strategy.clone()}</h4>
                        <p class="hint">{c.settings.clone()}</p>
                        <p class="output">
                            <span class="prompt-echo">{shown_prompt.get_untracked()}</span>
                            <span class="continuation">{c.continuation.clone()}</span>
                        </p>
                        <p class="log-prob" data-log-prob=c.log_prob.to_string()>
                            {format!("log p = {:.2} over {n} tokens ({mean:.2} per token)", c.log_prob)}
                        </p>
                    </section>
                }
            }).collect_view()}
        </div>
    }
}
