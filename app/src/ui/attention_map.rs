//! One model's attention as a heatmap: a table whose rows are the queries (the token reading)
//! and columns the keys (the tokens it reads), each cell shaded by its probability and carrying
//! the number, so the table is its own text alternative. Layer and head are picked here and
//! redraw from the probabilities already in hand.

use duet_protocol::outputs::AttentionMap;
use leptos::prelude::*;

/// GPT-2's byte-level "Ġ" marks a leading space; shown as "␣" like the other token views.
fn shown(token: &str) -> String {
    token.replace('Ġ', "␣").replace('Ċ', "↵")
}

/// `[query][key]` of one head, or the mean over heads when `head` is `None`.
fn grid(map: &AttentionMap, layer: usize, head: Option<usize>) -> Vec<Vec<f32>> {
    let Some(heads) = map.attentions.get(layer) else {
        return Vec::new();
    };
    match head {
        Some(h) => heads.get(h).cloned().unwrap_or_default(),
        None => {
            let t = map.ids.len();
            let n = heads.len().max(1) as f32;
            (0..t)
                .map(|q| {
                    (0..t)
                        .map(|k| heads.iter().map(|h| h[q][k]).sum::<f32>() / n)
                        .collect()
                })
                .collect()
        }
    }
}

#[component]
pub fn AttentionPanel(
    /// "GPT" or "BERT": names the selects and the table.
    who: &'static str,
    map: RwSignal<Option<AttentionMap>>,
) -> impl IntoView {
    let layer = RwSignal::new(0usize);
    // "avg" or a head number.
    let head = RwSignal::new("avg".to_string());
    let focused: RwSignal<Option<usize>> = RwSignal::new(None);
    let layers = move || map.with(|m| m.as_ref().map_or(0, |m| m.attentions.len()));
    let heads = move || {
        map.with(|m| {
            m.as_ref()
                .and_then(|m| m.attentions.first())
                .map_or(0, Vec::len)
        })
    };
    // A new map (another sentence or model) may have fewer layers or heads.
    Effect::new(move |_| {
        let (l, h) = (layers(), heads());
        if layer.get_untracked() >= l.max(1) {
            layer.set(0);
        }
        if head.get_untracked().parse::<usize>().is_ok_and(|x| x >= h) {
            head.set("avg".into());
        }
        focused.set(None);
    });
    let cells = Memo::new(move |_| {
        let h = head.get().parse::<usize>().ok();
        map.with(|m| {
            m.as_ref()
                .map(|m| grid(m, layer.get(), h))
                .unwrap_or_default()
        })
    });
    let tokens = move || {
        map.with(|m| {
            m.as_ref()
                .map(|m| m.tokens.iter().map(|t| shown(t)).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    };
    view! {
        <div class="actions">
            <label class="field">"Layer"
                <select aria-label=format!("{who} layer")
                    prop:value=move || layer.get().to_string()
                    on:change=move |ev| layer.set(event_target_value(&ev).parse().unwrap_or(0))>
                    {move || (0..layers()).map(|l| view! { <option value=l.to_string()>{(l + 1).to_string()}</option> }).collect_view()}
                </select>
            </label>
            <label class="field">"Head"
                <select aria-label=format!("{who} head")
                    prop:value=move || head.get()
                    on:change=move |ev| head.set(event_target_value(&ev))>
                    <option value="avg">"average of all heads"</option>
                    {move || (0..heads()).map(|h| view! { <option value=h.to_string()>{(h + 1).to_string()}</option> }).collect_view()}
                </select>
            </label>
        </div>
        <div class="attention-scroll">
            <table class="attention" class:has-focus=move || focused.get().is_some()
                aria-label=format!("{who} attention")>
                <thead>
                    <tr>
                        <th scope="col">"query ↓ / key →"</th>
                        {move || {
                            let f = focused.get();
                            let row = f.and_then(|q| cells.with(|c| c.get(q).cloned()));
                            tokens().into_iter().enumerate().map(|(k, t)| {
                                // With a query focused, each key shows how much it is read.
                                let read = row.as_ref().and_then(|r| r.get(k).copied());
                                view! {
                                    <th scope="col" class="key"
                                        style:background-color=read.map(|p| format!("rgba(240, 165, 0, {:.2})", p.sqrt()))>
                                        {t}
                                    </th>
                                }
                            }).collect_view()
                        }}
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        let toks = tokens();
                        cells.get().into_iter().enumerate().map(|(q, row)| {
                            let query = toks.get(q).cloned().unwrap_or_default();
                            let tds = row.into_iter().enumerate().map(|(k, p)| {
                                let key = toks.get(k).cloned().unwrap_or_default();
                                let strong = p >= 0.5;
                                view! {
                                    <td data-p=p.to_string() title=format!("{query} → {key}: {p:.3}")
                                        style:background-color=format!("rgba(36, 82, 122, {:.3})", p.sqrt())
                                        class:strong=strong>
                                        {format!("{p:.2}")}
                                    </td>
                                }
                            }).collect_view();
                            view! {
                                <tr class:focus=move || focused.get() == Some(q)>
                                    <th scope="row" tabindex="0"
                                        on:mouseenter=move |_| focused.set(Some(q))
                                        on:focus=move |_| focused.set(Some(q))
                                        on:mouseleave=move |_| focused.set(None)
                                        on:blur=move |_| focused.set(None)>
                                        {query}
                                    </th>
                                    {tds}
                                </tr>
                            }
                        }).collect_view()
                    }}
                </tbody>
            </table>
        </div>
    }
}
