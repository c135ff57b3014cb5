//! Reads in flight, shared: a request for a secret that another request of the same client
//! is reading right now waits for that read instead of sending its own (request coalescing,
//! [`VaultClientBuilder::coalesce_reads`](super::VaultClientBuilder::coalesce_reads)).
//!
//! Only the provider read is shared. Each request is authorized by the PEP on its own (its
//! grant, its use, its `jti`), audited on its own, and gives its own use back when the
//! shared read failed before the vault returned data. A request joins only a read that is
//! under way when it arrives, keyed by the canonical URI (its `#key` and `?version=` too),
//! so what it gets was read at most one round trip before it asked; a read that finished is
//! never served again.
//!
//! The first request of a flight reads in place, bounded by the read deadline as without
//! coalescing, and hands its result to those that joined. Should it be dropped unfinished
//! (its runtime shutting down), they read on their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use secret_providers::{ProviderError, SecretValue};
use tokio::sync::watch;

/// What one provider read gave, for every request that joined it.
#[derive(Clone)]
pub(super) enum Read {
    Done(Result<SecretValue, Arc<ProviderError>>),
    /// The read panicked or its task was cancelled: the reason, for `RUNTIME`.
    Lost(&'static str),
}

/// The reads in flight, by canonical URI.
#[derive(Default)]
pub(super) struct Flights {
    by_uri: Mutex<HashMap<Box<str>, watch::Receiver<Option<Read>>>>,
}

impl Flights {
    /// The result of the read of `key` in flight, or of `read` run now (and shared with the
    /// requests that join it meanwhile).
    pub(super) async fn read<F>(&self, key: &str, read: F) -> Read
    where
        F: Future<Output = Read>,
    {
        let sender = {
            let mut by_uri = self.by_uri.lock().unwrap_or_else(PoisonError::into_inner);
            match by_uri.get(key) {
                Some(flight) => Err(flight.clone()),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    by_uri.insert(key.into(), receiver);
                    Ok(sender)
                }
            }
        };
        let sender = match sender {
            Ok(sender) => sender,
            Err(mut flight) => {
                // Bounded by the first request's read deadline.
                if let Ok(shared) = flight.wait_for(Option::is_some).await
                    && let Some(read) = shared.as_ref()
                {
                    return read.clone();
                }
                // The first request was dropped unfinished: read alone.
                return read.await;
            }
        };
        let landing = Landing { flights: self, key };
        let result = read.await;
        // Removed first: a request that arrives from now on reads anew.
        drop(landing);
        sender.send_replace(Some(result.clone()));
        result
    }

    /// How many reads are in flight.
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> usize {
        self.by_uri
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Removes a flight from the map when its read ends, or its first request is dropped.
struct Landing<'a> {
    flights: &'a Flights,
    key: &'a str,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.flights
            .by_uri
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn value(read: &Read) -> Option<String> {
        match read {
            Read::Done(Ok(value)) => value.expose_str().map(str::to_owned),
            _ => None,
        }
    }

    async fn counted(reads: &AtomicUsize, text: &'static str, wait: Duration) -> Read {
        reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(wait).await;
        Read::Done(Ok(SecretValue::from_text(text)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_of_one_key_share_one_read_and_the_next_reads_anew() {
        let flights = Arc::new(Flights::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (flights, reads) = (Arc::clone(&flights), Arc::clone(&reads));
                tokio::spawn(async move {
                    let read = flights
                        .read("k", counted(&reads, "v1", Duration::from_millis(200)))
                        .await;
                    value(&read)
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.ok().flatten().as_deref(), Some("v1"));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for 32 requests");
        assert_eq!(flights.in_flight(), 0, "the landed flight is gone");
        let again = flights
            .read("k", counted(&reads, "v2", Duration::ZERO))
            .await;
        assert_eq!(
            value(&again).as_deref(),
            Some("v2"),
            "a finished read is not served"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn other_keys_are_read_on_their_own() {
        let flights = Flights::default();
        let reads = AtomicUsize::new(0);
        let (a, b) = tokio::join!(
            flights.read("a", counted(&reads, "A", Duration::from_millis(50))),
            flights.read("b", counted(&reads, "B", Duration::from_millis(50))),
        );
        assert_eq!(
            (value(&a).as_deref(), value(&b).as_deref()),
            (Some("A"), Some("B"))
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_request_dropped_mid_read_leaves_the_others_to_read_alone() {
        let flights = Arc::new(Flights::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let first = {
            let (flights, reads) = (Arc::clone(&flights), Arc::clone(&reads));
            tokio::spawn(async move {
                flights
                    .read("k", counted(&reads, "never", Duration::from_secs(60)))
                    .await;
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let joined = {
            let (flights, reads) = (Arc::clone(&flights), Arc::clone(&reads));
            tokio::spawn(async move {
                value(
                    &flights
                        .read("k", counted(&reads, "own", Duration::ZERO))
                        .await,
                )
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        first.abort();
        let joined = tokio::time::timeout(Duration::from_secs(5), joined).await;
        assert_eq!(
            joined.ok().and_then(Result::ok).flatten().as_deref(),
            Some("own"),
            "the joined request read on its own, without waiting out the first"
        );
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_is_shared_with_every_request_that_joined() {
        let flights = Arc::new(Flights::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (flights, reads) = (Arc::clone(&flights), Arc::clone(&reads));
                tokio::spawn(async move {
                    let read = flights
                        .read("k", async {
                            reads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Read::Done(Err(Arc::new(ProviderError::NotFound {
                                provider: "openbao",
                                mount: "secret".to_owned(),
                                status: Some(404),
                            })))
                        })
                        .await;
                    match read {
                        Read::Done(Err(error)) => error.code(),
                        _ => "other",
                    }
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.ok(), Some("NOT_FOUND"));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }
}
