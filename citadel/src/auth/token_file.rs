//! Local mode's credentials: a file of bootstrap tokens, one per line,
//! `<token> <namespace> <service-account>` (`#` starts a comment). Tokens are compared in
//! constant time and never appear in a log line or an error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::{AuthError, AuthFuture, Authenticator};
use crate::identity::{Identity, IdentityError};

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading the token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("token file line {line}: expected `<token> <namespace> <service-account>`")]
    Shape { line: usize },
    #[error("token file line {line}: {source}")]
    Identity { line: usize, source: IdentityError },
    #[error("token file line {line}: the same token is on line {first}")]
    Duplicate { line: usize, first: usize },
}

struct Entry {
    token: Vec<u8>,
    identity: Identity,
    line: usize,
}

/// The tokens of one file; [`TokenFile::reload`] swaps in the file's current content.
pub struct TokenFile {
    path: PathBuf,
    entries: RwLock<Vec<Entry>>,
}

impl TokenFile {
    pub async fn load(path: &Path) -> Result<Self, TokenFileError> {
        let entries = read(path).await?;
        Ok(Self {
            path: path.to_owned(),
            entries: RwLock::new(entries),
        })
    }

    /// Re-reads the file; on an error the tokens in use stay.
    pub async fn reload(&self) -> Result<usize, TokenFileError> {
        let entries = read(&self.path).await?;
        let count = entries.len();
        if let Ok(mut current) = self.entries.write() {
            *current = entries;
        }
        Ok(count)
    }

    fn find(&self, token: &str) -> Option<Identity> {
        let entries = self.entries.read().ok()?;
        // Every entry is compared, so the time taken does not say which one matched.
        let mut found = None;
        for entry in entries.iter() {
            if constant_time_eq(&entry.token, token.as_bytes()) {
                found = Some(entry.identity.clone());
            }
        }
        found
    }
}

impl Authenticator for TokenFile {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        let result = self
            .find(token)
            .ok_or_else(|| AuthError::Invalid("not a known bootstrap token".into()));
        Box::pin(std::future::ready(result))
    }
}

impl fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.entries.read().map_or(0, |e| e.len());
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .field("tokens", &count)
            .finish()
    }
}

async fn read(path: &Path) -> Result<Vec<Entry>, TokenFileError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| TokenFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
    parse(&text)
}

fn parse(text: &str) -> Result<Vec<Entry>, TokenFileError> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or_default();
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [token, namespace, service_account] = fields.as_slice() else {
            if fields.is_empty() {
                continue;
            }
            return Err(TokenFileError::Shape { line });
        };
        let identity = Identity::new(namespace, service_account)
            .map_err(|source| TokenFileError::Identity { line, source })?;
        if let Some(first) = entries.iter().find(|e| e.token == token.as_bytes()) {
            let first = first.line;
            return Err(TokenFileError::Duplicate { line, first });
        }
        entries.push(Entry {
            token: token.as_bytes().to_vec(),
            identity,
            line,
        });
    }
    Ok(entries)
}

/// Equal contents in a time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        difference |= std::hint::black_box(x ^ y);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const FILE: &str = "# bootstrap tokens\n\
                        s3cr3t-reviews shop reviews\n\
                        \n\
                        s3cr3t-ratings shop ratings # a comment\n";

    fn file(text: &str) -> TokenFile {
        TokenFile {
            path: "tokens".into(),
            entries: RwLock::new(parse(text).expect("parses")),
        }
    }

    #[tokio::test]
    async fn known_tokens_prove_their_identity() {
        let tokens = file(FILE);
        let id = tokens.authenticate("s3cr3t-reviews").await.expect("known");
        assert_eq!(id, Identity::new("shop", "reviews").unwrap());
        let id = tokens.authenticate("s3cr3t-ratings").await.expect("known");
        assert_eq!(id.service_account(), "ratings");
    }

    #[tokio::test]
    async fn unknown_and_prefix_tokens_prove_nothing() {
        let tokens = file(FILE);
        for guess in ["", "s3cr3t", "s3cr3t-reviewsX", "S3CR3T-REVIEWS"] {
            let error = tokens.authenticate(guess).await.unwrap_err();
            assert!(matches!(error, AuthError::Invalid(_)), "{guess:?}");
        }
    }

    #[test]
    fn bad_lines_are_named_without_their_token() {
        let error = parse("tok1 shop\n").err().expect("refused");
        assert!(matches!(error, TokenFileError::Shape { line: 1 }));
        let error = parse("tok1 Shop reviews\n").err().expect("refused");
        assert!(!error.to_string().contains("tok1"), "{error}");
        let error = parse("tok1 a b\ntok1 c d\n").err().expect("refused");
        assert!(matches!(
            error,
            TokenFileError::Duplicate { line: 2, first: 1 }
        ));
        assert!(!error.to_string().contains("tok1"), "{error}");
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn debug_shows_no_token() {
        assert!(!format!("{:?}", file(FILE)).contains("s3cr3t"));
    }
}
