//! Sentence embeddings on the Inside page: several sentences become unit vectors (MiniLM by
//! default), drawn as their cosine-similarity matrix; a query ranks the same sentences by
//! similarity. The vectors stay in the page, so a search embeds only the query.

use duet_protocol::{Reply, Request};
use leptos::prelude::*;

use super::engine;
use super::widgets::ErrorLine;

const SENTENCES: &str = "A man is playing a guitar on stage.\n\
    Someone performs music for a crowd.\n\
    The stock market fell sharply today.\n\
    Investors lost money as shares dropped.\n\
    A cat sleeps on the warm windowsill.";

/// Cosine of two unit vectors.
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Who asked for embeddings: the matrix, or a search.
#[derive(Clone, Copy)]
enum Ask {
    Matrix,
    Search,
}

#[component]
pub fn Embeddings() -> impl IntoView {
    let text = RwSignal::new(SENTENCES.to_string());
    let query = RwSignal::new("music at a concert".to_string());
    // The sentences embedded and their vectors.
    let embedded: RwSignal<Vec<(String, Vec<f32>)>> = RwSignal::new(Vec::new());
    let ranked: RwSignal<Vec<(String, f32)>> = RwSignal::new(Vec::new());
    let model = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let ask = move |texts: Vec<String>, what: Ask| {
        error.set(String::new());
        busy.set(true);
        engine::send(
            Request::Embed {
                texts: texts.clone(),
            },
            Vec::new(),
            move |reply| {
                busy.set(false);
                match reply {
                    Reply::Embeddings { model: m, vectors } => {
                        model.set(m);
                        match what {
                            Ask::Matrix => {
                                embedded.set(texts.iter().cloned().zip(vectors).collect());
                                ranked.set(Vec::new());
                            }
                            Ask::Search => {
                                let Some(q) = vectors.first() else { return };
                                let mut r: Vec<(String, f32)> = embedded.with(|e| {
                                    e.iter().map(|(s, v)| (s.clone(), cosine(q, v))).collect()
                                });
                                r.sort_by(|a, b| b.1.total_cmp(&a.1));
                                ranked.set(r);
                            }
                        }
                    }
                    Reply::Error { message } => error.set(message),
                    _ => {}
                }
            },
        );
    };
    let lines = move || {
        text.get_untracked()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let compare = move || {
        let l = lines();
        if l.len() < 2 {
            error.set("Give at least two sentences, one per line.".into());
            return;
        }
        ask(l, Ask::Matrix);
    };
    let search = move || {
        let q = query.get_untracked();
        if q.trim().is_empty() {
            error.set("The search is empty.".into());
            return;
        }
        ask(vec![q], Ask::Search);
    };
    view! {
        <h3>"Embeddings: sentences as vectors"</h3>
        <p class="explain">
            "An encoder turns a whole sentence into one vector (here the mean of its token states, \
             scaled to length 1). Sentences that mean similar things point in similar directions: \
             their cosine similarity is near 1, unrelated ones near 0."
        </p>
        <label class="block">
            "Sentences, one per line"
            <textarea aria-label="Sentences to embed" rows="5"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
        </label>
        <div class="actions">
            <button on:click=move |_| compare() disabled=move || busy.get()>"Compare sentences"</button>
            <Show when=move || busy.get()><span role="status">"Embedding…"</span></Show>
            <Show when=move || !model.get().is_empty()>
                <span class="hint">{move || format!("Model: {}", model.get())}</span>
            </Show>
        </div>
        <ErrorLine error=error />
        <Show when=move || embedded.with(|e| !e.is_empty())>
            <div class="attention-scroll">
                <table class="attention similarity" aria-label="Sentence similarity">
                    <thead>
                        <tr>
                            <th scope="col">"cosine"</th>
                            {move || embedded.with(|e| (1..=e.len()).map(|i| view! {
                                <th scope="col">{i.to_string()}</th>
                            }).collect_view())}
                        </tr>
                    </thead>
                    <tbody>
                        {move || embedded.with(|e| e.iter().enumerate().map(|(i, (s, a))| {
                            let cells = e.iter().map(|(_, b)| {
                                let c = cosine(a, b);
                                let strong = c >= 0.5;
                                view! {
                                    <td data-sim=c.to_string() class:strong=strong
                                        style:background-color=format!("rgba(36, 82, 122, {:.3})", c.clamp(0.0, 1.0))>
                                        {format!("{c:.2}")}
                                    </td>
                                }
                            }).collect_view();
                            view! {
                                <tr>
                                    <th scope="row" class="sentence">{format!("{}. {s}", i + 1)}</th>
                                    {cells}
                                </tr>
                            }
                        }).collect_view())}
                    </tbody>
                </table>
            </div>
            <div class="actions">
                <label class="field">"Search these sentences"
                    <input type="search" aria-label="Search the sentences"
                        prop:value=move || query.get()
                        on:input=move |ev| query.set(event_target_value(&ev))
                        on:keydown=move |ev| if ev.key() == "Enter" { search() } />
                </label>
                <button on:click=move |_| search() disabled=move || busy.get()>"Rank"</button>
            </div>
            <ol class="ranked" aria-label="Ranked sentences">
                {move || ranked.get().into_iter().map(|(s, c)| view! {
                    <li data-sim=c.to_string()><span class="bar-value">{format!("{c:.3}")}</span>" "{s}</li>
                }).collect_view()}
            </ol>
        </Show>
    }
}
