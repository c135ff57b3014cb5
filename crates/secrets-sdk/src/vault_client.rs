//! [`VaultClient`]: PEP-enforced reads of KV v2 secrets, per request.

mod builder;
mod flights;
mod many;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::in_span::InSpan as _;
use secret_audit::AuditKey;
use secret_pep::{Authorized, BatchReport, ExecutionContext, Pep};
use secret_providers::{ProviderError, SecretProvider};
use secret_telemetry::Metrics;
use secret_telemetry::names::span::GET_CREDENTIALS;
use secret_uri::{Provider, SecretUri};
use tracing::field::Empty;

use crate::Error;
use crate::finishing::{Finishing, Unfinished};
use crate::io_runtime::IoRuntime;
use crate::routes::Routes;
use crate::secret::{Entry, OwnedUriInput, Secret, UriInput};

pub use builder::VaultClientBuilder;
pub use secret_audit::ResourceRef;

use flights::{Flights, Read};
use many::ManyRequest;

/// The environment variable holding the HMAC key of audit [`ResourceRef`]s.
pub const TENANT_SALT_ENV: &str = crate::audit_config::TENANT_SALT_ENV;

/// Worker threads of the client's I/O runtime unless [`VaultClientBuilder::io_threads`] says
/// otherwise.
pub const DEFAULT_IO_THREADS: usize = 1;

/// Reads KV v2 secrets (OpenBao, HashiCorp Vault) for a caller, after the Policy Enforcement
/// Point allowed it: the original SDK's `VaultClient`, failing closed.
///
/// Each [`get_credentials`](Self::get_credentials) call:
/// 1. parses and canonicalizes the URI; a scheme other than `openbao[+kv2]://` or
///    `hashicorp[+kv2]://` is `UNSUPPORTED_PROVIDER`, and a query parameter other than
///    `version` is `UNKNOWN_PARAMETER`, before anything else happens;
/// 2. asks the [`Pep`] ([`Pep::authorize_uri`]): tenant mount guard, subject and audience,
///    token lifetime, `jti` anti-replay, then a grant for the resource on its server (cached,
///    negative-cached, or from the PDP) and one use of it. Both schemes name the one server
///    they reach, so their aliases share one grant. Refusals are audited by the PEP;
/// 3. reads the canonical URI from the KV v2 server at `VAULT_URL` (`?version=N` pinned,
///    deleted and destroyed versions typed, `#key` selects one field or fails with
///    `KEY_NOT_FOUND`); a read that fails before the server returned data (connection, TLS,
///    timeout, 5xx) gives its use of the grant back;
/// 4. audits the read (`PERMIT`, or `ERROR` with the provider's code) with a keyed
///    [`ResourceRef`], and returns the value as a [`Secret`] (redacted in `Debug`, zeroized
///    when the last handle drops). Values are not cached: every call is a decision and a read.
///
/// A request called from a multi-thread tokio runtime (with a timer) runs there, as a task of
/// its own: no hop between runtimes. From anywhere else (a current-thread runtime, another
/// executor, the blocking methods) it runs on the client's own runtime, started at the first
/// call with [`DEFAULT_IO_THREADS`] workers; so the async methods can be polled by any
/// executor and the blocking one works inside and outside a runtime.
///
/// The PEP's state (grants and their use counts, the replay window's `jti`s, the negative
/// cache) lives in the client's memory by default: one client, one state. With `REDIS_URL`
/// set (feature `redis`), or a [`PepState`](secret_pep::PepState) given to
/// [`VaultClientBuilder::pep_state`], it lives in Redis, shared by every replica of the
/// service: a `jti` used on one replica is a `REPLAY` on all, and a grant serves at most its
/// `max_uses` reads in total. A warm decision is then one Redis round trip; when Redis cannot
/// answer within `REDIS_TIMEOUT_MS` the call fails closed (`STATE_STORE_UNAVAILABLE`, nothing
/// read) and the next call tries again (`docs/deployment.md`).
///
/// Cheap to clone (an `Arc`); share one per tenant. See the [crate docs](crate) for an example
/// and `docs/vault-client.md` for every setting.
#[derive(Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<Core>,
    default_context: ExecutionContext,
    io_threads: usize,
    runtime: IoRuntime,
    closed: AtomicBool,
    /// The audit sink the client created from the environment (`ENABLE_KAFKA_PRODUCER`):
    /// flushed by [`VaultClient::close`].
    owned_sink: Option<Arc<dyn secret_audit::AuditSink>>,
}

/// What a request task needs: everything but the runtime, so that a task never holds the
/// last reference to the runtime that runs it.
struct Core {
    pep: Pep,
    /// Which provider serves each scheme: one KV v2 provider per server for both vault
    /// schemes, and any provider of one's own.
    routes: Routes,
    /// The longest one provider read may take.
    read_deadline: std::time::Duration,
    /// The tenant salt: the key of every `resource_ref`, in spans and audit events.
    key: Arc<AuditKey>,
    /// The client's instruments, bound to the meter provider installed when it was built.
    metrics: Metrics,
    /// Reads in flight, joined by requests for the same URI (`None`: every request reads).
    flights: Option<Flights>,
}

impl VaultClient {
    /// A client configured from the process environment (see [`VaultClientBuilder`] for the
    /// variables). No network I/O happens here. With `REDIS_URL` set (feature `redis`) its PEP
    /// keeps its state in that Redis, shared with every other client configured alike.
    ///
    /// # Errors
    /// `CONFIG` naming the first missing required variable (`VAULT_URL`, `VAULT_TOKEN`,
    /// `TENANT_ID`, `TENANT_ALLOWED_MOUNTS`, `SECRET_TENANT_SALT`) or an invalid one, including
    /// no PDP configured (`AUTHZEN_PDP_URL`, unless `ENABLE_AUTHORIZATION=false`), an invalid
    /// `REDIS_URL` or `PEP_STATE_KEY`, and `REDIS_URL` in a build without the `redis` feature.
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().from_env().build()
    }

    /// A builder; it reads no environment unless told to ([`VaultClientBuilder::from_env`]).
    pub fn builder() -> VaultClientBuilder {
        VaultClientBuilder::default()
    }

    /// Gets the secret `uri` names for `ctx`: the whole secret (a JSON object), or for
    /// `#key` that one field (text for a string field). `None` uses the builder's
    /// [`default_context`](VaultClientBuilder::default_context), else an empty context, which
    /// the PEP refuses (`SUBJECT_MISSING`).
    ///
    /// Accepts `&str`, `&String` or `&SecretUri`. On a multi-thread tokio runtime it runs in
    /// the caller's own task; from anywhere else (a current-thread runtime, another executor)
    /// as a task on the client's runtime, so any executor can poll it. If the future is
    /// dropped early the request still completes (its use of the grant is taken and audited
    /// either way).
    ///
    /// # Errors
    /// See [`Error`]: the URI's codes, `UNSUPPORTED_PROVIDER` (a scheme other than `openbao`
    /// or `hashicorp` KV v2), `TENANT_MOUNT_MISMATCH`, `AUTHZ_DENIED` (with
    /// [`Error::deny_reason`]), `PDP_UNAVAILABLE`, `BINDING_DRIFT`, `STATE_STORE_UNAVAILABLE`
    /// (the PEP's state in Redis could not answer: nothing was read), the provider's codes
    /// (`NOT_FOUND`, `KEY_NOT_FOUND`, `VERSION_DELETED`, …), `CLOSED`, `RUNTIME`.
    pub async fn get_credentials<'a>(
        &self,
        uri: impl Into<UriInput<'a>>,
        ctx: Option<&ExecutionContext>,
    ) -> Result<Secret, Error> {
        let request = self.request(uri.into(), ctx);
        let core = Arc::clone(&self.inner.core);
        self.inner
            .on_runtime(async move { core.get(request).await })
            .await
    }

    /// [`get_credentials`](Self::get_credentials) from synchronous code (the original SDK's
    /// `get_credentials_sync`). The request runs on the client's own runtime while the calling
    /// thread waits, so it works outside any runtime and inside one (current-thread or
    /// multi-thread) without the "cannot start a runtime from within a runtime" panic. It
    /// still blocks the calling thread: in async code prefer `get_credentials(..).await`.
    ///
    /// # Errors
    /// As [`get_credentials`](Self::get_credentials).
    pub fn get_credentials_blocking<'a>(
        &self,
        uri: impl Into<UriInput<'a>>,
        ctx: Option<&ExecutionContext>,
    ) -> Result<Secret, Error> {
        let request = self.request(uri.into(), ctx);
        let core = Arc::clone(&self.inner.core);
        self.inner.blocking(async move { core.get(request).await })
    }

    /// Gets several secrets for one caller with one token: one `jti` check for them all, one
    /// AuthZEN batch evaluation for the URIs without a warm grant, then the reads. Results
    /// are per URI, in input order; a URI listed twice is read (and takes a use) twice.
    ///
    /// This is how to read several secrets per request with anti-replay on: separate
    /// [`get_credentials`](Self::get_credentials) calls with one `jti` are replays after the
    /// first.
    ///
    /// # Errors
    /// The outer error refuses the caller as a whole before any PDP call or read
    /// (`AUTHZ_DENIED` with `SUBJECT_MISSING`, `AUDIENCE`, `JTI_MISSING`, `REPLAY`,
    /// `TOKEN_EXPIRED`, `TOKEN_LIFETIME`; `CLOSED`). Each inner result is that URI's, as for
    /// [`get_credentials`](Self::get_credentials).
    pub async fn get_credentials_many(
        &self,
        uris: &[&str],
        ctx: Option<&ExecutionContext>,
    ) -> Result<Vec<Result<Secret, Error>>, Error> {
        let request = ManyRequest {
            uris: uris.iter().map(|s| (*s).to_owned()).collect(),
            ctx: ctx.unwrap_or(&self.inner.default_context).clone(),
        };
        let core = Arc::clone(&self.inner.core);
        self.inner
            .on_runtime(async move { core.get_many(request).await })
            .await
    }

    /// Asks the PDP about many URIs at once (one AuthZEN `evaluations` call) and caches the
    /// grants, so the reads that follow are warm. Nothing is read and no use is taken; see
    /// [`Pep::authorize_batch`]. URIs with a scheme the client does not serve are refused.
    ///
    /// # Errors
    /// A URI or tenant-mount error, `UNSUPPORTED_PROVIDER`, `AUTHZ_DENIED` (`SUBJECT_MISSING`,
    /// `AUDIENCE`), `CLOSED`. Per-URI denials and PDP failures are in the report.
    pub async fn authorize_batch(
        &self,
        ctx: Option<&ExecutionContext>,
        required: &[&str],
        optional: &[&str],
    ) -> Result<BatchReport, Error> {
        let ctx = ctx.unwrap_or(&self.inner.default_context).clone();
        // Refused before the PEP when any URI is one this client can never read; then every
        // bad item is audited here (the PEP, which would audit the unparsed ones, is not asked).
        let mut refused: Vec<(Option<SecretUri>, &'static str)> = Vec::new();
        let mut first = None;
        for text in required.iter().chain(optional) {
            match SecretUri::parse(text) {
                Ok(uri) => {
                    if let Err(error) = self.inner.core.served(&uri) {
                        refused.push((Some(uri), error.code()));
                        first.get_or_insert(error);
                    }
                }
                Err(error) => refused.push((None, error.code())),
            }
        }
        if let Some(error) = first {
            for (uri, code) in &refused {
                self.inner.core.pep.audit_refused(&ctx, uri.as_ref(), code);
            }
            return Err(error);
        }
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (required, optional) = (owned(required), owned(optional));
        let core = Arc::clone(&self.inner.core);
        self.inner
            .on_runtime(async move {
                let required: Vec<&str> = required.iter().map(String::as_str).collect();
                let optional: Vec<&str> = optional.iter().map(String::as_str).collect();
                core.pep
                    .authorize_batch(&ctx, &required, &optional)
                    .await
                    .map_err(Error::from)
            })
            .await
    }

    /// The keyed audit reference of `uri` (HMAC-SHA256 with the tenant salt): what audit
    /// events carry, for correlating them with your own records.
    #[must_use]
    pub fn resource_ref(&self, uri: &SecretUri) -> ResourceRef {
        self.inner.core.key.resource_ref(uri)
    }

    /// The Policy Enforcement Point (its configuration and caches, for inspection).
    #[must_use]
    pub fn pep(&self) -> &Pep {
        &self.inner.core.pep
    }

    /// The KV v2 settings in effect for `provider` (`OpenBao` or `HashiCorp`; `None` for
    /// others). Secrets in them stay wrapped; `Debug` redacts them.
    #[must_use]
    pub fn kv2_config(&self, provider: Provider) -> Option<&secret_providers::Kv2Config> {
        match provider {
            Provider::OpenBao | Provider::HashiCorp => self.inner.core.routes.kv2_config(provider),
            _ => None,
        }
    }

    /// The tenant this client serves (`TENANT_ID`).
    #[must_use]
    pub fn tenant_id(&self) -> &str {
        &self.inner.core.pep.config().tenant_id
    }

    /// Closes the client: stops its runtime, then flushes the audit sink it created from the
    /// environment (`ENABLE_KAFKA_PRODUCER`; up to 10 s), so a clean shutdown loses no audit
    /// event. A sink given to [`VaultClientBuilder::audit`] is the caller's to close. Later
    /// calls fail with `CLOSED`. Idempotent.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.runtime.shutdown();
        crate::audit_config::close_owned(self.inner.owned_sink.as_ref());
    }

    /// Whether [`close`](Self::close) was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Relaxed)
    }

    fn request(&self, uri: UriInput<'_>, ctx: Option<&ExecutionContext>) -> Request {
        Request {
            uri: OwnedUriInput::from_input(uri),
            ctx: ctx.unwrap_or(&self.inner.default_context).clone(),
        }
    }
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("VaultClient")
            .field("tenant", &self.tenant_id())
            .field("providers", &inner.core.routes)
            .field("pep", &inner.core.pep)
            .field("key", &inner.core.key)
            .field("default_context", &inner.default_context)
            .field("io_threads", &inner.io_threads)
            .field("closed", &inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// One `get_credentials` call, owned so it can move onto the client's runtime.
struct Request {
    uri: OwnedUriInput,
    ctx: ExecutionContext,
}

impl Inner {
    /// The client's runtime, started at first use.
    fn io_handle(&self) -> Result<&tokio::runtime::Handle, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.runtime.handle()
    }

    /// Runs `work` to its end, awaited from whatever executor polls this. A caller on a
    /// multi-thread runtime with a timer polls it in its own task
    /// ([`callers_runtime`](crate::io_runtime::callers_runtime)); should it drop this future
    /// unfinished, the rest runs as a task there ([`Finishing`]). Any other caller (a
    /// current-thread runtime, another executor) awaits it as a task of the client's own
    /// runtime. Either way it completes even when the caller drops this future, and a panic
    /// in it is `RUNTIME`, not the caller's panic.
    async fn on_runtime<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let io = self.io_handle()?;
        // Boxed: a task's stage is as large as its future, and tokio copies the stage when it
        // makes the task and again when it hands the output over (kilobytes each time for
        // a request's future); a box makes both copies a pointer's, and moves of the
        // `Finishing` that holds it too.
        match crate::io_runtime::callers_runtime() {
            Some(caller) => match Finishing::new(Box::pin(work), caller).await {
                Ok(result) => result,
                Err(Unfinished) => Err(Error::Runtime {
                    reason: "the request panicked",
                    source: None,
                }),
            },
            None => match io
                .spawn(Box::pin(work.in_span(tracing::Span::current())))
                .await
            {
                Ok(result) => result,
                Err(join) => Err(self.lost(Some(join))),
            },
        }
    }

    /// Runs `work` on the client's runtime while the calling thread waits on a channel.
    fn blocking<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // Boxed, as in `on_runtime`.
        self.io_handle()?.spawn(Box::pin(
            async move {
                let _ = tx.send(work.await);
            }
            .in_span(tracing::Span::current()),
        ));
        rx.recv().map_err(|_| self.lost(None))?
    }

    /// The error for a request task that never finished: the client was closed under it, or
    /// the task was lost.
    fn lost(&self, join: Option<tokio::task::JoinError>) -> Error {
        if self.closed.load(Ordering::Acquire) {
            return Error::Closed;
        }
        Error::Runtime {
            reason: "the request task was cancelled",
            source: join.map(|j| Box::new(j) as _),
        }
    }
}

impl Core {
    async fn get(&self, request: Request) -> Result<Secret, Error> {
        let started = Instant::now();
        let parsed = match request.uri.as_input() {
            UriInput::Parsed(uri) => Ok(uri.clone()),
            UriInput::Text(text) => SecretUri::parse(text).map_err(|source| (text, source)),
        };
        // The span's fields are given at creation (cheaper than recording them later when a
        // telemetry layer is on; the keyed reference is computed only if the span is enabled).
        let span = match &parsed {
            Ok(uri) => tracing::info_span!(
                GET_CREDENTIALS,
                provider = uri.provider().as_str(),
                // Only a mount the tenant may read: a caller's other mount names (path
                // segments) stay out of exported spans.
                mount = self
                    .pep
                    .config()
                    .allowed_mounts
                    .check(uri)
                    .is_ok()
                    .then(|| uri.mount()),
                // A `&str`: `%` would format it through `Debug` into a new `String`.
                resource_ref = self.key.resource_ref(uri).as_str(),
                code = Empty,
                reason = Empty,
            ),
            Err(_) => tracing::info_span!(
                GET_CREDENTIALS,
                provider = Empty,
                mount = Empty,
                resource_ref = Empty,
                code = Empty,
                reason = Empty,
            ),
        };
        let result = match parsed {
            Ok(uri) => {
                let provider = uri.provider().as_str();
                let result = self
                    .authorize_and_read(uri, &request.ctx)
                    .in_span(span.clone())
                    .await;
                let outcome = if result.is_ok() { "ok" } else { "error" };
                self.metrics
                    .resolve(provider, "none", outcome, started.elapsed());
                result
            }
            // An unparsable URI names no provider: the span says why, no metric counts it.
            // The PEP parses it again, fails the same way and audits the refusal.
            Err((text, source)) => Err(
                match self
                    .pep
                    .authorize(&request.ctx, text)
                    .in_span(span.clone())
                    .await
                {
                    Err(error) => Error::from(error),
                    Ok(_) => Error::Uri { source },
                },
            ),
        };
        if let Err(error) = &result {
            span.record("code", error.code());
            if let Some(reason) = error.deny_reason() {
                span.record("reason", reason.code());
            }
            let _entered = span.enter();
            tracing::debug!(code = error.code(), "get_credentials failed");
        }
        result
    }

    async fn authorize_and_read(
        &self,
        uri: SecretUri,
        ctx: &ExecutionContext,
    ) -> Result<Secret, Error> {
        // Before the PEP: a URI this client can never read takes no use and asks no PDP.
        let provider = match self.served(&uri) {
            Ok(provider) => provider,
            Err(error) => {
                self.pep.audit_refused(ctx, Some(&uri), error.code());
                return Err(error);
            }
        };
        let granted = self.pep.authorize_uri(ctx, uri).await?;
        #[cfg(feature = "db")]
        if let Some(db) = self.routes.db().filter(|db| db.serves(granted.uri())) {
            return self.issue(db, granted, ctx).await;
        }
        self.read(provider, granted, ctx).await
    }

    /// Issues database credentials for an authorized `db` URI, bounded by the read deadline
    /// and audited as a read: the returned secret alone holds the lease (the grant is per
    /// read; the lease belongs to the caller's request), revoked when its last clone drops
    /// unless kept ([`Secret::keep_lease`]). The issue runs in a task of its own, so a lease
    /// the vault issued after the deadline passed (or the caller left) is revoked at once.
    #[cfg(feature = "db")]
    async fn issue(
        &self,
        db: &secret_providers::DbProvider,
        granted: Authorized,
        ctx: &ExecutionContext,
    ) -> Result<Secret, Error> {
        let uri = granted.uri().clone();
        let runtime = tokio::runtime::Handle::current();
        let task = {
            let (db, uri, runtime) = (db.clone(), uri.clone(), runtime.clone());
            runtime.clone().spawn(async move {
                let issued = db.issue(&uri).await;
                // Revoked on drop unless a caller receives it.
                issued.map(|lease| {
                    let guard = lease.lease_id().map(|id| {
                        crate::lease_guard::LeaseGuard::new(
                            db.clone(),
                            id.clone(),
                            lease.ttl(),
                            lease.renewable(),
                            runtime,
                        )
                    });
                    (lease, guard)
                })
            })
        };
        let outcome = match tokio::time::timeout(self.read_deadline, task).await {
            Ok(Ok(issued)) => issued,
            Ok(Err(_join)) => {
                self.pep.audit_read(ctx, &granted, Some("RUNTIME"));
                return Err(Error::Runtime {
                    reason: "the issue task was cancelled",
                    source: None,
                });
            }
            Err(_) => Err(ProviderError::Timeout {
                provider: "db",
                timeout: self.read_deadline,
                attempts: 1,
            }),
        };
        // A field the credentials lack drops the guard here: the lease is revoked.
        let result = outcome.and_then(|(lease, guard)| {
            lease
                .field(uri.key(), uri.mount())
                .map(|value| (value, guard))
        });
        match &result {
            Ok(_) => self.metrics.fetched("db"),
            Err(error) => self.metrics.provider_error("db", error.code()),
        }
        self.pep.audit_read(
            ctx,
            &granted,
            result.as_ref().err().map(ProviderError::code),
        );
        match result {
            Ok((value, guard)) => {
                let now = Instant::now();
                let entry = Entry::new(granted.into_uri(), value, now, now, now);
                Ok(Secret(Arc::new(match guard {
                    Some(guard) => entry.with_lease(guard),
                    None => entry,
                })))
            }
            Err(error) => {
                if no_data_returned(&error) {
                    granted.give_back();
                }
                Err(Error::provider(uri.mount(), Arc::new(error)))
            }
        }
    }

    /// Reads an authorized URI and audits the read, bounded by the read deadline: a provider
    /// that never answers ends in `TIMEOUT`, one that panics in `RUNTIME`, and either way the
    /// read is audited. An async provider is polled in place by this request's task
    /// ([`read_in_place`](crate::client::read_in_place)); a blocking one runs on the client's
    /// blocking pool. A read that failed before the vault returned data (connection, TLS,
    /// timeout, 5xx) gives its use back.
    async fn read(
        &self,
        provider: &Arc<dyn SecretProvider>,
        granted: Authorized,
        ctx: &ExecutionContext,
    ) -> Result<Secret, Error> {
        let uri = granted.uri();
        let read = match &self.flights {
            Some(flights) => {
                flights
                    .read(uri.as_str(), self.read_once(provider, uri))
                    .await
            }
            None => self.read_once(provider, uri).await,
        };
        let result = match read {
            Read::Done(result) => result,
            Read::Lost(reason) => {
                self.pep.audit_read(ctx, &granted, Some("RUNTIME"));
                return Err(Error::Runtime {
                    reason,
                    source: None,
                });
            }
        };
        self.pep
            .audit_read(ctx, &granted, result.as_ref().err().map(|e| e.code()));
        match result {
            Ok(value) => {
                let now = Instant::now();
                Ok(Secret(Arc::new(Entry::new(
                    granted.into_uri(),
                    value,
                    now,
                    now,
                    now,
                ))))
            }
            Err(error) => {
                let mount = granted.uri().mount().to_owned();
                if no_data_returned(&error) {
                    granted.give_back();
                }
                Err(Error::provider(&mount, error))
            }
        }
    }

    /// One provider read of `uri`, bounded by the read deadline: an async provider polled
    /// in place, a blocking one on the client's blocking pool.
    async fn read_once(&self, provider: &Arc<dyn SecretProvider>, uri: &SecretUri) -> Read {
        let outcome = if provider.reads_block() {
            let task = crate::client::spawn_read(
                provider,
                &tokio::runtime::Handle::current(),
                uri,
                &self.metrics,
            );
            let abort = task.abort_handle();
            let outcome = tokio::time::timeout(self.read_deadline, task).await;
            if outcome.is_err() {
                abort.abort();
            }
            outcome.map(|joined| {
                joined.map_err(|join| {
                    let reason = if join.is_panic() {
                        "the provider's read panicked"
                    } else {
                        "the read task was cancelled"
                    };
                    (reason, Some(Box::new(join) as Box<_>))
                })
            })
        } else {
            tokio::time::timeout(
                self.read_deadline,
                crate::client::read_in_place(provider, uri, &self.metrics),
            )
            .await
            .map(|answer| answer.ok_or(("the provider's read panicked", None)))
        };
        match outcome {
            Ok(Ok(result)) => Read::Done(result.map_err(Arc::new)),
            Ok(Err((reason, _source))) => Read::Lost(reason),
            Err(_) => {
                // The unfinished read counts nothing itself (see `client::read::ReadMetrics`).
                self.metrics
                    .provider_error(uri.provider().as_str(), "TIMEOUT");
                Read::Done(Err(Arc::new(ProviderError::Timeout {
                    provider: provider.name(),
                    timeout: self.read_deadline,
                    attempts: 1,
                })))
            }
        }
    }

    /// The provider that serves `uri`, or `UNSUPPORTED_PROVIDER`; `UNKNOWN_PARAMETER` for a
    /// query parameter it does not serve. Checked before the PEP, so a URI this client can
    /// never read takes no use and asks no PDP. (The original SDK sent every scheme,
    /// `file://` included, to the vault, and ignored unknown parameters.)
    fn served(&self, uri: &SecretUri) -> Result<&Arc<dyn SecretProvider>, Error> {
        let provider = self.routes.route(uri)?;
        secret_providers::check_parameters(uri)
            .map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?;
        Ok(provider)
    }
}

/// Whether a read failed before the vault returned any data: nothing was disclosed, so the
/// grant's use goes back.
fn no_data_returned(error: &ProviderError) -> bool {
    match error {
        ProviderError::Timeout { .. }
        | ProviderError::Unavailable { .. }
        | ProviderError::Tls { .. } => true,
        ProviderError::UnexpectedStatus { status, .. } => *status >= 500,
        _ => false,
    }
}
