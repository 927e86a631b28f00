//! Shareable links: the address's fragment names the page and holds its inputs,
//! `#generate?prompt=ROMEO%3A&sample=0&seed=42&model=default%3Agpt2-shakespeare&hash=…`. Each page
//! keeps the fragment in step with its inputs while it is shown (`sync`, replacing the history
//! entry rather than adding one per keystroke) and reads it once when opened by a link
//! (`opened`). The model travels as where it came from plus its content hash, so a page opened
//! by a link can say when the model it loaded is not the one the link was made with.

use std::collections::HashMap;
use std::sync::OnceLock;

use duet_protocol::Source;
use leptos::prelude::*;

use super::shared;

/// Where Hub repo ids resolve unless a mirror is set (the Models page).
pub const DEFAULT_HUB: &str = "https://huggingface.co";

/// `(page, inputs)` of a fragment (`#page?k=v&k=v`, values URI-encoded).
pub fn parse(hash: &str) -> (String, HashMap<String, String>) {
    let hash = hash.trim_start_matches('#');
    let (page, query) = hash.split_once('?').unwrap_or((hash, ""));
    let params = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    (page.to_string(), params)
}

/// The fragment for `page` with `params`, in their order.
pub fn format(page: &str, params: &[(&'static str, String)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if query.is_empty() {
        format!("#{page}")
    } else {
        format!("#{page}?{}", query.join("&"))
    }
}

fn encode(s: &str) -> String {
    js_sys::encode_uri_component(s).into()
}

fn decode(s: &str) -> String {
    js_sys::decode_uri_component(s)
        .map(String::from)
        .unwrap_or_else(|_| s.to_string())
}

/// The fragment the app was opened with, read once (pages may rewrite the address after).
fn opened_link() -> &'static (String, HashMap<String, String>) {
    static OPENED: OnceLock<(String, HashMap<String, String>)> = OnceLock::new();
    OPENED.get_or_init(|| parse(&window().location().hash().unwrap_or_default()))
}

/// The value of `key` in the link the app was opened with, when that link is for `page`.
pub fn opened(page: &str, key: &str) -> Option<String> {
    let (p, params) = opened_link();
    (p == page).then(|| params.get(key).cloned()).flatten()
}

/// `opened`, parsed; a value that does not parse is ignored (the page keeps its default).
pub fn opened_as<T: std::str::FromStr>(page: &str, key: &str) -> Option<T> {
    opened(page, key).and_then(|v| v.parse().ok())
}

/// Sets `signal` from the opened link's `key`, if it is there and parses.
pub fn restore<T>(page: &str, key: &str, signal: RwSignal<T>)
where
    T: std::str::FromStr + Send + Sync + 'static,
{
    if let Some(v) = opened_as(page, key) {
        signal.set(v);
    }
}

/// Keeps the address showing `page`'s inputs while `page` is shown.
pub fn sync(page: &'static str, params: impl Fn() -> Vec<(&'static str, String)> + 'static) {
    let s = shared();
    Effect::new(move |_| {
        let p = params();
        if s.page.get() != page {
            return;
        }
        let hash = format(page, &p);
        if window().location().hash().unwrap_or_default() != hash {
            if let Ok(history) = window().history() {
                let _ =
                    history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&hash));
            }
        }
    });
}

/// A source as one link value: `default:NAME`, `hub:REPO` (`@REV` unless `main`), `url:BASE`.
pub fn source_param(source: &Source) -> Option<String> {
    match source {
        Source::Default { name } => Some(format!("default:{name}")),
        Source::Hub { repo, revision, .. } if revision == "main" => Some(format!("hub:{repo}")),
        Source::Hub { repo, revision, .. } => Some(format!("hub:{repo}@{revision}")),
        Source::Url { base } => Some(format!("url:{base}")),
        Source::Files { .. } | Source::Trained => None,
    }
}

/// The source a link value names; a Hub repo resolves against this page's Hub setting.
pub fn source_of(value: &str, hub: &str) -> Option<Source> {
    let (kind, rest) = value.split_once(':')?;
    match kind {
        "default" => Some(Source::Default { name: rest.into() }),
        "hub" => {
            let (repo, revision) = rest.split_once('@').unwrap_or((rest, "main"));
            Some(Source::Hub {
                repo: repo.into(),
                revision: revision.into(),
                endpoint: hub.into(),
            })
        }
        "url" => Some(Source::Url { base: rest.into() }),
        _ => None,
    }
}

/// The `model` and `hash` inputs of the model on `slot`, when a link can name it.
pub fn model_params(slot: &'static str) -> Vec<(&'static str, String)> {
    let s = shared();
    s.models.with(|m| {
        let Some(info) = m.get(slot) else {
            return Vec::new();
        };
        let Some(model) = info.source.as_ref().and_then(source_param) else {
            return Vec::new();
        };
        let mut p = vec![("model", model), ("hash", info.hash.clone())];
        // A Hub mirror travels with the link; the Hub itself is every page's default.
        if let Some(Source::Hub { endpoint, .. }) = &info.source {
            if endpoint != DEFAULT_HUB {
                p.push(("hub", endpoint.clone()));
            }
        }
        p
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_through_a_link_value() {
        let hub = "https://huggingface.co";
        for source in [
            Source::Default {
                name: "gpt2-shakespeare".into(),
            },
            Source::Hub {
                repo: "dslim/bert-base-NER".into(),
                revision: "main".into(),
                endpoint: hub.into(),
            },
            Source::Hub {
                repo: "gpt2".into(),
                revision: "v1.0".into(),
                endpoint: hub.into(),
            },
            Source::Url {
                base: "https://example.org/models/x/".into(),
            },
        ] {
            let value = source_param(&source).unwrap();
            assert_eq!(source_of(&value, hub), Some(source), "{value}");
        }
        assert_eq!(source_param(&Source::Trained), None);
        assert_eq!(source_of("ftp:x", hub), None);
    }
}
