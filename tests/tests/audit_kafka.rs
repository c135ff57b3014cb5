//! The Kafka audit sink against a real Kafka-protocol broker (tansu, from
//! `cargo xtask services install`), read back with a stock Kafka client (rskafka's fetch):
//! what is published arrives (count, per-key order, fields, OCSF that parses, CloudEvents
//! headers, no canary); a broker stopped while publishing gets everything after it restarts;
//! an overflow's drop count is exact; a clean shutdown loses nothing; a broker that accepts and
//! never answers cannot hold `close` past its deadline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secret_audit::{
    AuditConfig, AuditEvent, AuditKey, AuditSink, Auditor, EventType, KafkaConfig, KafkaSink,
    NoopSink, QueueConfig, RetryConfig, from_ocsf,
};
use secret_uri::SecretUri;
use secrets_test_support::tansu::{TansuServer, shared_tansu, tansu_or_skip};

mod common;

use common::kafka::{Consumed, WAIT, consume};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

const SALT: &str = "kafka-CANARY-salt-0001-acme-corp";
const SUBJECT: &str = "alice-CANARY-subject";

/// An auditor that keys events with [`SALT`] and hashes subjects.
fn auditor() -> Result<Auditor, BoxError> {
    let vars = secrets_test_support::env_map(&[
        ("SECRET_TENANT_SALT", SALT),
        ("AUDIT_HASH_SUBJECT", "true"),
    ]);
    Ok(Auditor::new(
        AuditKey::from_lookup(&vars)?,
        Arc::new(NoopSink::new()),
        &AuditConfig::from_lookup(&vars)?,
    ))
}

/// Event `i` about one of `secrets` secrets (grant id `g-<i>`, so order can be checked), or a
/// keyless refusal every 10th event.
fn event(auditor: &Auditor, i: usize, secrets: usize) -> Result<AuditEvent, BoxError> {
    if i % 10 == 9 {
        return Ok(auditor
            .event(EventType::AccessDenied, "acme", Some(SUBJECT), None)
            .with_grant_id(format!("g-{i}")));
    }
    let uri = SecretUri::parse(&format!(
        "openbao+kv2://secret/canary-path-{}#canary-key?version=3",
        i % secrets
    ))?;
    Ok(auditor
        .event(EventType::Read, "acme", Some(SUBJECT), Some(&uri))
        .with_grant_id(format!("g-{i}"))
        .with_use_number(1)
        .with_latency(Duration::from_micros(840)))
}

/// A queue that retries quickly, for tests that stop the broker.
fn queue() -> QueueConfig {
    QueueConfig::default()
        .with_retry(
            RetryConfig::default()
                .with_delays(Duration::from_millis(50), Duration::from_millis(500)),
        )
        .with_attempt_timeout(Duration::from_secs(5))
}

fn sink(kafka: &TansuServer, prefix: &str, queue: QueueConfig) -> Result<KafkaSink, BoxError> {
    Ok(KafkaSink::new(
        KafkaConfig::new([kafka.bootstrap()]).with_topic_prefix(prefix),
        queue,
    )?)
}

/// A unique topic prefix per test run.
fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{test}-{}-{nanos}.", std::process::id())
}

/// The consumed records by event id (retries may deliver one twice; consumers dedupe on
/// `ce_id`), checking each one's headers, key and OCSF body on the way.
fn check_records(consumed: &[Consumed]) -> Result<BTreeMap<String, AuditEvent>, BoxError> {
    let mut events = BTreeMap::new();
    for Consumed { record, .. } in consumed {
        let record = &record.record;
        let header = |name: &str| {
            record
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .ok_or_else(|| format!("no {name} header"))
        };
        let event = from_ocsf(record.value.as_deref().unwrap_or_default())?;
        assert_eq!(header("ce_specversion")?, "1.0");
        assert_eq!(header("ce_id")?, event.id().to_string());
        assert_eq!(header("ce_source")?, "secrets-sdk");
        assert_eq!(header("ce_type")?, event.kind().as_str());
        assert_eq!(header("ce_time")?, event.time_rfc3339());
        assert_eq!(header("content-type")?, "application/json");
        let key = event
            .resource_ref()
            .map_or(event.tenant().to_owned(), |r| r.as_str().to_owned());
        assert_eq!(record.key.as_deref(), Some(key.as_bytes()));
        assert!(event.subject_hashed() && event.subject() != Some(SUBJECT));
        // No canary anywhere in the record: not the salt, the subject or the URI.
        let text = common::kafka::record_text(record);
        for canary in ["CANARY", "canary", "secret/", "version=3"] {
            assert!(!text.contains(canary), "{canary} in a record: {text}");
        }
        events.insert(event.id().to_string(), event);
    }
    Ok(events)
}

/// Per key, the grant numbers in the order each key's partition holds them must increase, and
/// each key lives on one partition.
fn check_order(consumed: &[Consumed]) -> Result<(), BoxError> {
    let mut partition_of: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut last: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut seen = HashSet::new();
    let mut sorted: Vec<&Consumed> = consumed.iter().collect();
    sorted.sort_by_key(|c| (c.partition, c.record.offset));
    for c in sorted {
        let key = c.record.record.key.clone().unwrap_or_default();
        let event = from_ocsf(c.record.record.value.as_deref().unwrap_or_default())?;
        if !seen.insert(event.id()) {
            continue; // a redelivered duplicate
        }
        let partition = *partition_of.entry(key.clone()).or_insert(c.partition);
        assert_eq!(partition, c.partition, "a key on two partitions");
        let grant: usize = event
            .grant_id()
            .and_then(|g| g.strip_prefix("g-"))
            .ok_or("no grant id")?
            .parse()?;
        if let Some(previous) = last.insert(key, grant) {
            assert!(
                previous < grant,
                "out of order: g-{previous} before g-{grant}"
            );
        }
    }
    Ok(())
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<(), BoxError> {
    let deadline = Instant::now() + WAIT;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[test]
fn published_events_are_read_back_keyed_in_order_and_whole() -> TestResult {
    let Some(kafka) = shared_tansu() else {
        return Ok(());
    };
    let prefix = prefix("read-back");
    let sink = sink(&kafka, &prefix, QueueConfig::default())?;
    assert_eq!(sink.topic(), format!("{prefix}secrets.audit"));
    let auditor = auditor()?;
    let n = 600;
    let mut published = BTreeMap::new();
    for i in 0..n {
        let event = event(&auditor, i, 16)?;
        published.insert(event.id().to_string(), event.clone());
        sink.publish(event);
    }
    let report = sink.close(WAIT);
    assert_eq!(
        (report.delivered, report.dropped, report.lost),
        (n as u64, 0, 0)
    );

    let consumed = consume(&kafka.bootstrap(), sink.topic(), n)?;
    let read = check_records(&consumed)?;
    assert_eq!(read.len(), n, "every event, once each after dedupe");
    assert_eq!(read, published, "every field round trips");
    check_order(&consumed)?;
    let partitions: HashSet<i32> = consumed.iter().map(|c| c.partition).collect();
    assert!(partitions.len() > 1, "16 keys spread over the partitions");
    Ok(())
}

#[test]
fn a_broker_stopped_while_publishing_gets_everything_after_it_restarts() -> TestResult {
    let Some(mut kafka) = tansu_or_skip() else {
        return Ok(());
    };
    let prefix = prefix("restart");
    let sink = sink(&kafka, &prefix, queue())?;
    let auditor = auditor()?;

    // Before the stop: delivered and read back (the broker keeps records in memory only).
    let mut before = BTreeMap::new();
    for i in 0..200 {
        let event = event(&auditor, i, 8)?;
        before.insert(event.id().to_string(), event.clone());
        sink.publish(event);
    }
    wait_for("the first 200", || sink.stats().delivered == 200)?;
    assert_eq!(
        check_records(&consume(&kafka.bootstrap(), sink.topic(), 200)?)?,
        before
    );

    // While the broker is down: held in the queue, retried.
    kafka.stop();
    let mut after = BTreeMap::new();
    for i in 200..500 {
        let event = event(&auditor, i, 8)?;
        after.insert(event.id().to_string(), event.clone());
        sink.publish(event);
        if i == 300 {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    wait_for("failed attempts", || sink.stats().failed_attempts > 0)?;
    let stats = sink.stats();
    assert_eq!(
        stats.delivered, 200,
        "nothing delivered while down: {stats:?}"
    );
    assert_eq!(stats.dropped, 0, "within the queue bound");

    kafka.restart()?;
    let report = sink.close(WAIT);
    assert_eq!((report.delivered, report.dropped, report.lost), (500, 0, 0));
    let consumed = consume(&kafka.bootstrap(), sink.topic(), 300)?;
    assert_eq!(
        check_records(&consumed)?,
        after,
        "all 300 after the restart"
    );
    check_order(&consumed)?;
    Ok(())
}

#[test]
fn overflow_while_the_broker_is_down_drops_an_exact_count() -> TestResult {
    let Some(mut kafka) = tansu_or_skip() else {
        return Ok(());
    };
    let prefix = prefix("overflow");
    let sink = sink(
        &kafka,
        &prefix,
        queue().with_capacity(50).with_batch_max(10),
    )?;
    let auditor = auditor()?;
    kafka.stop();
    let published = 400;
    let mut ids = Vec::new();
    for i in 0..published {
        let event = event(&auditor, i, 8)?;
        ids.push(event.id().to_string());
        sink.publish(event);
    }
    let stats = sink.stats();
    let held = stats.queued + stats.in_flight;
    assert_eq!(stats.published, published as u64);
    assert_eq!(stats.dropped, published as u64 - held, "{stats:?}");
    assert!(held <= 60, "capacity 50 + a batch of 10: {stats:?}");
    assert!(stats.dropped >= published as u64 - 60);

    kafka.restart()?;
    let report = sink.close(WAIT);
    assert_eq!(report.dropped, stats.dropped);
    assert_eq!((report.delivered, report.lost), (held, 0));
    let read = check_records(&consume(&kafka.bootstrap(), sink.topic(), held as usize)?)?;
    assert_eq!(read.len() as u64, held, "exactly what was held arrives");
    // Only events of this test, each at most once; which ones were held depends on when the
    // drainer took its first batch.
    let published: HashSet<&String> = ids.iter().collect();
    assert!(read.keys().all(|id| published.contains(id)));
    Ok(())
}

#[test]
fn a_clean_shutdown_delivers_everything_queued() -> TestResult {
    let Some(kafka) = shared_tansu() else {
        return Ok(());
    };
    let prefix = prefix("shutdown");
    let sink = sink(&kafka, &prefix, QueueConfig::default().with_capacity(5_000))?;
    let auditor = auditor()?;
    let n = 3_000;
    for i in 0..n {
        sink.publish(event(&auditor, i, 64)?);
    }
    // Close at once: most of it is still queued.
    let report = sink.close(WAIT);
    assert_eq!(
        (report.delivered, report.dropped, report.lost),
        (n as u64, 0, 0)
    );
    assert!(!report.timed_out);
    let consumed = consume(&kafka.bootstrap(), sink.topic(), n)?;
    assert_eq!(check_records(&consumed)?.len(), n);
    check_order(&consumed)?;
    Ok(())
}

#[test]
fn a_broker_that_never_answers_cannot_hold_close_past_its_deadline() -> TestResult {
    // Accepts connections and reads nothing back: every request hangs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let bootstrap = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64).flatten() {
            held.push(stream);
        }
    });
    let sink = KafkaSink::new(
        KafkaConfig::new([bootstrap]),
        queue().with_attempt_timeout(Duration::from_millis(300)),
    )?;
    let auditor = auditor()?;
    for i in 0..20 {
        sink.publish(event(&auditor, i, 4)?);
    }
    wait_for("a timed-out attempt", || sink.stats().failed_attempts >= 2)?;
    let started = Instant::now();
    let report = sink.close(Duration::from_secs(1));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "close took {took:?}");
    assert_eq!((report.delivered, report.lost), (0, 20));
    assert!(report.timed_out);
    Ok(())
}

#[test]
fn the_sink_is_configured_from_the_kafka_settings() -> TestResult {
    let Some(kafka) = shared_tansu() else {
        return Ok(());
    };
    let prefix = prefix("settings");
    let bootstrap = kafka.bootstrap();
    let vars = secrets_test_support::env_map(&[
        ("ENABLE_KAFKA_PRODUCER", "true"),
        ("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str()),
        ("KAFKA_TOPIC_PREFIX", prefix.as_str()),
        ("AUDIT_QUEUE_CAPACITY", "100"),
    ]);
    let sink = KafkaSink::from_lookup(&vars)?.ok_or("the sink is on")?;
    assert_eq!(sink.topic(), format!("{prefix}secrets.audit"));
    let auditor = auditor()?;
    sink.publish(event(&auditor, 0, 1)?);
    assert_eq!(sink.close(WAIT).delivered, 1);
    assert_eq!(
        check_records(&consume(&bootstrap, sink.topic(), 1)?)?.len(),
        1
    );
    assert!(
        KafkaSink::from_lookup(&|_: &str| None)?.is_none(),
        "off by default"
    );
    Ok(())
}
