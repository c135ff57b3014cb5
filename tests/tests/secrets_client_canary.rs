//! Canary: planted values (file and vault secrets, the vault token, an AppRole secret ID) never
//! appear in `Display`/`Debug` of anything the client returns, in TRACE logs and spans, or on
//! stderr; neither does the secret path (logs carry the mount and an 8-hex URI hash).
//!
//! Its own test binary: it installs a global tracing subscriber.

mod common;

use std::path::Path;

use common::sdk::{TestResult, builder, demo_files};
use secrets_sdk::{BootstrapConfig, ResolveOptions, SecretsClient, UriHash};
use secrets_test_support::LogCapture as Buffer;
use serde_json::json;

const FILE_CANARY: &str = "CANARY-file-7d1e";
const VAULT_CANARY: &str = "CANARY-vault-93b2";
const SECRET_ID_CANARY: &str = "CANARY-secret-id-41c0";
const PATH_CANARY: &str = "canary-path";
const CHILD: &str = "SECRETS_SDK_TEST_CANARY_CHILD";

fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
}

fn plant_files(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join(format!("demo/{PATH_CANARY}")))?;
    std::fs::write(
        root.join(format!("demo/{PATH_CANARY}/creds.json")),
        json!({"password": FILE_CANARY}).to_string(),
    )?;
    std::fs::write(root.join(format!("demo/{PATH_CANARY}/plain")), FILE_CANARY)
}

/// Runs every entry point over the canaries, successes and failures alike, and returns
/// everything they displayed.
async fn scenario(root: &Path, addr: &str, token: &str) -> Result<String, secrets_sdk::Error> {
    let client = builder(root)
        .bootstrap(BootstrapConfig::token(addr, token))
        .build()?;
    let mut shown = format!("{client:?}\n");
    let uris = [
        format!("file://demo/{PATH_CANARY}/creds.json#password"),
        format!("file://demo/{PATH_CANARY}/creds.json"),
        format!("FILE://demo/{PATH_CANARY}/plain"),
        format!("openbao+kv2://secret/{PATH_CANARY}/app#token"),
        format!("openbao+kv2://secret/{PATH_CANARY}/app"),
        format!("file://demo/{PATH_CANARY}/creds.json#missing"),
        format!("file://demo/{PATH_CANARY}/plain#key"),
        format!("openbao+kv2://secret/{PATH_CANARY}/absent"),
        format!("openbao+kv2://secret/{PATH_CANARY}/app#token?version=99"),
        format!("file://nope/{PATH_CANARY}"),
        format!("file://demo/{PATH_CANARY}/*"),
    ];
    for _ in 0..2 {
        for uri in &uris {
            let results = [
                client.resolve(uri).await,
                client.resolve_with(uri, ResolveOptions::refresh()).await,
                client.resolve_blocking(uri),
                client.resolve_file_sync(uri),
            ];
            for result in results {
                match result {
                    Ok(secret) => shown.push_str(&format!(
                        "{secret} {secret:?} {:?} {}\n",
                        secret.value(),
                        secret.value()
                    )),
                    Err(e) => shown.push_str(&format!("{e} {e:?} {}\n", e.code())),
                }
            }
        }
    }
    for result in client.resolve_many(&uris).await {
        shown.push_str(&format!("{result:?}\n"));
    }
    // A bad token: the server refuses it.
    let refused = builder(root)
        .bootstrap(BootstrapConfig::token(addr, VAULT_CANARY))
        .build()?;
    if let Err(e) = refused.resolve(&uris[3]).await {
        shown.push_str(&format!("{e} {e:?}\n"));
    }
    // AppRole with a canary secret ID: a failed login.
    let approle = builder(root)
        .bootstrap(BootstrapConfig::approle(addr, "role", SECRET_ID_CANARY))
        .build()?;
    shown.push_str(&format!("{approle:?}\n"));
    if let Err(e) = approle.resolve(&uris[3]).await {
        shown.push_str(&format!("{e} {e:?}\n"));
    }
    let bootstrap = BootstrapConfig::approle(addr, "role", SECRET_ID_CANARY);
    shown.push_str(&format!("{bootstrap:?}\n"));
    client.close();
    Ok(shown)
}

fn assert_clean(what: &str, text: &str, token: &str) {
    for canary in [FILE_CANARY, VAULT_CANARY, SECRET_ID_CANARY, token] {
        assert!(
            !text.contains(canary),
            "{what} contains a planted value:\n{text}"
        );
    }
    assert!(
        !text.contains(&format!("{PATH_CANARY}/")),
        "{what} contains a secret path:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_never_reach_logs_spans_or_messages() -> TestResult {
    if std::env::var_os(CHILD).is_some() {
        return Ok(());
    }
    let logs = Buffer::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(subscriber(move || writer.clone()))?;

    let files = demo_files()?;
    plant_files(files.path())?;
    let Some(bao) = common::sdk::bao()? else {
        return Ok(());
    };
    bao.kv_put(
        "secret",
        &format!("{PATH_CANARY}/app"),
        &json!({"token": VAULT_CANARY}),
    )?;
    let shown = scenario(files.path(), &bao.addr(), bao.root_token()).await?;
    let logs = logs.text();

    assert_clean("displayed output", &shown, bao.root_token());
    assert_clean("TRACE logs", &logs, bao.root_token());
    // The logs did capture the resolves: spans with provider, mount, cache state and hash.
    let uri: secrets_sdk::uri::SecretUri =
        format!("openbao+kv2://secret/{PATH_CANARY}/app#token").parse()?;
    let hash = UriHash::of(&uri).to_string();
    for expected in [
        "secret_resolve",
        "provider=\"openbao\"",
        "provider=\"file\"",
        "mount=\"secret\"",
        "cache=\"hit\"",
        "cache=\"miss\"",
        "cache=\"refresh\"",
        "code=\"NOT_FOUND\"",
        &format!("uri_hash={hash}"),
    ] {
        assert!(
            logs.contains(expected),
            "no `{expected}` in the logs:\n{logs}"
        );
    }
    assert!(shown.contains("[REDACTED]"));
    Ok(())
}

/// The same scenario in a child process logging at TRACE to stderr; stderr and stdout must
/// hold no planted value.
#[test]
fn values_never_reach_stderr() -> TestResult {
    if std::env::var_os(CHILD).is_some() {
        return Ok(());
    }
    let files = demo_files()?;
    plant_files(files.path())?;
    let Some(bao) = common::sdk::bao()? else {
        return Ok(());
    };
    bao.kv_put(
        "secret",
        &format!("{PATH_CANARY}/app"),
        &json!({"token": VAULT_CANARY}),
    )?;
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", "stderr_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("CANARY_ROOT", files.path())
        .env("CANARY_ADDR", bao.addr())
        .env("CANARY_TOKEN", bao.root_token())
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("secret_resolve"),
        "no logs on stderr:\n{stderr}"
    );
    assert!(stderr.contains("[REDACTED]"), "{stderr}");
    assert_clean("stderr", &stderr, bao.root_token());
    assert_clean("stdout", &stdout, bao.root_token());
    Ok(())
}

#[test]
fn stderr_child() -> TestResult {
    if std::env::var_os(CHILD).is_none() {
        return Ok(());
    }
    tracing::subscriber::set_global_default(subscriber(std::io::stderr))?;
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let shown = runtime.block_on(scenario(
        Path::new(&var("CANARY_ROOT")),
        &var("CANARY_ADDR"),
        &var("CANARY_TOKEN"),
    ))?;
    eprintln!("{shown}");
    // An error returned from a test is printed with Debug: make one.
    let client: SecretsClient = builder(Path::new(&var("CANARY_ROOT")))
        .bootstrap(BootstrapConfig::token(
            var("CANARY_ADDR"),
            var("CANARY_TOKEN"),
        ))
        .build()?;
    let secret = client.resolve_blocking(format!("file://demo/{PATH_CANARY}/plain").as_str())?;
    eprintln!("{secret:?} {secret}");
    Ok(())
}
