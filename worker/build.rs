//! Writes the embedded defaults' manifest: every file of each folder under `public/models/`
//! (model cards aside) with its size and a content hash. The worker then knows the defaults'
//! file lists without probing the server, and can tell a cached file from an older build.

use std::fmt::Write as _;
use std::path::Path;

/// FNV-1a, 64 bits: a version stamp for cache invalidation, not a security measure.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn main() {
    // Read at run time: cargo sets it for every run of the script, while the path compiled into
    // the script goes stale when the checkout moves with its target dir.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let models = Path::new(&manifest).join("../public/models");
    println!("cargo:rerun-if-changed={}", models.display());
    let mut folders: Vec<_> = std::fs::read_dir(&models)
        .expect("public/models/ is readable")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut out = String::from("pub const DEFAULT_FILES: &[DefaultFile] = &[\n");
    for folder in folders {
        let model = folder.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&folder)
            .expect("a model folder is readable")
            .map(|e| e.expect("a file entry").path())
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).expect("a model file is readable");
            let name = file.file_name().unwrap().to_string_lossy();
            writeln!(
                out,
                "    DefaultFile {{ model: {model:?}, name: {name:?}, bytes: {}, version: \"{:016x}\" }},",
                bytes.len(),
                fnv1a(&bytes)
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("defaults_manifest.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
