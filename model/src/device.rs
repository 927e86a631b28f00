//! Choosing where tensors live. Native code and tests use the pure-Rust `flex` CPU backend; the
//! browser asks for WebGPU and falls back to `flex` (the app decides, through these helpers).

/// The CPU device (burn's `flex` backend).
#[cfg(feature = "flex")]
pub fn cpu() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}

/// Runs a future to completion on the current thread (native callers of the async pipelines).
/// Never call this in the browser's main thread: WebGPU reads need the event loop.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
