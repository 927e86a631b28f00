//! The CLI answers long input as a stream: results come out while input is still going in, and
//! peak memory is bounded by one batch, not by the input's length. Run as one padded batch (what
//! the CLI used to do), these 2,000 lines take gigabytes: every line is padded to the longest.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

/// Sentences fed to `duet ner` on standard input.
const LINES: usize = 2000;
/// Texts per forward pass.
const BATCH: usize = 16;
/// Peak resident memory allowed for the whole run: the MiniLM tagger plus one batch.
const PEAK_LIMIT_MB: i64 = 400;

/// Short sentences, with a long one (about 120 tokens) every thousand lines.
fn sentence(i: usize) -> String {
    let long = if i % 1000 == 999 {
        " The talks about trade with the European Commission went on late into the evening"
            .repeat(8)
    } else {
        String::new()
    };
    format!("Angela Merkel met Emmanuel Macron in Paris.{long}\n")
}

#[cfg(target_os = "linux")]
#[test]
fn ner_over_thousands_of_lines_streams_in_bounded_memory() {
    // Reaped below by wait4, which also reports its peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["ner", "--json", "--batch-size", &BATCH.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();

    // One batch in: its results must come out before any more input arrives.
    let first: String = (0..BATCH).map(sentence).collect();
    stdin.write_all(first.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut head = String::new();
    stdout.read_line(&mut head).unwrap();
    stdout.read_line(&mut head).unwrap();
    assert!(
        head.starts_with("[\n  ["),
        "the first result should be printed before the input ends: {head:?}"
    );

    let writer = std::thread::spawn(move || {
        let rest: String = (BATCH..LINES).map(sentence).collect();
        stdin.write_all(rest.as_bytes()).unwrap();
    });
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    writer.join().unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();

    // SAFETY: plain libc calls on the child we spawned and have not waited for.
    let (status, usage) = unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid);
        (status, usage)
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "duet ner failed: {err}"
    );

    let all: serde_json::Value = serde_json::from_str(&(head + &rest)).expect("one JSON array");
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), LINES);
    let groups = |i: usize| -> Vec<String> {
        all[i]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {}", e["entity_group"], e["word"]))
            .collect()
    };
    assert!(
        groups(0).iter().any(|g| g.starts_with("\"PER\"")),
        "{:?}",
        groups(0)
    );
    // Every line is answered, in order.
    assert_eq!(groups(LINES - 2), groups(0));

    let peak_mb = usage.ru_maxrss / 1024; // kilobytes on Linux
    eprintln!("duet ner over {LINES} lines: peak resident memory {peak_mb} MB");
    assert!(
        peak_mb < PEAK_LIMIT_MB,
        "peak memory {peak_mb} MB over {LINES} lines (limit {PEAK_LIMIT_MB} MB)"
    );
}
