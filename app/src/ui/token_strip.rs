//! Under the entities: every sub-token BERT labelled, its three most likely labels as bars, and
//! which entity the chosen aggregation merged it into (tokens of one entity share its number).

use duet_protocol::outputs::{NerMerge, NerTokens};
use leptos::prelude::*;

/// How many labels each token shows.
const TOP: usize = 3;

#[component]
pub fn TokenStrip(
    result: RwSignal<Option<NerTokens>>,
    merge: Memo<Option<NerMerge>>,
) -> impl IntoView {
    view! {
        <Show when=move || result.with(Option::is_some)>
            <h3>"Tokens"</h3>
            <p class="explain">
                "What the model saw: each sub-token (\"##\" continues a word) with its most likely \
                 labels. The aggregation above decides how tokens join into entities; switching it \
                 re-merges these scores without running the model again."
            </p>
            <table class="token-strip" aria-label="Tokens">
                <thead><tr><th>"Token"</th><th>"Entity"</th><th>"Most likely labels"</th></tr></thead>
                <tbody>
                    {move || {
                        let Some(r) = result.get() else { return Vec::new() };
                        let joined = merge.with(|m| m.as_ref().map(|m| m.joined.clone()).unwrap_or_default());
                        r.tokens
                            .iter()
                            .enumerate()
                            .map(|(i, t)| {
                                let mut top: Vec<(usize, f32)> = t.scores.iter().copied().enumerate().collect();
                                top.sort_by(|a, b| b.1.total_cmp(&a.1));
                                top.truncate(TOP);
                                let entity = joined.get(i).copied().flatten();
                                let entity_text = entity.map_or("—".to_string(), |e| (e + 1).to_string());
                                let bars = top
                                    .into_iter()
                                    .map(|(l, p)| {
                                        let label = r.labels.get(l).cloned().unwrap_or_default();
                                        let name = format!("{} {label}", t.token);
                                        view! {
                                            <li class="bar-row">
                                                <span class="bar-label">{label}</span>
                                                <span class="bar" role="meter" aria-label=name
                                                    aria-valuemin="0" aria-valuemax="1" aria-valuenow=p.to_string()>
                                                    <span class="fill" style:width=format!("{:.1}%", p * 100.0)></span>
                                                </span>
                                                <span class="bar-value">{format!("{p:.3}")}</span>
                                            </li>
                                        }
                                    })
                                    .collect_view();
                                view! {
                                    <tr class:subword=t.is_subword data-entity=entity.map(|e| e.to_string())>
                                        <td class="tok">{t.token.clone()}</td>
                                        <td class="tok-entity">{entity_text}</td>
                                        <td><ul class="bars">{bars}</ul></td>
                                    </tr>
                                }
                            })
                            .collect::<Vec<_>>()
                    }}
                </tbody>
            </table>
        </Show>
    }
}
