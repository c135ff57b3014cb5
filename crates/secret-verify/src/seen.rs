//! [`SeenTokens`]: access tokens whose signature and claims verified, remembered briefly so
//! that a client presenting its token again (with a fresh DPoP proof each request) costs one
//! signature check per request, not two.

use std::sync::Arc;

use quick_cache::sync::Cache;
use ring::digest::{SHA256, digest};

use crate::token::VerifiedToken;

/// How many tokens are remembered.
const ENTRIES: usize = 10_000;
/// How long a remembered token is trusted without verifying its signature again, in seconds
/// (then it is verified against the keys in use, which `IssuerKeys` refreshes by age).
pub(crate) const REVERIFY_AFTER_S: u64 = 60;

/// Verified tokens by the SHA-256 of their text, with when they were verified. Shared by a
/// verifier's clones.
#[derive(Clone)]
pub(crate) struct SeenTokens(Arc<Cache<[u8; 32], (VerifiedToken, u64)>>);

impl Default for SeenTokens {
    fn default() -> Self {
        Self(Arc::new(Cache::new(ENTRIES)))
    }
}

impl std::fmt::Debug for SeenTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenTokens")
            .field("len", &self.0.len())
            .finish()
    }
}

impl SeenTokens {
    /// The claims of `token` if it verified less than [`REVERIFY_AFTER_S`] before `now`.
    /// The caller still checks them against `now` (expiry).
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<VerifiedToken> {
        let (claims, at) = self.0.get(&key(token))?;
        (now >= at && now - at < REVERIFY_AFTER_S).then_some(claims)
    }

    /// Remembers that `token` verified at `now` with these claims.
    pub(crate) fn insert(&self, token: &str, claims: &VerifiedToken, now: u64) {
        self.0.insert(key(token), (claims.clone(), now));
    }
}

fn key(token: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}
