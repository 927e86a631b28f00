//! Downloads with progress and cancellation, kept in Cache Storage so a second visit — and an
//! offline one — loads from the browser instead of the network.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, ReadableStreamDefaultReader, Response, ResponseInit};

use duet_protocol::{CachedModel, Reply};

use crate::checks::{self, Outcome};
use crate::messages::{is_cancelled, post, scope};

/// The Cache Storage bucket for model files (the service worker keeps the app in its own).
pub const MODEL_CACHE: &str = "duet-models-v1";
/// Header carrying the stored size, so the cached-models list needs no body reads.
const SIZE_HEADER: &str = "x-duet-size";
/// Header carrying the version of an embedded default's file (see `manifest`).
const VERSION_HEADER: &str = "x-duet-version";

/// How one file arrived.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub from_cache: bool,
}

fn js_err(e: wasm_bindgen::JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

async fn open_cache() -> Option<Cache> {
    let caches = scope().caches().ok()?;
    JsFuture::from(caches.open(MODEL_CACHE))
        .await
        .ok()
        .map(JsCast::unchecked_into)
}

/// Makes `url` absolute against the worker's own location (defaults are `./models/...`).
pub fn absolute(url: &str) -> Result<String, String> {
    let here = scope().location().href();
    web_sys::Url::new_with_base(url, &here)
        .map(|u| u.href())
        .map_err(|_| format!("`{url}` is not a valid URL"))
}

/// Removes one cached file (an invalid or outdated entry: it is fetched again).
async fn evict(cache: &Cache, url: &str) {
    let _ = JsFuture::from(cache.delete_with_str(url)).await;
}

/// The cached copy of `url`, if there is one that can be used; an unusable one is evicted.
async fn from_cache(
    cache: &Cache,
    url: &str,
    name: &str,
    version: Option<&str>,
) -> Result<Option<Vec<u8>>, String> {
    let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await else {
        return Ok(None);
    };
    let Ok(resp) = hit.dyn_into::<Response>() else {
        return Ok(None);
    };
    let stored = resp.headers().get(VERSION_HEADER).ok().flatten();
    let bytes = read_all(&resp).await?;
    if checks::cached_usable(name, &bytes, stored.as_deref(), version) {
        return Ok(Some(bytes));
    }
    evict(cache, url).await;
    Ok(None)
}

/// Fetches `url` for request `id`. `Ok(None)` means an optional file that is not there — also
/// when the server answered a web page in its place. `version` is set for the embedded defaults
/// (from the manifest): a cached copy of another version is replaced.
pub async fn fetch_file(
    id: u32,
    url: &str,
    required: bool,
    version: Option<&str>,
) -> Result<Option<Fetched>, String> {
    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    let cache = open_cache().await;
    if let Some(cache) = &cache {
        if let Some(bytes) = from_cache(cache, url, &name, version).await? {
            let n = bytes.len() as u64;
            post(
                id,
                Reply::Progress {
                    file: name,
                    loaded: n,
                    total: n,
                },
            );
            return Ok(Some(Fetched {
                bytes,
                from_cache: true,
            }));
        }
    }
    let resp = match JsFuture::from(scope().fetch_with_str(url)).await {
        Ok(r) => r.unchecked_into::<Response>(),
        Err(_) if !required => return Ok(None),
        Err(e) => {
            return Err(format!(
                "could not download {url}: the server is unreachable, you are offline, or it \
                 refused cross-origin access (CORS) — {}",
                js_err(e)
            ))
        }
    };
    if !resp.ok() {
        if !required && (resp.status() == 404 || resp.status() == 401) {
            return Ok(None);
        }
        return Err(match resp.status() {
            404 => format!("{name} was not found (HTTP 404) at {url}"),
            401 | 403 => format!(
                "{url} needs an access token or is private (HTTP {}): Duet loads public models",
                resp.status()
            ),
            s => format!("{url} answered HTTP {s} {}", resp.status_text()),
        });
    }
    let content_type = resp.headers().get("content-type").ok().flatten();
    // A web page needs no download to be recognised (its body is judged below all the same).
    let is_page = content_type
        .as_deref()
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let bytes = if is_page {
        read_all(&resp).await?
    } else {
        let total: u64 = resp
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        stream_body(id, &name, &resp, total).await?
    };
    match checks::downloaded(url, required, content_type.as_deref(), &bytes) {
        Outcome::Use => {}
        Outcome::Absent => return Ok(None),
        Outcome::Fail(message) => return Err(message),
    }
    if let Some(cache) = &cache {
        store(cache, url, &bytes, version).await;
    }
    Ok(Some(Fetched {
        bytes,
        from_cache: false,
    }))
}

async fn read_all(resp: &Response) -> Result<Vec<u8>, String> {
    let buf = JsFuture::from(resp.array_buffer().map_err(js_err)?)
        .await
        .map_err(js_err)?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// Reads the body chunk by chunk, reporting progress about every 256 KiB and stopping when the
/// request is cancelled.
async fn stream_body(id: u32, name: &str, resp: &Response, total: u64) -> Result<Vec<u8>, String> {
    let Some(body) = resp.body() else {
        return read_all(resp).await;
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out: Vec<u8> = Vec::with_capacity(total as usize);
    let mut reported = 0usize;
    post(
        id,
        Reply::Progress {
            file: name.into(),
            loaded: 0,
            total,
        },
    );
    loop {
        if is_cancelled(id) {
            let _ = reader.cancel();
            return Err("download cancelled".into());
        }
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| format!("the download of {name} broke off: {}", js_err(e)))?;
        let done = Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        if let Ok(value) = Reflect::get(&chunk, &"value".into()) {
            let arr: Uint8Array = value.unchecked_into();
            let at = out.len();
            out.resize(at + arr.length() as usize, 0);
            arr.copy_to(&mut out[at..]);
        }
        if out.len() - reported >= 256 * 1024 {
            reported = out.len();
            post(
                id,
                Reply::Progress {
                    file: name.into(),
                    loaded: out.len() as u64,
                    total,
                },
            );
        }
    }
    post(
        id,
        Reply::Progress {
            file: name.into(),
            loaded: out.len() as u64,
            total: total.max(out.len() as u64),
        },
    );
    Ok(out)
}

/// Keeps a checked file (only files [`checks::downloaded`] accepted get here).
async fn store(cache: &Cache, url: &str, bytes: &[u8], version: Option<&str>) {
    let init = ResponseInit::new();
    let headers = web_sys::Headers::new().expect("Headers");
    let _ = headers.set(SIZE_HEADER, &bytes.len().to_string());
    if let Some(v) = version {
        let _ = headers.set(VERSION_HEADER, v);
    }
    let _ = headers.set("content-type", "application/octet-stream");
    init.set_headers(&headers);
    let mut copy = bytes.to_vec();
    if let Ok(resp) = Response::new_with_opt_u8_array_and_init(Some(&mut copy), &init) {
        // Quota errors leave the model usable, only not cached.
        let _ = JsFuture::from(cache.put_with_str(url, &resp)).await;
    }
}

/// The cached models: files grouped by folder URL, with their sizes.
pub async fn cached_models() -> Result<Vec<CachedModel>, String> {
    let Some(cache) = open_cache().await else {
        return Ok(Vec::new());
    };
    let keys = JsFuture::from(cache.keys()).await.map_err(js_err)?;
    let keys: js_sys::Array = keys.unchecked_into();
    let mut out: Vec<CachedModel> = Vec::new();
    for req in keys.iter() {
        let req: web_sys::Request = req.unchecked_into();
        let url = req.url();
        let base = match url.rfind('/') {
            Some(i) => url[..=i].to_string(),
            None => url.clone(),
        };
        let size = match JsFuture::from(cache.match_with_request(&req)).await {
            Ok(r) => r
                .dyn_into::<Response>()
                .ok()
                .and_then(|r| r.headers().get(SIZE_HEADER).ok().flatten())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0),
            Err(_) => 0,
        };
        match out.iter_mut().find(|m| m.base == base) {
            Some(m) => {
                m.files += 1;
                m.bytes += size;
            }
            None => out.push(CachedModel {
                base,
                files: 1,
                bytes: size,
            }),
        }
    }
    out.sort_by(|a, b| a.base.cmp(&b.base));
    Ok(out)
}

/// Deletes every cached file under the folder URL `base`.
pub async fn delete_cached(base: &str) -> Result<(), String> {
    let Some(cache) = open_cache().await else {
        return Ok(());
    };
    let keys = JsFuture::from(cache.keys()).await.map_err(js_err)?;
    let keys: js_sys::Array = keys.unchecked_into();
    for req in keys.iter() {
        let req: web_sys::Request = req.unchecked_into();
        let url = req.url();
        if url.starts_with(base) && !url[base.len()..].contains('/') {
            let _ = JsFuture::from(cache.delete_with_request(&req)).await;
        }
    }
    Ok(())
}

/// Reads a user-picked `File` into memory.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buf = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("cannot read {}: {}", file.name(), js_err(e)))?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// A plain GET of an optional file, without progress or caching: `Ok(None)` on 404 or when
/// the server answers a web page instead.
pub async fn fetch_uncached(url: &str) -> Result<Option<Vec<u8>>, String> {
    let resp: Response = JsFuture::from(scope().fetch_with_str(url))
        .await
        .map_err(|e| format!("could not download {url}: {}", js_err(e)))?
        .unchecked_into();
    match resp.status() {
        404 => Ok(None),
        s if !resp.ok() => Err(format!("{url} answered HTTP {s}")),
        _ => {
            let content_type = resp.headers().get("content-type").ok().flatten();
            let bytes = read_all(&resp).await?;
            match checks::downloaded(url, false, content_type.as_deref(), &bytes) {
                Outcome::Use => Ok(Some(bytes)),
                Outcome::Absent => Ok(None),
                Outcome::Fail(message) => Err(message),
            }
        }
    }
}
