//! Training data as users bring it: `text,label` CSV/TSV, CoNLL (`token … TAG` per line, blank
//! line between sentences), or plain text. Parsing is strict about what it cannot read and says
//! which line is wrong.

use crate::error::{DuetError, Result};

/// One labelled text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextExample {
    pub text: String,
    pub label: String,
}

/// One sentence of words with a tag each.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedSentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

fn bad(line: usize, msg: impl std::fmt::Display) -> DuetError {
    DuetError::InvalidOption(format!("data line {line}: {msg}"))
}

/// Splits one CSV line with double-quote quoting (`"a, b",pos`, `""` inside quotes).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("non-empty").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().expect("non-empty").push(c),
        }
    }
    fields
}

/// Reads `text,label` rows (CSV, or TSV when lines hold tabs). A header naming the columns
/// (`label` and `text`/`sentence`) is honoured, in either order; without one, the label is the
/// column whose values repeat (SST-2 puts it first, most CSVs last).
pub fn parse_labelled(content: &str) -> Result<Vec<TextExample>> {
    let lines: Vec<(usize, &str)> = content
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(DuetError::EmptyInput("the data has no rows".into()));
    }
    let tsv = lines.iter().any(|(_, l)| l.contains('\t'));
    let rows: Vec<(usize, Vec<String>)> = lines
        .iter()
        .map(|(n, l)| {
            let f = if tsv {
                l.split('\t').map(str::to_string).collect()
            } else {
                split_csv(l)
            };
            (*n, f)
        })
        .collect();
    let header: Vec<String> = rows[0].1.iter().map(|h| h.trim().to_lowercase()).collect();
    let named = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let (label_col, text_col, body) = match (
        named(&["label", "labels"]),
        named(&["text", "sentence", "review"]),
    ) {
        (Some(l), Some(t)) => (l, t, &rows[1..]),
        _ => {
            let width = rows[0].1.len();
            if width != 2 {
                return Err(bad(
                    rows[0].0,
                    format!("expected 2 columns (text and label), found {width}"),
                ));
            }
            // The label column has fewer distinct values.
            let distinct = |c: usize| {
                let mut v: Vec<&str> = rows
                    .iter()
                    .filter_map(|(_, f)| f.get(c).map(String::as_str))
                    .collect();
                v.sort_unstable();
                v.dedup();
                v.len()
            };
            if distinct(0) <= distinct(1) {
                (0, 1, &rows[..])
            } else {
                (1, 0, &rows[..])
            }
        }
    };
    let mut out = Vec::new();
    for (n, f) in body {
        let get = |c: usize| {
            f.get(c)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let (Some(text), Some(label)) = (get(text_col), get(label_col)) else {
            return Err(bad(*n, "needs a text and a label"));
        };
        out.push(TextExample { text, label });
    }
    if out.is_empty() {
        return Err(DuetError::EmptyInput(
            "the data has a header but no rows".into(),
        ));
    }
    Ok(out)
}

/// Reads CoNLL: the first column is the word, the last the tag; `-DOCSTART-` lines are skipped.
pub fn parse_conll(content: &str) -> Result<Vec<TaggedSentence>> {
    let mut out = Vec::new();
    let mut cur = TaggedSentence {
        words: Vec::new(),
        tags: Vec::new(),
    };
    for (i, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            if !cur.words.is_empty() {
                out.push(std::mem::replace(
                    &mut cur,
                    TaggedSentence {
                        words: Vec::new(),
                        tags: Vec::new(),
                    },
                ));
            }
            continue;
        }
        if line.starts_with("-DOCSTART-") {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 2 {
            return Err(bad(i + 1, "expected a word and a tag"));
        }
        cur.words.push(cols[0].to_string());
        cur.tags.push(cols[cols.len() - 1].to_string());
    }
    if !cur.words.is_empty() {
        out.push(cur);
    }
    if out.is_empty() {
        return Err(DuetError::EmptyInput(
            "the data has no tagged sentences".into(),
        ));
    }
    Ok(out)
}

/// Distinct labels in first-seen order, with `O` first for tag sets (HF's usual `id2label`).
pub fn label_set<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        if !out.iter().any(|x| x == l) {
            out.push(l.to_string());
        }
    }
    if let Some(i) = out.iter().position(|l| l == "O") {
        let o = out.remove(i);
        out.insert(0, o);
    }
    out
}

/// Splits token ids into consecutive blocks of `block` tokens (the last, shorter one is kept when
/// it has at least two tokens: one input and one target).
pub fn blocks(ids: &[u32], block: usize) -> Vec<Vec<u32>> {
    ids.chunks(block.max(2))
        .filter(|c| c.len() >= 2)
        .map(<[u32]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_formats() {
        let sst = "label\tsentence\n0\tbad film\n1\tgreat fun\n";
        assert_eq!(
            parse_labelled(sst).unwrap()[1],
            TextExample {
                text: "great fun".into(),
                label: "1".into()
            }
        );
        let csv = "\"I liked it, a lot\",pos\nawful,neg\nfine,pos\n";
        let rows = parse_labelled(csv).unwrap();
        assert_eq!(rows[0].text, "I liked it, a lot");
        assert_eq!(rows[0].label, "pos");
        assert!(parse_labelled("a,b,c\n").is_err());
        assert!(parse_labelled("\n\n").is_err());
    }

    #[test]
    fn conll_and_labels() {
        let c = "-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\nPeter B-PER\n";
        let s = parse_conll(c).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].tags, vec!["B-ORG", "O"]);
        assert_eq!(
            label_set(s.iter().flat_map(|x| x.tags.iter().map(String::as_str))),
            vec!["O", "B-ORG", "B-PER"]
        );
        assert!(parse_conll("lonely\n").is_err());
        assert_eq!(blocks(&[1, 2, 3, 4, 5], 2), vec![vec![1, 2], vec![3, 4]]);
    }
}
