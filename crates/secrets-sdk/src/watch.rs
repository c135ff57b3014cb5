//! Rotation without restarts: [`Changes`], the stream [`SecretsClient::watch`] returns, the
//! [`Change`]s it yields, and the [`Subscription`] of [`SecretsClient::on_change`].
//!
//! A change names the secret by its canonical URI (`Debug`, `Display` and logs redact it),
//! its new version (KV v2) and a keyed digest of its content, never the value: the value is
//! the explicit [`Change::secret`] call away, a [`Secret`] like any other.
//!
//! ```no_run
//! # async fn example(client: secrets_sdk::SecretsClient) -> Result<(), secrets_sdk::Error> {
//! let mut changes = client.watch("openbao+kv2://secret/app/db#password").await?;
//! while let Some(change) = changes.next().await {
//!     match change {
//!         Ok(change) => {
//!             // Hand the rotated password to the pool.
//!             let _password = change.secret().expose_str();
//!         }
//!         // Deleted or destroyed: its typed error, once; the watch goes on.
//!         Err(error) => eprintln!("{}: {}", change_code(&error), error),
//!     }
//! }
//! # fn change_code(e: &secrets_sdk::Error) -> &'static str { e.code() }
//! # Ok(()) }
//! ```
//!
//! [`SecretsClient::watch`]: crate::SecretsClient::watch
//! [`SecretsClient::on_change`]: crate::SecretsClient::on_change

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use secret_uri::SecretUri;
use tokio::sync::mpsc;

use crate::{Error, Secret};

/// One item of a [`Changes`] stream: a change, or the typed error of a watched secret that
/// became unreadable (deleted, destroyed, refused), yielded once per failure.
pub type WatchItem = Result<Change, Arc<Error>>;

/// A watched secret's new state: a new version or new content.
#[derive(Clone)]
pub struct Change {
    pub(crate) secret: Secret,
    pub(crate) version: Option<u64>,
    pub(crate) digest: Digest,
    pub(crate) at: SystemTime,
}

impl Change {
    /// The canonical URI of the watched secret (its `Display` is the redacted form).
    #[must_use]
    pub fn uri(&self) -> &SecretUri {
        self.secret.uri()
    }

    /// The new version, for providers that version secrets (KV v2).
    #[must_use]
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// A digest of the new content, keyed with a random key of the client (HMAC-SHA-256,
    /// 128 bits in hex): two states of one client compare equal when their content is, and
    /// the digest cannot be reversed or compared across clients.
    #[must_use]
    pub fn digest(&self) -> &str {
        self.digest.as_str()
    }

    /// When the change was seen.
    #[must_use]
    pub fn at(&self) -> SystemTime {
        self.at
    }

    /// The new value (read it with [`Secret::expose_str`] and friends).
    #[must_use]
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Change")
            .field("uri", &self.uri().redacted())
            .field("version", &self.version)
            .field("digest", &self.digest.as_str())
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// A keyed content digest: 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Digest([u8; 32]);

impl Digest {
    pub(crate) fn from_hex(hex: [u8; 32]) -> Self {
        Self(hex)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ever built from ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The changes of one watched secret, from [`SecretsClient::watch`](crate::SecretsClient::watch):
/// a [`Stream`](futures_core::Stream) of [`WatchItem`]s, also readable with
/// [`next`](Self::next). The watch ends when every `Changes` of the secret is dropped (or the
/// client is closed: the stream then ends).
pub struct Changes {
    pub(crate) rx: mpsc::Receiver<WatchItem>,
    pub(crate) current: Option<WatchItem>,
    /// Keeps the watch registered while this stream lives.
    pub(crate) _guard: Arc<dyn Send + Sync>,
}

impl Changes {
    /// The next change; `None` once the client is closed or dropped.
    pub async fn next(&mut self) -> Option<WatchItem> {
        let item = self.rx.recv().await?;
        self.current = Some(item.clone());
        Some(item)
    }

    /// The state last seen by this stream: when the watch started, the value it started
    /// from (or why it could not be read), then the last item [`next`](Self::next) returned.
    #[must_use]
    pub fn current(&self) -> Option<&WatchItem> {
        self.current.as_ref()
    }
}

impl futures_core::Stream for Changes {
    type Item = WatchItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchItem>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(item)) = &polled {
            self.current = Some(item.clone());
        }
        polled
    }
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// A callback registered with [`SecretsClient::on_change`](crate::SecretsClient::on_change):
/// called until this is dropped (or [`cancel`](Self::cancel)led).
#[must_use = "the callback stops when the subscription is dropped"]
#[derive(Debug)]
pub struct Subscription {
    /// Dropped with the subscription: the callback's thread then stops waiting and ends
    /// (after the call in progress, if any).
    pub(crate) _cancel: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Subscription {
    /// Stops the callback (as dropping does).
    pub fn cancel(self) {}
}
