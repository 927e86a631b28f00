//! Duet's engine worker: a Web Worker holding the models, tokenizers, the GPU and the weight
//! downloads. The page (`duet-app`) sends it the JSON messages of `duet_protocol`.
//!
//! It is a library module with a start function (a wasm "reactor"), not a binary: see
//! `duet_protocol::wasm_start`. `checks`, `limits`, `manifest` and `settings` are plain logic and
//! also build natively, so their tests run with the rest.

pub mod checks;
pub mod limits;
pub mod manifest;
pub mod settings;

#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod load;
#[cfg(target_arch = "wasm32")]
mod messages;
#[cfg(target_arch = "wasm32")]
mod pretrain;
#[cfg(target_arch = "wasm32")]
mod state;
#[cfg(target_arch = "wasm32")]
mod tasks;

#[cfg(target_arch = "wasm32")]
mod start {
    use wasm_bindgen::prelude::*;

    /// The worker's entry point: constructors once, then listen.
    #[wasm_bindgen(start)]
    pub fn start() {
        duet_protocol::wasm_start::run_constructors();
        crate::messages::start();
    }

    /// How often this module's static constructors ran (1; the end-to-end tests check it).
    #[wasm_bindgen]
    pub fn constructor_runs() -> u32 {
        duet_protocol::wasm_start::constructor_runs()
    }
}
