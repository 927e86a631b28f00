//! The page's handle on the engine worker: send a request, get its replies in a callback. Network
//! and GPU work all happen in the worker; this file is the only place the page talks to it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

use duet_protocol::{Envelope, Reply, Request};

type Handler = Rc<dyn Fn(Reply)>;

struct Engine {
    worker: Worker,
    /// Messages posted before the worker's wasm is up would be lost: they wait here until the
    /// worker says it is listening.
    alive: bool,
    queue: Vec<JsValue>,
    next_id: u32,
    handlers: HashMap<u32, Handler>,
    /// Called when the worker dies (a panic): the page shows why and a fresh worker starts.
    on_fatal: Option<Rc<dyn Fn(String)>>,
    /// Called when the worker cannot start at all (its wasm failed to load or instantiate): a
    /// fresh worker would fail the same way, so the page only says why.
    on_unavailable: Option<Rc<dyn Fn(String)>>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// The worker's classic script (written by `cargo xtask build`): it loads the `duet-worker` module.
const WORKER_URL: &str = "./duet-worker_loader.js";

fn spawn() -> Result<Worker, String> {
    let opts = WorkerOptions::new();
    opts.set_type(WorkerType::Classic);
    let worker = Worker::new_with_options(WORKER_URL, &opts)
        .map_err(|e| format!("cannot start the engine worker: {e:?}"))?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|ev: MessageEvent| {
        let Some(json) = ev.data().as_string() else {
            return;
        };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) {
            if v["kind"] == "alive" {
                ENGINE.with(|e| {
                    if let Some(e) = e.borrow_mut().as_mut() {
                        e.alive = true;
                        for msg in e.queue.drain(..) {
                            let _ = e.worker.post_message(&msg);
                        }
                    }
                });
                return;
            }
            if v["kind"] == "fatal" || v["kind"] == "unavailable" {
                let msg = v["message"].as_str().unwrap_or("unknown error").to_string();
                fatal(msg);
                return;
            }
        }
        match serde_json::from_str::<Envelope<Reply>>(&json) {
            Ok(env) => {
                let handler = ENGINE.with(|e| {
                    e.borrow()
                        .as_ref()
                        .and_then(|e| e.handlers.get(&env.id).cloned())
                });
                let last = env.body.is_final();
                if let Some(h) = handler {
                    h(env.body);
                }
                if last {
                    ENGINE.with(|e| {
                        if let Some(e) = e.borrow_mut().as_mut() {
                            e.handlers.remove(&env.id);
                        }
                    });
                }
            }
            Err(e) => web_sys::console::error_1(&format!("unreadable reply: {e}").into()),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(|ev: web_sys::ErrorEvent| {
        fatal(format!("the engine worker failed: {}", ev.message()));
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    Ok(worker)
}

/// The worker died. If it had started, every waiting request gets an error and a new worker
/// takes its place; if it never started (its wasm did not load), a new one would fail the same
/// way, so the page is told the engine is unavailable.
fn fatal(message: String) {
    let (handlers, restarted, notify) = ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        match e.as_mut() {
            Some(e) => {
                e.worker.terminate();
                let restart = e.alive;
                e.alive = false;
                e.queue.clear();
                if restart {
                    match spawn() {
                        Ok(w) => e.worker = w,
                        Err(err) => web_sys::console::error_1(&err.into()),
                    }
                }
                let notify = if restart {
                    e.on_fatal.clone()
                } else {
                    e.on_unavailable.clone()
                };
                (std::mem::take(&mut e.handlers), restart, notify)
            }
            None => (HashMap::new(), false, None),
        }
    });
    let text = if restarted {
        format!(
            "The engine stopped ({message}). It has restarted; load your models again to go on."
        )
    } else {
        format!(
            "The engine could not start ({message}). Reload the page; if this persists, this \
             browser cannot run Duet's engine."
        )
    };
    for h in handlers.into_values() {
        h(Reply::Error {
            message: text.clone(),
        });
    }
    if let Some(f) = notify {
        f(text);
    }
}

/// Starts the worker once; `on_fatal` hears when it had to be restarted, `on_unavailable` when
/// it could not start at all.
pub fn start(
    on_fatal: impl Fn(String) + 'static,
    on_unavailable: impl Fn(String) + 'static,
) -> Result<(), String> {
    let worker = spawn()?;
    ENGINE.with(|e| {
        *e.borrow_mut() = Some(Engine {
            worker,
            alive: false,
            queue: Vec::new(),
            next_id: 1,
            handlers: HashMap::new(),
            on_fatal: Some(Rc::new(on_fatal)),
            on_unavailable: Some(Rc::new(on_unavailable)),
        })
    });
    Ok(())
}

/// Sends `req` (with `files` beside it, if any); `on_reply` sees every reply to it. Returns the
/// request id, for [`cancel`].
pub fn send(req: Request, files: Vec<web_sys::File>, on_reply: impl Fn(Reply) + 'static) -> u32 {
    let sent = ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        let e = e.as_mut()?;
        let id = e.next_id;
        e.next_id += 1;
        e.handlers.insert(id, Rc::new(on_reply));
        let json = serde_json::to_string(&Envelope { id, body: req }).expect("requests serialise");
        let msg: JsValue = if files.is_empty() {
            JsValue::from_str(&json)
        } else {
            let msg = Object::new();
            let list = Array::new();
            for f in &files {
                list.push(f);
            }
            let _ = Reflect::set(&msg, &"json".into(), &json.into());
            let _ = Reflect::set(&msg, &"files".into(), &list);
            msg.into()
        };
        let result = if e.alive {
            e.worker.post_message(&msg)
        } else {
            e.queue.push(msg);
            Ok(())
        };
        Some((id, result.err().map(|err| format!("{err:?}"))))
    });
    match sent {
        Some((id, None)) => id,
        Some((id, Some(err))) => {
            let h = ENGINE.with(|e| e.borrow_mut().as_mut().and_then(|e| e.handlers.remove(&id)));
            if let Some(h) = h {
                h(Reply::Error {
                    message: format!("could not reach the engine: {err}"),
                });
            }
            id
        }
        None => 0,
    }
}

/// Asks the worker to stop request `id` (between steps; what was done so far is kept).
pub fn cancel(id: u32) {
    ENGINE.with(|e| {
        if let Some(e) = e.borrow_mut().as_mut() {
            let json = serde_json::to_string(&Envelope {
                id: 0,
                body: Request::Cancel { target: id },
            })
            .expect("serialise");
            if e.alive {
                let _ = e.worker.post_message(&JsValue::from_str(&json));
            } else {
                e.queue.push(JsValue::from_str(&json));
            }
        }
    });
}
