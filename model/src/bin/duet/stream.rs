//! Input and output as streams: texts are read and answered one batch at a time, and results are
//! printed as they come, so memory is bounded by the batch whatever the input's length.

use std::io::{BufRead, Lines, StdinLock, Write};

use serde::Serialize;

use duet_model::DuetError;

/// The texts given with `--text`, else the lines of standard input, in batches.
pub struct Batches {
    given: std::vec::IntoIter<String>,
    stdin: Option<Lines<StdinLock<'static>>>,
    size: usize,
    yielded: bool,
}

impl Batches {
    pub fn new(given: Vec<String>, size: usize) -> Self {
        let stdin = given.is_empty().then(|| std::io::stdin().lock().lines());
        Self {
            given: given.into_iter(),
            stdin,
            size: size.max(1),
            yielded: false,
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Vec<String>, DuetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut batch = Vec::with_capacity(self.size);
        while batch.len() < self.size {
            let next = match &mut self.stdin {
                Some(lines) => match lines.next() {
                    Some(Ok(line)) => Some(line),
                    Some(Err(e)) => {
                        return Some(Err(DuetError::Io {
                            path: "stdin".into(),
                            message: e.to_string(),
                        }))
                    }
                    None => None,
                },
                None => self.given.next(),
            };
            match next {
                Some(text) => batch.push(text),
                None => break,
            }
        }
        if batch.is_empty() {
            if self.yielded {
                return None;
            }
            self.yielded = true;
            return Some(Err(DuetError::EmptyInput(
                "no --text and nothing on standard input".into(),
            )));
        }
        self.yielded = true;
        Some(Ok(batch))
    }
}

/// Prints results as they come: readable lines, or with `--json` one JSON array written element
/// by element (the same document a single `to_string_pretty` of the whole array would give).
pub struct Printer {
    json: bool,
    count: usize,
    out: std::io::StdoutLock<'static>,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            count: 0,
            out: std::io::stdout().lock(),
        }
    }

    /// One result: its JSON, or the readable line `line` makes.
    pub fn item<T: Serialize>(&mut self, value: &T, line: impl FnOnce(&T) -> String) {
        let text = if self.json {
            let pretty = serde_json::to_string_pretty(value).expect("serializable");
            let indented = pretty.replace('\n', "\n  ");
            let lead = if self.count == 0 { "[\n  " } else { ",\n  " };
            format!("{lead}{indented}")
        } else {
            format!("{}\n", line(value))
        };
        // A closed pipe (`duet … | head`) is the reader's choice, not an error worth a panic.
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
        self.count += 1;
    }

    /// Closes the JSON array.
    pub fn finish(mut self) {
        if self.json {
            let end = if self.count == 0 { "[]\n" } else { "\n]\n" };
            let _ = self.out.write_all(end.as_bytes());
            let _ = self.out.flush();
        }
    }
}
