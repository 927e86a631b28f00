//! Generate: a prompt, the sampling controls, the continuation streaming in, Stop, tokens/s; and,
//! for teaching, the prompt as tokens and each new token's most likely alternatives as bars.

use leptos::prelude::*;

use super::batch::Batcher;
use super::link;
use super::model_picker::ModelPicker;
use super::sampler_stages::{SamplerStages, StageStep};
use super::strategies::{self, StrategyColumns};
use super::widgets::{counted, shown_token, ErrorLine, NumberField};
use super::{engine, shared};
use duet_protocol::{Candidate, GenerateParams, Reply, Request, TokenView};

#[derive(Clone, PartialEq)]
struct Step {
    index: usize,
    id: u32,
    token: String,
    top: Vec<Candidate>,
}

/// A token as it reaches the page, before the view shows it.
struct Arrived {
    text: String,
    step: Step,
    tokens_per_s: f64,
}

#[component]
pub fn GeneratePage() -> impl IntoView {
    let s = shared();
    let d = GenerateParams::default();
    let prompt = RwSignal::new("ROMEO:".to_string());
    let max_new = RwSignal::new(d.max_new_tokens);
    let sample = RwSignal::new(d.do_sample);
    let temperature = RwSignal::new(d.temperature);
    let top_k = RwSignal::new(d.top_k);
    let top_p = RwSignal::new(d.top_p);
    let rep = RwSignal::new(d.repetition_penalty);
    let seed = RwSignal::new(d.seed);
    // A shared link's inputs, then the address kept in step with them.
    link::restore("generate", "prompt", prompt);
    link::restore("generate", "max", max_new);
    link::restore("generate", "sample", sample);
    link::restore("generate", "t", temperature);
    link::restore("generate", "k", top_k);
    link::restore("generate", "p", top_p);
    link::restore("generate", "rep", rep);
    link::restore("generate", "seed", seed);
    link::sync("generate", move || {
        let mut p = vec![
            ("prompt", prompt.get()),
            ("max", max_new.get().to_string()),
            ("sample", sample.get().to_string()),
            ("t", temperature.get().to_string()),
            ("k", top_k.get().to_string()),
            ("p", top_p.get().to_string()),
            ("rep", rep.get().to_string()),
            ("seed", seed.get().to_string()),
        ];
        p.extend(link::model_params("generate"));
        p
    });
    let output = RwSignal::new(String::new());
    let prompt_tokens: RwSignal<Vec<TokenView>> = RwSignal::new(Vec::new());
    let steps: RwSignal<Vec<Step>> = RwSignal::new(Vec::new());
    let rate = RwSignal::new(0.0f64);
    let status = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let running: RwSignal<Option<u32>> = RwSignal::new(None);
    let selected: RwSignal<Option<usize>> = RwSignal::new(None);
    // Tokens join the view in batches (see batch.rs), appended: shown tokens are never rebuilt.
    let arrivals = Batcher::new(move |batch: Vec<Arrived>| {
        output.update(|o| batch.iter().for_each(|a| o.push_str(&a.text)));
        if let Some(last) = batch.last() {
            rate.set(last.tokens_per_s);
        }
        steps.update(|v| v.extend(batch.into_iter().map(|a| a.step)));
    });

    let start = move || {
        if running.get_untracked().is_some() {
            return;
        }
        error.set(String::new());
        arrivals.clear();
        output.set(String::new());
        steps.set(Vec::new());
        selected.set(None);
        status.set("Generating…".into());
        let params = GenerateParams {
            prompt: prompt.get_untracked(),
            max_new_tokens: max_new.get_untracked(),
            do_sample: sample.get_untracked(),
            temperature: temperature.get_untracked(),
            top_k: top_k.get_untracked(),
            top_p: top_p.get_untracked(),
            repetition_penalty: rep.get_untracked(),
            seed: seed.get_untracked(),
            top_probs: 5,
        };
        let id = engine::send(
            Request::Generate {
                slot: "generate".into(),
                params,
            },
            Vec::new(),
            move |reply| match reply {
                Reply::PromptTokens { tokens } => prompt_tokens.set(tokens),
                Reply::Token {
                    index,
                    text,
                    token,
                    top,
                    tokens_per_s,
                    token_id,
                } => arrivals.push(Arrived {
                    text,
                    step: Step {
                        index,
                        id: token_id,
                        token,
                        top,
                    },
                    tokens_per_s,
                }),
                Reply::Generated {
                    finish_reason,
                    new_tokens,
                    tokens_per_s,
                    ..
                } => {
                    arrivals.flush();
                    running.set(None);
                    rate.set(tokens_per_s);
                    status.set(match finish_reason.as_str() {
                        "cancelled" => format!("Stopped after {}.", counted(new_tokens, "token")),
                        "eos" => {
                            format!(
                                "Done: the model ended the text after {}.",
                                counted(new_tokens, "token")
                            )
                        }
                        "context_full" => {
                            format!(
                                "Done: the context window is full ({}).",
                                counted(new_tokens, "token")
                            )
                        }
                        _ => format!("Done: {}.", counted(new_tokens, "token")),
                    });
                }
                Reply::Error { message } => {
                    arrivals.flush();
                    running.set(None);
                    status.set(String::new());
                    error.set(message);
                }
                _ => {}
            },
        );
        running.set(Some(id));
    };

    let loaded = move || s.models.with(|m| m.contains_key("generate"));
    // The step the stages view explains: the selected one, else the last; with its context.
    let stage_step = Memo::new(move |_| {
        let pick = selected.get();
        let prompt_ids: Vec<u32> = prompt_tokens.with(|p| p.iter().map(|t| t.id).collect());
        steps.with(|all| {
            let pick = pick.or_else(|| all.last().map(|s| s.index))?;
            let at = all.iter().position(|s| s.index == pick)?;
            let mut ids = prompt_ids;
            ids.extend(all[..at].iter().map(|s| s.id));
            Some(StageStep {
                index: pick,
                chosen: all[at].id,
                ids,
            })
        })
    });
    view! {
        <p class="explain">
            "GPT reads left to right and predicts one token at a time: each new token is chosen from the \
             model's distribution over its vocabulary, then fed back in."
        </p>
        <ModelPicker for_slot="generate" page="generate" defaults=&[duet_protocol::defaults::GPT2]
            examples="gpt2, distilgpt2" />
        <label class="block">
            "Prompt"
            <textarea
                aria-label="Prompt"
                rows="3"
                prop:value=move || prompt.get()
                on:input=move |ev| prompt.set(event_target_value(&ev))
            ></textarea>
        </label>
        <fieldset class="controls">
            <legend>"Sampling"</legend>
            <NumberField label="Max new tokens" value=max_new step="1" />
            <label class="field">
                <input
                    type="checkbox"
                    aria-label="Sample"
                    prop:checked=move || sample.get()
                    on:change=move |ev| sample.set(event_target_checked(&ev))
                />
                "Sample (off: greedy)"
            </label>
            <NumberField label="Temperature" value=temperature step="0.1" />
            <NumberField label="Top-k" value=top_k step="1" />
            <NumberField label="Top-p" value=top_p step="0.05" />
            <NumberField label="Repetition penalty" value=rep step="0.1" />
            <NumberField label="Seed" value=seed step="1" />
        </fieldset>
        <div class="actions">
            <button on:click=move |_| start() disabled=move || running.get().is_some() || !loaded()>
                "Generate"
            </button>
            <button
                on:click=move |_| {
                    if let Some(id) = running.get_untracked() {
                        engine::cancel(id);
                    }
                }
                disabled=move || running.get().is_none()
            >
                "Stop"
            </button>
            <span class="rate" aria-label="Tokens per second">
                {move || if rate.get() > 0.0 { format!("{:.1} tokens/s", rate.get()) } else { String::new() }}
            </span>
        </div>
        <ErrorLine error=error />
        <p class="status" role="status">{move || status.get()}</p>
        <div class="output" aria-label="Generated text" aria-live="polite">
            <span class="prompt-echo">{move || prompt_tokens.with(|t| t.iter().map(|t| t.token.clone()).collect::<String>())}</span>
            <span class="continuation">{move || output.get()}</span>
        </div>
        <h3>"Prompt as tokens"</h3>
        <p class="hint">"What the model reads: the prompt cut into tokens of its vocabulary (␣ is a space, ↵ a line break)."</p>
        <ol class="tokens" aria-label="Prompt tokens">
            {move || {
                prompt_tokens
                    .get()
                    .into_iter()
                    .map(|t| view! { <li class="token" title=format!("id {}", t.id)>{shown_token(&t.token)}</li> })
                    .collect_view()
            }}
        </ol>
        <h3>"Each new token and its alternatives"</h3>
        <p class="hint">"Each token the model picks, in order; choose one to see the choices it weighed there."</p>
        // Keyed: a new token adds one item; the ones shown are never rebuilt (rebuilding the
        // whole list per token made the page, not the engine, the bottleneck of long runs).
        <ol class="tokens" aria-label="Generated tokens">
            <For
                each=move || steps.with(|v| v.iter().map(|st| (st.index, st.token.clone())).collect::<Vec<_>>())
                key=|(i, _)| *i
                children=move |(i, token)| {
                    view! {
                        <li>
                            <button
                                class="token"
                                aria-pressed=move || (selected.get() == Some(i)).to_string()
                                on:click=move |_| selected.set(Some(i))
                            >
                                {shown_token(&token)}
                            </button>
                        </li>
                    }
                }
            />
        </ol>
        <div class="next-probs" aria-label="Next-token probabilities">
            {move || {
                let pick = selected.get();
                let shown = steps.with(|all| {
                    let pick = pick.or_else(|| all.last().map(|s| s.index));
                    all.iter().find(|s| Some(s.index) == pick).cloned()
                });
                shown
                    .map(|st| {
                        view! {
                            <p>{format!("Step {}: the model's top choices before it picked “{}”", st.index + 1, st.token)}</p>
                            <ul class="bars">
                                {st.top
                                    .into_iter()
                                    .map(|c| {
                                        let pct = c.prob * 100.0;
                                        view! {
                                            <li class="bar-row">
                                                <span class="bar-label">{shown_token(&c.token)}</span>
                                                <span class="bar" role="meter" aria-label=c.token.clone()
                                                    aria-valuemin="0" aria-valuemax="1" aria-valuenow=c.prob.to_string()>
                                                    <span class="fill" style:width=format!("{pct:.1}%")></span>
                                                </span>
                                                <span class="bar-value">{format!("{:.3}", c.prob)}</span>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                    })
            }}
        </div>
        <SamplerStages step=stage_step sample=sample temperature=temperature top_k=top_k top_p=top_p
            repetition_penalty=rep running=Signal::derive(move || running.get().is_some()) />
        <StrategyColumns settings=strategies::Shared {
            prompt,
            max_new,
            temperature,
            top_k,
            top_p,
            seed,
        } />
    }
}
