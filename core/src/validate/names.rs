//! Names: Kubernetes object names, DNS labels, label keys and values.

use std::collections::BTreeMap;

use super::{FieldPath, Report};

/// A DNS-1123 label as Kubernetes defines it: lower-case letters, digits and `-`, starting
/// and ending with a letter or digit, at most 63 characters. Namespaces are such labels.
pub(super) fn is_dns_label(value: &str) -> bool {
    is_label_with(value, |c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// A DNS label as Istio checks subset, port and gateway names: like [`is_dns_label`] but
/// upper-case letters are accepted too.
pub(super) fn is_istio_label(value: &str) -> bool {
    is_label_with(value, |c| c.is_ascii_alphanumeric())
}

fn is_label_with(value: &str, alnum: impl Fn(char) -> bool) -> bool {
    let (Some(first), Some(last)) = (value.chars().next(), value.chars().last()) else {
        return false;
    };
    value.len() <= 63 && alnum(first) && alnum(last) && value.chars().all(|c| alnum(c) || c == '-')
}

/// A DNS-1123 subdomain: dot-separated [`is_dns_label`]s, at most 253 characters. Object
/// names of every mesh kind are such names.
pub(super) fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns_label)
}

/// The rule for a name, as a sentence to append to an error.
pub(super) const DNS_LABEL_RULE: &str = "use lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";

/// Checks Kubernetes label keys (`[prefix/]name`) and values, as selectors and subsets use them.
pub(super) fn check_labels(labels: &BTreeMap<String, String>, at: &FieldPath, report: &mut Report) {
    for (key, value) in labels {
        let here = at.key(key);
        if let Err(why) = check_label_key(key) {
            report.error(&here, why);
        }
        if !is_label_value(value) {
            report.error(
                &here,
                format!(
                    "label value {value:?} is invalid; use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
                ),
            );
        }
    }
}

fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "label key {key:?} has an invalid prefix; the part before '/' must be a DNS subdomain such as example.com"
        ));
    }
    if name.is_empty() || name.len() > 63 || !is_qualified_name(name) {
        return Err(format!(
            "label key {key:?} is invalid; use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, optionally prefixed by a DNS subdomain and '/'"
        ));
    }
    Ok(())
}

fn is_label_value(value: &str) -> bool {
    value.is_empty() || (value.len() <= 63 && is_qualified_name(value))
}

fn is_qualified_name(value: &str) -> bool {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    ends_ok(value.chars().next())
        && ends_ok(value.chars().last())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(is_dns_label("reviews-v1"));
        assert!(!is_dns_label("Reviews"));
        assert!(is_istio_label("Reviews"));
        for bad in ["", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
            assert!(!is_istio_label(bad), "{bad:?}");
        }
        assert!(is_dns_subdomain("reviews.v1"));
        assert!(!is_dns_subdomain("reviews..v1"));
        assert!(!is_dns_subdomain("Reviews"));
    }

    #[test]
    fn label_keys_and_values() {
        assert!(check_label_key("app").is_ok());
        assert!(check_label_key("app.kubernetes.io/name").is_ok());
        assert!(check_label_key("version_2.x").is_ok());
        assert!(check_label_key("bad key").is_err());
        assert!(check_label_key("Bad_Prefix/x").is_err());
        assert!(check_label_key("x/").is_err());
        assert!(is_label_value(""));
        assert!(is_label_value("v1.2_beta"));
        assert!(!is_label_value("v1 "));
        assert!(!is_label_value("-v1"));
    }
}
