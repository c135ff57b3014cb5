//! `resolve_file_sync`: a `file://` read on the calling thread, with the cache, for
//! configuration time before any runtime exists.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use secret_uri::{Provider, SecretUri};
use tracing::field::Empty;

use super::{CacheState, Inner};
use crate::Error;
use crate::secret::{Secret, UriInput};

impl Inner {
    pub(super) fn resolve_file_sync(&self, input: UriInput<'_>) -> Result<Secret, Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let now = Instant::now();
        let only_files = |provider: Provider| Error::UnsupportedProvider {
            provider: provider.as_str(),
            reason: "resolve_file_sync reads file:// URIs only; use resolve or resolve_blocking",
        };
        if let Some(entry) = self.cache.get(input.key())
            && let Some(state) = self.servable(&entry, now)
        {
            if entry.uri.provider() != Provider::File {
                return Err(only_files(entry.uri.provider()));
            }
            return Ok(self.hit(entry, state, now));
        }
        let parsed;
        let uri = match input {
            UriInput::Parsed(uri) => uri,
            UriInput::Text(text) => {
                parsed = SecretUri::parse(text)?;
                &parsed
            }
        };
        if uri.provider() != Provider::File {
            return Err(only_files(uri.provider()));
        }
        self.allowed.check(uri)?;
        let span = tracing::debug_span!(
            "secret_resolve",
            provider = "file",
            mount = uri.mount(),
            cache = Empty,
            uri_hash = Empty,
            resource_ref = Empty,
            code = Empty,
        );
        self.record_uri(&span, uri);
        let _entered = span.enter();
        if let Some(entry) = self.cache.get(uri.as_str())
            && self.servable(&entry, now).is_some()
        {
            span.record("cache", CacheState::Hit.as_str());
            self.audit_hit(&entry.uri);
            return Ok(Secret(entry));
        }
        let provider = self.routes.route(uri)?;
        secret_providers::check_parameters(uri)
            .map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?;
        // No placeholder wait here: blocking on another task's read could deadlock a
        // single-threaded caller. File reads are cheap; a rare duplicate read is fine.
        let audit = self.read_audit(uri);
        let result = provider.read_blocking(uri);
        if let Some(audit) = audit {
            audit.finish(&result);
        }
        match result.map_err(|error| Error::provider(uri.mount(), Arc::new(error))) {
            Ok(value) => {
                let entry = Arc::new(self.entry(uri, value));
                if self.cacheable(uri) {
                    span.record("cache", CacheState::Miss.as_str());
                    self.cache
                        .insert(uri.as_str().to_owned(), Arc::clone(&entry));
                } else {
                    span.record("cache", CacheState::Off.as_str());
                }
                Ok(Secret(entry))
            }
            Err(error) => {
                span.record("code", error.code());
                tracing::debug!(code = error.code(), "resolve failed");
                Err(error)
            }
        }
    }
}
