//! Events per second through the Kafka sink to a real Kafka-protocol broker (tansu, from
//! `cargo xtask services install`), publish to delivered.
//!
//! - `audit_publish`: [`KafkaSink`] (its queue, OCSF records, CloudEvents headers, murmur2
//!   placement, lz4 requests of at most 48 KiB of records) publishing [`EVENTS`] prepared
//!   events about 256 secrets to a fresh topic (4 partitions), timed from the first `publish`
//!   to a `close` that delivered them all.
//! - `audit_floor_rskafka_produce`: the same records, already built, produced by rskafka
//!   directly with the same request sizes and compression, one task per partition: the least
//!   any Kafka sink over rskafka must do, measured in the same run for the ratio.
//!
//! With `SECRETS_BENCH_JSON=<path>` (as `cargo xtask bench` sets it) each scenario appends
//! `{"scenario":…,"events_per_s":…,"n":…}` (the best of [`ROUNDS`] rounds). Without it, it
//! runs as a criterion benchmark of the sink.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use secret_audit::{
    AuditConfig, AuditEvent, AuditKey, AuditSink, Auditor, EventType, KafkaConfig, KafkaSink,
    NoopSink, QueueConfig, to_ocsf_bytes,
};
use secret_uri::SecretUri;
use secrets_test_support::bench::{append, json_path};
use secrets_test_support::tansu::TansuServer;

const EVENTS: usize = 200_000;
const ROUNDS: usize = 3;
const PARTITIONS: i32 = 4;
const WAIT: Duration = Duration::from_secs(120);

fn events(n: usize) -> Vec<AuditEvent> {
    let vars = |name: &str| {
        (name == "SECRET_TENANT_SALT").then(|| "tenant-salt-0001-for-acme-corp-x".to_owned())
    };
    let auditor = Auditor::new(
        AuditKey::from_lookup(&vars).unwrap(),
        Arc::new(NoopSink::new()),
        &AuditConfig::from_lookup(&vars).unwrap(),
    );
    let uris: Vec<SecretUri> = (0..256)
        .map(|i| SecretUri::parse(&format!("openbao+kv2://secret/app/service-{i}#token")).unwrap())
        .collect();
    (0..n)
        .map(|i| {
            auditor
                .event(
                    EventType::Read,
                    "acme",
                    Some("alice"),
                    Some(&uris[i % uris.len()]),
                )
                .with_grant_id(format!("g-{i}"))
                .with_use_number(1)
                .with_latency(Duration::from_micros(840))
        })
        .collect()
}

fn sink(kafka: &TansuServer, topic_prefix: &str, capacity: usize) -> KafkaSink {
    let queue = QueueConfig::default()
        .with_capacity(capacity)
        .with_batch_max(2_000);
    KafkaSink::new(
        KafkaConfig::new([kafka.bootstrap()]).with_topic_prefix(topic_prefix),
        queue,
    )
    .unwrap()
}

fn create_topic(runtime: &tokio::runtime::Runtime, kafka: &TansuServer, topic: &str) {
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![kafka.bootstrap()])
            .build()
            .await
            .unwrap();
        client
            .controller_client()
            .unwrap()
            .create_topic(topic, PARTITIONS, 1, 5_000)
            .await
            .unwrap();
    });
}

/// One round through the sink: events per second, publish to delivered.
fn sink_round(runtime: &tokio::runtime::Runtime, kafka: &TansuServer, round: usize) -> f64 {
    let prefix = format!("bench-sink-{round}.");
    create_topic(runtime, kafka, &format!("{prefix}secrets.audit"));
    let events = events(EVENTS);
    let sink = sink(kafka, &prefix, EVENTS);
    let started = Instant::now();
    for event in events {
        sink.publish(event);
    }
    let report = sink.close(WAIT);
    let elapsed = started.elapsed();
    assert_eq!((report.delivered, report.lost), (EVENTS as u64, 0));
    eprintln!(
        "audit_publish round {round}: {elapsed:?}, {:?}",
        sink.stats()
    );
    EVENTS as f64 / elapsed.as_secs_f64()
}

/// The records the sink would write, in 4 per-partition lists of requests.
fn requests(events: &[AuditEvent]) -> Vec<Vec<Vec<Record>>> {
    let mut partitions: Vec<Vec<Vec<Record>>> = (0..PARTITIONS).map(|_| Vec::new()).collect();
    let mut current: Vec<(Vec<Record>, usize)> = (0..PARTITIONS).map(|_| (Vec::new(), 0)).collect();
    for (i, event) in events.iter().enumerate() {
        let mut headers = BTreeMap::new();
        headers.insert("ce_specversion".to_owned(), b"1.0".to_vec());
        headers.insert("ce_id".to_owned(), event.id().to_string().into_bytes());
        headers.insert("ce_source".to_owned(), b"secrets-sdk".to_vec());
        headers.insert(
            "ce_type".to_owned(),
            event.kind().as_str().as_bytes().to_vec(),
        );
        headers.insert("ce_time".to_owned(), event.time_rfc3339().into_bytes());
        headers.insert("content-type".to_owned(), b"application/json".to_vec());
        let record = Record {
            key: event.resource_ref().map(|r| r.as_str().as_bytes().to_vec()),
            value: Some(to_ocsf_bytes(event)),
            headers,
            timestamp: rskafka::chrono::DateTime::from_timestamp_millis(
                i64::try_from(event.time_millis()).unwrap(),
            )
            .unwrap(),
        };
        let p = i % PARTITIONS as usize;
        let size = record.approximate_size();
        let (chunk, bytes) = &mut current[p];
        if !chunk.is_empty()
            && (*bytes + size > secret_audit::kafka::MAX_REQUEST_RECORD_BYTES || chunk.len() >= 96)
        {
            partitions[p].push(std::mem::take(chunk));
            *bytes = 0;
        }
        *bytes += size;
        chunk.push(record);
    }
    for (p, (chunk, _)) in current.into_iter().enumerate() {
        if !chunk.is_empty() {
            partitions[p].push(chunk);
        }
    }
    partitions
}

/// One round of the floor: prepared records, produced by rskafka directly.
fn floor_round(runtime: &tokio::runtime::Runtime, kafka: &TansuServer, round: usize) -> f64 {
    let topic = format!("bench-floor-{round}");
    create_topic(runtime, kafka, &topic);
    let prepared = requests(&events(EVENTS));
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![kafka.bootstrap()])
            .build()
            .await
            .unwrap();
        let mut clients = Vec::new();
        for p in 0..PARTITIONS {
            clients.push(Arc::new(
                client
                    .partition_client(topic.clone(), p, UnknownTopicHandling::Retry)
                    .await
                    .unwrap(),
            ));
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        let check: Vec<_> = clients.iter().map(Arc::clone).collect();
        for (client, chunks) in clients.into_iter().zip(prepared) {
            tasks.push(tokio::spawn(async move {
                for chunk in chunks {
                    client.produce(chunk, Compression::Lz4).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
        let mut stored = 0;
        for client in check {
            stored += client.fetch_records(0, 1..1_000_000, 100).await.unwrap().1;
        }
        assert_eq!(stored, EVENTS as i64, "the broker holds every record");
        rate
    })
}

fn json_line(scenario: &str, events_per_s: f64) -> String {
    format!("{{\"scenario\":\"{scenario}\",\"events_per_s\":{events_per_s:.0},\"n\":{EVENTS}}}")
}

fn main() {
    let kafka = TansuServer::start().expect("tansu (cargo xtask services install)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    if let Some(path) = json_path() {
        let best = |round: &dyn Fn(usize) -> f64| (0..ROUNDS).map(round).fold(0.0_f64, f64::max);
        let sink = best(&|r| sink_round(&runtime, &kafka, r));
        let floor = best(&|r| floor_round(&runtime, &kafka, r));
        append(&path, &json_line("audit_publish", sink)).unwrap();
        append(&path, &json_line("audit_floor_rskafka_produce", floor)).unwrap();
        eprintln!(
            "audit_publish: {sink:.0} events/s, {:.2}x the rskafka produce floor ({floor:.0}/s)",
            sink / floor
        );
        return;
    }
    let prefix = "bench-criterion.";
    create_topic(&runtime, &kafka, &format!("{prefix}secrets.audit"));
    let sink = sink(&kafka, prefix, 1_000_000);
    let prepared = events(1_000);
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("audit_publish_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = sink.stats().delivered + prepared.len() as u64;
                let batch = prepared.clone();
                let started = Instant::now();
                for event in batch {
                    sink.publish(event);
                }
                let deadline = Instant::now() + WAIT;
                while sink.stats().delivered < target {
                    assert!(
                        Instant::now() < deadline,
                        "the broker stopped taking events"
                    );
                    std::thread::yield_now();
                }
                total += started.elapsed();
            }
            total
        });
    });
    c.final_summary();
    let _ = sink.close(WAIT);
}
