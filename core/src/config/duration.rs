//! Durations as Istio writes them: Go's `time.ParseDuration` syntax ("1.5s", "300ms",
//! "1h30m"), which includes protobuf's JSON form ("30s", "0.100s").

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A signed duration kept exactly as written, so validation can reject negative or zero
/// values with the field's path instead of the parser doing it without context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    nanos: i128,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid duration {text:?}: {reason} (expected a number and a unit, like \"1.5s\", \"300ms\" or \"1h30m\")"
)]
pub struct ParseDurationError {
    text: String,
    reason: &'static str,
}

impl Duration {
    pub const fn from_millis(ms: i64) -> Self {
        Self {
            nanos: ms as i128 * 1_000_000,
        }
    }

    pub const fn from_secs(s: i64) -> Self {
        Self {
            nanos: s as i128 * 1_000_000_000,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.nanos > 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The duration as std's type; `None` when negative.
    pub fn to_std(&self) -> Option<std::time::Duration> {
        let nanos = u64::try_from(self.nanos).ok()?;
        Some(std::time::Duration::from_nanos(nanos))
    }

    pub fn as_nanos(&self) -> i128 {
        self.nanos
    }

    pub fn parse(text: &str) -> Result<Self, ParseDurationError> {
        let err = |reason| ParseDurationError {
            text: text.to_owned(),
            reason,
        };
        let (negative, mut rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if rest == "0" {
            return Ok(Self { nanos: 0 });
        }
        if rest.is_empty() {
            return Err(err("empty"));
        }
        let mut total: i128 = 0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| err("missing unit"))?;
            let (number, tail) = rest.split_at(number_len);
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let unit_nanos = unit_in_nanos(unit).ok_or_else(|| err("unknown unit"))?;
            total = total
                .checked_add(scale(number, unit_nanos).ok_or_else(|| err("bad number"))?)
                .ok_or_else(|| err("too large"))?;
            rest = tail;
        }
        if total > i64::MAX as i128 {
            return Err(err("too large"));
        }
        Ok(Self {
            nanos: if negative { -total } else { total },
        })
    }
}

fn unit_in_nanos(unit: &str) -> Option<i128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3600 * 1_000_000_000,
        _ => return None,
    })
}

/// `number` ("1", "1.5", ".5", "1.") times `unit_nanos`, exactly, truncating below 1ns.
fn scale(number: &str, unit_nanos: i128) -> Option<i128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit_nanos)?;
    let mut place = unit_nanos;
    for digit in fraction.bytes() {
        if !digit.is_ascii_digit() {
            return None;
        }
        place /= 10;
        nanos += i128::from(digit - b'0') * place;
    }
    Some(nanos)
}

impl fmt::Display for Duration {
    /// Shortest exact form in seconds, as protobuf's JSON mapping writes it ("1.5s").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let (secs, frac) = (abs / 1_000_000_000, abs % 1_000_000_000);
        if frac == 0 {
            return write!(f, "{sign}{secs}s");
        }
        let digits = format!("{frac:09}");
        write!(f, "{sign}{secs}.{}s", digits.trim_end_matches('0'))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Duration::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(feature = "crd")]
impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as \"1.5s\", \"300ms\" or \"1h30m\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i128 {
        Duration::parse(text).expect(text).as_nanos() / 1_000_000
    }

    #[test]
    fn parses_istio_and_go_forms() {
        assert_eq!(ms("1.5s"), 1500);
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("0.100s"), 100);
        assert_eq!(ms("300ms"), 300);
        assert_eq!(ms("1h30m"), 90 * 60_000);
        assert_eq!(ms("2m0.5s"), 120_500);
        assert_eq!(ms(".5s"), 500);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("-1s"), -1000);
        assert_eq!(Duration::parse("1500us").expect("us").as_nanos(), 1_500_000);
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in ["", "1", "s", "1x", "1.5.5s", "ten seconds", "1 s", "-", "."] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let message = Duration::parse("10sec").expect_err("unit").to_string();
        assert!(message.contains("unknown unit"), "{message}");
    }

    #[test]
    fn displays_as_protobuf_json() {
        for (text, shown) in [
            ("1.5s", "1.5s"),
            ("30s", "30s"),
            ("100ms", "0.1s"),
            ("1m", "60s"),
        ] {
            assert_eq!(Duration::parse(text).expect(text).to_string(), shown);
        }
    }
}
