//! Small pieces several pages use: sizes, error lines, score bars.

use duet_protocol::outputs::LabelScore;
use leptos::prelude::*;

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
