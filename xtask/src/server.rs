//! The app's static file server, for `cargo xtask serve` and the end-to-end tests that start the
//! app the way a user does. Plain HTTP/1.1 on std: a missing file is a 404 (never the page in its
//! place), files are sent with their media type, and the precompressed `.br` / `.gz` copies that
//! the build writes are sent to browsers that accept them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where live reload polls for the build number (only with `--watch`).
pub const RELOAD_PATH: &str = "/__duet/build";

/// Polls [`RELOAD_PATH`] and reloads the page when the build number changes (only with `--watch`).
const RELOAD_SCRIPT: &str = r#"<script>
  // cargo xtask serve --watch: reload when a new build is served.
  (() => {
    let seen = null;
    setInterval(async () => {
      try {
        const n = await (await fetch("/__duet/build", { cache: "no-store" })).text();
        if (seen !== null && n !== seen) location.reload();
        seen = n;
      } catch (_) {}
    }, 1000);
  })();
</script>
"#;

fn media_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// A request's path as a file under `root`, or None when it tries to leave it.
fn file_for(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let mut file = root.to_path_buf();
    for part in Path::new(decoded.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => file.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if decoded.ends_with('/') || file == root {
        file.push("index.html");
    }
    Some(file)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One parsed request: method, path and the headers this server looks at.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub accept_encoding: String,
    pub if_none_match: String,
    pub keep_alive: bool,
}

fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let http10 = parts.next().is_some_and(|v| v == "HTTP/1.0");
    let mut accept_encoding = String::new();
    let mut if_none_match = String::new();
    let mut keep_alive = !http10;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "accept-encoding" => accept_encoding = value.trim().to_ascii_lowercase(),
            "if-none-match" => if_none_match = value.trim().to_string(),
            "connection" => {
                let v = value.trim().to_ascii_lowercase();
                keep_alive = if http10 {
                    v == "keep-alive"
                } else {
                    v != "close"
                };
            }
            _ => {}
        }
    }
    Some(Request {
        method,
        path,
        accept_encoding,
        if_none_match,
        keep_alive,
    })
}

/// Whether `accept` (an Accept-Encoding value) allows `coding` (`q=0` refuses it).
fn accepts(accept: &str, coding: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        name == coding && !refused
    })
}

/// A response, decided without any I/O on the socket (so it can be tested).
#[derive(Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// What the server answers to `req`. `build` is the live-reload build number (None: no live
/// reload).
pub fn respond(root: &Path, req: &Request, build: Option<u64>) -> Response {
    let (method, path, accept_encoding) = (&req.method, &req.path, &req.accept_encoding);
    if method != "GET" && method != "HEAD" {
        let mut r = text(405, "method not allowed\n");
        r.headers.push(("allow".into(), "GET, HEAD".into()));
        return r;
    }
    if let Some(n) = build {
        if path.split('?').next() == Some(RELOAD_PATH) {
            let mut r = text(200, &n.to_string());
            r.headers.push(("cache-control".into(), "no-store".into()));
            return r;
        }
    }
    let Some(file) = file_for(root, path) else {
        return text(403, "forbidden\n");
    };
    if !file.is_file() {
        return text(404, "not found\n");
    }
    let mut headers = vec![
        ("content-type".to_string(), media_type(&file).to_string()),
        // Always revalidate: a rebuilt app is picked up at once (the service worker keeps it
        // for offline use).
        ("cache-control".into(), "no-cache".into()),
    ];
    let is_page = file.extension().is_some_and(|e| e == "html");
    if build.is_some() && is_page {
        // Live reload: the page is served with the polling script, uncompressed.
        let page = std::fs::read_to_string(&file).unwrap_or_default();
        let page = match page.rfind("</body>") {
            Some(i) => format!("{}{RELOAD_SCRIPT}{}", &page[..i], &page[i..]),
            None => page + RELOAD_SCRIPT,
        };
        return Response {
            status: 200,
            headers,
            body: page.into_bytes(),
        };
    }
    let mut body_file = file.clone();
    let mut coding_used = "identity";
    for (coding, ext) in [("br", "br"), ("gzip", "gz")] {
        let compressed = PathBuf::from(format!("{}.{ext}", file.display()));
        if accepts(accept_encoding, coding) && compressed.is_file() {
            headers.push(("content-encoding".into(), coding.into()));
            body_file = compressed;
            coding_used = coding;
            break;
        }
    }
    headers.push(("vary".into(), "accept-encoding".into()));
    // Revalidation is cheap: a second visit gets 304 for what did not change.
    if let Ok(meta) = body_file.metadata() {
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let etag = format!("\"{:x}-{modified:x}-{coding_used}\"", meta.len());
        headers.push(("etag".into(), etag.clone()));
        if req.if_none_match.split(',').any(|t| t.trim() == etag) {
            return Response {
                status: 304,
                headers,
                body: Vec::new(),
            };
        }
    }
    match std::fs::read(&body_file) {
        Ok(body) => Response {
            status: 200,
            headers,
            body,
        },
        Err(_) => text(404, "not found\n"),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "",
    }
}

fn handle(stream: TcpStream, root: &Path, build: Option<&AtomicU64>) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = std::io::BufWriter::new(write_half);
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        let build_no = build.map(|b| b.load(Ordering::Relaxed));
        let resp = respond(root, &req, build_no);
        let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if resp.status != 304 {
            head.push_str(&format!("content-length: {}\r\n", resp.body.len()));
        }
        let keep = req.keep_alive;
        head.push_str(if keep {
            "connection: keep-alive\r\n\r\n"
        } else {
            "connection: close\r\n\r\n"
        });
        let ok = writer.write_all(head.as_bytes()).is_ok()
            && (req.method == "HEAD" || writer.write_all(&resp.body).is_ok())
            && writer.flush().is_ok();
        if !ok || !keep {
            return;
        }
    }
    // Drain anything left so the peer sees an orderly close.
    let _ = reader.read(&mut [0u8; 1]);
}

/// Serves `root` on `listener` until the process ends. `build` (live reload) is bumped by the
/// caller after each rebuild.
pub fn serve(listener: TcpListener, root: PathBuf, build: Option<Arc<AtomicU64>>) {
    for stream in listener.incoming().flatten() {
        let root = root.clone();
        let build = build.clone();
        std::thread::spawn(move || handle(stream, &root, build.as_deref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> PathBuf {
        // One folder per test: the tests run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("duet-server-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("models/m")).unwrap();
        std::fs::write(dir.join("index.html"), "<html><body>Duet</body></html>").unwrap();
        std::fs::write(dir.join("app.wasm"), b"\0asm plain").unwrap();
        std::fs::write(dir.join("app.wasm.br"), b"brotli bytes").unwrap();
        std::fs::write(dir.join("app.wasm.gz"), b"gzip bytes").unwrap();
        std::fs::write(dir.join("models/m/config.json"), "{}").unwrap();
        dir
    }

    fn get(path: &str, accept_encoding: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            accept_encoding: accept_encoding.into(),
            ..Request::default()
        }
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn missing_files_are_404_never_the_page() {
        let root = site();
        for path in [
            "/models/m/adapter_config.json",
            "/nothing.wasm",
            "/models/",
            "/generate",
        ] {
            let r = respond(&root, &get(path, "gzip, br"), None);
            assert_eq!(r.status, 404, "{path}");
            assert_ne!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
        }
        assert_eq!(respond(&root, &get("/../etc/passwd", ""), None).status, 403);
        let post = Request {
            method: "POST".into(),
            ..get("/", "")
        };
        assert_eq!(respond(&root, &post, None).status, 405);
    }

    #[test]
    fn files_carry_their_media_type() {
        let root = site();
        let r = respond(&root, &get("/", ""), None);
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
        let r = respond(&root, &get("/models/m/config.json?x=1", ""), None);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        let r = respond(&root, &get("/app.wasm", ""), None);
        assert_eq!(header(&r, "content-type"), Some("application/wasm"));
        assert_eq!(header(&r, "content-encoding"), None);
        assert_eq!(r.body, b"\0asm plain");
    }

    #[test]
    fn precompressed_copies_go_to_browsers_that_accept_them() {
        let root = site();
        let r = respond(&root, &get("/app.wasm", "gzip, deflate, br, zstd"), None);
        assert_eq!(header(&r, "content-encoding"), Some("br"));
        assert_eq!(r.body, b"brotli bytes");
        let r = respond(&root, &get("/app.wasm", "gzip"), None);
        assert_eq!(header(&r, "content-encoding"), Some("gzip"));
        let r = respond(&root, &get("/app.wasm", "br;q=0, gzip"), None);
        assert_eq!(header(&r, "content-encoding"), Some("gzip"));
        assert_eq!(header(&r, "vary"), Some("accept-encoding"));
        // Files without a compressed copy are sent as they are.
        let r = respond(&root, &get("/models/m/config.json", "br"), None);
        assert_eq!(header(&r, "content-encoding"), None);
    }

    #[test]
    fn unchanged_files_revalidate_with_304() {
        let root = site();
        let first = respond(&root, &get("/app.wasm", "br"), None);
        let etag = header(&first, "etag").unwrap().to_string();
        let again = Request {
            if_none_match: etag.clone(),
            ..get("/app.wasm", "br")
        };
        let r = respond(&root, &again, None);
        assert_eq!((r.status, r.body.len()), (304, 0));
        // Another encoding is another representation.
        let gz = Request {
            if_none_match: etag,
            ..get("/app.wasm", "gzip")
        };
        assert_eq!(respond(&root, &gz, None).status, 200);
    }

    #[test]
    fn live_reload_only_when_watching() {
        let root = site();
        let plain = respond(&root, &get("/index.html", ""), None);
        assert!(!String::from_utf8_lossy(&plain.body).contains(RELOAD_PATH));
        assert_eq!(respond(&root, &get(RELOAD_PATH, ""), None).status, 404);
        let watched = respond(&root, &get("/", ""), Some(3));
        let page = String::from_utf8_lossy(&watched.body).into_owned();
        assert!(page.contains(RELOAD_PATH) && page.ends_with("</body></html>"));
        assert_eq!(respond(&root, &get(RELOAD_PATH, ""), Some(3)).body, b"3");
    }

    #[test]
    fn serves_over_http_with_keep_alive() {
        let root = site();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener, root, None));
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /models/m/config.json HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).unwrap();
        assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
        assert!(
            all.contains("\r\n\r\n{}HTTP/1.1 404 Not Found\r\n"),
            "{all}"
        );
    }
}
