//! The Kafka sink (feature `kafka`): audit events as OCSF JSON records in the topic
//! `<KAFKA_TOPIC_PREFIX>secrets.audit`, through a [`QueueSink`] so that publishing never waits
//! on the network.
//!
//! - **Records.** The value is the event's OCSF 1.3 record ([`to_ocsf_bytes`]); the key is its
//!   `resource_ref` (32 hex digits), or the tenant for an event that has none (a URI refused
//!   before it parsed): the tenant's keyless events then stay in order too. The record's
//!   timestamp is the event's time. Headers carry the event in CloudEvents 1.0 binary mode:
//!   `ce_specversion` `1.0`, `ce_id` the event id, `ce_source` [`KafkaConfig::ce_source`]
//!   (default `secrets-sdk`), `ce_type` the event type (`secret.read`, …), `ce_time` RFC 3339,
//!   and `content-type` `application/json`.
//! - **Placement.** The partition is Kafka's default for a keyed record,
//!   `toPositive(murmur2(key)) % partitions` (as the Java client computes it), so one secret's
//!   events stay on one partition, in order, and other producers of the topic agree. The
//!   partition count comes from the topic's metadata when the sink connects; one partition
//!   client per partition is made the first time an event goes there.
//! - **Requests.** Each produce request holds at most 48 KiB of records before compression
//!   and is lz4-compressed: a few KiB on the wire, under the 8 KiB beyond which rskafka writes
//!   a request in two writes on a socket without `TCP_NODELAY` and the broker's delayed ACK
//!   stalls it for about 40 ms. Partitions are written concurrently, each in order, by jobs on
//!   the transport's own I/O thread that also build the records (made and freed on one thread:
//!   measured faster than building them on the queue's thread).
//! - **Failures.** rskafka's own retries are bounded (at most half a second) so that the
//!   queue's backoff governs; every attempt is bounded by the queue's `attempt_timeout`, so a
//!   broker that accepts and never answers cannot hang the drainer or `close`. After a failed
//!   or cut-off attempt the connection is rebuilt. The batch is held (and the queue fills, then
//!   drops and counts) until the broker is back. A retried batch skips the partitions it
//!   already delivered, but a broker that stored a request whose answer was lost gets it
//!   again: consumers dedupe on `ce_id`.
//! - **Security.** `KAFKA_SECURITY_PROTOCOL` `SSL`/`SASL_SSL` use the workspace's one TLS
//!   stack (rustls with `ring`, built by `secret-http` by the HTTP client's rules); SASL is
//!   `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`. Plaintext goes only to loopback brokers
//!   unless `KAFKA_ALLOW_PLAINTEXT=true`. See [`KafkaConfig`] and `docs/audit.md` (The Kafka sink).

mod config;
mod partition;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rskafka::BackoffConfig;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;
use secret_telemetry::Metrics;

pub use self::config::{
    ENABLE_KAFKA_PRODUCER_ENV, KAFKA_ALLOW_PLAINTEXT_ENV, KAFKA_BOOTSTRAP_SERVERS_ENV,
    KAFKA_SASL_MECHANISM_ENV, KAFKA_SASL_PASSWORD_ENV, KAFKA_SASL_USERNAME_ENV,
    KAFKA_SECURITY_PROTOCOL_ENV, KAFKA_SSL_CA_LOCATION_ENV, KAFKA_SSL_CERTIFICATE_LOCATION_ENV,
    KAFKA_SSL_KEY_LOCATION_ENV, KAFKA_TOPIC_PREFIX_ENV, KafkaConfig, KafkaTls, SaslCredentials,
    SaslMechanism, SecurityProtocol, TOPIC_SUFFIX,
};
use self::partition::partition_for;
use crate::{
    AuditConfig, AuditError, AuditEvent, AuditSink, CloseReport, EventId, QueueConfig, QueueSink,
    SinkStats, Transport, to_ocsf_bytes,
};

/// The most record bytes (keys, values, headers, before compression) in one produce request.
pub const MAX_REQUEST_RECORD_BYTES: usize = 48 * 1024;
/// The most records in one produce request.
const MAX_REQUEST_RECORDS: usize = 96;
/// How long rskafka may retry one operation on its own before the queue's backoff takes over.
const CLIENT_RETRY_DEADLINE: Duration = Duration::from_millis(500);

/// A [`Transport`] that produces each batch to Kafka (see the [module docs](self)). Use it in
/// a [`QueueSink`], or take [`KafkaSink`], which does.
pub struct KafkaTransport {
    settings: Arc<Settings>,
    /// rskafka's I/O runs here (one worker thread): the queue's drainer runtime has no I/O
    /// driver, and its thread keeps to the records. Taken on drop, which may happen inside
    /// the drainer's runtime, where only a background shutdown is allowed.
    runtime: Option<tokio::runtime::Runtime>,
    connection: Option<Connection>,
    /// What a batch that failed part-way already delivered.
    progress: Option<Progress>,
    /// Set while an attempt runs: still set at the next one means the queue cut it off.
    in_attempt: bool,
}

/// What the transport connects with, built once.
struct Settings {
    bootstrap: Vec<String>,
    topic: String,
    ce_source: Vec<u8>,
    client_id: String,
    /// Hands the rustls configuration (from `secret-http`) to rskafka's builder: this crate
    /// never names a rustls type.
    tls: Option<TlsSetup>,
    sasl: Option<SaslCredentials>,
}

type TlsSetup = Box<dyn Fn(ClientBuilder) -> ClientBuilder + Send + Sync>;

/// A connected client, the topic's partition count and the partition clients made so far.
struct Connection {
    client: Arc<Client>,
    partitions: Vec<Option<Arc<PartitionClient>>>,
}

/// How far a batch got: per partition, how many of its events were delivered.
struct Progress {
    first: EventId,
    last: EventId,
    len: usize,
    partitions: usize,
    done: Arc<Vec<AtomicUsize>>,
}

impl fmt::Debug for KafkaTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaTransport")
            .field("bootstrap", &self.settings.bootstrap)
            .field("topic", &self.settings.topic)
            .field("tls", &self.settings.tls.is_some())
            .field("sasl", &self.settings.sasl)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl KafkaTransport {
    /// A transport for `config`; it connects on the first batch.
    ///
    /// # Errors
    /// `CONFIG` naming `KAFKA_BOOTSTRAP_SERVERS` when there are none, or the TLS file at
    /// fault (`KAFKA_SSL_CA_LOCATION`, `KAFKA_SSL_CERTIFICATE_LOCATION`,
    /// `KAFKA_SSL_KEY_LOCATION`) when it cannot be read or used.
    pub fn new(config: KafkaConfig) -> Result<Self, AuditError> {
        if config.bootstrap_servers.is_empty() {
            return Err(AuditError::config(
                KAFKA_BOOTSTRAP_SERVERS_ENV,
                "names no broker",
            ));
        }
        let tls = if config.security_protocol.is_tls() {
            Some(tls_config(&config.tls)?)
        } else {
            None
        };
        let sasl = if config.security_protocol.is_sasl() {
            Some(config.sasl.ok_or_else(|| {
                AuditError::config(KAFKA_SASL_MECHANISM_ENV, "must be set for a SASL protocol")
            })?)
        } else {
            None
        };
        // Last: nothing may fail after it (dropping a runtime inside an async context panics;
        // the transport's own `Drop` shuts it down in the background instead).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("secret-audit-kafka")
            .enable_all()
            .build()
            .map_err(|source| AuditError::Start { source })?;
        Ok(Self {
            settings: Arc::new(Settings {
                bootstrap: config.bootstrap_servers,
                topic: config.topic,
                ce_source: config.ce_source.into_bytes(),
                client_id: config.client_id,
                tls,
                sasl,
            }),
            runtime: Some(runtime),
            connection: None,
            progress: None,
            in_attempt: false,
        })
    }

    /// The topic it produces to.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.settings.topic
    }

    fn runtime(&self) -> Result<&tokio::runtime::Handle, AuditError> {
        self.runtime
            .as_ref()
            .map(tokio::runtime::Runtime::handle)
            .ok_or_else(|| AuditError::delivery("the transport is shut down", None))
    }

    async fn try_deliver(&mut self, batch: &[AuditEvent]) -> Result<(), AuditError> {
        if batch.is_empty() {
            return Ok(());
        }
        let settings = Arc::clone(&self.settings);
        if self.connection.is_none() {
            let job = self.runtime()?.spawn(connect(Arc::clone(&settings)));
            self.connection = Some(joined(&mut Abort(job).0).await?);
        }
        let runtime = self.runtime()?.clone();
        let Some(connection) = self.connection.as_mut() else {
            return Err(AuditError::delivery("not connected", None));
        };
        let count = connection.partitions.len();

        // The partition of each event; a batch offered again keeps what it delivered.
        let (first, last) = (batch[0].id(), batch[batch.len() - 1].id());
        let same_batch = self.progress.as_ref().is_some_and(|p| {
            p.first == first && p.last == last && p.len == batch.len() && p.partitions == count
        });
        if !same_batch {
            self.progress = Some(Progress {
                first,
                last,
                len: batch.len(),
                partitions: count,
                done: Arc::new((0..count).map(|_| AtomicUsize::new(0)).collect()),
            });
        }
        let done = self
            .progress
            .as_ref()
            .map(|p| Arc::clone(&p.done))
            .ok_or_else(|| AuditError::delivery("no progress record", None))?;

        // Each partition's events (copies: cheap next to building a record), less what an
        // earlier attempt at this batch delivered; one job per partition on the transport's
        // runtime builds and produces its requests in order, so records are made and freed on
        // one thread. Dropping this attempt (the queue's timeout) aborts the jobs.
        let mut by_partition: Vec<Vec<AuditEvent>> = vec![Vec::new(); count];
        let mut skip: Vec<usize> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
        for event in batch {
            let index = partition_for(key_of(event), count);
            if skip[index] > 0 {
                skip[index] -= 1;
            } else {
                by_partition[index].push(event.clone());
            }
        }
        let mut jobs = Vec::new();
        for (index, events) in by_partition.into_iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            let job = runtime.spawn(produce(
                Arc::clone(&connection.client),
                connection.partitions[index].clone(),
                Arc::clone(&settings),
                index,
                events,
                Arc::clone(&done),
            ));
            jobs.push((index, Abort(job)));
        }
        let mut outcome = Ok(());
        for (index, mut job) in jobs {
            match joined(&mut job.0).await {
                Ok(partition) => connection.partitions[index] = Some(partition),
                Err(error) if outcome.is_ok() => outcome = Err(error),
                Err(_) => {}
            }
        }
        if outcome.is_ok() {
            self.progress = None;
        }
        outcome
    }
}

impl Drop for KafkaTransport {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts its task when dropped (an attempt the queue cut off).
struct Abort<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Abort<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A job's result; a job that panicked or was aborted is a delivery failure.
async fn joined<T>(
    job: &mut tokio::task::JoinHandle<Result<T, AuditError>>,
) -> Result<T, AuditError> {
    job.await
        .map_err(|e| AuditError::delivery("a Kafka task failed", Some(Box::new(e))))?
}

impl Transport for KafkaTransport {
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async move {
            if self.in_attempt {
                // The queue cut the last attempt off: its connection may hang on a broker
                // that accepts and never answers.
                self.connection = None;
            }
            self.in_attempt = true;
            let result = self.try_deliver(batch).await;
            self.in_attempt = false;
            if result.is_err() {
                // Reconnect next time: a restarted broker, moved leaders, a new partition count.
                self.connection = None;
            }
            result
        })
    }
}

/// Connects, reads the topic's partition count (asking for the topic once, which creates it
/// where the brokers auto-create topics), and makes no partition client yet.
async fn connect(settings: Arc<Settings>) -> Result<Connection, AuditError> {
    let mut builder = ClientBuilder::new(settings.bootstrap.clone())
        .client_id(settings.client_id.as_str())
        .backoff_config(BackoffConfig {
            init_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            base: 2.0,
            deadline: Some(CLIENT_RETRY_DEADLINE),
        });
    if let Some(tls) = &settings.tls {
        builder = tls(builder);
    }
    if let Some(sasl) = &settings.sasl {
        // rskafka keeps its own copy of the password (a plain `String`, outside our reach).
        let credentials = Credentials::new(
            sasl.username().to_owned(),
            sasl.expose_password().to_owned(),
        );
        builder = builder.sasl_config(match sasl.mechanism() {
            SaslMechanism::Plain => SaslConfig::Plain(credentials),
            SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
            SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
        });
    }
    let client = builder
        .build()
        .await
        .map_err(|e| delivery("no broker answered", e))?;
    let mut count = partition_count(&client, &settings.topic).await?;
    if count.is_none() {
        // Asking for the topic's leader creates it where topics are auto-created.
        let _ = client
            .partition_client(settings.topic.clone(), 0, UnknownTopicHandling::Retry)
            .await;
        count = partition_count(&client, &settings.topic).await?;
    }
    let count = count.ok_or_else(|| AuditError::delivery("the topic does not exist", None))?;
    Ok(Connection {
        client: Arc::new(client),
        partitions: vec![None; count],
    })
}

async fn partition_count(client: &Client, topic: &str) -> Result<Option<usize>, AuditError> {
    let topics = client
        .list_topics()
        .await
        .map_err(|e| delivery("the brokers sent no metadata", e))?;
    Ok(topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.len())
        .filter(|n| *n > 0))
}

/// The bytes an event is keyed (and so placed) by: its `resource_ref`, else its tenant.
fn key_of(event: &AuditEvent) -> &[u8] {
    event
        .resource_ref()
        .map_or(event.tenant().as_bytes(), |r| r.as_str().as_bytes())
}

/// Cuts records into produce requests: each at most [`MAX_REQUEST_RECORD_BYTES`] of records
/// (one oversized record goes alone) and [`MAX_REQUEST_RECORDS`] records.
#[derive(Default)]
struct Chunker {
    current: Vec<Record>,
    bytes: usize,
}

impl Chunker {
    /// Adds `record`; a full request when this one does not fit in it.
    fn push(&mut self, record: Record) -> Option<Vec<Record>> {
        let size = record.approximate_size();
        let full = !self.current.is_empty()
            && (self.bytes + size > MAX_REQUEST_RECORD_BYTES
                || self.current.len() >= MAX_REQUEST_RECORDS);
        let out = full.then(|| {
            self.bytes = 0;
            std::mem::take(&mut self.current)
        });
        self.bytes += size;
        self.current.push(record);
        out
    }

    /// The last request, if any records are left.
    fn finish(&mut self) -> Option<Vec<Record>> {
        self.bytes = 0;
        (!self.current.is_empty()).then(|| std::mem::take(&mut self.current))
    }
}

/// One partition's job: its client (made on first use), then its events as requests, built
/// and produced in order, counting what was delivered.
async fn produce(
    client: Arc<Client>,
    existing: Option<Arc<PartitionClient>>,
    settings: Arc<Settings>,
    index: usize,
    events: Vec<AuditEvent>,
    done: Arc<Vec<AtomicUsize>>,
) -> Result<Arc<PartitionClient>, AuditError> {
    let partition = match existing {
        Some(partition) => partition,
        None => Arc::new(
            client
                .partition_client(
                    settings.topic.clone(),
                    index as i32,
                    UnknownTopicHandling::Retry,
                )
                .await
                .map_err(|e| delivery("no leader for a partition", e))?,
        ),
    };
    let mut chunker = Chunker::default();
    let mut events = events.iter();
    loop {
        let chunk = match events.next() {
            Some(event) => match chunker.push(record(event, &settings.ce_source)) {
                Some(chunk) => chunk,
                None => continue,
            },
            None => match chunker.finish() {
                Some(chunk) => chunk,
                None => break,
            },
        };
        let n = chunk.len();
        partition
            .produce(chunk, Compression::Lz4)
            .await
            .map_err(|e| delivery("the broker did not take a produce request", e))?;
        done[index].fetch_add(n, Ordering::Relaxed);
    }
    Ok(partition)
}

/// One event as a Kafka record: OCSF JSON, keyed, with CloudEvents binary-mode headers.
fn record(event: &AuditEvent, ce_source: &[u8]) -> Record {
    let mut headers = BTreeMap::new();
    headers.insert("ce_specversion".to_owned(), b"1.0".to_vec());
    headers.insert("ce_id".to_owned(), event.id().to_string().into_bytes());
    headers.insert("ce_source".to_owned(), ce_source.to_vec());
    headers.insert(
        "ce_type".to_owned(),
        event.kind().as_str().as_bytes().to_vec(),
    );
    headers.insert("ce_time".to_owned(), event.time_rfc3339().into_bytes());
    headers.insert("content-type".to_owned(), b"application/json".to_vec());
    let millis = i64::try_from(event.time_millis()).unwrap_or(i64::MAX);
    Record {
        key: Some(key_of(event).to_vec()),
        value: Some(to_ocsf_bytes(event)),
        headers,
        timestamp: rskafka::chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default(),
    }
}

/// An `AUDIT_DELIVERY` error keeping rskafka's error as its source.
fn delivery(
    reason: &'static str,
    error: impl std::error::Error + Send + Sync + 'static,
) -> AuditError {
    AuditError::delivery(reason, Some(Box::new(error)))
}

/// The rustls configuration for the TLS files, from `secret-http` (the workspace's one TLS
/// stack), with its errors named by the `KAFKA_SSL_*` setting at fault.
fn tls_config(tls: &KafkaTls) -> Result<TlsSetup, AuditError> {
    let mut config = secret_http::TlsConfig::default();
    if let Some(ca) = &tls.ca_location {
        config = config.with_ca_bundle(ca);
    }
    if let Some((cert, key)) = &tls.client_cert {
        config = config.with_client_cert(secret_http::ClientCert::new(cert, key));
    }
    let built = secret_http::rustls_client_config(&config).map_err(|error| {
        let setting = match &error {
            secret_http::HttpError::Config { setting, .. } => match setting {
                secret_http::Setting::CaBundle => KAFKA_SSL_CA_LOCATION_ENV,
                secret_http::Setting::ClientCert => KAFKA_SSL_CERTIFICATE_LOCATION_ENV,
                secret_http::Setting::ClientKey => KAFKA_SSL_KEY_LOCATION_ENV,
                _ => KAFKA_SECURITY_PROTOCOL_ENV,
            },
            _ => KAFKA_SECURITY_PROTOCOL_ENV,
        };
        AuditError::Config {
            setting: setting.into(),
            reason: "cannot be used for TLS".into(),
            source: Some(Box::new(error)),
        }
    })?;
    Ok(Box::new(move |builder: ClientBuilder| {
        builder.tls_config(Arc::clone(&built))
    }))
}

/// A [`QueueSink`] over a [`KafkaTransport`]: the Kafka audit sink.
///
/// ```no_run
/// use std::time::Duration;
/// use secret_audit::{AuditSink, KafkaSink};
///
/// # fn main() -> Result<(), secret_audit::AuditError> {
/// let vars = |name: &str| match name {
///     "ENABLE_KAFKA_PRODUCER" => Some("true".to_owned()),
///     "KAFKA_BOOTSTRAP_SERVERS" => Some("127.0.0.1:9092".to_owned()),
///     "KAFKA_TOPIC_PREFIX" => Some("dev.".to_owned()),
///     _ => None,
/// };
/// let Some(sink) = KafkaSink::from_lookup(&vars)? else { return Ok(()) };
/// assert_eq!(sink.topic(), "dev.secrets.audit");
/// // … an Auditor publishes into it …
/// let report = sink.close(Duration::from_secs(10));
/// assert_eq!(report.lost, 0);
/// # Ok(()) }
/// ```
pub struct KafkaSink {
    queue: QueueSink,
    topic: String,
}

impl fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("queue", &self.queue)
            .finish()
    }
}

impl KafkaSink {
    /// Starts the queue's drainer over a [`KafkaTransport`] for `config`.
    ///
    /// # Errors
    /// As [`KafkaTransport::new`], and `AUDIT_START` when the drainer cannot start.
    pub fn new(config: KafkaConfig, queue: QueueConfig) -> Result<Self, AuditError> {
        Self::with_metrics(config, queue, Metrics::global())
    }

    /// [`new`](Self::new), the queue recording its metrics with `metrics` (see
    /// [`QueueSink::with_metrics`]) instead of [`Metrics::global`].
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_metrics(
        config: KafkaConfig,
        queue: QueueConfig,
        metrics: Metrics,
    ) -> Result<Self, AuditError> {
        let transport = KafkaTransport::new(config)?;
        let topic = transport.topic().to_owned();
        Ok(Self {
            queue: QueueSink::with_metrics(transport, queue, metrics)?,
            topic,
        })
    }

    /// The sink the settings describe: the `KAFKA_*` settings ([`KafkaConfig::from_lookup`])
    /// and the queue's `AUDIT_QUEUE_*` ([`AuditConfig::from_lookup`]); `None` when
    /// `ENABLE_KAFKA_PRODUCER` is unset or false.
    ///
    /// # Errors
    /// `CONFIG` naming the setting at fault; as [`Self::new`].
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, AuditError> {
        Self::from_lookup_with_metrics(lookup, Metrics::global())
    }

    /// [`from_lookup`](Self::from_lookup), the queue recording its metrics with `metrics`.
    ///
    /// # Errors
    /// As [`from_lookup`](Self::from_lookup).
    pub fn from_lookup_with_metrics(
        lookup: &dyn Fn(&str) -> Option<String>,
        metrics: Metrics,
    ) -> Result<Option<Self>, AuditError> {
        let Some(config) = KafkaConfig::from_lookup(lookup)? else {
            return Ok(None);
        };
        let queue = AuditConfig::from_lookup(lookup)?.queue;
        Self::with_metrics(config, queue, metrics).map(Some)
    }

    /// The topic it produces to.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl AuditSink for KafkaSink {
    fn publish(&self, event: AuditEvent) {
        self.queue.publish(event);
    }

    fn close(&self, within: Duration) -> CloseReport {
        self.queue.close(within)
    }

    fn stats(&self) -> SinkStats {
        self.queue.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditKey, Auditor, EventType, MemorySink, from_ocsf};
    use secret_uri::SecretUri;

    fn auditor() -> Result<Auditor, Box<dyn std::error::Error>> {
        let vars = |name: &str| {
            (name == "SECRET_TENANT_SALT").then(|| "tenant-salt-0001-for-acme-corp-x".to_owned())
        };
        Ok(Auditor::new(
            AuditKey::from_lookup(&vars)?,
            Arc::new(MemorySink::new()),
            &AuditConfig::from_lookup(&vars)?,
        ))
    }

    #[test]
    fn a_record_is_keyed_ocsf_with_cloudevents_headers() -> Result<(), Box<dyn std::error::Error>> {
        let auditor = auditor()?;
        let uri = SecretUri::parse("openbao+kv2://secret/app/api#token?version=3")?;
        let event = auditor.event(EventType::Read, "acme", Some("alice"), Some(&uri));
        let record = record(&event, b"secrets-sdk");
        assert_eq!(
            record.key.as_deref(),
            Some(&b"8cbd64017dc68f7258e00a0a7a0f572c"[..])
        );
        assert_eq!(
            from_ocsf(record.value.as_deref().unwrap_or_default())?,
            event
        );
        let header = |name: &str| {
            record
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header("ce_specversion").as_deref(), Some("1.0"));
        assert_eq!(header("ce_id"), Some(event.id().to_string()));
        assert_eq!(header("ce_source").as_deref(), Some("secrets-sdk"));
        assert_eq!(header("ce_type").as_deref(), Some("secret.read"));
        assert_eq!(header("ce_time"), Some(event.time_rfc3339()));
        assert_eq!(header("content-type").as_deref(), Some("application/json"));
        assert_eq!(
            u64::try_from(record.timestamp.timestamp_millis()).ok(),
            Some(event.time_millis())
        );
        // No URI in any part of the record.
        let mut all = record.key.clone().unwrap_or_default();
        all.extend(record.value.clone().unwrap_or_default());
        for (name, value) in &record.headers {
            all.extend(name.as_bytes());
            all.extend(value);
        }
        let text = String::from_utf8_lossy(&all);
        assert!(
            !text.contains("app/api") && !text.contains("#token"),
            "{text}"
        );

        // Without a resource_ref, the tenant is the key.
        let keyless = auditor.event(EventType::AccessDenied, "acme", None, None);
        assert_eq!(record_key(&keyless), b"acme");
        Ok(())
    }

    fn record_key(event: &AuditEvent) -> Vec<u8> {
        record(event, b"s").key.unwrap_or_default()
    }

    #[test]
    fn requests_stay_under_the_byte_and_count_bounds() -> Result<(), Box<dyn std::error::Error>> {
        let auditor = auditor()?;
        let uri = SecretUri::parse("openbao+kv2://secret/app/api#token")?;
        let events: Vec<AuditEvent> = (0..500)
            .map(|i| {
                auditor
                    .event(EventType::Read, "acme", Some("alice"), Some(&uri))
                    .with_grant_id(format!("g-{i}"))
            })
            .collect();
        let mut chunker = Chunker::default();
        let mut chunks: Vec<Vec<Record>> = events
            .iter()
            .filter_map(|e| chunker.push(record(e, b"secrets-sdk")))
            .collect();
        chunks.extend(chunker.finish());
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 500);
        for chunk in &chunks {
            let bytes: usize = chunk.iter().map(Record::approximate_size).sum();
            assert!(bytes <= MAX_REQUEST_RECORD_BYTES, "{bytes}");
            assert!(chunk.len() <= MAX_REQUEST_RECORDS);
        }
        // In order: the grant ids run 0..500 across the requests.
        let ids: Vec<String> = chunks
            .iter()
            .flatten()
            .filter_map(|r| from_ocsf(r.value.as_deref().unwrap_or_default()).ok())
            .filter_map(|e| e.grant_id().map(str::to_owned))
            .collect();
        assert_eq!(ids, (0..500).map(|i| format!("g-{i}")).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn made_and_closed_inside_an_async_context() -> Result<(), Box<dyn std::error::Error>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            // A refused configuration builds no runtime to drop here.
            let refused = KafkaSink::new(
                KafkaConfig {
                    security_protocol: SecurityProtocol::SaslPlaintext,
                    ..KafkaConfig::new(["127.0.0.1:9"])
                },
                QueueConfig::default(),
            );
            assert_eq!(
                refused
                    .err()
                    .and_then(|e| e.setting().map(str::to_owned))
                    .as_deref(),
                Some(KAFKA_SASL_MECHANISM_ENV)
            );
            // Nothing listens on port 9 of loopback: the event is reported lost, in time.
            let sink = KafkaSink::new(
                KafkaConfig::new(["127.0.0.1:9"]),
                QueueConfig::default().with_attempt_timeout(Duration::from_millis(200)),
            )?;
            sink.publish(auditor()?.event(EventType::Read, "acme", None, None));
            let report = sink.close(Duration::from_millis(300));
            assert_eq!((report.delivered, report.lost), (0, 1));
            drop(sink);
            Ok::<_, Box<dyn std::error::Error>>(())
        })
    }

    #[test]
    fn unusable_tls_files_name_their_setting() {
        let missing = std::path::PathBuf::from("/nonexistent/secrets-sdk/ca.pem");
        let config = KafkaConfig {
            security_protocol: SecurityProtocol::Ssl,
            tls: KafkaTls {
                ca_location: Some(missing.clone()),
                client_cert: None,
            },
            ..KafkaConfig::new(["127.0.0.1:9092"])
        };
        let error = KafkaTransport::new(config).err();
        assert_eq!(error.as_ref().map(AuditError::code), Some("CONFIG"));
        assert_eq!(
            error.as_ref().and_then(AuditError::setting),
            Some(KAFKA_SSL_CA_LOCATION_ENV)
        );
        let config = KafkaConfig {
            security_protocol: SecurityProtocol::Ssl,
            tls: KafkaTls {
                ca_location: None,
                client_cert: Some((missing.clone(), missing)),
            },
            ..KafkaConfig::new(["127.0.0.1:9092"])
        };
        assert_eq!(
            KafkaTransport::new(config)
                .err()
                .as_ref()
                .and_then(AuditError::setting),
            Some(KAFKA_SSL_CERTIFICATE_LOCATION_ENV)
        );
        let ssl = KafkaConfig {
            security_protocol: SecurityProtocol::SaslSsl,
            sasl: Some(SaslCredentials::new(
                SaslMechanism::ScramSha256,
                "u",
                "pw-CANARY-91",
            )),
            ..KafkaConfig::new(["127.0.0.1:9092"])
        };
        let transport = KafkaTransport::new(ssl);
        let shown = format!("{transport:?}");
        assert!(
            transport.is_ok() && !shown.contains("pw-CANARY-91"),
            "{shown}"
        );
        assert!(
            KafkaTransport::new(KafkaConfig::new(Vec::<String>::new()))
                .err()
                .and_then(|e| e.setting().map(str::to_owned))
                .as_deref()
                == Some(KAFKA_BOOTSTRAP_SERVERS_ENV)
        );
    }
}
