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
