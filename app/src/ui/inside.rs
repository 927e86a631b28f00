//! Inside: the same sentence through GPT and BERT, with where each token looks. GPT's attention is
//! a triangle (a token reads only what came before it); BERT's a full square (every token reads
//! the whole sentence): the difference between the two families, drawn from the running models.
//! Below, what an encoder makes of whole sentences: embeddings and their similarities.

use duet_protocol::outputs::AttentionMap;
use duet_protocol::{Reply, Request};
use leptos::prelude::*;

use super::attention_map::AttentionPanel;
use super::embeddings::Embeddings;
use super::link;
use super::widgets::{side_heading, ErrorLine};
use super::{engine, shared};

/// The pages whose encoder the BERT side can show.
const ENCODERS: [(&str, &str); 3] = [
    ("classify", "Classify's model"),
    ("ner", "Entities' model"),
    ("fill-mask", "Fill-mask's model"),
];

#[component]
pub fn InsidePage() -> impl IntoView {
    let s = shared();
    let text = RwSignal::new("The cat sat on the mat because it was tired.".to_string());
    let encoder = RwSignal::new("classify".to_string());
    link::restore("inside", "text", text);
    link::restore("inside", "encoder", encoder);
    link::sync("inside", move || {
        vec![("text", text.get()), ("encoder", encoder.get())]
    });
    let gpt: RwSignal<Option<AttentionMap>> = RwSignal::new(None);
    let bert: RwSignal<Option<AttentionMap>> = RwSignal::new(None);
    let labels = RwSignal::new((String::new(), String::new()));
    let error = RwSignal::new(String::new());
    let pending = RwSignal::new(0u32);
    let ask = move |slot: String, side: RwSignal<Option<AttentionMap>>, gpt_side: bool| {
        pending.update(|n| *n += 1);
        engine::send(
            Request::Attention {
                slot,
                text: text.get_untracked(),
            },
            Vec::new(),
            move |reply| {
                pending.update(|n| *n = n.saturating_sub(1));
                match reply {
                    Reply::Attention { model, result } => {
                        side.set(Some(result));
                        labels.update(|l| if gpt_side { l.0 = model } else { l.1 = model });
                    }
                    Reply::Error { message } => {
                        side.set(None);
                        let who = if gpt_side { "GPT" } else { "BERT" };
                        error.update(|e| {
                            if !e.is_empty() {
                                e.push_str(" · ");
                            }
                            e.push_str(&format!("{who}: {message}"));
                        });
                    }
                    _ => {}
                }
            },
        );
    };
    let run = move || {
        error.set(String::new());
        ask("generate".into(), gpt, true);
        ask(encoder.get_untracked(), bert, false);
    };
    let busy = move || pending.get() > 0;
    view! {
        <p class="explain">
            "Attention is where each token looks while the model reads. Each row is a token (the query); \
             each cell, how much of its attention goes to the token of that column (the key); a row sums \
             to 1. GPT may only look left, so its map is a triangle; BERT looks both ways, so its map is \
             a square. Hover over or focus a row's token to see what it reads."
        </p>
        <label class="block">
            "Sentence"
            <textarea aria-label="Sentence to look inside" rows="2"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
        </label>
        <div class="actions">
            <label class="field">"BERT side"
                <select aria-label="Encoder to show"
                    prop:value=move || encoder.get()
                    on:change=move |ev| encoder.set(event_target_value(&ev))>
                    {ENCODERS.iter().map(|(slot, name)| view! { <option value=*slot>{*name}</option> }).collect_view()}
                </select>
            </label>
            <button on:click=move |_| run() disabled=move || busy() || !s.ready.get()>"Show attention"</button>
            <Show when=busy><span role="status">"Running both models…"</span></Show>
        </div>
        <ErrorLine error=error />
        <div class="compare">
            <section aria-label="GPT attention, left to right">
                <h3>{move || side_heading("GPT", &labels.get().0, &["generate"], "each token reads only the past")}</h3>
                <Show when=move || gpt.with(Option::is_some)>
                    <AttentionPanel who="GPT" map=gpt />
                </Show>
            </section>
            <section aria-label="BERT attention, both directions">
                <h3>{move || side_heading("BERT", &labels.get().1, &[encoder.get().as_str()], "each token reads the whole sentence")}</h3>
                <Show when=move || bert.with(Option::is_some)>
                    <AttentionPanel who="BERT" map=bert />
                </Show>
            </section>
        </div>
        <Embeddings />
    }
}
