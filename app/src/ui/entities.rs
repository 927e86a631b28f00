//! Entities: pasted text with each entity highlighted as a `<mark data-label>`, a legend, a table
//! of label / score / text / offsets, the aggregation strategy to choose, and under them the
//! sub-tokens with their label scores (`TokenStrip`). One engine run answers every strategy, so
//! switching strategy re-merges at once.

use duet_protocol::outputs::{Entity, NerTokens};
use leptos::prelude::*;

use super::link;
use super::model_picker::ModelPicker;
use super::token_strip::TokenStrip;
use super::widgets::ErrorLine;
use super::{engine, shared};
use duet_protocol::{Reply, Request};

const AGGREGATIONS: [&str; 5] = ["simple", "first", "average", "max", "none"];

/// The entity's label without its B-/I- prefix (for colours and the legend).
pub fn label_of(e: &Entity) -> String {
    let raw = e
        .entity_group
        .clone()
        .or(e.entity.clone())
        .unwrap_or_default();
    match raw.split_once('-') {
        Some((p, rest)) if p == "B" || p == "I" => rest.to_string(),
        _ => raw,
    }
}

/// Splits `text` into plain runs and entity runs by the entities' char offsets.
pub fn highlighted(text: &str, entities: &[Entity]) -> Vec<(String, Option<(String, f32)>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut sorted: Vec<&Entity> = entities.iter().collect();
    sorted.sort_by_key(|e| e.start);
    let mut out = Vec::new();
    let mut at = 0usize;
    for e in sorted {
        let (start, end) = (e.start.min(chars.len()), e.end.min(chars.len()));
        if start < at || start >= end {
            continue; // overlapping or empty spans (aggregation "none" on sub-words)
        }
        if start > at {
            out.push((chars[at..start].iter().collect(), None));
        }
        out.push((
            chars[start..end].iter().collect(),
            Some((label_of(e), e.score)),
        ));
        at = end;
    }
    if at < chars.len() {
        out.push((chars[at..].iter().collect(), None));
    }
    out
}

#[component]
pub fn EntitiesPage() -> impl IntoView {
    let s = shared();
    let text = RwSignal::new(
        "Angela Merkel met Emmanuel Macron in Paris to talk about Airbus and the European Union."
            .to_string(),
    );
    let tagged_text = RwSignal::new(String::new());
    let aggregation = RwSignal::new("simple".to_string());
    link::restore("entities", "text", text);
    link::restore("entities", "aggregation", aggregation);
    link::sync("entities", move || {
        let mut p = vec![("text", text.get()), ("aggregation", aggregation.get())];
        p.extend(link::model_params("ner"));
        p
    });
    let result: RwSignal<Option<NerTokens>> = RwSignal::new(None);
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    // The chosen strategy's merge of the last run.
    let merge = Memo::new(move |_| {
        let a = aggregation.get();
        result.with(|r| {
            r.as_ref()
                .and_then(|r| r.merges.iter().find(|m| m.aggregation == a).cloned())
        })
    });
    let entities = Memo::new(move |_| {
        merge.with(|m| m.as_ref().map(|m| m.entities.clone()).unwrap_or_default())
    });
    let run = move || {
        error.set(String::new());
        busy.set(true);
        let t = text.get_untracked();
        engine::send(
            Request::NerTokens {
                slot: "ner".into(),
                text: t.clone(),
            },
            Vec::new(),
            move |reply| {
                busy.set(false);
                match reply {
                    Reply::NerTokens { result: r } => {
                        tagged_text.set(t.clone());
                        result.set(Some(r));
                    }
                    Reply::Error { message } => error.set(message),
                    _ => {}
                }
            },
        );
    };
    let loaded = move || s.models.with(|m| m.contains_key("ner"));
    let legend = move || {
        let mut labels: Vec<String> = entities.with(|e| e.iter().map(label_of).collect());
        labels.sort();
        labels.dedup();
        labels
    };
    view! {
        <p class="explain">
            "Token classification: BERT gives every token a label (B- begins an entity, I- continues \
             it), and the aggregation strategy merges sub-word tokens back into words and entities."
        </p>
        <ModelPicker for_slot="ner" page="entities" defaults=&[duet_protocol::defaults::NER]
            examples="dslim/bert-base-NER" />
        <label class="block">
            "Text to tag"
            <textarea aria-label="Text to tag" rows="4"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
        </label>
        <div class="actions">
            <label>
                "Aggregation "
                <select aria-label="Aggregation strategy"
                    prop:value=move || aggregation.get()
                    on:change=move |ev| aggregation.set(event_target_value(&ev))>
                    {AGGREGATIONS.iter().map(|a| view! { <option value=*a>{*a}</option> }).collect_view()}
                </select>
            </label>
            <button on:click=move |_| run() disabled=move || busy.get() || !loaded()>"Tag entities"</button>
        </div>
        <ErrorLine error=error />
        // The results appear with the first run: no empty box or table before it.
        <Show when=move || !tagged_text.get().is_empty()>
        <p class="tagged" aria-label="Tagged text">
            {move || {
                highlighted(&tagged_text.get(), &entities.get())
                    .into_iter()
                    .map(|(run, tag)| match tag {
                        None => view! { <span>{run}</span> }.into_any(),
                        Some((label, score)) => {
                            let class = format!("ent ent-{}", label.to_lowercase());
                            let title = format!("{label} {score:.3}");
                            let data_label = label.clone();
                            view! {
                                <mark class=class data-label=data_label title=title>
                                    {run}
                                    <span class="ent-label">{label}</span>
                                </mark>
                            }.into_any()
                        }
                    })
                    .collect_view()
            }}
        </p>
        <ul class="legend" aria-label="Legend">
            {move || legend().into_iter().map(|l| view! {
                <li><mark data-label=l.clone() class=format!("ent ent-{}", l.to_lowercase())>{l.clone()}</mark></li>
            }).collect_view()}
        </ul>
        </Show>
        <Show when=move || entities.with(|e| !e.is_empty())>
        <table aria-label="Entities">
            <thead><tr><th>"Label"</th><th>"Score"</th><th>"Text"</th><th>"Start"</th><th>"End"</th></tr></thead>
            <tbody>
                {move || entities.get().into_iter().map(|e| view! {
                    <tr>
                        <td>{e.entity_group.clone().or(e.entity.clone()).unwrap_or_default()}</td>
                        <td>{format!("{:.3}", e.score)}</td>
                        <td>{e.word.clone()}</td>
                        <td>{e.start}</td>
                        <td>{e.end}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        </Show>
        <Show when=move || !tagged_text.get().is_empty() && entities.with(Vec::is_empty)>
            <p class="status" role="status">"No entities found."</p>
        </Show>
        <TokenStrip result=result merge=merge />
    }
}
