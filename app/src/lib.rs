//! Duet's browser app. `protocol` is what the page and the worker say to each other; `worker` is
//! the engine's side, `ui` the page's. Both sides are wasm-only; `protocol` also builds natively
//! so its tests run with the rest.

pub mod limits;
pub mod protocol;
#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod worker;
