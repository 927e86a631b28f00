//! From a [`Source`] to a [`Model`] on the device: which files to fetch, PEFT adapters onto their
//! base, and a check of tensor sizes against the GPU's buffer limit before anything is uploaded.

use std::rc::Rc;

use duet_model::train::export::load_adapter;
use duet_model::{Model, ModelFiles};
use js_sys::Array;
use wasm_bindgen::JsCast;

use crate::fetch::{absolute, fetch_file, read_file};
use crate::manifest::{self, DefaultFile};
use crate::state::{self, STATE};
use duet_protocol::{valid_repo_id, ModelInfo, Source};

/// Tokenizer side files: fetched when present, never required one by one.
const TOKENIZER_FILES: [&str; 3] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];
/// Fallback vocabularies, fetched only when there is no `tokenizer.json`.
const VOCAB_FILES: [&str; 3] = ["vocab.txt", "vocab.json", "merges.txt"];

/// A loaded model with what the UI shows about it.
pub struct Loaded {
    pub model: Rc<Model>,
    pub info: ModelInfo,
}

struct Download {
    files: ModelFiles,
    bytes: u64,
    all_cached: bool,
}

/// Which files a folder holds, when the app knows without asking the server.
#[derive(Clone, Copy)]
enum Listing<'a> {
    /// Any folder URL: optional files are probed (a 404 or a web page means absent).
    Unknown,
    /// An embedded default: exactly the files of its manifest, each with its version.
    Known(&'a [DefaultFile]),
}

async fn fetch_into(
    id: u32,
    base: &str,
    names: &[&str],
    required: bool,
    listing: Listing<'_>,
    into: &mut Download,
) -> Result<(), String> {
    for name in names {
        let version = match listing {
            Listing::Unknown => None,
            Listing::Known(files) => match files.iter().find(|f| f.name == *name) {
                Some(f) => Some(f.version),
                None if required => {
                    return Err(format!(
                        "{name} is missing from the embedded model at {base}"
                    ))
                }
                None => continue,
            },
        };
        if let Some(f) = fetch_file(id, &format!("{base}{name}"), required, version).await? {
            if !f.from_cache {
                into.bytes += f.bytes.len() as u64;
            }
            into.all_cached &= f.from_cache;
            into.files.insert(*name, f.bytes);
        }
    }
    Ok(())
}

/// Fetches a model folder: an adapter folder (`adapter_config.json`) or a full model.
async fn fetch_folder(id: u32, base: &str, listing: Listing<'_>) -> Result<Download, String> {
    let mut d = Download {
        files: ModelFiles::new(),
        bytes: 0,
        all_cached: true,
    };
    fetch_into(id, base, &["adapter_config.json"], false, listing, &mut d).await?;
    if d.files.get("adapter_config.json").is_some() {
        fetch_into(
            id,
            base,
            &["adapter_model.safetensors"],
            true,
            listing,
            &mut d,
        )
        .await?;
        fetch_into(id, base, &["config.json"], false, listing, &mut d).await?;
        return Ok(d);
    }
    fetch_into(id, base, &["config.json"], true, listing, &mut d).await?;
    fetch_into(id, base, &TOKENIZER_FILES, false, listing, &mut d).await?;
    if d.files.get("tokenizer.json").is_none() {
        fetch_into(id, base, &VOCAB_FILES, false, listing, &mut d).await?;
    }
    fetch_into(id, base, &["model.safetensors"], true, listing, &mut d).await?;
    Ok(d)
}

/// Where an adapter's base lives: a path relative to the adapter's folder, a default's name, or a
/// Hub repo id.
fn base_of_adapter(
    files: &ModelFiles,
    adapter_base: Option<&str>,
    hub: &str,
) -> Result<Source, String> {
    let cfg: serde_json::Value = serde_json::from_slice(
        files
            .get("adapter_config.json")
            .ok_or("adapter_config.json is missing")?,
    )
    .map_err(|e| format!("adapter_config.json: {e}"))?;
    let base = cfg["base_model_name_or_path"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_string();
    if base.is_empty() {
        return Err("adapter_config.json does not name its base model".into());
    }
    let last = base.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if let Some(d) = duet_protocol::defaults::ALL.iter().find(|d| **d == last) {
        if base.starts_with('.') || base == *d {
            return Ok(Source::Default {
                name: d.to_string(),
            });
        }
    }
    if base.starts_with('.') || base.starts_with('/') || base.contains("://") {
        let Some(folder) = adapter_base else {
            return Err(format!(
                "this adapter's base is `{base}`, a path: load the adapter from a URL beside its base, \
                 or pick the base's files together with the adapter's"
            ));
        };
        let url = web_sys::Url::new_with_base(&format!("{}/", base.trim_end_matches('/')), folder)
            .map_err(|_| format!("cannot resolve the adapter's base `{base}`"))?;
        return Ok(Source::Url { base: url.href() });
    }
    if valid_repo_id(&base) {
        return Ok(Source::Hub {
            repo: base,
            revision: "main".into(),
            endpoint: hub.into(),
        });
    }
    Err(format!("cannot find the adapter's base model `{base}`"))
}

/// Refuses, before upload, a tensor larger than the GPU's largest buffer.
fn check_buffers(files: &ModelFiles) -> Result<(), String> {
    let Some(limit) = STATE.with(|s| s.borrow().max_buffer) else {
        return Ok(());
    };
    for name in ["model.safetensors", "adapter_model.safetensors"] {
        let Some(bytes) = files.get(name) else {
            continue;
        };
        if let Some((key, need)) = crate::limits::oversized_tensor(bytes, limit) {
            return Err(format!(
                "tensor `{key}` needs {:.0} MB, more than this GPU's largest buffer ({:.0} MB): \
                 choose a smaller model, or reload the page with ?cpu=1 to run on the CPU",
                need as f64 / 1e6,
                limit as f64 / 1e6
            ));
        }
    }
    Ok(())
}

fn finish(model: Model, label: String, downloaded: u64, from_cache: bool, hash: String) -> Loaded {
    let mut info = info(&model, label, downloaded, from_cache);
    info.hash = hash;
    Loaded {
        model: Rc::new(model),
        info,
    }
}

pub fn info(model: &Model, label: String, downloaded: u64, from_cache: bool) -> ModelInfo {
    ModelInfo {
        label,
        architecture: model.config.architecture.clone(),
        task: format!("{:?}", model.config.head),
        parameters: model.network.num_params(),
        labels: model.config.id2label.clone(),
        max_positions: model.config.max_positions(),
        has_mask_token: model.tokenizer.mask_token.is_some(),
        downloaded,
        from_cache,
        hash: String::new(),
        source: None,
    }
}

fn hub_endpoint(source: &Source) -> String {
    match source {
        Source::Hub { endpoint, .. } => endpoint.clone(),
        _ => String::new(),
    }
}

/// Loads `source` for request `id` (`files` holds the `File`s of a local pick).
pub async fn load(id: u32, source: &Source, files: Array) -> Result<Loaded, String> {
    let device = state::device()?;
    let label = source.label();
    match source {
        Source::Trained => {
            let model = STATE
                .with(|s| s.borrow().trained.as_ref().map(|t| t.model.clone()))
                .ok_or("nothing has been fine-tuned yet: train on the Fine-tune page first")?;
            let info = info(&model, label, 0, true);
            Ok(Loaded { model, info })
        }
        Source::Files { .. } => {
            let mut all = ModelFiles::new();
            for f in files.iter() {
                let f: web_sys::File = f.unchecked_into();
                // Folders dropped or picked arrive with paths; only the file name matters here.
                let name = f.name().rsplit('/').next().unwrap_or_default().to_string();
                all.insert(name, read_file(&f).await?);
            }
            if all.names().next().is_none() {
                return Err("no files were given".into());
            }
            if all.get("adapter_config.json").is_some() && all.get("model.safetensors").is_none() {
                let base = base_of_adapter(&all, None, "")?;
                let base_model = Box::pin(load(id, &base, Array::new())).await?;
                check_buffers(&all)?;
                let model =
                    load_adapter((*base_model.model).clone(), &all).map_err(|e| e.to_string())?;
                let hash = format!("{}+{}", base_model.info.hash, all.content_hash());
                return Ok(finish(model, label, 0, false, hash));
            }
            if all.get("config.json").is_none() {
                return Err(
                    "config.json is missing: pick a model's config.json, model.safetensors and \
                     tokenizer.json together"
                        .into(),
                );
            }
            check_buffers(&all)?;
            let model = Model::from_files(&all, &device).map_err(|e| e.to_string())?;
            Ok(finish(model, label, 0, false, all.content_hash()))
        }
        _ => {
            if let Source::Hub { repo, .. } = source {
                if !valid_repo_id(repo) {
                    return Err(format!(
                        "`{repo}` is not a Hub repo id: use `name` or `owner/name`, e.g. gpt2 or \
                         dslim/bert-base-NER"
                    ));
                }
            }
            let base = absolute(&source.base_url().expect("remote sources have a URL"))?;
            let endpoint = hub_endpoint(source);
            let listed = match source {
                Source::Default { name } => {
                    let files = manifest::files_of(name);
                    if files.is_empty() {
                        return Err(format!("there is no embedded model named `{name}`"));
                    }
                    files
                }
                _ => Vec::new(),
            };
            let listing = if listed.is_empty() {
                Listing::Unknown
            } else {
                Listing::Known(&listed)
            };
            let d = fetch_folder(id, &base, listing).await?;
            if d.files.get("adapter_config.json").is_some() {
                let base_src = base_of_adapter(&d.files, Some(&base), &endpoint)?;
                let base_model = Box::pin(load(id, &base_src, Array::new())).await?;
                check_buffers(&d.files)?;
                let model = load_adapter((*base_model.model).clone(), &d.files)
                    .map_err(|e| e.to_string())?;
                let cached = d.all_cached && base_model.info.from_cache;
                let hash = format!("{}+{}", base_model.info.hash, d.files.content_hash());
                return Ok(finish(
                    model,
                    label,
                    d.bytes + base_model.info.downloaded,
                    cached,
                    hash,
                ));
            }
            check_buffers(&d.files)?;
            let model = Model::from_files(&d.files, &device).map_err(|e| e.to_string())?;
            Ok(finish(
                model,
                label,
                d.bytes,
                d.all_cached,
                d.files.content_hash(),
            ))
        }
    }
}
