//! Audit sinks that fail: a transport that refuses every batch, one that never answers, one
//! that fails once then delivers (its OCSF records are scanned), a queue too small for the
//! traffic (events dropped), and the Kafka sink with a canary SASL password and no broker.
//! Both clients publish into each while reading the canaries.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrets_sdk::audit::{
    AuditError, AuditEvent, AuditSink, KafkaSink, QueueConfig, QueueSink, RetryConfig, Transport,
    to_ocsf_bytes,
};
use secrets_sdk::{BootstrapConfig, SecretsClient, VaultClient};
use tokio::runtime::Runtime;

use super::fixtures::{FILE_MAX_BYTES, Fixtures, file};
use super::run::{Expect, Run};
use super::vault_paths::{caller, kv, vars};
use crate::common::leak::{Channel, Class, SALT, TOKEN};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// How a test transport behaves.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Every batch refused.
    Refuse,
    /// Every attempt hangs until its timeout.
    Hang,
    /// The first attempt refused, the rest delivered (into the shared buffer).
    FlakyThenDeliver,
}

struct TestTransport {
    behaviour: Behaviour,
    attempts: Arc<AtomicUsize>,
    delivered: Arc<Mutex<Vec<u8>>>,
}

impl Transport for TestTransport {
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async move {
            let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
            match self.behaviour {
                Behaviour::Refuse => Err(AuditError::delivery(
                    "the collector refused the batch",
                    None,
                )),
                Behaviour::Hang => std::future::pending().await,
                Behaviour::FlakyThenDeliver if attempt == 0 => {
                    Err(AuditError::delivery("the collector is restarting", None))
                }
                Behaviour::FlakyThenDeliver => {
                    let mut out = self
                        .delivered
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    for event in batch {
                        out.extend(to_ocsf_bytes(event));
                        out.push(b'\n');
                    }
                    Ok(())
                }
            }
        })
    }
}

fn queue() -> QueueConfig {
    QueueConfig::default()
        .with_capacity(4)
        .with_batch_max(2)
        .with_retry(
            RetryConfig::default().with_delays(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .with_attempt_timeout(Duration::from_millis(50))
        .with_warn_interval(Duration::from_millis(1))
        .with_linger(Duration::from_millis(1))
}

/// Drives both clients through every failing sink.
pub(crate) fn drive(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    for behaviour in [
        Behaviour::Refuse,
        Behaviour::Hang,
        Behaviour::FlakyThenDeliver,
    ] {
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let transport = TestTransport {
            behaviour,
            attempts: Arc::new(AtomicUsize::new(0)),
            delivered: Arc::clone(&delivered),
        };
        let sink: Arc<dyn AuditSink> = Arc::new(QueueSink::new(transport, queue())?);
        let name = format!("{behaviour:?}");
        reads(run, rt, fx, &name, &sink)?;
        let report = sink.close(Duration::from_millis(500));
        run.show(
            &format!("audit/{name} close"),
            format!("{report:?} {:?} {sink:?}", sink.stats()),
        );
        let bytes = delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if matches!(behaviour, Behaviour::FlakyThenDeliver) && bytes.is_empty() {
            run.mismatch(
                &format!("audit/{name}"),
                "nothing was delivered after the first failure",
            );
        }
        run.scanner.scan(
            Channel::Audit,
            &format!("audit/{name} delivered OCSF"),
            &bytes,
            &[Class::Subject],
        );
    }
    // The Kafka sink: a canary SASL password, no broker listening.
    let port = secrets_test_support::free_port()?;
    let vars = [
        ("ENABLE_KAFKA_PRODUCER", "true".to_owned()),
        ("KAFKA_BOOTSTRAP_SERVERS", format!("127.0.0.1:{port}")),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT".to_owned()),
        ("KAFKA_SASL_MECHANISM", "PLAIN".to_owned()),
        ("KAFKA_SASL_USERNAME", "lk-user".to_owned()),
        ("KAFKA_SASL_PASSWORD", TOKEN.to_owned()),
        ("AUDIT_QUEUE_CAPACITY", "4".to_owned()),
    ];
    let lookup = secrets_test_support::env_map(&vars);
    let path = run.path("audit/kafka sink without a broker");
    match KafkaSink::from_lookup(&lookup) {
        Ok(Some(kafka)) => {
            run.show(&path, format!("{kafka:?}"));
            let sink: Arc<dyn AuditSink> = Arc::new(kafka);
            reads(run, rt, fx, "kafka", &sink)?;
            let report = sink.close(Duration::from_millis(500));
            run.show(&path, format!("{report:?} {:?}", sink.stats()));
        }
        Ok(None) => run.mismatch(&path, "the Kafka sink was not configured"),
        Err(e) => run.error(&path, e.code(), &e, Expect::Code("OK")),
    }
    Ok(())
}

/// A few reads of both clients publishing into `sink`.
fn reads(
    run: &mut Run,
    rt: &Runtime,
    fx: &Fixtures,
    name: &str,
    sink: &Arc<dyn AuditSink>,
) -> Result {
    let sdk = SecretsClient::builder()
        .file_root(fx.root())
        .allowed_mounts(secrets_sdk::uri::AllowedMounts::from_csv("demo,secret"))
        .file_max_bytes(FILE_MAX_BYTES)
        .bootstrap(BootstrapConfig::token(fx.bao.addr(), TOKEN))
        .tenant_salt(SALT)
        .tenant_id("t1")
        .audit(Arc::clone(sink))
        .build()?;
    for round in 0..3 {
        for (uri, expect) in [
            (Fixtures::file_uri(file::JSON, "#password"), Expect::Value),
            (
                Fixtures::file_uri(file::JSON, "#missing"),
                Expect::Code("KEY_NOT_FOUND"),
            ),
            (kv("", "#token"), Expect::Value),
            (
                kv("", "#token?version=1"),
                Expect::Code("VERSION_DESTROYED"),
            ),
        ] {
            let path = run.path(format!("audit/{name} sdk resolve {round}"));
            run.secret(&path, &rt.block_on(sdk.resolve(uri.as_str())), expect);
        }
    }
    sdk.close();
    let vault = VaultClient::builder()
        .env_lookup(secrets_test_support::env_map(
            &vars(fx, &[])
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        ))
        .audit(Arc::clone(sink))
        .build()?;
    for round in 0..3 {
        for (uri, expect) in [
            (kv("", "#token"), Expect::Value),
            (kv("denied/", "#token"), Expect::Code("AUTHZ_DENIED")),
            (kv("", "#missing"), Expect::Code("KEY_NOT_FOUND")),
        ] {
            let path = run.path(format!("audit/{name} vault get_credentials {round}"));
            run.secret(
                &path,
                &rt.block_on(vault.get_credentials(uri.as_str(), Some(&caller()))),
                expect,
            );
        }
    }
    vault.close();
    Ok(())
}
