//! Models: the Hub address repo ids resolve against, and the models kept in the browser's cache
//! with their sizes and a Delete button each.

use leptos::prelude::*;

use super::widgets::{fmt_bytes, ErrorLine};
use super::{engine, shared};
use duet_protocol::{CachedModel, Reply, Request};

#[component]
pub fn ModelsPage() -> impl IntoView {
    let s = shared();
    let cached: RwSignal<Vec<CachedModel>> = RwSignal::new(Vec::new());
    let error = RwSignal::new(String::new());
    let on_reply = move |reply| match reply {
        Reply::Cached { models } => cached.set(models),
        Reply::Error { message } => error.set(message),
        _ => {}
    };
    let refresh = move || {
        engine::send(Request::CachedModels, Vec::new(), on_reply);
    };
    Effect::new(move |_| {
        s.cache_changed.get();
        if s.ready.get() && s.page.get() == "models" {
            refresh();
        }
    });
    view! {
        <label class="field">
            "Hugging Face Hub address "
            <input type="url" aria-label="Hub address"
                prop:value=move || s.hub.get()
                on:input=move |ev| s.hub.set(event_target_value(&ev)) />
        </label>
        <p class="hint">"Repo ids typed on the other pages resolve to {address}/{repo}/resolve/main/{file}; set a mirror here."</p>
        <h3>"Cached in this browser"</h3>
        <ErrorLine error=error />
        <button on:click=move |_| refresh()>"Refresh list"</button>
        <table aria-label="Cached models">
            <thead><tr><th>"Model folder"</th><th>"Files"</th><th>"Size"</th><th></th></tr></thead>
            <tbody>
                {move || cached.get().into_iter().map(|m| {
                    let base = m.base.clone();
                    view! {
                        <tr>
                            <td>{m.base.clone()}</td>
                            <td>{m.files}</td>
                            <td>{fmt_bytes(m.bytes)}</td>
                            <td>
                                <button aria-label=format!("Delete {}", m.base)
                                    on:click=move |_| {
                                        engine::send(Request::DeleteCached { base: base.clone() }, Vec::new(), on_reply);
                                    }>
                                    "Delete"
                                </button>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <p class="hint">{move || {
            let total: u64 = cached.with(|c| c.iter().map(|m| m.bytes).sum());
            format!("{} in all. Cached models load without the network, also offline.", fmt_bytes(total))
        }}</p>
    }
}
