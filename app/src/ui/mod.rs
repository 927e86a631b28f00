//! The page: a header saying where the engine runs, a tab per task, and the pages. Every page is
//! built once and hidden when not shown, so switching tabs loses nothing.

mod attention_map;
mod batch;
mod bench;
mod classify;
mod compare;
mod embeddings;
pub mod engine;
mod entities;
mod fill_mask;
mod finetune;
mod generate;
mod inside;
pub mod link;
mod loss_chart;
mod masked_vs_next;
mod model_picker;
mod models;
mod pretrain;
mod sampler_stages;
mod strategies;
mod token_strip;
mod widgets;

use std::collections::HashMap;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use duet_protocol::{DeviceChoice, ModelInfo, Reply, Request};

/// State every page shares.
#[derive(Clone, Copy)]
pub struct Shared {
    /// "WebGPU" or "CPU" once the engine is up.
    pub backend: RwSignal<String>,
    pub ready: RwSignal<bool>,
    /// A notice for the whole app (CPU fallback, engine restart).
    pub notice: RwSignal<String>,
    /// The Hub (or a mirror) that repo ids resolve against.
    pub hub: RwSignal<String>,
    /// The model loaded for each page's slot.
    pub models: RwSignal<HashMap<String, ModelInfo>>,
    /// Bumped whenever a model is cached or deleted, so the cached list refreshes.
    pub cache_changed: RwSignal<u32>,
    /// Set when a fine-tune finished: the Fine-tune page offers it to the other pages.
    pub trained: RwSignal<Option<ModelInfo>>,
    pub page: RwSignal<String>,
}

pub fn shared() -> Shared {
    expect_context::<Shared>()
}

const PAGES: [(&str, &str); 10] = [
    ("generate", "Generate"),
    ("classify", "Classify"),
    ("entities", "Entities"),
    ("fill-mask", "Fill-mask"),
    ("fine-tune", "Fine-tune"),
    ("pretrain", "Pretrain"),
    ("compare", "Compare"),
    ("inside", "Inside"),
    ("models", "Models"),
    ("bench", "Bench"),
];

fn hash_page() -> String {
    let (name, _) = link::parse(&window().location().hash().unwrap_or_default());
    if PAGES.iter().any(|(p, _)| *p == name) {
        name
    } else {
        "generate".into()
    }
}

/// Starts (or restarts) the engine on the chosen device.
fn init_engine(s: Shared, device: DeviceChoice) {
    s.ready.set(false);
    engine::send(
        Request::Init { device },
        Vec::new(),
        move |reply| match reply {
            Reply::Ready { backend, note } => {
                s.backend.set(backend);
                if !note.is_empty() {
                    s.notice.set(note);
                }
                s.ready.set(true);
            }
            Reply::Error { message } => s.notice.set(message),
            _ => {}
        },
    );
}

/// "Copy link": the address, which holds this page's inputs, to the clipboard and on screen.
#[component]
fn ShareLink() -> impl IntoView {
    let shown = RwSignal::new(String::new());
    let copy = move |_| {
        let href = window().location().href().unwrap_or_default();
        // The clipboard may be refused (no permission, an insecure origin): the link is shown
        // selected anyway, to copy by hand.
        let clipboard = js_sys::Reflect::get(&window().navigator(), &"clipboard".into());
        if let Ok(c) = clipboard {
            if let Ok(write) = js_sys::Reflect::get(&c, &"writeText".into()) {
                if let Ok(f) = write.dyn_into::<js_sys::Function>() {
                    let _ = f.call1(&c, &href.clone().into());
                }
            }
        }
        shown.set(href);
    };
    view! {
        <div class="share">
            <button on:click=copy title="The address holds this page's inputs and model">"Copy link"</button>
            <Show when=move || !shown.get().is_empty()>
                <input class="share-link" readonly aria-label="Link to this page"
                    prop:value=move || shown.get()
                    on:focus=move |ev| {
                        if let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                            el.select();
                        }
                    } />
            </Show>
        </div>
    }
}

#[component]
pub fn App() -> impl IntoView {
    let s = Shared {
        backend: RwSignal::new(String::new()),
        ready: RwSignal::new(false),
        notice: RwSignal::new(String::new()),
        hub: RwSignal::new(link::DEFAULT_HUB.into()),
        models: RwSignal::new(HashMap::new()),
        cache_changed: RwSignal::new(0),
        trained: RwSignal::new(None),
        page: RwSignal::new(hash_page()),
    };
    provide_context(s);
    let choice = DeviceChoice::from_query(&window().location().search().unwrap_or_default());
    let started = engine::start(
        move |message| {
            // A crash on WebGPU (a shader this GPU rejects, memory it cannot give) would come back
            // with the same work: the restarted engine runs on the CPU, and says so.
            let was_gpu = s.backend.get_untracked() == "WebGPU" || !s.ready.get_untracked();
            s.notice.set(if was_gpu && choice != DeviceChoice::Cpu {
                format!("{message} WebGPU failed on this device, so Duet now runs on the CPU.")
            } else {
                message
            });
            s.models.set(HashMap::new());
            init_engine(s, DeviceChoice::Cpu);
        },
        move |message| s.notice.set(message),
    );
    match started {
        Ok(()) => init_engine(s, choice),
        Err(e) => s.notice.set(e),
    }
    let on_hash = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
        // A link pasted into this tab's address bar changes only the fragment: open it afresh,
        // so that its page reads its inputs as on a first visit.
        let hash = window().location().hash().unwrap_or_default();
        if hash.contains('?') {
            let _ = window().location().reload();
            return;
        }
        s.page.set(hash_page());
    });
    window().set_onhashchange(Some(wasm_bindgen::JsCast::unchecked_ref(on_hash.as_ref())));
    on_hash.forget();

    let section = move |name: &'static str, title: &'static str, body: AnyView| {
        view! {
            <section id=format!("page-{name}") aria-label=title hidden=move || s.page.get() != name>
                <h2>{title}</h2>
                {body}
            </section>
        }
    };
    view! {
        <header>
            <h1>"Duet"</h1>
            <p class="tagline">"GPT and BERT side by side, running in this tab."</p>
            <ShareLink />
            <p class="backend" role="status" aria-label="Compute device">
                {move || {
                    let b = s.backend.get();
                    if b.is_empty() { "Starting the engine…".to_string() } else { format!("Running on {b}") }
                }}
            </p>
        </header>
        <Show when=move || !s.notice.get().is_empty()>
            <div class="notice" role="alert">
                <span>{move || s.notice.get()}</span>
                <button aria-label="Dismiss notice" on:click=move |_| s.notice.set(String::new())>"×"</button>
            </div>
        </Show>
        <nav aria-label="Pages">
            {PAGES
                .iter()
                .map(|(name, title)| {
                    let name = *name;
                    view! {
                        <a
                            href=format!("#{name}")
                            aria-current=move || (s.page.get() == name).then_some("page")
                        >
                            {*title}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
        <main>
            {section("generate", "Generate", view! { <generate::GeneratePage /> }.into_any())}
            {section("classify", "Classify", view! { <classify::ClassifyPage /> }.into_any())}
            {section("entities", "Entities", view! { <entities::EntitiesPage /> }.into_any())}
            {section("fill-mask", "Fill-mask", view! { <fill_mask::FillMaskPage /> }.into_any())}
            {section("fine-tune", "Fine-tune", view! { <finetune::FineTunePage /> }.into_any())}
            {section("pretrain", "Pretrain", view! { <pretrain::PretrainPage /> }.into_any())}
            {section("compare", "Compare GPT and BERT", view! { <compare::ComparePage /> }.into_any())}
            {section("inside", "Inside the models", view! { <inside::InsidePage /> }.into_any())}
            {section("models", "Models", view! { <models::ModelsPage /> }.into_any())}
            {section("bench", "Bench", view! { <bench::BenchPage /> }.into_any())}
        </main>
        <footer>
            "Everything runs in your browser: text and models never leave this device."
        </footer>
    }
}
