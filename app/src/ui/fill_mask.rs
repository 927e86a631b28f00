//! Fill-mask: a sentence with the model's mask token, the top-k fills with their scores.

use duet_protocol::outputs::MaskFill;
use leptos::prelude::*;

use super::link;
use super::model_picker::ModelPicker;
use super::widgets::{ErrorLine, NumberField};
use super::{engine, shared};
use duet_protocol::{Reply, Request};

#[component]
pub fn FillMaskPage() -> impl IntoView {
    let s = shared();
    let text = RwSignal::new("Paris is the [MASK] of France.".to_string());
    let top_k = RwSignal::new(5usize);
    link::restore("fill-mask", "text", text);
    link::restore("fill-mask", "k", top_k);
    link::sync("fill-mask", move || {
        let mut p = vec![("text", text.get()), ("k", top_k.get().to_string())];
        p.extend(link::model_params("fill-mask"));
        p
    });
    let fills: RwSignal<Vec<MaskFill>> = RwSignal::new(Vec::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let run = move || {
        error.set(String::new());
        busy.set(true);
        engine::send(
            Request::FillMask {
                slot: "fill-mask".into(),
                text: text.get_untracked(),
                top_k: top_k.get_untracked(),
            },
            Vec::new(),
            move |reply| {
                busy.set(false);
                match reply {
                    Reply::Fills { fills: f } => fills.set(f),
                    Reply::Error { message } => error.set(message),
                    _ => {}
                }
            },
        );
    };
    let loaded = move || s.models.with(|m| m.contains_key("fill-mask"));
    view! {
        <p class="explain">
            "BERT was pre-trained by hiding words and guessing them from both sides. Put the model's mask \
             token ([MASK] for BERT, <mask> for RoBERTa-style tokenizers) where a word should go. \
             The embedded minilm-mlm learnt this from news text in Duet's own training; load another \
             masked LM from the Hub (e.g. distilbert-base-uncased), a URL or files."
        </p>
        <ModelPicker for_slot="fill-mask" page="fill-mask" defaults=&[duet_protocol::defaults::FILL_MASK] examples="distilbert-base-uncased" />
        <label class="block">
            "Text with a mask"
            <textarea aria-label="Text with a mask" rows="2"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
        </label>
        <div class="actions">
            <NumberField label="Top-k" value=top_k step="1" />
            <button on:click=move |_| run() disabled=move || busy.get() || !loaded()>"Fill the mask"</button>
        </div>
        <ErrorLine error=error />
        <Show when=move || fills.with(|f| !f.is_empty())>
        <table aria-label="Fills">
            <thead><tr><th>"Token"</th><th>"Score"</th><th>"Sequence"</th></tr></thead>
            <tbody>
                {move || fills.get().into_iter().map(|f| view! {
                    <tr>
                        <td class="fill-token">{f.token_str.clone()}</td>
                        <td>
                            <span class="bar" role="meter" aria-label=f.token_str.clone() aria-valuemin="0"
                                aria-valuemax="1" aria-valuenow=f.score.to_string()>
                                <span class="fill" style:width=format!("{:.1}%", f.score * 100.0)></span>
                            </span>
                            {format!(" {:.3}", f.score)}
                        </td>
                        <td>{f.sequence.clone()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        </Show>
    }
}
