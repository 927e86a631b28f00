//! Choosing a page's model: an embedded default, a Hub repo id, a folder URL, or local files
//! (picked or dropped). Shows download progress with a Cancel button, then what was loaded.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{FileList, HtmlInputElement};

use super::engine;
use super::link;
use super::shared;
use super::widgets::{fmt_bytes, ErrorLine};
use duet_protocol::{Reply, Request, Source};

fn files_of(list: Option<FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

#[component]
pub fn ModelPicker(
    /// The worker slot this page uses (not `slot`: Leptos reserves that name for slots).
    for_slot: &'static str,
    /// The page (tab) this picker sits on: the default loads when it is first shown.
    page: &'static str,
    /// Embedded models that suit this page; the first loads by itself.
    defaults: &'static [&'static str],
    /// Hub ids to suggest.
    examples: &'static str,
) -> impl IntoView {
    let slot = for_slot;
    let s = shared();
    let choice = RwSignal::new(defaults.first().map(|d| d.to_string()).unwrap_or_default());
    let repo = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let loading: RwSignal<Option<u32>> = RwSignal::new(None);
    let progress = RwSignal::new((String::new(), 0u64, 0u64));
    let tried_default = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    // Which load the picker shows: a load started while another runs cancels that one, whose
    // late replies ("download cancelled") must neither show nor clear the new one's state.
    let latest = StoredValue::new(0u64);
    // The content hash of the model a link named, while that model is the one loading or shown.
    let expected: RwSignal<Option<String>> = RwSignal::new(None);

    let load = move |source: Source, files: Vec<web_sys::File>| {
        expected.set(None);
        if let Some(id) = loading.get_untracked() {
            engine::cancel(id);
        }
        error.set(String::new());
        progress.set((String::new(), 0, 0));
        let this = latest.get_value() + 1;
        latest.set_value(this);
        let id = engine::send(
            Request::Load {
                slot: slot.into(),
                source,
            },
            files,
            move |reply| {
                let current = latest.get_value() == this;
                match reply {
                    Reply::Progress {
                        file,
                        loaded,
                        total,
                    } if current => progress.set((file, loaded, total)),
                    // What the worker's slot now holds, even from a superseded load that
                    // finished before its cancel arrived.
                    Reply::Loaded { info } => {
                        if current {
                            loading.set(None);
                        }
                        s.models.update(|m| {
                            m.insert(slot.to_string(), info);
                        });
                        s.cache_changed.update(|n| *n += 1);
                    }
                    Reply::Error { message } if current => {
                        loading.set(None);
                        error.set(message);
                    }
                    _ => {}
                }
            },
        );
        loading.set(Some(id));
    };

    // The page's default loads the first time the page is shown with the engine up.
    Effect::new(move |_| {
        if s.ready.get()
            && s.page.get() == page
            && !tried_default.get_untracked()
            && !s.models.with_untracked(|m| m.contains_key(slot))
        {
            tried_default.set(true);
            // Opened by a link: the model it names, and the hash to compare with, first.
            let hub = link::opened(page, "hub").unwrap_or_else(|| s.hub.get_untracked());
            let linked = link::opened(page, "model").and_then(|v| link::source_of(&v, &hub));
            if let Some(source) = linked {
                load(source, Vec::new());
                expected.set(link::opened(page, "hash"));
            } else if let Some(name) = defaults.first() {
                load(
                    Source::Default {
                        name: name.to_string(),
                    },
                    Vec::new(),
                );
            }
        }
    });
    // A restarted engine lost its models: let the default load again.
    Effect::new(move |_| {
        if !s.ready.get() {
            tried_default.set(false);
            loading.set(None);
        }
    });

    let load_default = move |_| {
        let name = choice.get_untracked();
        if !name.is_empty() {
            load(Source::Default { name }, Vec::new());
        }
    };
    let load_hub = move |_| {
        let r = repo.get_untracked().trim().to_string();
        if r.is_empty() {
            error.set("type a Hub repo id first, e.g. gpt2".into());
            return;
        }
        load(
            Source::Hub {
                repo: r,
                revision: "main".into(),
                endpoint: s.hub.get_untracked(),
            },
            Vec::new(),
        );
    };
    let load_url = move |_| {
        let u = url.get_untracked().trim().to_string();
        if u.is_empty() {
            error.set("type the URL of a folder holding config.json and model.safetensors".into());
            return;
        }
        load(Source::Url { base: u }, Vec::new());
    };
    let load_files = move |files: Vec<web_sys::File>| {
        if files.is_empty() {
            return;
        }
        let names = files.iter().map(|f| f.name()).collect();
        load(Source::Files { names }, files);
    };

    let info = move || s.models.with(|m| m.get(slot).cloned());
    view! {
        <div class="picker" role="group" aria-label="Model">
            <div class="picker-row">
                <Show when=move || !defaults.is_empty()>
                    <label>
                        "Embedded model "
                        <select
                            aria-label="Embedded model"
                            prop:value=move || choice.get()
                            on:change=move |ev| choice.set(event_target_value(&ev))
                        >
                            {defaults.iter().map(|d| view! { <option value=*d>{*d}</option> }).collect_view()}
                        </select>
                    </label>
                    <button on:click=load_default>"Load embedded"</button>
                </Show>
            </div>
            <div class="picker-row">
                <label>
                    "Hub repo id "
                    <input
                        type="text"
                        aria-label="Hub repo id"
                        placeholder=examples
                        prop:value=move || repo.get()
                        on:input=move |ev| repo.set(event_target_value(&ev))
                        on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { load_hub(()) }
                    />
                </label>
                <button on:click=move |_| load_hub(())>"Load from Hub"</button>
            </div>
            <div class="picker-row">
                <label>
                    "Folder URL "
                    <input
                        type="url"
                        aria-label="Model URL"
                        placeholder="https://example.org/my-model/"
                        prop:value=move || url.get()
                        on:input=move |ev| url.set(event_target_value(&ev))
                        on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { load_url(()) }
                    />
                </label>
                <button on:click=move |_| load_url(())>"Load from URL"</button>
            </div>
            <div
                class="picker-row dropzone"
                class:dragging=move || dragging.get()
                on:dragover=move |ev: web_sys::DragEvent| {
                    ev.prevent_default();
                    dragging.set(true);
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=move |ev: web_sys::DragEvent| {
                    ev.prevent_default();
                    dragging.set(false);
                    load_files(files_of(ev.data_transfer().and_then(|d| d.files())));
                }
            >
                <label>
                    "Local files (config.json, model.safetensors, tokenizer.json) "
                    <input
                        type="file"
                        multiple
                        aria-label="Model files"
                        on:change=move |ev| {
                            let input: HtmlInputElement = ev.target().unwrap().unchecked_into();
                            load_files(files_of(input.files()));
                            input.set_value("");
                        }
                    />
                </label>
                <span class="hint">"or drop them here"</span>
            </div>
            <Show when=move || loading.get().is_some()>
                <div class="progress-row">
                    <progress
                        aria-label="Download progress"
                        max=move || progress.get().2.max(1).to_string()
                        value=move || progress.get().1.to_string()
                    ></progress>
                    <span class="progress-text">
                        {move || {
                            let (file, loaded, total) = progress.get();
                            if file.is_empty() {
                                "Loading…".to_string()
                            } else if total > 0 {
                                format!("{file}: {} of {}", fmt_bytes(loaded), fmt_bytes(total))
                            } else {
                                format!("{file}: {}", fmt_bytes(loaded))
                            }
                        }}
                    </span>
                    <button on:click=move |_| {
                        if let Some(id) = loading.get_untracked() {
                            engine::cancel(id);
                        }
                    }>"Cancel download"</button>
                </div>
            </Show>
            <ErrorLine error=error />
            {move || {
                let want = expected.get()?;
                let got = info()?.hash;
                (want != got).then(|| view! {
                    <p class="link-warning" role="status" aria-label="Model differs from the link's">
                        {format!("This link was made with a model whose content hash is {want}; the one \
                                  loaded here is {got}, so results may differ from the link's.")}
                    </p>
                })
            }}
            <p class="model-info" aria-label="Loaded model">
                {move || match info() {
                    None => "No model loaded yet.".to_string(),
                    Some(i) => format!(
                        "Loaded {} — {}, {:.1}M parameters{}{}",
                        i.label,
                        i.architecture,
                        i.parameters as f64 / 1e6,
                        if i.labels.is_empty() { String::new() } else { format!(", labels {}", i.labels.join(" ")) },
                        if i.from_cache { ", from the browser cache".to_string() }
                        else if i.downloaded > 0 { format!(", {} downloaded", fmt_bytes(i.downloaded)) }
                        else { String::new() },
                    ),
                }}
            </p>
        </div>
    }
}
