//! Unit tests of the client that need its internals (a stalled file read, dropped values).

use super::*;
use crate::secret::Entry;
use std::sync::{Condvar, Mutex, PoisonError, Weak};

/// Released once the stalled-filesystem test is done with it.
static STALL: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// A file read of a path named `stalled` blocks until the test releases it: a file read
/// that never returns (a stalled network filesystem), which the file provider itself can
/// no longer be made to do (it refuses FIFOs and devices).
pub(super) fn stall_if_asked(uri: &SecretUri) {
    if uri.path() != "stalled" {
        return;
    }
    let (released, wake) = &STALL;
    let mut released = released.lock().unwrap_or_else(PoisonError::into_inner);
    while !*released {
        released = wake.wait(released).unwrap_or_else(PoisonError::into_inner);
    }
}

fn release_stalled_reads() {
    let (released, wake) = &STALL;
    *released.lock().unwrap_or_else(PoisonError::into_inner) = true;
    wake.notify_all();
}

/// A file read that never returns holds a thread of the client's blocking pool, never
/// the I/O worker vault reads need nor the caller's executor: from `resolve_blocking` and
/// from a current-thread runtime, a vault read of another URI completes meanwhile, and
/// the file resolve ends with `TIMEOUT` at its deadline. Before: the file was read in
/// place, on the client's only I/O worker (`resolve_blocking`) or on the caller's thread
/// (`resolve`), and the vault reads hung behind it.
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
#[test]
fn a_stalled_file_read_blocks_no_vault_read() -> Result<(), Box<dyn std::error::Error>> {
    use secrets_test_support::{Fault, FaultServer};
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("m"))?;
    std::fs::write(root.path().join("m/stalled"), "never read")?;
    let kv = serde_json::json!({"data": {"data": {"k": "v"}, "metadata": {"version": 1}}});
    let server = FaultServer::start(vec![Fault::status(403), Fault::json(200, &kv)])?;
    let client = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(AllowedMounts::from_csv("m,secret"))
        .bootstrap(crate::BootstrapConfig::token(server.addr(), "t"))
        .resolve_deadline(Duration::from_secs(2))
        .build()?;
    // Should a read stall a thread it must not, this ends the stall so that the test
    // fails instead of hanging.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(10));
        release_stalled_reads();
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let stalled = client.clone();
    let file_tx = tx.clone();
    std::thread::spawn(move || {
        let code = stalled
            .resolve_blocking("file://m/stalled")
            .err()
            .map(|e| e.code());
        let _ = file_tx.send(("file", code));
    });
    std::thread::sleep(Duration::from_millis(200));
    let vault = client.clone();
    std::thread::spawn(move || {
        let code = vault
            .resolve_blocking("openbao+kv2://secret/a#k")
            .err()
            .map(|e| e.code());
        let _ = tx.send(("vault", code));
    });
    let first = rx.recv_timeout(Duration::from_secs(20));
    let second = rx.recv_timeout(Duration::from_secs(20));

    // The same from async code on a current-thread runtime: the stalled read must not
    // hold the caller's only thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let on_runtime = runtime.block_on(async {
        let stalled = client.clone();
        let file = tokio::spawn(async move {
            stalled
                .resolve("file://m/stalled")
                .await
                .err()
                .map(|e| e.code())
        });
        tokio::task::yield_now().await;
        let vault = tokio::time::timeout(
            Duration::from_secs(20),
            client.resolve_with("openbao+kv2://secret/a#k", ResolveOptions::refresh()),
        )
        .await
        .map(|r| r.err().map(|e| e.code()));
        let file = tokio::time::timeout(Duration::from_secs(20), file).await;
        (vault, file)
    });
    release_stalled_reads();

    assert_eq!(
        first.ok(),
        Some(("vault", None)),
        "the vault read went first"
    );
    assert_eq!(second.ok(), Some(("file", Some("TIMEOUT"))));
    let (vault, file) = on_runtime;
    assert_eq!(vault.ok(), Some(None), "the async vault read completed");
    assert_eq!(file.ok().and_then(Result::ok), Some(Some("TIMEOUT")));
    Ok(())
}

/// The cache holds the only reference to a value once callers drop theirs, so eviction,
/// replacement and `close` drop it, and `SecretValue`'s drop zeroizes it.
#[test]
fn evicted_replaced_and_closed_values_are_dropped() -> Result<(), Box<dyn std::error::Error>> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("m"))?;
    for i in 0..100 {
        std::fs::write(root.path().join(format!("m/s{i}")), format!("v{i}"))?;
    }
    let client = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(AllowedMounts::from_csv("m"))
        .cache_capacity(32)
        .build()?;
    let mut weak: Vec<Weak<Entry>> = Vec::new();
    for i in 0..100 {
        let secret = client.resolve_file_sync(format!("file://m/s{i}").as_str())?;
        weak.push(Arc::downgrade(&secret.0));
    }
    let alive = weak.iter().filter(|w| w.strong_count() > 0).count();
    assert_eq!(alive, client.cache_len());
    assert!(alive <= 32, "{alive}");

    // A refresh replaces the entry; the old one is dropped.
    let first = client.resolve_file_sync("file://m/s99")?;
    let old = Arc::downgrade(&first.0);
    drop(first);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(client.resolve_with("file://m/s99", ResolveOptions::refresh()))?;
    assert_eq!(old.strong_count(), 0);

    client.close();
    assert!(weak.iter().all(|w| w.strong_count() == 0));
    Ok(())
}

#[test]
fn join_all_keeps_input_order() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else { return };
    let out = runtime.block_on(join_all(
        [30u64, 0, 10]
            .into_iter()
            .map(|ms| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                ms
            })
            .collect(),
    ));
    assert_eq!(out, vec![30, 0, 10]);
}

mod audit {
    use super::*;
    use secret_audit::{AuditSink, EventType, MemorySink, to_ocsf_bytes};

    const SALT: &str = "tenant-salt-0001-for-acme-corp-x";
    const VALUE: &str = "canary-value-5f1d";

    fn client(
        root: &std::path::Path,
        sample: &str,
    ) -> Result<(SecretsClient, Arc<MemorySink>), Error> {
        let sink = Arc::new(MemorySink::new());
        let sample = sample.to_owned();
        let client = SecretsClient::builder()
            .env_lookup(move |name| (name == "AUDIT_SAMPLE_CACHE_HIT_N").then(|| sample.clone()))
            .file_root(root)
            .allowed_mounts(AllowedMounts::from_csv("dc-infra"))
            .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
            .tenant_salt(SALT)
            .tenant_id("acme")
            .build()?;
        Ok((client, sink))
    }

    /// Every backend read is audited, cache hits one in N (lock-free, exact), failures with
    /// their code; events carry the keyed reference, never the URI or the value.
    #[test]
    fn backend_reads_always_cache_hits_sampled() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join("dc-infra"))?;
        std::fs::write(
            root.path().join("dc-infra/config.json"),
            format!(r#"{{"password":"{VALUE}"}}"#),
        )?;
        let (client, sink) = client(root.path(), "3")?;
        let uri = "file://dc-infra/config.json#password";
        for _ in 0..7 {
            assert_eq!(client.resolve_blocking(uri)?.expose_str(), Some(VALUE));
        }
        let missing = client.resolve_blocking("file://dc-infra/nope").unwrap_err();
        assert_eq!(missing.code(), "NOT_FOUND");

        let events = sink.events();
        let kinds: Vec<_> = events.iter().map(|e| e.kind()).collect();
        // One read, six hits of which the 1st and 4th are sampled, one failed read.
        assert_eq!(
            kinds,
            [
                EventType::Read,
                EventType::CacheHit,
                EventType::CacheHit,
                EventType::ReadError
            ]
        );
        assert_eq!(events[3].code(), "NOT_FOUND");
        // The fleet's vector: this URI under this salt.
        assert_eq!(
            events[0].resource_ref().map(|r| r.as_str()),
            Some("8f2f4205826405363900cc07640d38ff")
        );
        for event in &events {
            assert_eq!(event.tenant(), "acme");
            let shown = format!(
                "{event:?} {}",
                String::from_utf8_lossy(&to_ocsf_bytes(event))
            );
            for canary in [VALUE, "config.json", "password", SALT] {
                assert!(!shown.contains(canary), "{canary} in {shown}");
            }
        }
        Ok(())
    }

    #[test]
    fn audit_needs_a_salt_and_a_tenant() {
        let sink = || Arc::new(MemorySink::new()) as Arc<dyn AuditSink>;
        let base = || SecretsClient::builder().allow_any_mount().audit(sink());
        let err = base().tenant_id("acme").build().unwrap_err();
        assert_eq!(
            (err.code(), err.setting()),
            ("CONFIG", Some("SECRET_TENANT_SALT"))
        );
        let err = base().tenant_salt(SALT).build().unwrap_err();
        assert_eq!((err.code(), err.setting()), ("CONFIG", Some("TENANT_ID")));
        let err = base()
            .tenant_salt("short")
            .tenant_id("acme")
            .build()
            .unwrap_err();
        assert_eq!(err.setting(), Some("tenant_salt"));
        assert!(!format!("{err} {err:?}").contains("short"), "{err:?}");
        // Without a sink nothing is required.
        assert!(SecretsClient::builder().allow_any_mount().build().is_ok());
    }

    /// A resolve whose caller gives up mid-read still leaves exactly one read event: the
    /// audit lives in the read's task, and an aborted task records its read on drop.
    #[test]
    fn a_cancelled_resolve_still_audits_its_read() -> Result<(), Box<dyn std::error::Error>> {
        #[derive(Debug)]
        struct Slow;
        impl secret_providers::SecretProvider for Slow {
            fn name(&self) -> &'static str {
                "slow"
            }
            fn read<'a>(&'a self, _uri: &'a SecretUri) -> secret_providers::ReadFuture<'a> {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(secret_providers::SecretValue::from_text("v"))
                })
            }
        }
        let sink = Arc::new(MemorySink::new());
        let client = SecretsClient::builder()
            .allowed_mounts(AllowedMounts::from_csv("pg"))
            .provider(Provider::Db, Arc::new(Slow))
            .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
            .tenant_salt(SALT)
            .tenant_id("acme")
            .build()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let gave_up = runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_millis(50),
                client.resolve("db+cred://pg/app"),
            )
            .await
            .is_err()
        });
        assert!(gave_up);
        assert!(sink.wait_for(1, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(400));
        let reads: Vec<_> = sink
            .events()
            .into_iter()
            .map(|e| (e.kind(), e.code().to_owned()))
            .collect();
        assert_eq!(reads.len(), 1, "{reads:?}");
        assert!(
            matches!(reads[0].0, EventType::Read | EventType::ReadError),
            "{reads:?}"
        );
        Ok(())
    }
}

mod refresh_ahead;
mod telemetry;
