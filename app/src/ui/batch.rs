//! Streamed replies (generated tokens, training steps) reach the view in batches: at most one
//! view update every [`INTERVAL_MS`].
//! A fast engine sends a token every few milliseconds, and a view updated for each one makes the
//! browser lay out, paint and composite a frame for each; that work shares the CPU with the engine
//! (on 2 cores with software compositing the Generate page cost the engine 40% of its speed).
//! An item that arrives after a quiet spell is shown at once.

use std::time::Duration;

use leptos::prelude::*;

/// 20 view updates a second: smooth to read, a third of the frames a token per frame costs.
pub const INTERVAL_MS: f64 = 50.0;

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Collects items and hands them to `apply` in order, one batch per interval.
pub struct Batcher<T: Send + Sync + 'static> {
    pending: StoredValue<Vec<T>>,
    last: StoredValue<f64>,
    scheduled: StoredValue<bool>,
    apply: StoredValue<Box<dyn Fn(Vec<T>) + Send + Sync>>,
}

impl<T: Send + Sync + 'static> Clone for Batcher<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Send + Sync + 'static> Copy for Batcher<T> {}

impl<T: Send + Sync + 'static> Batcher<T> {
    pub fn new(apply: impl Fn(Vec<T>) + Send + Sync + 'static) -> Self {
        Self {
            pending: StoredValue::new(Vec::new()),
            last: StoredValue::new(f64::NEG_INFINITY),
            scheduled: StoredValue::new(false),
            apply: StoredValue::new(Box::new(apply)),
        }
    }

    /// Queues `item`: shown now if the view has not changed for an interval, else with the
    /// batch at the end of this one.
    pub fn push(self, item: T) {
        self.pending.update_value(|p| p.push(item));
        let wait = self.last.get_value() + INTERVAL_MS - now_ms();
        if wait <= 0.0 {
            // Even with a timer pending (a late one, or the last run's): it will find nothing.
            self.flush();
        } else if !self.scheduled.get_value() {
            self.scheduled.set_value(true);
            set_timeout(
                move || {
                    self.scheduled.set_value(false);
                    self.flush();
                },
                Duration::from_micros((wait * 1000.0) as u64),
            );
        }
    }

    /// Shows everything queued now (the run ended, or the view must be complete).
    pub fn flush(self) {
        let items = self
            .pending
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        if !items.is_empty() {
            self.last.set_value(now_ms());
            self.apply.with_value(|apply| apply(items));
        }
    }

    /// Drops whatever is queued (a new run starts); the new run's first item shows at once.
    pub fn clear(self) {
        self.pending.update_value(Vec::clear);
        self.last.set_value(f64::NEG_INFINITY);
    }
}
