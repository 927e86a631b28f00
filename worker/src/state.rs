//! What the worker holds between requests: the device, a model per page, the last trained model.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use burn::tensor::Device;
use duet_model::train::lora::LoraConfig;
use duet_model::train::resume::TrainState;
use duet_model::train::side_by_side::{Pair, Probe};
use duet_model::Model;

/// The last fine-tuned model and how it was trained (for its export).
pub struct Trained {
    pub model: Rc<Model>,
    pub lora: Option<LoraConfig>,
    pub base_name: String,
}

/// The Pretrain page's two models between runs (taken out while one runs).
pub struct Pretraining {
    pub pair: Pair,
    pub probe: Probe,
}

#[derive(Default)]
pub struct State {
    pub device: Option<Device>,
    pub backend: String,
    /// The largest buffer the GPU accepts, in bytes (None on the CPU).
    pub max_buffer: Option<u64>,
    pub models: HashMap<String, Rc<Model>>,
    pub labels: HashMap<String, String>,
    pub trained: Option<Trained>,
    /// The Fine-tune page's last run, if it was stopped: its state, and its base (as JSON), so
    /// that Continue can take it to its end.
    pub stopped_run: Option<(String, TrainState)>,
    pub pretraining: Option<Pretraining>,
}

thread_local! {
    pub static STATE: RefCell<State> = RefCell::new(State::default());
}

pub fn device() -> Result<Device, String> {
    STATE
        .with(|s| s.borrow().device.clone())
        .ok_or_else(|| "the engine is still starting".into())
}

pub fn model(slot: &str) -> Result<Rc<Model>, String> {
    STATE
        .with(|s| s.borrow().models.get(slot).cloned())
        .ok_or_else(|| format!("no model is loaded for {slot} yet: pick one above"))
}

pub fn set_model(slot: &str, label: &str, model: Rc<Model>) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.models.insert(slot.to_string(), model);
        s.labels.insert(slot.to_string(), label.to_string());
    });
}

pub fn label(slot: &str) -> String {
    STATE.with(|s| s.borrow().labels.get(slot).cloned().unwrap_or_default())
}
