//! Watching secrets for [`SecretsClient::watch`](crate::SecretsClient::watch): the registry
//! of watched URIs (one watch per canonical URI, however many streams share it), the check
//! that compares a secret's state with the last one seen, and publishing a change to every
//! stream of the secret.
//!
//! A watched secret is checked every watch interval (jittered ±10 %): through the provider's
//! [`probe`](secret_providers::SecretProvider::probe) first (KV v2's metadata endpoint: an
//! unchanged version costs no value read), reading the value only when the version moved or
//! the provider cannot tell. Files are also checked at once when their directory changes
//! ([`files`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use ring::hmac;
use secret_providers::Probe;
use secret_uri::SecretUri;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::deadline::Deadline;
use super::{Inner, ResolveOptions};
use crate::Error;
use crate::secret::{Secret, UriInput};
use crate::watch::{Change, Changes, Digest, WatchItem};

#[cfg(feature = "file")]
pub(super) mod files;

/// The default interval between checks of a watched secret, 30 s.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(30);
/// The environment variable setting the watch interval, in whole seconds.
pub const WATCH_INTERVAL_ENV: &str = "SECRETS_WATCH_INTERVAL_S";
/// Items a stream may fall behind by before changes are dropped for it (with a warning).
const STREAM_BUFFER: usize = 32;

/// The client's watches.
pub(super) struct Watches {
    by_key: Mutex<HashMap<String, Arc<Watched>>>,
    /// Keys content digests: random per client, so a digest says nothing outside it.
    key: hmac::Key,
    interval: Duration,
    #[cfg(feature = "file")]
    pub(super) files: files::FileWatch,
}

/// One watched secret and its streams.
pub(super) struct Watched {
    pub(super) uri: SecretUri,
    subscribers: Mutex<Vec<mpsc::Sender<WatchItem>>>,
    last: Mutex<Seen>,
    /// Checks one at a time: a file event and the poll never race each other.
    checking: tokio::sync::Mutex<()>,
    poller: Mutex<Option<AbortHandle>>,
    /// The metadata endpoint refused (a policy without `metadata/` read): read values.
    probe_refused: std::sync::atomic::AtomicBool,
}

/// A check read and not yet published; the secret's other checks wait for it.
pub(super) struct Checked<'a> {
    watched: &'a Watched,
    _one_at_a_time: tokio::sync::MutexGuard<'a, ()>,
    outcome: Result<Secret, Error>,
    /// The value was read (not a probe's refusal): its sibling fields are checked too.
    read: bool,
}

/// What a watched secret was last seen as.
#[derive(Clone, PartialEq, Eq)]
enum Seen {
    Value {
        version: Option<u64>,
        digest: Digest,
    },
    Failed(&'static str),
}

impl Seen {
    fn of(change: &Change) -> Self {
        Self::Value {
            version: change.version,
            digest: change.digest,
        }
    }
}

impl Watches {
    pub(super) fn new(interval: Duration) -> Result<Self, Error> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| Error::Runtime {
                reason: "no randomness for the watch digest key",
                source: None,
            })?;
        Ok(Self {
            by_key: Mutex::new(HashMap::new()),
            key,
            interval,
            #[cfg(feature = "file")]
            files: files::FileWatch::default(),
        })
    }

    /// The keyed digest of a value's content.
    pub(super) fn digest(&self, secret: &Secret) -> Digest {
        let text = secret.expose_as_text();
        let tag = hmac::sign(&self.key, text.as_bytes());
        let mut hex = [0u8; 32];
        for (i, byte) in tag.as_ref().iter().take(16).enumerate() {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            hex[2 * i] = DIGITS[usize::from(byte >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
        }
        Digest::from_hex(hex)
    }

    /// The watch of `key`, if any stream watches it.
    pub(super) fn get(&self, key: &str) -> Option<Arc<Watched>> {
        lock(&self.by_key).get(key).cloned()
    }

    /// The interval, jittered by ±10 %.
    fn jittered(&self) -> Duration {
        self.interval.mul_f64(0.9 + 0.2 * fastrand::f64())
    }

    /// Ends every watch (the client is closing): streams end once their buffered items are
    /// read.
    pub(super) fn clear(&self) {
        let watched: Vec<_> = lock(&self.by_key).drain().map(|(_, w)| w).collect();
        for watch in watched {
            watch.stop();
        }
        #[cfg(feature = "file")]
        self.files.clear();
    }
}

impl Watched {
    fn stop(&self) {
        lock(&self.subscribers).clear();
        if let Some(poller) = lock(&self.poller).take() {
            poller.abort();
        }
    }

    /// Sends `item` to every live stream; forgets the dropped ones.
    fn publish(&self, item: &WatchItem) {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|tx| match tx.try_send(item.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    uri = %self.uri.redacted(),
                    "a watch stream is {STREAM_BUFFER} changes behind; this change is dropped for it"
                );
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    fn has_subscribers(&self) -> bool {
        lock(&self.subscribers).iter().any(|tx| !tx.is_closed())
    }
}

/// Unregisters a stream's watch when the stream is dropped, and the watch itself with its
/// last stream.
struct Unwatch {
    inner: Weak<Inner>,
    key: String,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut by_key = lock(&inner.watches.by_key);
        let Some(watched) = by_key.get(&self.key).cloned() else {
            return;
        };
        lock(&watched.subscribers).retain(|tx| !tx.is_closed());
        if !watched.has_subscribers() {
            by_key.remove(&self.key);
            drop(by_key);
            watched.stop();
            #[cfg(feature = "file")]
            inner.watches.files.unwatch(&watched);
        }
    }
}

impl Inner {
    /// Starts (or joins) the watch of `input`: the secret is resolved once as the stream's
    /// starting point ([`Changes::current`]), then checked every interval (and, for files,
    /// on every change of their directory).
    pub(super) async fn watch(self: &Arc<Self>, input: UriInput<'_>) -> Result<Changes, Error> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let uri = match input {
            UriInput::Parsed(uri) => uri.clone(),
            UriInput::Text(text) => SecretUri::parse(text)?,
        };
        self.allowed.check(&uri)?;
        let provider = Arc::clone(self.routes.route(&uri)?);
        secret_providers::check_parameters(&uri)
            .map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?;
        let handle = self.io_handle()?;

        // The starting point: the value now, or why it cannot be read.
        let start = self
            .resolve(UriInput::Parsed(&uri), ResolveOptions::default())
            .await;
        let (seen, current) = match start {
            Ok(secret) => {
                let change = self.change(secret);
                (Seen::of(&change), Ok(change))
            }
            Err(error) if error.provider_error().is_some() => {
                (Seen::Failed(error.code()), Err(Arc::new(error)))
            }
            Err(error) => return Err(error),
        };

        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let key = uri.as_str().to_owned();
        let mut by_key = lock(&self.watches.by_key);
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        match by_key.get(&key) {
            Some(watched) => lock(&watched.subscribers).push(tx),
            None => {
                let watched = Arc::new(Watched {
                    uri: uri.clone(),
                    subscribers: Mutex::new(vec![tx]),
                    last: Mutex::new(seen),
                    checking: tokio::sync::Mutex::new(()),
                    poller: Mutex::new(None),
                    probe_refused: std::sync::atomic::AtomicBool::new(false),
                });
                by_key.insert(key.clone(), Arc::clone(&watched));
                drop(by_key);
                // Not a path whose read was refused (a link out of the mount): its folder is
                // no business of ours.
                #[cfg(feature = "file")]
                if (current.is_ok() || matches!(&current, Err(e) if e.code() == "NOT_FOUND"))
                    && let Some(path) = provider.local_path(&uri)
                {
                    self.watches.files.watch(self, &watched, &path);
                }
                let poller = handle.spawn(poll(Arc::downgrade(self), Arc::downgrade(&watched)));
                *lock(&watched.poller) = Some(poller.abort_handle());
            }
        }
        let _ = provider;
        Ok(Changes {
            rx,
            current: Some(current),
            _guard: Arc::new(Unwatch {
                inner: Arc::downgrade(self),
                key,
            }),
        })
    }

    /// A change carrying `secret`, seen now.
    fn change(&self, secret: Secret) -> Change {
        Change {
            version: secret.value().version(),
            digest: self.watches.digest(&secret),
            at: SystemTime::now(),
            secret,
        }
    }

    /// Checks a watched secret once and publishes what changed: a new version or content,
    /// or (once) the error of a secret that became unreadable. Transient failures (the
    /// backend down, a timeout) change nothing: the last state stands until the next check.
    pub(super) async fn check(self: &Arc<Self>, watched: &Watched) {
        if let Some(checked) = self.read_check(watched).await {
            self.publish_check(checked);
        }
    }

    /// The reading half of [`check`](Self::check): what the secret is now, not yet
    /// published (a file event's round confirms that its folder stayed quiet first);
    /// `None` when nothing changed or nothing can be said.
    pub(super) async fn read_check<'a>(
        self: &Arc<Self>,
        watched: &'a Watched,
    ) -> Option<Checked<'a>> {
        let one_at_a_time = watched.checking.lock().await;
        let uri = &watched.uri;
        let provider = self.routes.route(uri).cloned().ok()?;
        let last = lock(&watched.last).clone();
        if !watched
            .probe_refused
            .load(std::sync::atomic::Ordering::Relaxed)
            && let Ok(handle) = self.io_handle()
        {
            let deadline = Deadline::new(handle, Instant::now(), self.settings.resolve_deadline);
            match deadline.run(provider.probe(uri)).await {
                Some(Ok(Probe::Version(version))) => {
                    if matches!(last, Seen::Value { version: Some(v), .. } if v == version) {
                        return None;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) if error.code() == "PERMISSION_DENIED" => {
                    // A policy may grant `data/` but not `metadata/`: compare values instead.
                    tracing::debug!(
                        uri = %uri.redacted(),
                        "the metadata endpoint is refused; the watch compares values"
                    );
                    watched
                        .probe_refused
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Some(Err(error)) => {
                    if !error.is_transient() {
                        self.cache.remove(uri.as_str());
                    }
                    return Some(Checked {
                        watched,
                        _one_at_a_time: one_at_a_time,
                        outcome: Err(Error::provider(uri.mount(), Arc::new(error))),
                        read: false,
                    });
                }
                None => return None,
            }
        }
        let outcome = self
            .resolve(UriInput::Parsed(uri), ResolveOptions::refresh())
            .await;
        Some(Checked {
            watched,
            _one_at_a_time: one_at_a_time,
            outcome,
            read: true,
        })
    }

    /// The publishing half of [`check`](Self::check).
    pub(super) fn publish_check(self: &Arc<Self>, checked: Checked<'_>) {
        let Checked {
            watched,
            outcome,
            read,
            ..
        } = checked;
        if self.settle(watched, outcome) && read {
            self.check_siblings(watched);
        }
    }

    /// Whether publishing `checked` would announce a change.
    #[cfg(feature = "file")]
    pub(super) fn would_change(&self, checked: &Checked<'_>) -> bool {
        self.seen_of(&checked.outcome)
            .is_some_and(|seen| seen != *lock(&checked.watched.last))
    }

    /// Checks at once the other watched fields of the secret `watched` names
    /// (`#username` beside `#password`): one rotation reaches all of them together, not one
    /// poll interval apart.
    fn check_siblings(self: &Arc<Self>, watched: &Watched) {
        let base = secret_of(&watched.uri);
        let siblings: Vec<Arc<Watched>> = lock(&self.watches.by_key)
            .values()
            .filter(|w| !std::ptr::eq(&***w, watched) && secret_of(&w.uri) == base)
            .cloned()
            .collect();
        let Ok(handle) = self.io_handle() else {
            return;
        };
        for sibling in siblings {
            let inner = Arc::clone(self);
            handle.spawn(async move { inner.check(&sibling).await });
        }
    }

    /// Publishes a check's outcome if it differs from the last state seen; whether it did.
    pub(super) fn settle(&self, watched: &Watched, outcome: Result<Secret, Error>) -> bool {
        let Some(seen) = self.seen_of(&outcome) else {
            return false;
        };
        {
            let mut last = lock(&watched.last);
            if *last == seen {
                return false;
            }
            *last = seen;
        }
        let item = outcome.map(|secret| self.change(secret)).map_err(Arc::new);
        watched.publish(&item);
        true
    }

    /// The state a check's outcome shows; `None` for a failure that changes nothing (a
    /// transient one, or one of the client rather than the secret).
    fn seen_of(&self, outcome: &Result<Secret, Error>) -> Option<Seen> {
        match outcome {
            Ok(secret) => Some(Seen::Value {
                version: secret.value().version(),
                digest: self.watches.digest(secret),
            }),
            Err(error) if error.is_transient() || error.provider_error().is_none() => None,
            Err(error) => Some(Seen::Failed(error.code())),
        }
    }

    /// New credentials of a role (`db`): published to every watched field of it
    /// (`#username`, `#password`, the whole value), together.
    #[cfg(feature = "db")]
    pub(super) fn announce_lease(&self, role: &SecretUri, lease: &secret_providers::DbLease) {
        let key = super::leases::role_key(role);
        let watched: Vec<Arc<Watched>> = lock(&self.watches.by_key)
            .values()
            .filter(|w| super::leases::role_key(&w.uri) == key)
            .cloned()
            .collect();
        for watched in watched {
            let outcome = lease
                .field(watched.uri.key(), watched.uri.mount())
                .map(|value| Secret(Arc::new(self.entry(&watched.uri, value))))
                .map_err(|e| Error::provider(watched.uri.mount(), Arc::new(e)));
            let _ = self.settle(&watched, outcome);
        }
    }

    /// A value of a watched key that entered the cache by another path (refresh-ahead, a
    /// file event): published if it is new.
    pub(super) fn changed(&self, secret: &Secret) {
        if let Some(watched) = self.watches.get(secret.uri().as_str()) {
            let _ = self.settle(&watched, Ok(secret.clone()));
        }
    }
}

/// The poll of one watched secret, every (jittered) interval, until its last stream or the
/// client is dropped.
async fn poll(inner: Weak<Inner>, watched: Weak<Watched>) {
    loop {
        let Some(interval) = inner.upgrade().map(|i| i.watches.jittered()) else {
            return;
        };
        tokio::time::sleep(interval).await;
        let (Some(inner), Some(watched)) = (inner.upgrade(), watched.upgrade()) else {
            return;
        };
        if inner.closed.load(std::sync::atomic::Ordering::Relaxed) || !watched.has_subscribers() {
            return;
        }
        inner.check(&watched).await;
    }
}

/// The secret a URI names, whatever field of it: its canonical form without `#key`.
fn secret_of(uri: &SecretUri) -> String {
    let canonical = uri.as_str();
    match uri.key() {
        Some(key) => canonical.replacen(&format!("#{key}"), "", 1),
        None => canonical.to_owned(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
