//! `resolve_file_sync`: a `file://` read on the calling thread, with the cache, for
//! configuration time before any runtime exists.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use secret_telemetry::names::span::RESOLVE;
use secret_uri::{Provider, SecretUri};
use tracing::field::Empty;

use super::read::ReadMetrics;
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
        // Another spelling of a cached URI: a hit, with the hit path's span and metrics.
        if let Some(entry) = self.cache.get(uri.as_str())
            && let Some(state) = self.servable(&entry, now)
        {
            return Ok(self.hit(entry, state, now));
        }
        // The mount only when the tenant may read it (see `resolve`).
        let mount = self.allowed.check(uri).is_ok().then(|| uri.mount());
        let span = tracing::info_span!(
            RESOLVE,
            provider = "file",
            mount,
            cache = Empty,
            uri_hash = Empty,
            resource_ref = Empty,
            code = Empty,
        );
        self.record_uri(&span, uri);
        let _entered = span.enter();
        let mut cache = None;
        let result = self.read_file_sync(uri, &mut cache);
        self.record_resolve(uri, cache, result.is_ok(), now);
        if let Err(error) = &result {
            span.record("code", error.code());
            tracing::debug!(code = error.code(), "resolve failed");
        }
        if let Some(state) = cache {
            span.record("cache", state.as_str());
        }
        result
    }

    /// The guarded read of a file URI on the calling thread, cached when file secrets are;
    /// what the cache did goes to `cache`.
    fn read_file_sync(
        &self,
        uri: &SecretUri,
        cache: &mut Option<CacheState>,
    ) -> Result<Secret, Error> {
        self.allowed.check(uri)?;
        let provider = self.routes.route(uri)?;
        secret_providers::check_parameters(uri)
            .map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?;
        let cacheable = self.cacheable(uri);
        *cache = Some(if cacheable {
            CacheState::Miss
        } else {
            CacheState::Off
        });
        // No placeholder wait here: blocking on another task's read could deadlock a
        // single-threaded caller. File reads are cheap; a rare duplicate read is fine.
        let audit = self.read_audit(uri);
        let counted = ReadMetrics::start(&self.metrics, uri);
        let result = provider.read_blocking(uri);
        counted.finish(&result);
        if let Some(audit) = audit {
            audit.finish(&result);
        }
        let value = result.map_err(|error| Error::provider(uri.mount(), Arc::new(error)))?;
        let entry = Arc::new(self.entry(uri, value));
        if cacheable {
            self.cache
                .insert(uri.as_str().to_owned(), Arc::clone(&entry));
            self.served(&entry);
        }
        Ok(Secret(entry))
    }
}
