//! Masked vs next-token, on the Compare page: for each word of a sentence, what BERT fills in
//! with that word masked (it reads both sides) next to what GPT expects there from the words to
//! its left alone. The BERT side is the Fill-mask page's model (its embedded default until another
//! is loaded there).

use duet_protocol::outputs::{Guess, WordGuesses};
use duet_protocol::{Reply, Request};
use leptos::prelude::*;

use super::widgets::{shown_token, ErrorLine};
use super::{engine, shared};

/// "tok 0.42, tok 0.17", the guess equal to the word marked.
fn guesses(list: &[Guess], word: &str) -> AnyView {
    let hit = |g: &Guess| {
        g.token
            .trim()
            .trim_start_matches("##")
            .eq_ignore_ascii_case(word)
    };
    list.iter()
        .map(|g| {
            let text = format!("{} {:.2}", shown_token(&g.token), g.score);
            view! { <li class:hit=hit(g)>{text}</li> }
        })
        .collect_view()
        .into_any()
}

#[component]
pub fn MaskedVsNext(text: RwSignal<String>) -> impl IntoView {
    let s = shared();
    let words: RwSignal<Vec<WordGuesses>> = RwSignal::new(Vec::new());
    let labels = RwSignal::new((String::new(), String::new()));
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let run = move || {
        error.set(String::new());
        busy.set(true);
        engine::send(
            Request::MaskedVsNext {
                text: text.get_untracked(),
            },
            Vec::new(),
            move |reply| {
                busy.set(false);
                match reply {
                    Reply::MaskedVsNext {
                        gpt_label,
                        mlm_label,
                        words: w,
                    } => {
                        words.set(w);
                        labels.set((gpt_label, mlm_label));
                    }
                    Reply::Error { message } => error.set(message),
                    _ => {}
                }
            },
        );
    };
    view! {
        <h3>"Masked vs next-token, word by word"</h3>
        <p class="explain">
            "BERT learnt by filling in blanks: hide a word and it guesses from both sides. GPT learnt by \
             continuing text: at the same place it has only the words before. Guesses equal to the \
             hidden word are marked."
        </p>
        <p class="hint">
            "The BERT side is the Fill-mask page's model: the embedded minilm-mlm until you load another \
             masked-language model there (a BERT or DistilBERT with its MLM head)."
        </p>
        <div class="actions">
            <button on:click=move |_| run() disabled=move || busy.get() || !s.ready.get()>
                "Compare word by word"
            </button>
            <Show when=move || busy.get()><span role="status">"Masking each word…"</span></Show>
        </div>
        <ErrorLine error=error />
        <Show when=move || words.with(|w| !w.is_empty())>
            // Scrolls sideways on its own where a screen is narrower than its columns.
            <div class="scroll-x">
            <table class="masked-vs-next" aria-label="Masked vs next-token">
                <thead>
                    <tr>
                        <th scope="col">"Word"</th>
                        <th scope="col">{move || format!("GPT ({}) from the left only", labels.get().0)}</th>
                        <th scope="col">{move || format!("BERT ({}) with the word masked", labels.get().1)}</th>
                    </tr>
                </thead>
                <tbody>
                    {move || words.get().into_iter().map(|w| {
                        let next = if w.next.is_empty() {
                            view! { <span class="hint">"nothing to its left"</span> }.into_any()
                        } else {
                            let actual = w.next_actual.map(|p| format!("the word's first token: {p:.3}")).unwrap_or_default();
                            view! { <ol class="guesses">{guesses(&w.next, &w.word)}</ol><span class="hint">{actual}</span> }.into_any()
                        };
                        view! {
                            <tr>
                                <th scope="row">{w.word.clone()}</th>
                                <td class="next">{next}</td>
                                <td class="masked"><ol class="guesses">{guesses(&w.masked, &w.word)}</ol></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            </div>
        </Show>
    }
}
