//! Messages in, replies out. The page posts JSON requests (with `File`s beside them when the user
//! picked local files); each long request runs as its own task, and replies stream back tagged
//! with the request id. `Cancel` is handled at once, between the steps of whatever runs: the
//! engine yields to this worker's event loop once per token, training step and download chunk.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use duet_protocol::{Envelope, Reply, Request};

use crate::tasks;

thread_local! {
    static CANCELLED: RefCell<HashSet<u32>> = RefCell::new(HashSet::new());
}

pub(crate) fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Sends one reply to the page.
pub(crate) fn post(id: u32, body: Reply) {
    let json = serde_json::to_string(&Envelope { id, body }).expect("replies serialise");
    // A closed page is the only failure here, and then nobody is listening.
    let _ = scope().post_message(&JsValue::from_str(&json));
}

pub(crate) fn is_cancelled(id: u32) -> bool {
    CANCELLED.with(|c| c.borrow().contains(&id))
}

pub(crate) fn now_s() -> f64 {
    scope()
        .performance()
        .map(|p| p.now() / 1000.0)
        .unwrap_or_default()
}

/// A macrotask yield: lets queued messages, such as Stop, run. Through a `MessageChannel`, not
/// `setTimeout(0)`: a timeout set from a timeout's own task five levels deep waits at least 4 ms
/// (the HTML spec's nesting clamp), and on the CPU backend, whose reads never leave the task, every
/// token's yield did: 4 ms of a 9 ms token on the default GPT.
fn yield_to_event_loop() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    let promise = Promise::new(&mut |resolve, _| {
        WAKE.with(|w| {
            w.waiting.borrow_mut().push_back(resolve);
            w.channel.port2().post_message(&JsValue::NULL);
        })
    });
    Box::pin(async move {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    })
}

#[wasm_bindgen]
extern "C" {
    /// The DOM's `MessageChannel`, declared here: web-sys's would change the features every
    /// crate that uses web-sys (wgpu among them) is built with.
    type MessageChannel;
    #[wasm_bindgen(constructor)]
    fn new() -> MessageChannel;
    #[wasm_bindgen(method, getter)]
    fn port1(this: &MessageChannel) -> MessagePort;
    #[wasm_bindgen(method, getter)]
    fn port2(this: &MessageChannel) -> MessagePort;
    type MessagePort;
    #[wasm_bindgen(method, setter)]
    fn set_onmessage(this: &MessagePort, f: &js_sys::Function);
    #[wasm_bindgen(method, js_name = postMessage)]
    fn post_message(this: &MessagePort, v: &JsValue);
}

/// The yields waiting for their message, first in first out (one message per yield).
struct Wake {
    channel: MessageChannel,
    waiting: RefCell<VecDeque<js_sys::Function>>,
}

thread_local! {
    static WAKE: Wake = {
        let channel = MessageChannel::new();
        // Lives as long as the worker.
        let on_message = Closure::<dyn FnMut()>::new(|| {
            if let Some(resolve) = WAKE.with(|w| w.waiting.borrow_mut().pop_front()) {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        });
        channel.port1().set_onmessage(on_message.as_ref().unchecked_ref());
        on_message.forget();
        Wake { channel, waiting: RefCell::new(VecDeque::new()) }
    };
}

/// Sends the engine's warnings (wgpu and cubecl report shader compilation failures only through
/// `log` on wasm) to the browser console, where a developer looks.
struct ConsoleLog;

impl log::Log for ConsoleLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let line = format!("{} {}: {}", r.level(), r.target(), r.args());
            web_sys::console::warn_1(&line.into());
        }
    }
    fn flush(&self) {}
}

static LOGGER: ConsoleLog = ConsoleLog;

/// Installs the logger, the panic report and the message handler, then says it is listening.
pub fn start() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    // A panic (say, the GPU driver refusing an allocation) kills this worker; tell the page why,
    // so it can say so and start a fresh worker instead of waiting forever.
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        let json = serde_json::json!({"id": 0, "kind": "fatal", "message": message}).to_string();
        let _ = scope().post_message(&JsValue::from_str(&json));
    }));
    duet_model::device::set_yielder(yield_to_event_loop);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|ev: MessageEvent| {
        let data = ev.data();
        let (json, files) = match data.as_string() {
            Some(s) => (s, Array::new()),
            None => (
                Reflect::get(&data, &"json".into())
                    .ok()
                    .and_then(|v| v.as_string())
                    .unwrap_or_default(),
                Reflect::get(&data, &"files".into())
                    .map(|f| f.unchecked_into::<Array>())
                    .unwrap_or_else(|_| Array::new()),
            ),
        };
        let env: Envelope<Request> = match serde_json::from_str(&json) {
            Ok(env) => env,
            Err(e) => {
                post(
                    0,
                    Reply::Error {
                        message: format!("bad request: {e}"),
                    },
                );
                return;
            }
        };
        if let Request::Cancel { target } = env.body {
            CANCELLED.with(|c| c.borrow_mut().insert(target));
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            let id = env.id;
            match tasks::handle(id, env.body, files).await {
                Ok(reply) => post(id, reply),
                Err(message) => post(id, Reply::Error { message }),
            }
            CANCELLED.with(|c| c.borrow_mut().remove(&id));
        });
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // Messages sent before this point were dropped: the page waits for this before sending.
    let hello = serde_json::json!({"id": 0, "kind": "alive"}).to_string();
    let _ = scope().post_message(&JsValue::from_str(&hello));
}
