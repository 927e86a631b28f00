//! Choosing where tensors live. Native code and tests use the pure-Rust `flex` CPU backend; the
//! browser asks for WebGPU and falls back to `flex` (the app decides, through these helpers).

/// The CPU device (burn's `flex` backend).
#[cfg(feature = "flex")]
pub fn cpu() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}

/// A GPU through wgpu, natively (Vulkan, Metal, DX12) — what `duet --device gpu` runs on. Only
/// with the `wgpu` feature; without it, an error that says how to build with it. (Native only:
/// the browser's worker starts WebGPU asynchronously itself.)
#[cfg(not(target_arch = "wasm32"))]
pub fn gpu() -> crate::Result<burn::tensor::Device> {
    #[cfg(feature = "wgpu")]
    {
        burn::tensor::Device::wgpu_options()
            .init()
            .map_err(|e| crate::DuetError::InvalidOption(format!("no GPU adapter: {e}")))
    }
    #[cfg(not(feature = "wgpu"))]
    Err(crate::DuetError::InvalidOption(
        "this duet was built without GPU support: build it with \
         `cargo build --release -p duet-model --features wgpu`"
            .into(),
    ))
}

/// Tells the WebGPU kernels that the adapter is a software renderer (SwiftShader, lavapipe), where
/// kernels with one unit per output beat the workgroup kernels a real GPU wants (see
/// `kernels/serial.rs`). Process-wide; the browser's worker calls it once, when it starts WebGPU.
#[cfg(feature = "wgpu")]
pub fn set_software_adapter(software: bool) {
    crate::kernels::set_software_adapter(software);
}

/// Runs a future to completion on the current thread (native callers of the async pipelines).
/// Never call this in the browser's main thread: WebGPU reads need the event loop.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// A future that hands control back to the host's event loop.
pub type Yielder = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

thread_local! {
    static YIELDER: std::cell::Cell<Option<Yielder>> = const { std::cell::Cell::new(None) };
}

/// Installs how long-running loops (generation, training, evaluation) yield between steps. In a
/// browser worker the app installs a macrotask yield, so "Stop" messages are handled even on the
/// CPU backend, whose reads complete without ever returning to the event loop.
pub fn set_yielder(yielder: Yielder) {
    YIELDER.with(|y| y.set(Some(yielder)));
}

/// Yields to the host once (a no-op until `set_yielder` was called).
pub async fn yield_now() {
    if let Some(y) = YIELDER.with(|y| y.get()) {
        y().await;
    }
}
