//! `cargo xtask serve [--watch] [--port N]`: build the app, then serve `dist/` with our static
//! server. No file watcher sees the build unless a developer asks for `--watch`; then sources
//! are polled (the target dir and `dist/` are not among them), the app is rebuilt on a change,
//! and the page reloads itself.

use std::hash::{Hash, Hasher};
use std::net::TcpListener;
use std::path::Path;
use std::process::{exit, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::{bundle, root, server};

/// The sources whose change triggers a rebuild under `--watch`.
const WATCHED: &[&str] = &[
    "app",
    "worker",
    "protocol",
    "model/src",
    "model/Cargo.toml",
    "public",
    "index.html",
    "Cargo.toml",
    "Cargo.lock",
];

pub fn serve(args: &[String]) {
    let mut watch = false;
    let mut port: u16 = 8080;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--watch" => watch = true,
            "--port" => {
                port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    // Claim the port before a build that can take many minutes, so a clash is said at once.
    let addr = format!("127.0.0.1:{port}");
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("xtask: cannot listen on {addr}: {e} (is Duet already running? try --port)");
        exit(1)
    });
    bundle::build_app();
    let dist = bundle::dist();
    println!("\nDuet is at http://{addr}/ (Ctrl-C stops it)");
    if !watch {
        server::serve(listener, dist, None);
        return;
    }
    let build = Arc::new(AtomicU64::new(1));
    {
        let build = build.clone();
        std::thread::spawn(move || server::serve(listener, dist, Some(build)));
    }
    println!("Watching the sources: the app is rebuilt on a change and the page reloads.");
    let mut seen = sources_fingerprint();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sources_fingerprint();
        if now == seen {
            continue;
        }
        seen = now;
        // A separate process, so a failed build leaves the last good app served.
        let exe = std::env::current_exe().expect("own path");
        match Command::new(exe).arg("build").current_dir(root()).status() {
            Ok(s) if s.success() => {
                build.fetch_add(1, Ordering::Relaxed);
                println!("Rebuilt: Duet is at http://{addr}/");
            }
            _ => eprintln!("xtask: the rebuild failed; still serving the last build"),
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: cargo xtask serve [--watch] [--port N]");
    exit(2)
}

/// A hash of the watched sources' paths, sizes and modification times.
fn sources_fingerprint() -> u64 {
    fn walk(path: &Path, h: &mut std::collections::hash_map::DefaultHasher) {
        let Ok(meta) = path.metadata() else {
            return;
        };
        if meta.is_dir() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if matches!(name, "node_modules" | "target" | "dist") {
                return;
            }
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            for e in entries {
                walk(&e, h);
            }
        } else {
            path.hash(h);
            meta.len().hash(h);
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH).hash(h);
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in WATCHED {
        walk(&root().join(p), &mut h);
    }
    h.finish()
}
