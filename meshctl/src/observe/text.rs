//! Prometheus's text exposition format, as the proxies' `/stats/prometheus` serves it: one
//! sample per line, `name{label="value",...} value [timestamp]`, `#` lines for HELP and
//! TYPE. Only what the golden metrics need is kept: the name, the labels, the value.

use std::collections::BTreeMap;

/// One line of the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// The label's value, `""` when it is absent (as PromQL treats a missing label).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// Every sample of `text`, in order. A malformed line is an error naming it: a scrape that
/// half parses would show wrong rates without saying so.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |reason| ParseError {
            line: index + 1,
            reason,
            text: line.chars().take(120).collect(),
        };
        samples.push(sample(line).map_err(error)?);
    }
    Ok(samples)
}

fn sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err("not a metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = read_labels(inner, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = number(value).ok_or("the value is not a number")?;
    // An optional timestamp (milliseconds) may follow; nothing else may.
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| "the timestamp is not an integer")?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp");
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Reads `k="v",...}` into `labels`; returns what follows the `}`.
fn read_labels<'a>(
    mut rest: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, &'static str> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("a label without a value")?;
        let key = rest[..eq].trim();
        if !valid_name(key) || key.contains(':') {
            return Err("not a label name");
        }
        let value_start = rest[eq + 1..].trim_start();
        let quoted = value_start
            .strip_prefix('"')
            .ok_or("a label value is not quoted")?;
        let (value, after) = unescape(quoted)?;
        labels.insert(key.to_owned(), value);
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ','");
        }
    }
}

/// The value up to the closing quote, with `\\`, `\"` and `\n` undone; and what follows.
fn unescape(text: &str) -> Result<(String, &str), &'static str> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, escaped @ ('\\' | '"'))) => value.push(escaped),
                _ => return Err("a bad escape in a label value"),
            },
            c => value.push(c),
        }
    }
    Err("a label value is not closed")
}

/// Go's float syntax as Prometheus writes it, with `+Inf`, `-Inf` and `NaN`.
pub fn number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_labels_escapes_and_special_values() {
        let text = r#"
# HELP mesh_requests_total Requests.
# TYPE mesh_requests_total counter
mesh_requests_total{reporter="source",response_code="200"} 12
mesh_request_duration_milliseconds_bucket{le="+Inf", path="a\"b\\c\nd"} 3 1700000000000
mesh_up 1e1
mesh_ratio NaN
"#;
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].name, "mesh_requests_total");
        assert_eq!(samples[0].label("reporter"), "source");
        assert_eq!(samples[0].label("absent"), "");
        assert_eq!(samples[0].value, 12.0);
        assert_eq!(samples[1].label("le"), "+Inf");
        assert_eq!(samples[1].label("path"), "a\"b\\c\nd");
        assert_eq!(samples[1].value, 3.0);
        assert_eq!(samples[2].value, 10.0);
        assert!(samples[2].labels.is_empty());
        assert!(samples[3].value.is_nan());
    }

    #[test]
    fn an_empty_label_set_and_a_trailing_comma() {
        let samples = parse("a{} 1\nb{x=\"1\",} 2\n").unwrap();
        assert_eq!(samples[0].value, 1.0);
        assert_eq!(samples[1].label("x"), "1");
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        for (text, reason) in [
            ("ok 1\nbad", "no value"),
            ("ok 1\nm{a=\"1\" 2", "labels not separated by ','"),
            ("ok 1\nm{a=1} 2", "a label value is not quoted"),
            ("ok 1\nm{a=\"1} 2", "a label value is not closed"),
            ("ok 1\nm{a=\"\\x\"} 2", "a bad escape in a label value"),
            ("ok 1\nm one", "the value is not a number"),
            ("ok 1\nm 1 2 3", "text after the timestamp"),
            ("ok 1\n9m 1", "not a metric name"),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!((error.line, error.reason), (2, reason), "{text:?}");
        }
    }

    proptest::proptest! {
        /// Whatever a metrics port answers, parsing returns samples or an error.
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "\\PC*") {
            let _ = parse(&text);
        }

        /// Any label value, escaped as the exposition format escapes it, reads back as is.
        #[test]
        fn label_values_survive_escaping(value in "\\PC*", number in 0u32..1_000_000) {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let line = format!("m{{k=\"{escaped}\"}} {number}");
            let samples = parse(&line).unwrap();
            proptest::prop_assert_eq!(samples[0].label("k"), value.as_str());
            proptest::prop_assert_eq!(samples[0].value, f64::from(number));
        }
    }
}
