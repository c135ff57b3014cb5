//! `bootstrap://<name>`: the values of a bootstrap file's `values` section, served from memory
//! before any vault is reachable: with the vault an accepting server that never answers (or a
//! port where nothing listens), every `bootstrap://` read is immediate and not one connection
//! reaches it. Then where values come from (every bootstrap level), what each failure is, the
//! tenant mount guard, path-traversal names, and a canary kept out of errors, `Debug` and logs.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use secrets_sdk::providers::{ProviderError, ReadFuture, SecretProvider, SecretValue};
use secrets_sdk::uri::{AllowedMounts, Provider, SecretUri};
use secrets_sdk::{BootstrapConfig, BootstrapSource, SecretsClient, SecretsClientBuilder};
use secrets_test_support::LogCapture;
use serde_json::json;

use crate::common::sdk::{TestResult, builder, demo_files, env};

const CANARY: &str = "CANARY-bootstrap-value-6f1c";
const TOKEN_CANARY: &str = "CANARY-bootstrap-token-02aa";

/// Mounts the values below live under (the guard applies to `bootstrap://` as to any URI).
const MOUNTS: &str = "demo,secret,kafka_password,db,boot";

/// A loopback server that accepts connections and never answers, counting them.
struct Silent {
    addr: String,
    accepted: Arc<AtomicUsize>,
}

impl Silent {
    fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = format!("http://{}", listener.local_addr()?);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                // Read and hold the connection open; never write a byte.
                std::thread::spawn(move || {
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                });
            }
        });
        Ok(Self { addr, accepted })
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A loopback address where nothing listens (a port bound, then released).
fn dead_addr() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(format!("http://{}", listener.local_addr()?))
}

fn values() -> serde_json::Value {
    json!({
        "kafka_password": CANARY,
        "db": {"user": "app", "password": CANARY},
        "boot/signing": "signing-key",
    })
}

/// A bootstrap file for `addr` with these values, under a new name in `dir`.
fn write_bootstrap(
    dir: &Path,
    addr: &str,
    values: Option<serde_json::Value>,
) -> std::io::Result<PathBuf> {
    static FILES: AtomicUsize = AtomicUsize::new(0);
    let mut document = json!({"vault_addr": addr, "token": TOKEN_CANARY});
    if let Some(values) = values {
        document["values"] = values;
    }
    let n = FILES.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("bootstrap-{n}.json"));
    std::fs::write(&path, document.to_string())?;
    Ok(path)
}

fn guarded(root: &Path) -> SecretsClientBuilder {
    builder(root).allowed_mounts(AllowedMounts::from_csv(MOUNTS))
}

fn text(secret: &secrets_sdk::Secret) -> String {
    secret.expose_as_text().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_values_are_read_before_any_vault_is_contacted() -> TestResult {
    let files = demo_files()?;
    let vault = Silent::start()?;
    let path = write_bootstrap(files.path(), &vault.addr, Some(values()))?;
    let client = guarded(files.path())
        .bootstrap_path(&path)
        .resolve_deadline(Duration::from_secs(2))
        .build()?;
    assert_eq!(
        client.bootstrap_source(),
        Some(&BootstrapSource::ExplicitPath(path.clone()))
    );

    let started = Instant::now();
    assert_eq!(
        text(&client.resolve("bootstrap://kafka_password").await?),
        CANARY
    );
    assert_eq!(
        text(&client.resolve("bootstrap://db#password").await?),
        CANARY
    );
    assert_eq!(text(&client.resolve("BOOTSTRAP://db#user").await?), "app");
    let db = client.resolve("bootstrap://db").await?;
    assert_eq!(
        db.expose_json(),
        Some(&json!({"user": "app", "password": CANARY}))
    );
    assert_eq!(
        text(&client.resolve("bootstrap://boot/signing").await?),
        "signing-key"
    );
    let many = client
        .resolve_many(["bootstrap://kafka_password", "bootstrap://boot/signing"])
        .await;
    assert!(many.iter().all(Result::is_ok));
    // From synchronous code too, on the caller's thread of a running runtime.
    let blocking = tokio::task::block_in_place(|| client.resolve_blocking("bootstrap://db#user"))?;
    assert_eq!(text(&blocking), "app");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    // Served from the bootstrap's memory: nothing cached twice, no connection made.
    assert_eq!(client.cache_len(), 0);
    assert_eq!(vault.accepted(), 0);

    // The vault itself is that silent server: a vault read reaches it and times out.
    let vault_read = client.resolve("openbao+kv2://secret/app/api#token").await;
    assert_eq!(vault_read.err().map(|e| e.code()), Some("TIMEOUT"));
    assert!(vault.accepted() >= 1);
    // Bootstrap values still answer at once while the vault hangs.
    let started = Instant::now();
    assert_eq!(
        text(&client.resolve("bootstrap://kafka_password").await?),
        CANARY
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    client.close();
    Ok(())
}

#[tokio::test]
async fn with_nothing_listening_at_the_vault_address_values_still_resolve() -> TestResult {
    let files = demo_files()?;
    let path = write_bootstrap(files.path(), &dead_addr()?, Some(values()))?;
    let client = guarded(files.path()).bootstrap_path(&path).build()?;
    assert_eq!(
        text(&client.resolve("bootstrap://kafka_password").await?),
        CANARY
    );
    // The watch's starting point is the value, read from memory.
    let changes = client.watch("bootstrap://db#password").await?;
    let current = changes.current().map(|item| format!("{item:?}"));
    assert!(current.is_some_and(|c| !c.contains(CANARY)));
    let vault_read = client.resolve("openbao+kv2://secret/app/api#token").await;
    assert_eq!(vault_read.err().map(|e| e.code()), Some("UNAVAILABLE"));
    assert_eq!(text(&client.resolve("bootstrap://db#user").await?), "app");
    Ok(())
}

#[tokio::test]
async fn values_come_from_every_bootstrap_file_level() -> TestResult {
    let files = demo_files()?;
    let addr = dead_addr()?;
    let from_env = write_bootstrap(files.path(), &addr, Some(json!({"kafka_password": "env"})))?;
    let default = write_bootstrap(files.path(), &addr, Some(json!({"kafka_password": "dflt"})))?;
    let via_env = guarded(files.path())
        .env_lookup(env(&[(
            "SECRETS_BOOTSTRAP_PATH",
            from_env.to_str().unwrap_or(""),
        )]))
        .default_bootstrap_path(&default)
        .build()?;
    assert_eq!(
        text(&via_env.resolve("bootstrap://kafka_password").await?),
        "env"
    );
    let via_default = guarded(files.path())
        .env_lookup(env(&[]))
        .default_bootstrap_path(&default)
        .build()?;
    assert_eq!(
        via_default.bootstrap_source(),
        Some(&BootstrapSource::DefaultPath(default.clone()))
    );
    assert_eq!(
        text(&via_default.resolve("bootstrap://kafka_password").await?),
        "dflt"
    );
    Ok(())
}

#[tokio::test]
async fn without_values_bootstrap_uris_are_not_configured_and_say_why() -> TestResult {
    let files = demo_files()?;
    let addr = dead_addr()?;
    let bare = write_bootstrap(files.path(), &addr, None)?;
    let cases: Vec<(SecretsClient, String)> = vec![
        (
            guarded(files.path()).build()?,
            "the builder was given no bootstrap and no environment".into(),
        ),
        (
            guarded(files.path())
                .env_lookup(env(&[]))
                .default_bootstrap_path(files.path().join("absent.json"))
                .build()?,
            "no bootstrap found; tried SECRETS_BOOTSTRAP_PATH (not set)".into(),
        ),
        (
            guarded(files.path()).bootstrap_path(&bare).build()?,
            format!(
                "the bootstrap file (explicit path {}) has no `values` section",
                bare.display()
            ),
        ),
        (
            guarded(files.path())
                .bootstrap(BootstrapConfig::token(&addr, TOKEN_CANARY))
                .build()?,
            "the bootstrap was given in code, as settings without values".into(),
        ),
        (
            guarded(files.path())
                .env_lookup(env(&[
                    ("OPENBAO_URL", &addr),
                    ("OPENBAO_TOKEN", TOKEN_CANARY),
                ]))
                .default_bootstrap_path(files.path().join("absent.json"))
                .build()?,
            "the bootstrap is the environment (OPENBAO_*), which holds no values".into(),
        ),
    ];
    for (client, why) in cases {
        let err = client
            .resolve("bootstrap://kafka_password")
            .await
            .err()
            .ok_or("resolved without values")?;
        assert_eq!(err.code(), "NOT_CONFIGURED");
        let shown = err.to_string();
        assert!(
            shown.starts_with("bootstrap: no bootstrap values are configured ("),
            "{shown}"
        );
        assert!(shown.contains(&why), "{shown}");
        assert!(!shown.contains(TOKEN_CANARY), "{shown}");
    }
    Ok(())
}

#[tokio::test]
async fn each_failure_has_its_code_and_names_no_value() -> TestResult {
    let files = demo_files()?;
    let path = write_bootstrap(files.path(), &dead_addr()?, Some(values()))?;
    let client = guarded(files.path()).bootstrap_path(&path).build()?;
    for (uri, code) in [
        ("bootstrap://db/password", "NOT_FOUND"),
        ("bootstrap://kafka_password/x", "NOT_FOUND"),
        ("bootstrap://boot", "NOT_FOUND"),
        ("bootstrap://db#missing", "KEY_NOT_FOUND"),
        ("bootstrap://kafka_password#key", "NOT_JSON"),
        ("bootstrap://db?version=1", "UNKNOWN_PARAMETER"),
        // The tenant mount guard holds for bootstrap names too: `other` is not allowed.
        ("bootstrap://other/kafka_password", "TENANT_MOUNT_MISMATCH"),
        // Path traversal cannot even be spelled.
        ("bootstrap://boot/../kafka_password", "ILLEGAL_SEGMENT"),
        ("bootstrap://boot/%2e%2e/kafka_password", "ILLEGAL_SEGMENT"),
        ("bootstrap://boot%2fsigning", "ILLEGAL_SEGMENT"),
        ("bootstrap+kv2://db", "UNSUPPORTED_ENGINE"),
    ] {
        let err = client.resolve(uri).await.err().ok_or(uri)?;
        assert_eq!(err.code(), code, "{uri}: {err}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(!shown.contains("signing-key"), "{shown}");
    }
    // A name outside the allowed mounts is refused even though the file holds it.
    let narrow = builder(files.path()).bootstrap_path(&path).build()?;
    let err = narrow.resolve("bootstrap://kafka_password").await.err();
    assert_eq!(err.map(|e| e.code()), Some("TENANT_MOUNT_MISMATCH"));
    // Not a file: the synchronous file entry point refuses it.
    let err = client.resolve_file_sync("bootstrap://kafka_password").err();
    assert_eq!(err.map(|e| e.code()), Some("UNSUPPORTED_PROVIDER"));
    Ok(())
}

#[test]
fn an_invalid_values_section_fails_the_build_naming_the_field() -> TestResult {
    let files = demo_files()?;
    let addr = dead_addr()?;
    for (values, field) in [
        (json!({"../etc/passwd": CANARY}), "values.../etc/passwd"),
        (json!({"a/../b": CANARY}), "values.a/../b"),
        (json!({"/abs": CANARY}), "values./abs"),
        (json!({"n": 7}), "values.n"),
        (
            json!({"db": {"password": CANARY, "port": 5432}}),
            "values.db.port",
        ),
        (json!([CANARY]), "values"),
    ] {
        let path = write_bootstrap(files.path(), &addr, Some(values))?;
        let err = guarded(files.path())
            .bootstrap_path(&path)
            .build()
            .err()
            .ok_or("built")?;
        assert_eq!(err.code(), "BOOTSTRAP_INVALID");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(&format!("field `{field}`")), "{shown}");
        assert!(
            !shown.contains(CANARY) && !shown.contains(TOKEN_CANARY),
            "{shown}"
        );
    }
    Ok(())
}

/// A team's own provider for the scheme replaces the built-in one, and is cached as any.
#[tokio::test]
async fn a_provider_of_ones_own_replaces_the_bootstrap_values() -> TestResult {
    #[derive(Debug)]
    struct Own;
    impl SecretProvider for Own {
        fn name(&self) -> &'static str {
            "own"
        }
        fn read<'a>(&'a self, _uri: &'a SecretUri) -> ReadFuture<'a> {
            Box::pin(async { Ok::<_, ProviderError>(SecretValue::from_text("own")) })
        }
    }
    let files = demo_files()?;
    let path = write_bootstrap(files.path(), &dead_addr()?, Some(values()))?;
    let client = guarded(files.path())
        .bootstrap_path(&path)
        .provider(Provider::Bootstrap, Arc::new(Own))
        .build()?;
    assert_eq!(
        text(&client.resolve("bootstrap://kafka_password").await?),
        "own"
    );
    assert_eq!(client.cache_len(), 1);
    Ok(())
}

/// Set in the child process that runs [`canary_child`].
const CHILD: &str = "SECRETS_SDK_TEST_BOOTSTRAP_VALUES_CHILD";

/// The canary is in no error, no `Debug` of the client, its builder or a returned secret,
/// and no log line or span at TRACE, from every thread (build, resolves, failures, the
/// client's runtime). [`canary_child`] runs alone in a child process, so its global
/// subscriber sees everything and no other test's.
#[test]
fn the_values_reach_no_error_debug_or_log() -> TestResult {
    let module = module_path!();
    let inner = module.split_once("::").map_or("", |(_, rest)| rest);
    let name = if inner.is_empty() {
        "canary_child".to_owned()
    } else {
        format!("{inner}::canary_child")
    };
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    Ok(())
}

/// The canary scenario of [`the_values_reach_no_error_debug_or_log`]; a no-op unless run as
/// its child.
#[test]
fn canary_child() -> TestResult {
    if std::env::var_os(CHILD).is_none() {
        return Ok(());
    }
    let files = demo_files()?;
    let path = write_bootstrap(files.path(), &dead_addr()?, Some(values()))?;
    let logs = LogCapture::install_global()?;
    let mut shown = String::new();
    let builder = guarded(files.path()).bootstrap_path(&path);
    shown.push_str(&format!("{builder:?}\n"));
    let client = builder.build()?;
    shown.push_str(&format!("{client:?}\n"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for uri in [
            "bootstrap://kafka_password",
            "bootstrap://db",
            "bootstrap://db#password",
            "bootstrap://db#missing",
            "bootstrap://kafka_password#x",
            "bootstrap://db/absent",
            "bootstrap://nope/x",
            "bootstrap://db?version=2",
        ] {
            match client.resolve(uri).await {
                Ok(secret) => shown.push_str(&format!("{secret:?} {:?}\n", secret.uri())),
                Err(e) => shown.push_str(&format!("{e} {e:?}\n")),
            }
        }
        if let Ok(changes) = client.watch("bootstrap://db#password").await {
            shown.push_str(&format!("{changes:?}\n"));
        }
    });
    let blocking = client.resolve_blocking("bootstrap://kafka_password")?;
    shown.push_str(&format!("{blocking:?}\n"));
    client.close();
    drop(runtime);
    let logged = logs.text();
    assert!(
        logged.contains("secret_resolve"),
        "no span was captured: {logged}"
    );
    assert!(logged.contains("bootstrap loaded"), "{logged}");
    for canary in [CANARY, TOKEN_CANARY, "signing-key"] {
        assert!(!shown.contains(canary), "{canary} in {shown}");
        assert!(!logged.contains(canary), "{canary} in {logged}");
    }
    Ok(())
}
