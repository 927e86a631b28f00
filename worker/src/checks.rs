//! Is what a server sent really the model file that was asked for?
//!
//! Static hosts with SPA rewrites (Netlify, Vercel, Cloudflare Pages, `trunk serve`), corporate
//! proxies and captive portals answer a missing file with an HTML page and status 200. A loader
//! that trusts the status would parse a web page as `adapter_config.json`, or keep it in Cache
//! Storage and stay broken on every later visit. So every file is judged here before it is used
//! or cached, and every cached file again when it is read back.

/// What a file's bytes must look like, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Safetensors,
    Text,
}

fn format_of(name: &str) -> Format {
    if name.ends_with(".json") {
        Format::Json
    } else if name.ends_with(".safetensors") {
        Format::Safetensors
    } else {
        Format::Text
    }
}

/// What the bytes turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The file, well-formed for its kind.
    File,
    /// A web page where the file should be.
    WebPage,
    /// Neither: a truncated or corrupt file (the reason says how).
    Invalid(String),
}

/// The start of the body, without a UTF-8 byte-order mark and leading whitespace.
fn head(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// HTML by its first tag. Only for text files, whose first line may legitimately start with `<`
/// (a vocabulary's `<pad>`), so the tag itself must be an HTML one.
fn starts_like_html(bytes: &[u8]) -> bool {
    let head = head(bytes);
    let prefix: Vec<u8> = head
        .iter()
        .take(16)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    [
        &b"<!doctype html"[..],
        b"<html",
        b"<head",
        b"<body",
        b"<!--",
        b"<?xml",
    ]
    .iter()
    .any(|tag| prefix.starts_with(tag))
}

/// Judges `bytes` served as `name` (with the response's `content-type`, when there was one).
pub fn judge(name: &str, content_type: Option<&str>, bytes: &[u8]) -> Verdict {
    let html_type =
        content_type.is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let format = format_of(name);
    // Neither JSON nor a safetensors header (its first 8 bytes are a little-endian length) can
    // begin with `<`; a text file can, so there the tag must be HTML's.
    let html_body = match format {
        Format::Json | Format::Safetensors => head(bytes).first() == Some(&b'<'),
        Format::Text => starts_like_html(bytes),
    };
    if html_type || html_body {
        return Verdict::WebPage;
    }
    match format {
        Format::Json => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => Verdict::File,
            Err(e) => Verdict::Invalid(format!("not valid JSON ({e})")),
        },
        Format::Safetensors => match safetensors::SafeTensors::deserialize(bytes) {
            Ok(_) => Verdict::File,
            Err(e) => Verdict::Invalid(format!("not a valid safetensors file ({e})")),
        },
        Format::Text => match std::str::from_utf8(bytes) {
            Ok(_) => Verdict::File,
            Err(_) => Verdict::Invalid("not UTF-8 text".into()),
        },
    }
}

/// What the loader does with a downloaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Use it, and keep it in Cache Storage.
    Use,
    /// An optional file that is not there: go on without it.
    Absent,
    /// Stop loading with this message.
    Fail(String),
}

/// Decides about a file downloaded from `url`: a web page counts as an absent optional file and
/// is an error for a required one; an invalid file is always an error (a broken tokenizer file
/// silently skipped would give wrong results).
pub fn downloaded(url: &str, required: bool, content_type: Option<&str>, bytes: &[u8]) -> Outcome {
    let name = url.rsplit('/').next().unwrap_or(url);
    match judge(name, content_type, bytes) {
        Verdict::File => Outcome::Use,
        Verdict::WebPage if !required => Outcome::Absent,
        Verdict::WebPage => Outcome::Fail(format!(
            "the server answered a web page instead of {name} at {url}: the file is not there \
             (some servers send their home page for every missing file)"
        )),
        Verdict::Invalid(why) => Outcome::Fail(format!("{name} from {url} is {why}")),
    }
}

/// Whether a file read back from Cache Storage can be used: well-formed, and, when the app knows
/// the file's version (the embedded defaults), the version it was stored with. Anything else is
/// evicted and fetched again.
pub fn cached_usable(
    name: &str,
    bytes: &[u8],
    stored_version: Option<&str>,
    expected_version: Option<&str>,
) -> bool {
    let current = match expected_version {
        Some(expected) => stored_version == Some(expected),
        None => true,
    };
    current && judge(name, None, bytes) == Verdict::File
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[u8] =
        b"<!DOCTYPE html>\n<html><head><title>Duet</title></head><body></body></html>";

    fn safetensors_file() -> Vec<u8> {
        use safetensors::tensor::{serialize, Dtype, TensorView};
        let data = vec![0u8; 4 * 6];
        let view = TensorView::new(Dtype::F32, vec![2, 3], &data).unwrap();
        serialize([("w", view)], None).unwrap()
    }

    #[test]
    fn a_web_page_is_absent_when_optional_and_an_error_naming_the_url_when_required() {
        let url = "http://127.0.0.1:8080/models/gpt2-shakespeare/adapter_config.json";
        // trunk serve and SPA hosts: status 200, text/html, the app's index.html.
        for (ct, body) in [
            (Some("text/html; charset=utf-8"), PAGE),
            (Some("application/octet-stream"), PAGE),
            (None, PAGE),
            (Some("TEXT/HTML"), &b"{}"[..]),
        ] {
            assert_eq!(downloaded(url, false, ct, body), Outcome::Absent, "{ct:?}");
            match downloaded(url, true, ct, body) {
                Outcome::Fail(msg) => {
                    assert!(
                        msg.contains("web page instead of adapter_config.json"),
                        "{msg}"
                    );
                    assert!(msg.contains(url), "{msg}");
                }
                other => panic!("{other:?}"),
            }
        }
        let weights = "http://h/m/model.safetensors";
        assert!(matches!(
            downloaded(weights, true, Some("text/html"), PAGE),
            Outcome::Fail(m) if m.contains("web page instead of model.safetensors")
        ));
        assert_eq!(
            downloaded("http://h/m/vocab.txt", false, None, b"  <html lang=en>"),
            Outcome::Absent
        );
    }

    #[test]
    fn real_files_are_used() {
        assert_eq!(
            downloaded(
                "http://h/config.json",
                true,
                Some("application/json"),
                b"{\"a\": 1}"
            ),
            Outcome::Use
        );
        assert_eq!(
            downloaded(
                "http://h/model.safetensors",
                true,
                None,
                &safetensors_file()
            ),
            Outcome::Use
        );
        // A vocabulary may start with `<pad>`: that is not a web page.
        assert_eq!(
            downloaded(
                "http://h/vocab.txt",
                false,
                Some("text/plain"),
                b"<pad>\n<s>\n</s>\n"
            ),
            Outcome::Use
        );
        assert_eq!(
            downloaded("http://h/merges.txt", false, None, b"#version: 0.2\nh e\n"),
            Outcome::Use
        );
    }

    #[test]
    fn broken_files_are_errors_even_when_optional() {
        let mut truncated = safetensors_file();
        truncated.truncate(truncated.len() - 3);
        assert!(matches!(
            downloaded("http://h/model.safetensors", true, None, &truncated),
            Outcome::Fail(m) if m.contains("not a valid safetensors file")
        ));
        assert!(matches!(
            downloaded("http://h/tokenizer_config.json", false, None, b"{\"model_max"),
            Outcome::Fail(m) if m.contains("not valid JSON")
        ));
        assert!(matches!(
            downloaded("http://h/vocab.txt", false, None, &[0xff, 0xfe, 0x00]),
            Outcome::Fail(m) if m.contains("not UTF-8")
        ));
    }

    #[test]
    fn cached_entries_are_evicted_when_invalid_or_stale() {
        let good = safetensors_file();
        assert!(cached_usable("model.safetensors", &good, None, None));
        // A web page cached by an older version of the app is evicted.
        assert!(!cached_usable("adapter_config.json", PAGE, None, None));
        assert!(!cached_usable(
            "model.safetensors",
            &good[..good.len() - 1],
            None,
            None
        ));
        // Defaults carry a version: a file from an older build of the app is refetched.
        assert!(cached_usable(
            "model.safetensors",
            &good,
            Some("v2"),
            Some("v2")
        ));
        assert!(!cached_usable(
            "model.safetensors",
            &good,
            Some("v1"),
            Some("v2")
        ));
        assert!(!cached_usable("model.safetensors", &good, None, Some("v2")));
    }
}
