//! Duet's page: the Leptos UI. It talks to the engine worker (`duet-worker`) through
//! `ui::engine` with the messages of `duet_protocol`; model, tokenizer and GPU live there.

#[cfg(target_arch = "wasm32")]
mod ui;

#[cfg(target_arch = "wasm32")]
mod start {
    use wasm_bindgen::prelude::*;

    /// The page's entry point: constructors once, the panic hook, then mount.
    #[wasm_bindgen(start)]
    pub fn start() {
        duet_protocol::wasm_start::run_constructors();
        console_error_panic_hook::set_once();
        leptos::mount::mount_to_body(crate::ui::App);
    }

    /// How often this module's static constructors ran (1; the end-to-end tests check it).
    #[wasm_bindgen]
    pub fn constructor_runs() -> u32 {
        duet_protocol::wasm_start::constructor_runs()
    }
}
