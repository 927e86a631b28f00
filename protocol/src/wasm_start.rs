//! What both of Duet's wasm modules (the page and the engine worker) do first.
//!
//! The linker (wasm-ld) treats a module that never calls `__wasm_call_ctors` itself as a
//! "command": it wraps every export so that each call from JavaScript first re-runs all static
//! constructors (cubecl's `inventory` registrations among them). wasm-bindgen's glue calls
//! exports for every value that crosses, and WebGPU work crosses constantly, so that cost about
//! two seconds per forward pass. Calling the constructors once, from the module's start function,
//! makes the module a "reactor": exports are left unwrapped.

use std::sync::atomic::{AtomicU32, Ordering};

extern "C" {
    fn __wasm_call_ctors();
}

static CONSTRUCTOR_RUNS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_constructor_run() {
    CONSTRUCTOR_RUNS.fetch_add(1, Ordering::Relaxed);
}

/// A static constructor of our own, so tests can see how often constructors run.
#[used]
#[link_section = ".init_array"]
static COUNT_CONSTRUCTOR_RUN: extern "C" fn() = count_constructor_run;

/// Runs the static constructors; call exactly once, first thing in `#[wasm_bindgen(start)]`.
pub fn run_constructors() {
    // SAFETY: the linker-synthesised function that runs the `.init_array` entries; called once
    // per instance, before any other Rust code runs.
    unsafe { __wasm_call_ctors() }
}

/// How many times the static constructors ran in this instance: 1 when the module is a reactor.
pub fn constructor_runs() -> u32 {
    CONSTRUCTOR_RUNS.load(Ordering::Relaxed)
}
