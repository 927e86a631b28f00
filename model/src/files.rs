//! A model as a set of named files in memory: the browser has no filesystem, so every loader takes
//! bytes, and native code only reads a folder into this map first.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{DuetError, Result};

/// The files of a Hugging Face model repository, by file name (`config.json`, `model.safetensors`…).
#[derive(Clone, Default)]
pub struct ModelFiles {
    files: BTreeMap<String, Vec<u8>>,
}

/// The files a loader may look at; anything else in a folder is not read.
pub const KNOWN_FILES: &[&str] = &[
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
];

impl ModelFiles {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.files.insert(name.into(), bytes);
    }

    pub fn with(mut self, name: impl Into<String>, bytes: Vec<u8>) -> Self {
        self.insert(name, bytes);
        self
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    pub fn require(&self, name: &str) -> Result<&[u8]> {
        self.get(name)
            .ok_or_else(|| DuetError::MissingFile(name.to_string()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// A short fingerprint of every file's name and bytes (10 hex digits), carried by shared
    /// links so that a page can tell whether it loaded the model a link was made with. Not
    /// cryptographic: eight bytes at a time, so hashing a checkpoint costs far less than loading it.
    pub fn content_hash(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |w: u64| {
            h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
            h ^= h >> 29;
        };
        for (name, bytes) in &self.files {
            for part in [name.as_bytes(), bytes.as_slice()] {
                mix(part.len() as u64);
                let mut words = part.chunks_exact(8);
                for w in &mut words {
                    mix(u64::from_le_bytes(w.try_into().expect("8 bytes")));
                }
                let mut tail = [0u8; 8];
                tail[..words.remainder().len()].copy_from_slice(words.remainder());
                mix(u64::from_le_bytes(tail));
            }
        }
        format!("{:010x}", h >> 24)
    }

    /// Reads every regular file of a folder (adapters, exports), native only.
    pub fn from_dir_any(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let io = |e: std::io::Error| DuetError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        let mut files = Self::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.path().is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                files.insert(name, std::fs::read(entry.path()).map_err(io)?);
            }
        }
        Ok(files)
    }

    /// Reads the known files of a model folder (native only).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(DuetError::Io {
                path: dir.display().to_string(),
                message: "not a folder".into(),
            });
        }
        let mut files = Self::new();
        for name in KNOWN_FILES {
            let path = dir.join(name);
            if path.is_file() {
                let bytes = std::fs::read(&path).map_err(|e| DuetError::Io {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                files.insert(*name, bytes);
            }
        }
        if files.get("config.json").is_none() {
            return Err(DuetError::MissingFile(format!(
                "config.json (in {})",
                dir.display()
            )));
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::ModelFiles;

    #[test]
    fn content_hash_changes_with_any_byte_or_name_and_only_then() {
        let base = ModelFiles::new()
            .with("config.json", b"{\"a\": 1}".to_vec())
            .with("model.safetensors", (0..1000u32).map(|i| i as u8).collect());
        let h = base.content_hash();
        assert_eq!(h.len(), 10);
        assert_eq!(h, base.clone().content_hash());
        let mut bytes: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        bytes[999] ^= 1;
        assert_ne!(
            h,
            base.clone().with("model.safetensors", bytes).content_hash()
        );
        let renamed = ModelFiles::new()
            .with("config.jsom", b"{\"a\": 1}".to_vec())
            .with("model.safetensors", (0..1000u32).map(|i| i as u8).collect());
        assert_ne!(h, renamed.content_hash());
        let longer = base.clone().with("config.json", b"{\"a\": 1}\0".to_vec());
        assert_ne!(h, longer.content_hash(), "a trailing zero byte counts");
    }
}
