//! Bearer tokens: the accepted set (token file, reloaded on change, plus environment tokens)
//! and the per-RPC interceptor that checks `authorization: Bearer <token>` in constant time.
//! Token values are never logged.

use super::config::{valid_token, AuthConfig};
use super::metrics::Metrics;
use super::reload::{fingerprint, read_files, Reload, Reloadable, SharedTracker};
use super::ServiceError;
use arc_swap::ArcSwap;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Parses a token file: one token per line, blank lines and lines starting with `#` ignored.
/// Errors name the file and line, never the token.
pub fn parse_token_file(file: &Path, text: &[u8]) -> Result<Vec<String>, ServiceError> {
    let text =
        std::str::from_utf8(text).map_err(|_| ServiceError::credentials(file, "not UTF-8 text"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !valid_token(t) {
            return Err(ServiceError::credentials(
                file,
                format!("line {}: a token is visible ASCII without spaces", i + 1),
            ));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

/// SHA-256 of a token.
fn digest(token: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token).into()
}

/// The accepted tokens, swapped atomically when the token file changes.
pub struct TokenStore {
    settings: AuthConfig,
    /// SHA-256 of each accepted token: comparing fixed-length digests keeps a token's length
    /// from showing through timing.
    current: ArcSwap<Vec<[u8; 32]>>,
    tracker: SharedTracker,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("token_file", &self.settings.token_file)
            .field("tokens", &self.current.load().len())
            .finish_non_exhaustive()
    }
}

impl TokenStore {
    /// Reads the token file, if any (errors name it); the set must not be empty.
    pub fn load(settings: AuthConfig) -> Result<Arc<Self>, ServiceError> {
        let files = Self::read(&settings)?;
        let tokens = Self::build(&settings, &files)?;
        Ok(Arc::new(TokenStore {
            tracker: SharedTracker::new(fingerprint(&files)),
            current: ArcSwap::from_pointee(tokens),
            settings,
        }))
    }

    fn read(s: &AuthConfig) -> Result<Vec<Vec<u8>>, ServiceError> {
        match &s.token_file {
            Some(p) => read_files(&[p.as_path()]),
            None => Ok(Vec::new()),
        }
    }

    fn build(s: &AuthConfig, files: &[Vec<u8>]) -> Result<Vec<[u8; 32]>, ServiceError> {
        let mut tokens: Vec<Vec<u8>> = s.tokens.0.iter().map(|t| t.as_bytes().to_vec()).collect();
        if let (Some(p), Some(text)) = (&s.token_file, files.first()) {
            let from_file = parse_token_file(p, text)?;
            if from_file.is_empty() && tokens.is_empty() {
                return Err(ServiceError::credentials(
                    p,
                    "no tokens (and none in PREWARM_AUTH_TOKENS): every call would be refused",
                ));
            }
            tokens.extend(from_file.into_iter().map(String::into_bytes));
        }
        Ok(tokens.iter().map(|t| digest(t)).collect())
    }

    /// Number of accepted tokens.
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    /// True when no token is accepted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `presented` is an accepted token. Compares the SHA-256 of `presented` with
    /// every accepted token's in constant time, so neither content nor length shows through
    /// timing (only the number of configured tokens does).
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let presented = digest(presented);
        let tokens = self.current.load();
        let mut ok = subtle::Choice::from(0u8);
        for t in tokens.iter() {
            ok |= t.ct_eq(&presented);
        }
        bool::from(ok)
    }
}

impl Reloadable for TokenStore {
    fn what(&self) -> &'static str {
        "tokens"
    }

    fn reload(&self) -> Reload {
        if self.settings.token_file.is_none() {
            return Reload::Unchanged;
        }
        self.tracker.poll(
            || Self::read(&self.settings),
            |files| {
                let t = Self::build(&self.settings, &files)?;
                self.current.store(Arc::new(t));
                Ok(())
            },
        )
    }
}

/// The per-RPC token check: `UNAUTHENTICATED` when the `authorization` header is missing, is
/// not `Bearer <token>`, or names a token not accepted. A check without a store lets every
/// call through (auth off, or the service is exempt).
#[derive(Clone, Debug, Default)]
pub struct TokenCheck {
    store: Option<Arc<TokenStore>>,
    metrics: Option<Arc<Metrics>>,
}

impl TokenCheck {
    /// A check against `store`, counting refusals in `metrics`.
    pub fn new(store: Arc<TokenStore>, metrics: Arc<Metrics>) -> Self {
        TokenCheck {
            store: Some(store),
            metrics: Some(metrics),
        }
    }

    /// A check that lets everything through.
    pub fn open() -> Self {
        TokenCheck::default()
    }

    fn refuse(&self, reason: &str, message: &str) -> Status {
        if let Some(m) = &self.metrics {
            m.auth_failures.with_label_values(&[reason]).inc();
        }
        Status::unauthenticated(message)
    }
}

/// The token of an `authorization` value `Bearer <token>` (scheme case-insensitive).
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let t = value.get(7..)?.trim_ascii();
    (!t.is_empty()).then_some(t)
}

impl Interceptor for TokenCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(store) = &self.store else {
            return Ok(req);
        };
        let Some(value) = req.metadata().get("authorization") else {
            return Err(self.refuse("missing", "missing bearer token (authorization header)"));
        };
        let Some(token) = bearer(value.as_bytes()) else {
            return Err(self.refuse("missing", "authorization header is not `Bearer <token>`"));
        };
        if store.accepts(token) {
            Ok(req)
        } else {
            Err(self.refuse("invalid", "invalid bearer token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::config::Tokens;

    #[test]
    fn token_files_and_bearer_values_parse() {
        let p = Path::new("tokens.txt");
        let t = parse_token_file(p, b"# ops\n\n  abc  \ndef\n").unwrap();
        assert_eq!(t, vec!["abc", "def"]);
        let e = parse_token_file(p, b"ok\nbad token\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && !e.contains("bad token"), "{e}");
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
    }

    #[test]
    fn accepts_only_listed_tokens() {
        let s = TokenStore::load(AuthConfig {
            token_file: None,
            tokens: Tokens(vec!["s3cret".into(), "other".into()]),
            reload_interval_ms: 10_000,
            exempt: vec![],
        })
        .unwrap();
        assert!(s.accepts(b"s3cret") && s.accepts(b"other"));
        assert!(!s.accepts(b"s3cre") && !s.accepts(b"s3cret!") && !s.accepts(b""));
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
