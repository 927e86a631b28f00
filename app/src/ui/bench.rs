//! Bench: throughput of the embedded defaults on this browser's device.

use leptos::prelude::*;

use super::widgets::ErrorLine;
use super::{engine, shared};
use duet_protocol::outputs::Check;
use duet_protocol::{BenchLine, Reply, Request};

/// The longer of the two lengths the op timings use (the other is one token, a decode step).
const OPS_TOKENS: usize = 128;

#[component]
pub fn BenchPage() -> impl IntoView {
    let s = shared();
    let lines: RwSignal<Vec<BenchLine>> = RwSignal::new(Vec::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let run = move || {
        error.set(String::new());
        lines.set(Vec::new());
        busy.set(true);
        engine::send(Request::Bench, Vec::new(), move |reply| {
            match reply {
                Reply::BenchResult { lines: l } => lines.set(l),
                Reply::Error { message } => error.set(message),
                _ => return,
            }
            busy.set(false);
        });
    };
    // Per-op timings: what one transformer layer's pieces cost on this device.
    let ops: RwSignal<Vec<BenchLine>> = RwSignal::new(Vec::new());
    let ops_error = RwSignal::new(String::new());
    let timing = RwSignal::new(false);
    let time_ops = move || {
        ops.set(Vec::new());
        ops_error.set(String::new());
        timing.set(true);
        let request = Request::BenchOps {
            seq: OPS_TOKENS,
            reps: 5,
        };
        engine::send(request, Vec::new(), move |reply| {
            match reply {
                Reply::BenchResult { lines: l } => ops.set(l),
                Reply::Error { message } => ops_error.set(message),
                _ => return,
            }
            timing.set(false);
        });
    };
    let checks: RwSignal<Vec<Check>> = RwSignal::new(Vec::new());
    let check_progress = RwSignal::new((0usize, 0usize));
    let checking = RwSignal::new(false);
    let check_error = RwSignal::new(String::new());
    let run_checks = move || {
        checks.set(Vec::new());
        check_error.set(String::new());
        checking.set(true);
        engine::send(Request::SelfTest, Vec::new(), move |reply| match reply {
            Reply::Checks {
                checks: c,
                done,
                total,
            } => {
                checks.update(|all| all.extend(c));
                check_progress.set((done, total));
            }
            Reply::Done => checking.set(false),
            Reply::Error { message } => {
                checking.set(false);
                check_error.set(message);
            }
            _ => {}
        });
    };
    let verdict = move || {
        let (passed, total) = checks.with(|c| (c.iter().filter(|c| c.passed).count(), c.len()));
        let (done, of) = check_progress.get();
        if total == 0 {
            String::new()
        } else if done < of {
            format!("{passed} of {total} checks passed so far ({done} of {of} models)")
        } else {
            format!("{passed} of {total} checks passed on {}", s.backend.get())
        }
    };
    view! {
        <p class="explain">"Generation tokens/s (greedy, 16 tokens) and classification / NER sentences/s on the embedded models, measured here."</p>
        <div class="actions">
            <button on:click=move |_| run() disabled=move || busy.get() || !s.ready.get()>"Run benchmark"</button>
            <span>{move || format!("Device: {}", s.backend.get())}</span>
            <Show when=move || busy.get()><span role="status">"Measuring…"</span></Show>
        </div>
        <ErrorLine error=error />
        <Show when=move || lines.with(|v| !v.is_empty())>
        <table aria-label="Benchmark results">
            <thead><tr><th>"Model"</th><th>"Measure"</th><th>"Result"</th></tr></thead>
            <tbody>
                {move || lines.get().into_iter().map(|l| view! {
                    <tr><td>{l.model}</td><td>{l.what}</td><td>{format!("{:.1} {}", l.value, l.unit)}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
        </Show>
        <h3>"Each operation"</h3>
        <p class="explain">
            {format!("The pieces of one BERT-base / GPT-2-small layer (width 768, 12 heads) at 1 token \
              (a generation step) and {OPS_TOKENS} tokens (a sentence), milliseconds per call on this \
              device: where a forward pass spends its time.")}
        </p>
        <div class="actions">
            <button on:click=move |_| time_ops() disabled=move || timing.get() || !s.ready.get()>
                "Time each operation"
            </button>
            <Show when=move || timing.get()><span role="status">"Timing…"</span></Show>
        </div>
        <ErrorLine error=ops_error />
        <Show when=move || ops.with(|v| !v.is_empty())>
        <table aria-label="Operation timings">
            <thead><tr><th>"Operation"</th><th>"Time per call"</th></tr></thead>
            <tbody>
                {move || ops.get().into_iter().map(|l| view! {
                    <tr><td>{l.what}</td><td>{format!("{:.2} {}", l.value, l.unit)}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
        </Show>
        <h3>"Device check"</h3>
        <p class="explain">
            "Runs the engine's parity checks here: tiny checkpoints whose outputs transformers (PyTorch) \
             computed, compared with the tolerances of the native test suite (logits within 1e-4, \
             identical greedy tokens and fill-mask results, pipeline scores within 1e-5)."
        </p>
        <div class="actions">
            <button on:click=move |_| run_checks() disabled=move || checking.get() || !s.ready.get()>
                "Check this device"
            </button>
            <span role="status" aria-label="Device check result">{verdict}</span>
        </div>
        <ErrorLine error=check_error />
        <Show when=move || checks.with(|v| !v.is_empty())>
        <table aria-label="Device checks">
            <thead><tr><th>"Model"</th><th>"Check"</th><th>"Result"</th><th>"Detail"</th></tr></thead>
            <tbody>
                {move || checks.get().into_iter().map(|c| view! {
                    <tr class:failed=!c.passed>
                        <td>{c.fixture}</td><td>{c.check}</td>
                        <td>{if c.passed { "pass" } else { "FAIL" }}</td><td>{c.detail}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        </Show>
    }
}
