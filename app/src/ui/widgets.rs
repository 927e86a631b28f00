//! Small pieces several pages use: sizes, error lines, score bars.

use duet_protocol::outputs::LabelScore;
use duet_protocol::DownloadFile;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// "12.3 MB" style sizes.
pub fn fmt_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// "1 token", "5 tokens": a count and its noun, in the singular for one.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A token as the token views show it: a space as ␣, a line break as ↵ and a tab as ⇥, so that
/// no token is blank (a newline token was an empty box).
pub fn shown_token(token: &str) -> String {
    token
        .replace(' ', "␣")
        .replace('\n', "↵")
        .replace('\t', "⇥")
}

/// A side's heading on the pages that run GPT and BERT together: `GPT (model) — what it does`.
/// The model is the one that gave the results shown (`ran`), else the one loaded in `slots` (what
/// a run would use, joined by " · " as the engine names them); no parentheses while neither is
/// known.
pub fn side_heading(who: &str, ran: &str, slots: &[&str], what: &str) -> String {
    let model = if ran.is_empty() {
        let s = super::shared();
        s.models.with(|m| {
            slots
                .iter()
                .filter_map(|slot| m.get(*slot).map(|i| i.label.clone()))
                .collect::<Vec<_>>()
                .join(" · ")
        })
    } else {
        ran.to_string()
    };
    if model.is_empty() {
        format!("{who} — {what}")
    } else {
        format!("{who} ({model}) — {what}")
    }
}

/// The error of the last action, where the user is looking (announced to screen readers).
#[component]
pub fn ErrorLine(error: RwSignal<String>) -> impl IntoView {
    view! {
        <Show when=move || !error.get().is_empty()>
            <p class="error" role="alert">{move || error.get()}</p>
        </Show>
    }
}

/// One horizontal bar per label, widest first.
#[component]
pub fn ScoreBars(scores: Signal<Vec<LabelScore>>, name: &'static str) -> impl IntoView {
    view! {
        <ul class="bars" aria-label=name>
            {move || {
                scores
                    .get()
                    .into_iter()
                    .map(|l| {
                        let pct = (l.score * 100.0).clamp(0.0, 100.0);
                        view! {
                            <li class="bar-row" data-label=l.label.clone()>
                                <span class="bar-label">{l.label.clone()}</span>
                                <span class="bar" role="meter" aria-label=l.label.clone()
                                    aria-valuemin="0" aria-valuemax="1" aria-valuenow=l.score.to_string()>
                                    <span class="fill" style:width=format!("{pct:.1}%")></span>
                                </span>
                                <span class="bar-value">{format!("{:.3}", l.score)}</span>
                            </li>
                        }
                    })
                    .collect_view()
            }}
        </ul>
    }
}

/// A labelled number input bound to a signal.
#[component]
pub fn NumberField<T>(label: &'static str, value: RwSignal<T>, step: &'static str) -> impl IntoView
where
    T: std::str::FromStr + std::fmt::Display + Clone + Send + Sync + 'static,
{
    view! {
        <label class="field">
            {label}
            <input
                type="number"
                step=step
                aria-label=label
                prop:value=move || value.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<T>() {
                        value.set(v);
                    }
                }
            />
        </label>
    }
}

/// Reads the file picked in an `<input type=file>` as text into `into` (a failure into `error`).
pub fn read_picked_text(ev: &leptos::ev::Event, into: RwSignal<String>, error: RwSignal<String>) {
    let Some(input) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return;
    };
    let Some(file) = input.files().and_then(|f| f.get(0)) else {
        return;
    };
    let promise = file.text();
    wasm_bindgen_futures::spawn_local(async move {
        match JsFuture::from(promise).await {
            Ok(text) => into.set(text.as_string().unwrap_or_default()),
            Err(_) => error.set(format!("cannot read {}", file.name())),
        }
    });
}

/// The files of the last download, as links with sizes (the browser may have asked first).
#[component]
pub fn DownloadList(files: RwSignal<Vec<DownloadFile>>) -> impl IntoView {
    view! {
        <ul class="downloads" aria-label="Downloads">
            {move || files.get().into_iter().map(|f| view! {
                <li><a href=f.url.clone() download=f.name.clone()>{f.name.clone()}</a>
                    {format!(" ({})", fmt_bytes(f.bytes))}</li>
            }).collect_view()}
        </ul>
    }
}

/// Offers each file as a download (one click of an `<a download>` per file).
pub fn download_all(files: &[DownloadFile]) {
    let doc = window().document().expect("document");
    for f in files {
        if let Ok(a) = doc.create_element("a") {
            let a: web_sys::HtmlAnchorElement = a.unchecked_into();
            a.set_href(&f.url);
            a.set_download(&f.name);
            a.click();
        }
    }
}

/// Asks the engine for the files of `kind` (`Request::Export`), offers them as downloads and lists
/// them in `downloads`; a refusal goes to `error`.
pub fn export_files(kind: String, downloads: RwSignal<Vec<DownloadFile>>, error: RwSignal<String>) {
    error.set(String::new());
    downloads.set(Vec::new());
    super::engine::send(
        duet_protocol::Request::Export { kind },
        Vec::new(),
        move |reply| match reply {
            duet_protocol::Reply::Files { files } => {
                download_all(&files);
                downloads.set(files);
            }
            duet_protocol::Reply::Error { message } => error.set(message),
            _ => {}
        },
    );
}
