//! Workload identities: a namespace and a service account, written as a SPIFFE ID
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("{what} {value:?} is not a Kubernetes name (lowercase letters, digits, '-', '.')")]
    BadName { what: &'static str, value: String },
}

/// Who a credential proves the caller to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    namespace: String,
    service_account: String,
}

impl Identity {
    pub fn new(namespace: &str, service_account: &str) -> Result<Self, IdentityError> {
        check_name("namespace", namespace)?;
        check_name("service account", service_account)?;
        Ok(Self {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    pub fn spiffe_id(&self, trust_domain: &str) -> String {
        format!(
            "spiffe://{trust_domain}/ns/{}/sa/{}",
            self.namespace, self.service_account
        )
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service_account)
    }
}

/// Kubernetes names (DNS-1123 subdomains): they cannot smuggle a `/` into the SPIFFE path.
fn check_name(what: &'static str, value: &str) -> Result<(), IdentityError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let edges_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if value.len() <= 253
        && value.chars().all(allowed)
        && edges_ok(value.chars().next())
        && edges_ok(value.chars().last())
    {
        Ok(())
    } else {
        Err(IdentityError::BadName {
            what,
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn spiffe_id_has_the_istio_shape() {
        let id = Identity::new("shop", "reviews").expect("valid");
        assert_eq!(
            id.spiffe_id("cluster.local"),
            "spiffe://cluster.local/ns/shop/sa/reviews"
        );
    }

    #[test]
    fn names_cannot_change_the_path() {
        for bad in ["", "a/b", "Shop", "-a", "a-", "a b", "ns/x/sa"] {
            assert!(Identity::new(bad, "sa").is_err(), "{bad:?}");
            assert!(Identity::new("ns", bad).is_err(), "{bad:?}");
        }
    }
}
