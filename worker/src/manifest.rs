//! The embedded defaults' files, known when the worker is built (`build.rs` reads
//! `public/models/`): loading a default needs no probing, and a cached file from an older build
//! of the app is told apart by its version.

/// One file of an embedded default, as served at `./models/<model>/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultFile {
    pub model: &'static str,
    pub name: &'static str,
    pub bytes: u64,
    /// A hash of the content: stored with the cached copy, compared on every read.
    pub version: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/defaults_manifest.rs"));

/// The files of the default `model` (empty when there is no such default).
pub fn files_of(model: &str) -> Vec<DefaultFile> {
    DEFAULT_FILES
        .iter()
        .filter(|f| f.model == model)
        .copied()
        .collect()
}

/// The file of default `model` named `name`, if it ships.
pub fn file(model: &str, name: &str) -> Option<DefaultFile> {
    DEFAULT_FILES
        .iter()
        .find(|f| f.model == model && f.name == name)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_listed_with_the_files_on_disk() {
        // `cargo test` gives the checkout at run time; the compiled-in path may be a moved one's.
        let manifest =
            std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
        let root = std::path::Path::new(&manifest).join("../public/models");
        for model in duet_protocol::defaults::ALL {
            let listed = files_of(model);
            assert!(
                listed.iter().any(|f| f.name == "config.json"),
                "{model} has no config.json in the manifest"
            );
            for f in &listed {
                let on_disk = std::fs::metadata(root.join(model).join(f.name)).unwrap();
                assert_eq!(on_disk.len(), f.bytes, "{model}/{}", f.name);
                assert_eq!(f.version.len(), 16);
            }
            assert!(listed.iter().all(|f| f.name != "README.md"));
        }
        assert!(files_of("no-such-model").is_empty());
        assert!(file(duet_protocol::defaults::GPT2, "model.safetensors").is_some());
        assert!(file(duet_protocol::defaults::GPT2, "adapter_config.json").is_none());
    }
}
