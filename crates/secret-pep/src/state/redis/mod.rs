//! [`RedisState`]: the PEP's state on one Redis (feature `redis`), shared by every replica.
//!
//! Keys are `<REDIS_KEY_PREFIX>secrets:pep:<tenant>:<kind>:<h>`, `<kind>` one of `replay`,
//! `grant`, `uses`, `deny`, `claim`, and `<h>` 32 hex digits of an HMAC-SHA256 of the `jti`
//! (with its issuer) or of the grant key, under a key derived from `PEP_STATE_KEY` (or the
//! tenant salt) that every replica shares. Values are `1` (a `jti`), a deny reason code, a
//! random claim token, a use count, or a grant's terms (`<max_uses>|<stamp>|{grant id, TTL,
//! decision id, policy version, classification}`): never a subject, URI, path or `jti`.

mod scripts;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use ring::hmac;

use super::{
    Claim, GrantStore, NegativeCache, Recorded, ReplayCheck, ReplayStore, StoreError, StoreFuture,
    StoreKind, StoredGrant, Taken,
};
use crate::{DenyReason, Grant, PepError, RedisConfig};

/// Domain label of the derived key: the state key never keys anything else directly.
const KEY_DOMAIN: &[u8] = b"secrets-pep/redis-state/v1";

/// The PEP's grants, use counts, anti-replay window and negative cache on one Redis: a
/// single node or a managed endpoint (no Cluster or Sentinel client).
///
/// One multiplexed connection ([`ConnectionManager`]: reconnects on its own), made at the
/// first call rather than at build time, so building never waits on the network; every call,
/// connecting included, is bounded by [`RedisConfig::timeout`] and fails closed
/// (`STATE_STORE_UNAVAILABLE`) past it. The connection's driver runs on the Tokio runtime of
/// the first call (a `VaultClient`'s own runtime, for its PEP).
///
/// Give it to a PEP with [`PepState::redis`](crate::PepState::redis) (all three stores, one
/// round trip per warm decision), or one store at a time ([`Self::replay_store`],
/// [`Self::grant_store`], [`Self::negative_cache`]). Cheap to clone.
#[derive(Clone)]
pub struct RedisState {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    manager: ConnectionManagerConfig,
    connection: OnceLock<ConnectionManager>,
    /// `<prefix>secrets:pep:<tenant>:`
    namespace: String,
    tenant: String,
    key: hmac::Key,
    timeout: Duration,
    claim_ttl: Duration,
    /// Calls sent (each one round trip).
    calls: AtomicU64,
    decide: Script,
    put: Script,
    give_back: Script,
    release: Script,
    peek: Script,
}

impl fmt::Debug for RedisState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisState")
            .field("tenant", &self.inner.tenant)
            .field("timeout", &self.inner.timeout)
            .field("connected", &self.inner.connection.get().is_some())
            .finish_non_exhaustive()
    }
}

/// The keys of one grant key.
pub(crate) struct GrantKeys {
    grant: String,
    uses: String,
    deny: String,
    claim: String,
}

/// What the decide script found.
pub(crate) enum Decided {
    Replay,
    Used(Box<StoredGrant>),
    Denied,
    Vacant(Claim),
    Busy,
}

impl RedisState {
    /// The state of `tenant`'s PEPs on the Redis `config` names. No I/O: the connection is
    /// made at the first call.
    ///
    /// # Errors
    /// `CONFIG` naming `REDIS_URL` (a URL the client cannot use), `REDIS_CA_BUNDLE` (unreadable),
    /// `TENANT_ID` (empty) or a timeout setting.
    pub fn new(config: &RedisConfig, tenant: &str) -> Result<Self, PepError> {
        config.validate()?;
        if tenant.trim().is_empty() {
            return Err(PepError::invalid("TENANT_ID", "must not be empty"));
        }
        // The client's own error is not kept: it could quote the URL.
        let unusable = || PepError::invalid("REDIS_URL", "is not a URL the Redis client can use");
        let client = match &config.ca_bundle {
            None => redis::Client::open(config.url()).map_err(|_| unusable())?,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| PepError::Config {
                    setting: "REDIS_CA_BUNDLE".into(),
                    reason: "cannot be read".to_owned(),
                    source: Some(Box::new(e)),
                })?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(config.url(), certificates).map_err(|_| unusable())?
            }
        };
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(3);
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, config.state_key()),
            KEY_DOMAIN,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                manager,
                connection: OnceLock::new(),
                namespace: format!("{}secrets:pep:{tenant}:", config.key_prefix),
                tenant: tenant.to_owned(),
                key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
                timeout: config.timeout,
                claim_ttl: config.claim_ttl,
                calls: AtomicU64::new(0),
                decide: Script::new(scripts::DECIDE),
                put: Script::new(scripts::PUT),
                give_back: Script::new(scripts::GIVE_BACK),
                release: Script::new(scripts::RELEASE),
                peek: Script::new(scripts::PEEK),
            }),
        })
    }

    /// How long a claim to ask the PDP holds.
    pub(crate) fn claim_ttl(&self) -> Duration {
        self.inner.claim_ttl
    }

    /// The calls made to Redis so far, each one round trip (a script, `SET` or `EXISTS`; a
    /// script the server has forgotten is loaded again within the call): a warm decision of
    /// a PEP on [`PepState::redis`](crate::PepState::redis) makes one.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// The tenant whose PEPs this state serves.
    #[must_use]
    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    /// The anti-replay store alone (`SET <key> 1 NX PX <window>`).
    #[must_use]
    pub fn replay_store(&self) -> Arc<dyn ReplayStore> {
        Arc::new(RedisReplay(self.clone()))
    }

    /// The grants and use counters alone.
    #[must_use]
    pub fn grant_store(&self) -> Arc<dyn GrantStore> {
        Arc::new(RedisGrants(self.clone()))
    }

    /// The negative cache alone (`SET <key> <reason> PX <ttl>`).
    #[must_use]
    pub fn negative_cache(&self) -> Arc<dyn NegativeCache> {
        Arc::new(RedisNegative(self.clone()))
    }

    /// The connection, made (lazily) at the first call, inside the caller's Tokio runtime.
    fn connection(&self, store: StoreKind) -> Result<ConnectionManager, StoreError> {
        if let Some(connection) = self.inner.connection.get() {
            return Ok(connection.clone());
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::new(store, "needs a Tokio runtime"));
        }
        let made = ConnectionManager::new_lazy_with_config(
            self.inner.client.clone(),
            self.inner.manager.clone(),
        )
        .map_err(|e| StoreError::new(store, "could not be set up").with_source(e))?;
        // Two first calls may race: one manager wins, the other is dropped unused.
        Ok(self.inner.connection.get_or_init(|| made).clone())
    }

    /// Runs `call` on the connection within the timeout.
    async fn run<T, F, Fut>(&self, store: StoreKind, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection(store)?;
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.inner.timeout, call(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::new(store, cause(&error)).with_source(error)),
            Err(_) => Err(StoreError::new(store, "timed out")),
        }
    }

    fn hash(&self, kind: u8, parts: &[&[u8]]) -> String {
        let mut context = hmac::Context::with_key(&self.inner.key);
        context.update(&[kind]);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let tag = context.sign();
        let mut out = String::with_capacity(32);
        for byte in &tag.as_ref()[..16] {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
        out
    }

    pub(crate) fn replay_key(&self, check: &ReplayCheck<'_>) -> String {
        let h = self.hash(
            b'r',
            &[
                check.issuer.unwrap_or_default().as_bytes(),
                check.jti.as_bytes(),
            ],
        );
        format!("{}replay:{h}", self.inner.namespace)
    }

    pub(crate) fn grant_keys(&self, key: &str) -> GrantKeys {
        let h = self.hash(b'g', &[key.as_bytes()]);
        let ns = &self.inner.namespace;
        GrantKeys {
            grant: format!("{ns}grant:{h}"),
            uses: format!("{ns}uses:{h}"),
            deny: format!("{ns}deny:{h}"),
            claim: format!("{ns}claim:{h}"),
        }
    }

    /// One round trip: records the `jti` (when given), takes a use of the live grant, else
    /// reports a remembered denial (when `negative`), else claims the PDP call (when
    /// `claim`).
    pub(crate) async fn decide(
        &self,
        replay: Option<ReplayCheck<'_>>,
        key: &str,
        negative: bool,
        claim: bool,
    ) -> Result<Decided, StoreError> {
        // One script for both: a failure fails the grant (closed), whatever the replay policy.
        let store = StoreKind::Grant;
        let keys = self.grant_keys(key);
        let (replay_key, window) = match &replay {
            Some(check) => (self.replay_key(check), millis(check.window)),
            None => (format!("{}replay:-", self.inner.namespace), 0),
        };
        let token = if claim {
            crate::util::random_id()
        } else {
            String::new()
        };
        let claim_ms = millis(self.inner.claim_ttl);
        let inner = &self.inner;
        let (replay_key, keys, token_ref) = (&replay_key, &keys, &token);
        let answer: Value = self
            .run(store, |mut connection| async move {
                inner
                    .decide
                    .key(replay_key)
                    .key(&keys.grant)
                    .key(&keys.uses)
                    .key(&keys.deny)
                    .key(&keys.claim)
                    .arg(window)
                    .arg(token_ref)
                    .arg(claim_ms)
                    .arg(if negative { "1" } else { "0" })
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        let items = array(store, answer)?;
        Ok(match int(store, items.first())? {
            0 => Decided::Replay,
            1 => Decided::Used(Box::new(stored(store, &items)?)),
            2 => Decided::Denied,
            3 if claim => Decided::Vacant(Claim::new(token)),
            3 => Decided::Vacant(Claim::none()),
            4 => Decided::Busy,
            _ => return Err(unreadable(store)),
        })
    }

    async fn put(
        &self,
        key: &str,
        grant: &Grant,
        claim: &Claim,
        take_use: bool,
    ) -> Result<Taken, StoreError> {
        let store = StoreKind::Grant;
        let keys = self.grant_keys(key);
        let stamp = crate::util::random_id();
        let value = encode(grant, &stamp);
        // `PX 0` is refused by Redis: a grant shorter than a millisecond lives one.
        let ttl = millis(grant.ttl).max(1);
        let token = claim.token().unwrap_or_default();
        let inner = &self.inner;
        let answer: Value = self
            .run(store, |mut connection| async move {
                inner
                    .put
                    .key(&keys.grant)
                    .key(&keys.uses)
                    .key(&keys.claim)
                    .arg(&value)
                    .arg(ttl)
                    .arg(grant.uses)
                    .arg(if take_use { "1" } else { "0" })
                    .arg(token)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        let items = array(store, answer)?;
        match int(store, items.first())? {
            1 => Ok(Taken::Used(Box::new(stored(store, &items)?))),
            3 => Ok(Taken::Vacant(Claim::none())),
            _ => Err(unreadable(store)),
        }
    }

    async fn release(&self, key: &str, claim: &Claim) -> Result<(), StoreError> {
        let Some(token) = claim.token() else {
            return Ok(());
        };
        let keys = self.grant_keys(key);
        let inner = &self.inner;
        let _: Value = self
            .run(StoreKind::Grant, |mut connection| async move {
                inner
                    .release
                    .key(&keys.claim)
                    .arg(token)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn give_back(&self, key: &str, stamp: &str) -> Result<bool, StoreError> {
        let keys = self.grant_keys(key);
        let inner = &self.inner;
        let back: i64 = self
            .run(StoreKind::Grant, |mut connection| async move {
                inner
                    .give_back
                    .key(&keys.grant)
                    .key(&keys.uses)
                    .arg(stamp)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        Ok(back == 1)
    }

    async fn peek(&self, key: &str) -> Result<Option<StoredGrant>, StoreError> {
        let store = StoreKind::Grant;
        let keys = self.grant_keys(key);
        let inner = &self.inner;
        let answer: Value = self
            .run(store, |mut connection| async move {
                inner
                    .peek
                    .key(&keys.grant)
                    .key(&keys.uses)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        let items = array(store, answer)?;
        match int(store, items.first())? {
            1 => Ok(Some(stored(store, &items)?)),
            3 => Ok(None),
            _ => Err(unreadable(store)),
        }
    }

    async fn record(&self, check: ReplayCheck<'_>) -> Result<Recorded, StoreError> {
        let key = self.replay_key(&check);
        let window = millis(check.window).max(1);
        let answer: Value = self
            .run(StoreKind::Replay, |mut connection| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg("1")
                    .arg("NX")
                    .arg("PX")
                    .arg(window)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(match answer {
            Value::Nil => Recorded::Replay,
            _ => Recorded::Fresh,
        })
    }

    async fn exists(&self, store: StoreKind, key: String) -> Result<bool, StoreError> {
        let n: i64 = self
            .run(store, |mut connection| async move {
                redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(n > 0)
    }

    async fn deny(&self, key: &str, reason: DenyReason, ttl: Duration) -> Result<(), StoreError> {
        let key = self.grant_keys(key).deny;
        let ttl = millis(ttl).max(1);
        let _: Value = self
            .run(StoreKind::Negative, |mut connection| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(reason.code())
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(())
    }
}

/// The anti-replay store of a [`RedisState`].
#[derive(Debug)]
struct RedisReplay(RedisState);

impl ReplayStore for RedisReplay {
    fn record<'a>(&'a self, check: ReplayCheck<'a>) -> StoreFuture<'a, Recorded> {
        Box::pin(self.0.record(check))
    }

    fn seen<'a>(&'a self, check: ReplayCheck<'a>) -> StoreFuture<'a, bool> {
        let key = self.0.replay_key(&check);
        Box::pin(self.0.exists(StoreKind::Replay, key))
    }
}

/// The grant store of a [`RedisState`].
#[derive(Debug)]
struct RedisGrants(RedisState);

impl GrantStore for RedisGrants {
    fn take<'a>(&'a self, key: &'a str, claim: bool) -> StoreFuture<'a, Taken> {
        Box::pin(async move {
            Ok(match self.0.decide(None, key, false, claim).await? {
                Decided::Used(stored) => Taken::Used(stored),
                Decided::Vacant(claim) => Taken::Vacant(claim),
                Decided::Busy => Taken::Busy,
                Decided::Replay | Decided::Denied => return Err(unreadable(StoreKind::Grant)),
            })
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        grant: &'a Grant,
        claim: &'a Claim,
        take_use: bool,
    ) -> StoreFuture<'a, Taken> {
        Box::pin(self.0.put(key, grant, claim, take_use))
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a Claim) -> StoreFuture<'a, ()> {
        Box::pin(self.0.release(key, claim))
    }

    fn give_back<'a>(&'a self, key: &'a str, stamp: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(self.0.give_back(key, stamp))
    }

    fn peek<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredGrant>> {
        Box::pin(self.0.peek(key))
    }
}

/// The negative cache of a [`RedisState`].
#[derive(Debug)]
struct RedisNegative(RedisState);

impl NegativeCache for RedisNegative {
    fn deny<'a>(&'a self, key: &'a str, reason: DenyReason, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(self.0.deny(key, reason, ttl))
    }

    fn denied<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        let key = self.0.grant_keys(key).deny;
        Box::pin(self.0.exists(StoreKind::Negative, key))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A short, stable cause for a client error (never its text, which the source keeps).
fn cause(error: &redis::RedisError) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connection_refusal() {
        "refused the connection"
    } else if error.is_io_error() || error.is_connection_dropped() || error.is_unrecoverable_error()
    {
        "is unreachable"
    } else {
        "answered with an error"
    }
}

fn unreadable(store: StoreKind) -> StoreError {
    StoreError::new(store, "gave an answer the PEP cannot read")
}

fn array(store: StoreKind, value: Value) -> Result<Vec<Value>, StoreError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(unreadable(store)),
    }
}

fn int(store: StoreKind, value: Option<&Value>) -> Result<i64, StoreError> {
    match value {
        Some(Value::Int(n)) => Ok(*n),
        _ => Err(unreadable(store)),
    }
}

/// `{_, used, pttl, value, …}` as a stored grant.
fn stored(store: StoreKind, items: &[Value]) -> Result<StoredGrant, StoreError> {
    let used = u32::try_from(int(store, items.get(1))?).map_err(|_| unreadable(store))?;
    let ttl = u64::try_from(int(store, items.get(2))?).unwrap_or(0);
    let Some(Value::BulkString(value)) = items.get(3) else {
        return Err(unreadable(store));
    };
    let (grant, stamp) = decode(value).ok_or_else(|| unreadable(store))?;
    Ok(StoredGrant::new(
        grant,
        used,
        Duration::from_millis(ttl),
        stamp,
    ))
}

/// `<max_uses>|<stamp>|<terms>`: the grant's non-sensitive terms only (no binding, no subject,
/// no URI; the binding is part of the grant key and put back by the PEP).
fn encode(grant: &Grant, stamp: &str) -> String {
    let terms = serde_json::json!({
        "id": grant.grant_id,
        "ttl_ms": millis(grant.ttl),
        "decision": grant.decision_id,
        "policy": grant.policy_version,
        "class": grant.classification,
    });
    format!("{}|{stamp}|{terms}", grant.max_uses)
}

fn decode(value: &[u8]) -> Option<(Grant, String)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.splitn(3, '|');
    let max_uses: u32 = parts.next()?.parse().ok()?;
    let stamp = parts.next()?.to_owned();
    let terms: serde_json::Value = serde_json::from_str(parts.next()?).ok()?;
    let text_of = |name: &str| terms.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let mut grant = Grant::new(
        text_of("id")?,
        Duration::from_millis(terms.get("ttl_ms")?.as_u64()?),
        max_uses,
    );
    grant.decision_id = text_of("decision");
    grant.policy_version = text_of("policy");
    grant.classification = text_of("class");
    Some((grant, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RedisState {
        let config = RedisConfig::new("redis://127.0.0.1:1", b"state-key-0123456789")
            .unwrap()
            .with_key_prefix("test:");
        RedisState::new(&config, "t1").unwrap()
    }

    #[test]
    fn keys_are_namespaced_and_keyed_hashes() {
        let state = state();
        let check = ReplayCheck::new(Some("iss"), "alice", "jti-canary", Duration::from_secs(1));
        let replay = state.replay_key(&check);
        assert!(
            replay.starts_with("test:secrets:pep:t1:replay:"),
            "{replay}"
        );
        assert_eq!(replay.len(), "test:secrets:pep:t1:replay:".len() + 32);
        assert!(!replay.contains("canary") && !replay.contains("alice"));
        let other_issuer = ReplayCheck::new(Some("other"), "alice", "jti-canary", check.window);
        assert_ne!(state.replay_key(&other_issuer), replay);
        let keys = state.grant_keys("2:v31:t5:alice…");
        assert!(keys.grant.starts_with("test:secrets:pep:t1:grant:"));
        assert_eq!(
            keys.grant[keys.grant.len() - 32..],
            keys.uses[keys.uses.len() - 32..]
        );
        assert!(!keys.grant.contains("alice"));
        // Another state key names other keys.
        let config = RedisConfig::new("redis://127.0.0.1:1", b"another-key-0123456789")
            .unwrap()
            .with_key_prefix("test:");
        let other = RedisState::new(&config, "t1").unwrap();
        assert_ne!(other.replay_key(&check), replay);
    }

    #[test]
    fn a_grant_value_round_trips_without_the_binding() {
        let mut grant = Grant::new("g-1", Duration::from_millis(1500), 5).bound_to(Some("jkt"));
        grant.decision_id = Some("d".into());
        grant.classification = Some("confidential".into());
        let value = encode(&grant, "stamp");
        assert!(value.starts_with("5|stamp|{"), "{value}");
        assert!(!value.contains("jkt"), "{value}");
        let (back, stamp) = decode(value.as_bytes()).unwrap();
        assert_eq!(stamp, "stamp");
        assert_eq!(back.cnf_binding, None);
        assert_eq!(
            (back.grant_id.as_str(), back.max_uses, back.ttl),
            ("g-1", 5, Duration::from_millis(1500))
        );
        assert_eq!(back.decision_id.as_deref(), Some("d"));
        assert_eq!(back.policy_version, None);
        assert!(decode(b"x|y|{}").is_none() && decode(b"5|s|not json").is_none());
    }

    #[test]
    fn calls_outside_a_runtime_fail_closed() {
        let state = state();
        let error = state.connection(StoreKind::Grant).unwrap_err();
        assert_eq!(error.store, StoreKind::Grant);
        assert_eq!(PepError::from(error).code(), "STATE_STORE_UNAVAILABLE");
    }
}
