//! Classify: a text in, one bar per label out (HF `text-classification` scores).

use duet_protocol::outputs::LabelScore;
use leptos::prelude::*;

use super::link;
use super::model_picker::ModelPicker;
use super::widgets::{ErrorLine, ScoreBars};
use super::{engine, shared};
use duet_protocol::{Reply, Request};

#[component]
pub fn ClassifyPage() -> impl IntoView {
    let s = shared();
    let text = RwSignal::new("A quiet, patient story that rewards attention.".to_string());
    link::restore("classify", "text", text);
    link::sync("classify", move || {
        let mut p = vec![("text", text.get())];
        p.extend(link::model_params("classify"));
        p
    });
    let scores: RwSignal<Vec<LabelScore>> = RwSignal::new(Vec::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let run = move || {
        error.set(String::new());
        busy.set(true);
        engine::send(
            Request::Classify {
                slot: "classify".into(),
                text: text.get_untracked(),
            },
            Vec::new(),
            move |reply| {
                busy.set(false);
                match reply {
                    Reply::Labels { labels } => scores.set(labels),
                    Reply::Error { message } => error.set(message),
                    _ => {}
                }
            },
        );
    };
    let loaded = move || s.models.with(|m| m.contains_key("classify"));
    view! {
        <p class="explain">
            "BERT reads the whole text at once, in both directions, and a small head on top turns its \
             summary of the text into one score per label."
        </p>
        <ModelPicker for_slot="classify" page="classify" defaults=&[duet_protocol::defaults::SENTIMENT]
            examples="distilbert-base-uncased-finetuned-sst-2-english" />
        <label class="block">
            "Text to classify"
            <textarea aria-label="Text to classify" rows="3"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
        </label>
        <div class="actions">
            <button on:click=move |_| run() disabled=move || busy.get() || !loaded()>"Classify"</button>
        </div>
        <ErrorLine error=error />
        <ScoreBars scores=scores.into() name="Label scores" />
    }
}
