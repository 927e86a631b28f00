//! The JSON Duet speaks, and nothing else: the shapes of the Hugging Face pipelines' outputs
//! (what the engine returns and the CLI prints) and the messages between the page and the engine
//! worker. Serde only, so the page links this crate and no engine code (ARCHITECTURE.md).

pub mod defaults;
pub mod messages;
pub mod outputs;
#[cfg(target_arch = "wasm32")]
pub mod wasm_start;

pub use messages::*;
