//! Compare: one sentence through GPT and BERT side by side. GPT scores each token from its left
//! context only; BERT reads the whole sentence at once to classify it and tag its entities.

use duet_protocol::outputs::Entity;
use duet_protocol::outputs::LabelScore;
use leptos::prelude::*;

use super::entities::{highlighted, label_of};
use super::link;
use super::masked_vs_next::MaskedVsNext;
use super::widgets::{shown_token, side_heading, ErrorLine, ScoreBars};
use super::{engine, shared};
use duet_protocol::{ComparePosition, Reply, Request};

#[component]
pub fn ComparePage() -> impl IntoView {
    let s = shared();
    let text =
        RwSignal::new("ROMEO: I will go to Verona tonight, and my heart is glad.".to_string());
    link::restore("compare", "text", text);
    link::sync("compare", move || vec![("text", text.get())]);
    let positions: RwSignal<Vec<ComparePosition>> = RwSignal::new(Vec::new());
    let sentiment: RwSignal<Vec<LabelScore>> = RwSignal::new(Vec::new());
    let entities: RwSignal<Vec<Entity>> = RwSignal::new(Vec::new());
    let compared_text = RwSignal::new(String::new());
    let labels = RwSignal::new((String::new(), String::new()));
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let run = move || {
        error.set(String::new());
        busy.set(true);
        let t = text.get_untracked();
        engine::send(
            Request::Compare { text: t.clone() },
            Vec::new(),
            move |reply| {
                busy.set(false);
                match reply {
                    Reply::Compared {
                        positions: p,
                        gpt_label,
                        bert_label,
                        sentiment: se,
                        entities: e,
                    } => {
                        positions.set(p);
                        sentiment.set(se);
                        entities.set(e);
                        compared_text.set(t.clone());
                        labels.set((gpt_label, bert_label));
                    }
                    Reply::Error { message } => error.set(message),
                    _ => {}
                }
            },
        );
    };
    view! {
        <p class="explain">
            "GPT is autoregressive: at every position it has seen only the tokens to the left, and it \
             guesses the next one. BERT is bidirectional: every token sees the whole sentence, which is \
             why it is used to understand text (classify it, tag it) rather than to write it."
        </p>
        <label class="block">
            "Sentence"
            <textarea aria-label="Sentence to compare" rows="2"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
        </label>
        <div class="actions">
            <button on:click=move |_| run() disabled=move || busy.get() || !s.ready.get()>"Compare"</button>
            <Show when=move || busy.get()><span role="status">"Running both models…"</span></Show>
        </div>
        <ErrorLine error=error />
        <div class="compare">
            <section aria-label="GPT, left to right">
                <h3>{move || side_heading("GPT", &labels.get().0, &["generate"], "left to right")}</h3>
                <p class="hint">"Each token, shaded by how likely GPT found it from the words before it alone."</p>
                <ol class="tokens" aria-label="GPT token probabilities">
                    {move || positions.get().into_iter().map(|p| {
                        let prob = p.gpt_prob.unwrap_or(1.0);
                        let alts = p.gpt_top.iter().map(|c| format!("{} {:.2}", c.token, c.prob)).collect::<Vec<_>>().join(", ");
                        let title = match p.gpt_prob {
                            None => "first token: nothing to its left".to_string(),
                            Some(pr) => format!("p = {pr:.3}; GPT expected: {alts}"),
                        };
                        view! {
                            <li class="token scored" title=title.clone() aria-label=format!("{} {}", p.token, title)
                                style:background-color=format!("rgba(40, 120, 220, {:.2})", 0.1 + 0.8 * prob)>
                                {shown_token(&p.token)}
                            </li>
                        }
                    }).collect_view()}
                </ol>
            </section>
            <section aria-label="BERT, both directions">
                <h3>{move || side_heading("BERT", &labels.get().1, &["classify", "ner"], "whole sentence at once")}</h3>
                <p class="hint">"Its sentiment and its entities, each read from the whole sentence."</p>
                <ScoreBars scores=sentiment.into() name="BERT sentiment" />
                <Show when=move || !compared_text.get().is_empty()>
                <p class="tagged" aria-label="BERT entities">
                    {move || highlighted(&compared_text.get(), &entities.get()).into_iter().map(|(run, tag)| match tag {
                        None => view! { <span>{run}</span> }.into_any(),
                        Some((label, _)) => view! {
                            <mark data-label=label.clone() class=format!("ent ent-{}", label.to_lowercase())>{run}</mark>
                        }.into_any(),
                    }).collect_view()}
                </p>
                </Show>
                <p class="hint">{move || {
                    let n = entities.with(|e| e.len());
                    let kinds: Vec<String> = entities.with(|e| e.iter().map(label_of).collect());
                    if compared_text.get().is_empty() { String::new() } else { format!("{n} entities {}", kinds.join(" ")) }
                }}</p>
            </section>
        </div>
        <MaskedVsNext text=text />
    }
}
