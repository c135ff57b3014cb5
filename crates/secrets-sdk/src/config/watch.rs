//! Keeping a loaded configuration's references current as their secrets rotate.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::load::walk;
use super::{LoadError, RefFailure};
use crate::SecretsClient;

/// How many changes wait for [`ConfigWatch::changed`] before older notices are dropped (the
/// values themselves are always current).
const QUEUE: usize = 256;

/// The watches of one configuration's references, from [`watch`]: while it lives, each
/// [`SecretRef`](super::SecretRef) is updated with every change of its secret (the
/// [`SecretsClient::watch`] rules: new versions, changed files, rotated leases), and
/// [`changed`](Self::changed) tells which field changed. Dropping it stops the watches; so
/// does dropping the configuration (each watch ends as soon as its reference is gone).
#[derive(Debug)]
pub struct ConfigWatch {
    tasks: Vec<AbortHandle>,
    changes: mpsc::Receiver<String>,
}

impl ConfigWatch {
    /// The field path of the next reference whose secret changed (its value is already
    /// updated); `None` once every watch has ended (the client was closed, or the
    /// configuration dropped).
    pub async fn changed(&mut self) -> Option<String> {
        self.changes.recv().await
    }

    /// How many references are watched.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no reference is watched.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Watches every [`SecretRef`](super::SecretRef) of `config` (loaded with
/// [`load`](super::load) or resolved with [`resolve`](super::resolve)): each is updated in
/// place when its secret changes, so a service reading `config.db.password.secret()` sees the
/// rotated value. A reference that was not resolved gets its value from the watch's first
/// read. The watches run as tasks of the current tokio runtime.
///
/// # Errors
/// `CONFIG_SECRETS` with every reference whose watch could not start (an unparsable URI, a
/// provider that cannot be watched, a closed client); none is watched then.
pub async fn watch<T: Serialize + ?Sized>(
    client: &SecretsClient,
    config: &T,
) -> Result<ConfigWatch, LoadError> {
    let found = walk(config)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut streams = Vec::with_capacity(found.len());
    let mut failures = Vec::new();
    for f in found {
        let started = match &f.slot.parsed {
            Ok(uri) => client
                .watch(uri)
                .await
                .map_err(|e| (e.code(), Some(Arc::new(e)))),
            Err(code) => Err((*code, None)),
        };
        match started {
            Ok(changes) => streams.push((f, changes)),
            Err((code, error)) => failures.push(RefFailure {
                field: f.field,
                code,
                error,
            }),
        }
    }
    if !failures.is_empty() {
        return Err(LoadError::Secrets { failures });
    }
    let tasks = streams
        .into_iter()
        .map(|(f, mut changes)| {
            let tx = tx.clone();
            // Weak: the watch ends once the configuration it updates is gone, as soon as it
            // is (`gone`), not at the secret's next change.
            let slot = Arc::downgrade(&f.slot);
            let mut gone = f.slot.on_drop();
            let field = f.field;
            if let Some(Ok(current)) = changes.current() {
                f.slot.set(current.secret().clone());
            }
            tokio::spawn(async move {
                loop {
                    let item = tokio::select! {
                        item = changes.next() => item,
                        _ = gone.changed() => return,
                    };
                    let (Some(item), Some(slot)) = (item, slot.upgrade()) else {
                        return;
                    };
                    if let Ok(change) = item {
                        slot.set(change.secret().clone());
                        let _ = tx.try_send(field.clone());
                    }
                }
            })
            .abort_handle()
        })
        .collect();
    Ok(ConfigWatch { tasks, changes: rx })
}
