//! The workload's SPIFFE ID, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`:
//! what its certificate's URI SAN says and what peers and policies call it.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

const SCHEME: &str = "spiffe://";

/// A workload identity in Istio's SPIFFE form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    trust_domain: String,
    namespace: String,
    service_account: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "{0:?} is not a SPIFFE ID: expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"
    )]
    Form(String),
    #[error(
        "trust domain {0:?}: use lowercase letters, digits, '.', '-' and '_' (e.g. cluster.local)"
    )]
    TrustDomain(String),
    #[error("{what} {value:?}: use letters, digits, '.', '-' and '_', and not '.' or '..'")]
    Segment { what: &'static str, value: String },
}

impl Identity {
    pub fn new(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, IdentityError> {
        check_trust_domain(trust_domain)?;
        check_segment("namespace", namespace)?;
        check_segment("service account", service_account)?;
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        })
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn service_account(&self) -> &str {
        &self.service_account
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let form = || IdentityError::Form(text.to_owned());
        let rest = text.strip_prefix(SCHEME).ok_or_else(form)?;
        let (trust_domain, path) = rest.split_once('/').ok_or_else(form)?;
        match path.split('/').collect::<Vec<_>>()[..] {
            ["ns", namespace, "sa", service_account] => {
                Identity::new(trust_domain, namespace, service_account)
            }
            _ => Err(form()),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl Serialize for Identity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// SPIFFE's trust-domain alphabet; a bare `cluster.local`, no port or user info.
fn check_trust_domain(text: &str) -> Result<(), IdentityError> {
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_');
    if text.is_empty() || !text.chars().all(allowed) {
        return Err(IdentityError::TrustDomain(text.to_owned()));
    }
    Ok(())
}

/// SPIFFE's path-segment alphabet, which covers Kubernetes namespace and account names.
fn check_segment(what: &'static str, text: &str) -> Result<(), IdentityError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if text.is_empty() || text == "." || text == ".." || !text.chars().all(allowed) {
        return Err(IdentityError::Segment {
            what,
            value: text.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Identity, IdentityError> {
        text.parse()
    }

    #[test]
    fn parses_and_formats_round_trip() {
        let text = "spiffe://cluster.local/ns/shop/sa/reviews-v1";
        let id = parse(text).expect("valid");
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.namespace(), "shop");
        assert_eq!(id.service_account(), "reviews-v1");
        assert_eq!(id.to_string(), text);
        assert_eq!(
            Identity::new("cluster.local", "shop", "reviews-v1"),
            Ok(id.clone())
        );
        assert_eq!(
            serde_json::to_string(&id).expect("serializes"),
            format!("\"{text}\"")
        );
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "",
            "cluster.local/ns/a/sa/b",
            "spiffe://cluster.local",
            "spiffe://cluster.local/",
            "spiffe://cluster.local/ns/a",
            "spiffe://cluster.local/ns/a/sa",
            "spiffe://cluster.local/ns/a/sa/b/extra",
            "spiffe://cluster.local/sa/b/ns/a",
            "spiffe://cluster.local/ns//sa/b",
            "spiffe:///ns/a/sa/b",
            "https://cluster.local/ns/a/sa/b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn checks_the_alphabets() {
        assert!(matches!(
            parse("spiffe://Cluster.Local/ns/a/sa/b"),
            Err(IdentityError::TrustDomain(_))
        ));
        assert!(matches!(
            parse("spiffe://td:8080/ns/a/sa/b"),
            Err(IdentityError::TrustDomain(_))
        ));
        assert!(matches!(
            Identity::new("td", "..", "b"),
            Err(IdentityError::Segment {
                what: "namespace",
                ..
            })
        ));
        assert!(matches!(
            Identity::new("td", "a", "b c"),
            Err(IdentityError::Segment {
                what: "service account",
                ..
            })
        ));
        assert!(Identity::new("my_td-1.example", "Ns_1", "sa.v2").is_ok());
    }

    #[test]
    fn errors_say_what_is_expected() {
        let error = parse("spiffe://td/ns/a").expect_err("incomplete");
        assert!(error.to_string().contains("/ns/<namespace>/sa/"), "{error}");
    }
}
