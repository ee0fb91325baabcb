//! The benches' generated sections of docs/benchmarks.md: each between its own markers,
//! replaced in place by `--write-doc` so the hand-written text around it stays.

/// `existing` with the text between `begin` and `end` replaced by `section` (or the block
/// appended when the markers are absent); the rest of the file stays as it is.
pub fn replace_section(existing: &str, begin: &str, end: &str, section: &str) -> String {
    let block = format!("{begin}\n{}\n{end}", section.trim_end());
    let start = existing.find(begin);
    let stop = start.and_then(|b| existing[b..].find(end).map(|e| b + e));
    match (start, stop) {
        (Some(start), Some(stop)) => format!(
            "{}{block}{}",
            &existing[..start],
            &existing[stop + end.len()..]
        ),
        _ => {
            let mut out = existing.trim_end().to_owned();
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&block);
            out.push('\n');
            out
        }
    }
}
