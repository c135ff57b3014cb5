//! What `watch` and `exec --watch` share: watching several secrets at once. [`start`] opens
//! every watch concurrently (each resolves its secret once as its starting point); [`merge`]
//! then puts their streams into one channel of `(position, item)` that a `select!` can wait
//! on beside signals and a child process.

use secrets_sdk::watch::{Changes, WatchItem};
use secrets_sdk::{Error, SecretsClient};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// How many changes may wait unread before the streams' own buffers fill up.
const BUFFER: usize = 64;

/// Opens a watch of each URI, concurrently; the results are in the order of `uris`. Must run
/// inside a runtime (the watches are opened by tasks of it).
pub(crate) async fn start(client: &SecretsClient, uris: &[String]) -> Vec<Result<Changes, Error>> {
    let mut tasks = JoinSet::new();
    for (n, uri) in uris.iter().enumerate() {
        let (client, uri) = (client.clone(), uri.clone());
        tasks.spawn(async move { (n, client.watch(uri.as_str()).await) });
    }
    let mut results: Vec<Option<Result<Changes, Error>>> = uris.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        // A task that panicked leaves its slot empty: reported below.
        if let Ok((n, result)) = joined {
            results[n] = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or(Err(Error::Runtime {
                reason: "the watch task was cancelled",
                source: None,
            }))
        })
        .collect()
}

/// Every stream's items, in the order they arrive, each with its stream's position.
#[derive(Debug)]
pub(crate) struct Merged {
    rx: mpsc::Receiver<(usize, WatchItem)>,
    /// The forwarders; aborted when this is dropped, which ends the watches.
    _tasks: JoinSet<()>,
}

impl Merged {
    /// The next item and its stream's position; `None` once every stream ended (the client
    /// was closed).
    pub(crate) async fn recv(&mut self) -> Option<(usize, WatchItem)> {
        self.rx.recv().await
    }

    /// An item that already arrived, without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<(usize, WatchItem)> {
        self.rx.try_recv().ok()
    }
}

/// Forwards each stream into one channel, on tasks of the current runtime.
pub(crate) fn merge(streams: Vec<Changes>) -> Merged {
    let (tx, rx) = mpsc::channel(BUFFER);
    let mut tasks = JoinSet::new();
    for (n, mut changes) in streams.into_iter().enumerate() {
        let tx = tx.clone();
        tasks.spawn(async move {
            while let Some(item) = changes.next().await {
                if tx.send((n, item)).await.is_err() {
                    return;
                }
            }
        });
    }
    Merged { rx, _tasks: tasks }
}
