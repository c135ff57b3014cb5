//! Every metric, span and attribute name the SDK emits, and the closed sets its metric labels
//! take values from. `docs/telemetry.md` lists the same names; the label census test checks
//! every label value a full test run emitted against these sets.

/// Metric names (OpenTelemetry instrument names).
pub mod metric {
    /// Histogram, seconds: one `resolve`/`get_credentials`, by `provider`, `cache`, `outcome`.
    pub const RESOLVE_DURATION: &str = "secrets.resolve.duration";
    /// Counter: resolves served from the cache (fresh), by `provider`.
    pub const CACHE_HITS: &str = "secrets.cache.hits";
    /// Counter: resolves that read the provider, by `provider`.
    pub const CACHE_MISSES: &str = "secrets.cache.misses";
    /// Counter: cached entries dropped (expired and swept, or pushed out by capacity).
    pub const CACHE_EVICTIONS: &str = "secrets.cache.evictions";
    /// Counter: stale values served (in the stale window, while a refresh runs or after it
    /// failed), by `provider`.
    pub const STALE_SERVED: &str = "secrets.cache.stale_served";
    /// Counter: provider reads that failed, by `provider` and `code`.
    pub const PROVIDER_ERRORS: &str = "secrets.provider.errors";
    /// Counter: PEP decisions, by `outcome` and `reason`.
    pub const PEP_DECISIONS: &str = "secrets.pep.decisions";
    /// Histogram, seconds: one call to the PDP, by `decision`.
    pub const PDP_DURATION: &str = "secrets.pdp.duration";
    /// Gauge: audit events waiting in the queue.
    pub const AUDIT_QUEUE_DEPTH: &str = "secrets.audit.queue_depth";
    /// Counter: audit events dropped (queue full, transport failed or stopped), by `reason`.
    pub const AUDIT_DROPPED: &str = "secrets.audit.dropped";
    /// Gauge, seconds: what is left of the provider's token when last seen, by `provider`.
    pub const TOKEN_TTL_REMAINING: &str = "secrets.token.ttl_remaining";
    /// Gauge, Unix seconds: the last successful read from the provider, by `provider`.
    pub const LAST_SUCCESSFUL_FETCH: &str = "secrets.provider.last_successful_fetch";

    /// Counter: calls to the PEP's shared state store (Redis) that failed, by `store` and
    /// `outcome` (`refused`: failed closed; `allowed`: anti-replay configured fail-open).
    pub const STATE_STORE_FAILURES: &str = "secrets.pep.state_store.failures";

    /// Every metric name above.
    pub const ALL: [&str; 13] = [
        RESOLVE_DURATION,
        CACHE_HITS,
        CACHE_MISSES,
        CACHE_EVICTIONS,
        STALE_SERVED,
        PROVIDER_ERRORS,
        PEP_DECISIONS,
        PDP_DURATION,
        AUDIT_QUEUE_DEPTH,
        AUDIT_DROPPED,
        TOKEN_TTL_REMAINING,
        LAST_SUCCESSFUL_FETCH,
        STATE_STORE_FAILURES,
    ];
}

/// Metric label keys. Every value of every label comes from a closed set below (or, for
/// [`CODE`](label::CODE), from `docs/errors.md`): never a path, URI, subject, key or token.
pub mod label {
    /// The provider: one of [`PROVIDERS`](super::PROVIDERS).
    pub const PROVIDER: &str = "provider";
    /// What the cache did: one of [`CACHE_OUTCOMES`](super::CACHE_OUTCOMES).
    pub const CACHE: &str = "cache";
    /// Whether the operation succeeded: one of [`OUTCOMES`](super::OUTCOMES).
    pub const OUTCOME: &str = "outcome";
    /// A stable error code from `docs/errors.md`.
    pub const CODE: &str = "code";
    /// Why a PEP decided as it did: an error code from `docs/errors.md`, or one of
    /// [`PERMIT_REASONS`](super::PERMIT_REASONS); for dropped audit events one of
    /// [`DROP_REASONS`](super::DROP_REASONS).
    pub const REASON: &str = "reason";
    /// The PDP's answer: one of [`PDP_DECISIONS`](super::PDP_DECISIONS).
    pub const DECISION: &str = "decision";
    /// Which PEP state store: one of [`STATE_STORES`](super::STATE_STORES).
    pub const STORE: &str = "store";
}

/// Span names (the `tracing` span names; `docs/telemetry.md` has their fields).
pub mod span {
    /// One `SecretsClient::resolve` (INFO; a fresh cache hit is TRACE).
    pub const RESOLVE: &str = "secret_resolve";
    /// One `VaultClient::get_credentials` (INFO).
    pub const GET_CREDENTIALS: &str = "get_credentials";
    /// One provider read (DEBUG).
    pub const READ: &str = "secret_read";
    /// One login to the vault (DEBUG).
    pub const LOGIN: &str = "login";
    /// One PEP decision (DEBUG).
    pub const PEP_DECISION: &str = "pep_decision";
    /// One call to the PDP (DEBUG).
    pub const PDP_CALL: &str = "pdp_call";
    /// One HTTP request to the vault or the PDP (DEBUG; OpenTelemetry HTTP client span).
    pub const HTTP_REQUEST: &str = "http_request";
    /// One batch of audit events handed to the transport (DEBUG).
    pub const AUDIT_PUBLISH: &str = "audit_publish";
}

/// Span attribute keys taken from the OpenTelemetry semantic conventions. `url.full` is
/// deliberately absent: it would carry the secret's path.
pub mod semconv {
    /// `http.request.method`.
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// `http.response.status_code`.
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// `server.address`.
    pub const SERVER_ADDRESS: &str = "server.address";
    /// `server.port`.
    pub const SERVER_PORT: &str = "server.port";
    /// `error.type`.
    pub const ERROR_TYPE: &str = "error.type";
    /// `http.request.resend_count`: set on a retried attempt.
    pub const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
    /// `otel.name`: the exported span name (the HTTP method, per the conventions).
    pub const OTEL_NAME: &str = "otel.name";
    /// `otel.kind`: the span kind (`client` for the HTTP spans).
    pub const OTEL_KIND: &str = "otel.kind";
}

/// Values of the [`provider`](label::PROVIDER) label: the grammar's provider names.
pub const PROVIDERS: [&str; 6] = ["openbao", "hashicorp", "db", "bootstrap", "file", "yaml"];

/// Values of the [`cache`](label::CACHE) label.
///
/// `hit` (fresh cached value), `coalesced` (waited for another caller's read), `stale`
/// (stale value served), `miss` (read and cached), `refresh` (read because asked to),
/// `off` (read, not cached), `none` (a client without a cache, such as `VaultClient`).
pub const CACHE_OUTCOMES: [&str; 7] = [
    "hit",
    "coalesced",
    "stale",
    "miss",
    "refresh",
    "off",
    "none",
];

/// Values of the [`outcome`](label::OUTCOME) label.
pub const OUTCOMES: [&str; 2] = ["ok", "error"];

/// Values of the PEP decisions' [`outcome`](label::OUTCOME) label.
pub const PEP_OUTCOMES: [&str; 3] = ["permit", "deny", "error"];

/// [`reason`](label::REASON) values of a permit: a grant the PEP held, or a fresh PDP decision.
pub const PERMIT_REASONS: [&str; 2] = ["grant", "pdp"];

/// Values of the [`decision`](label::DECISION) label of a PDP call.
pub const PDP_DECISIONS: [&str; 3] = ["permit", "deny", "error"];

/// [`reason`](label::REASON) values of a dropped audit event.
pub const DROP_REASONS: [&str; 3] = ["queue_full", "transport_failed", "stopped"];

/// Values of the [`store`](label::STORE) label: the PEP's shared state.
pub const STATE_STORES: [&str; 3] = ["replay", "grant", "negative"];

/// Values of [`outcome`](label::OUTCOME) on `secrets.pep.state_store.failures`: the request
/// was `refused` (fail closed) or `allowed` (anti-replay configured fail-open).
pub const STATE_STORE_OUTCOMES: [&str; 2] = ["refused", "allowed"];
