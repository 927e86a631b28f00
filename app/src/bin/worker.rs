//! The engine worker's entry point (built by Trunk as a `data-type="worker"` binary).

fn main() {
    #[cfg(target_arch = "wasm32")]
    duet_app::worker::start();
}
