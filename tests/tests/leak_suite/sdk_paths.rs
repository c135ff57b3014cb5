//! `SecretsClient`: every entry point (`resolve`, `resolve_with(refresh)`, `resolve_blocking`,
//! `resolve_file_sync`, `resolve_many`) over every planted file and KV v2 secret, cold and
//! warm, every URI error class, and the clients whose vault misbehaves: bad, limited and
//! AppRole credentials, a server down, one that accepts and never answers, one that echoes
//! the canaries back in its error bodies, stale-if-error, the resolve deadline, evictions, and
//! configuration values holding the canary token.

use std::sync::Arc;
use std::time::Duration;

use secrets_sdk::audit::{AuditSink, MemorySink};
use secrets_sdk::providers::RetryConfig;
use secrets_sdk::uri::AllowedMounts;
use secrets_sdk::{BootstrapConfig, ResolveOptions, SecretsClient, SecretsClientBuilder};
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;
use tokio::runtime::Runtime;

use super::fixtures::{FILE_MAX_BYTES, Fixtures, file, kv_path, limited_token};
use super::paths::{bad_uris, echo_body, vault_faults};
use super::run::{Expect, Run};
use crate::common::kv2::lookup_never_expires;
use crate::common::leak::{FILE, SALT, SECRET_ID, SEGMENT, TOKEN, VALUE};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The suite's settings: mounts `demo`, `secret`, `linkmount`, `nomount`; the file cap; one
/// attempt of 2 s; keyed with the canary salt.
fn builder(fx: &Fixtures) -> SecretsClientBuilder {
    SecretsClient::builder()
        .file_root(fx.root())
        .allowed_mounts(AllowedMounts::from_csv("demo,secret,linkmount,nomount"))
        .file_max_bytes(FILE_MAX_BYTES)
        .vault_retry(RetryConfig::attempts(1))
        .vault_timeout(Duration::from_secs(2))
        .tenant_salt(SALT)
        .tenant_id("t1")
}

/// How `resolve_file_sync` answers a URI.
#[derive(Clone, Copy)]
enum Sync {
    /// As the async entry points (a `file://` URI, or one that does not parse).
    Same,
    /// `UNSUPPORTED_PROVIDER` (a vault URI).
    Unsupported,
}

fn kv(rest: &str) -> String {
    format!("openbao+kv2://secret/{}{rest}", kv_path(""))
}

/// (name, URI, outcome, resolve_file_sync) for the main client.
fn scenarios() -> Vec<(String, String, Expect, Sync)> {
    let f = |suffix: &str, rest: &str| Fixtures::file_uri(suffix, rest);
    let mut list: Vec<(String, String, Expect, Sync)> = vec![
        (
            "file field".into(),
            f(file::JSON, "#password"),
            Expect::Value,
            Sync::Same,
        ),
        (
            "file whole json".into(),
            f(file::JSON, ""),
            Expect::Whole,
            Sync::Same,
        ),
        (
            "file text, other spelling".into(),
            format!("FILE://demo/{SEGMENT}/{FILE}{}", file::TEXT),
            Expect::Value,
            Sync::Same,
        ),
        (
            "file symlink inside the mount".into(),
            f(file::INNER_LINK, ""),
            Expect::Value,
            Sync::Same,
        ),
        (
            "file missing key".into(),
            f(file::JSON, "#missing"),
            Expect::Code("KEY_NOT_FOUND"),
            Sync::Same,
        ),
        (
            "file key of text".into(),
            f(file::TEXT, "#password"),
            Expect::Code("NOT_JSON"),
            Sync::Same,
        ),
        (
            "file missing".into(),
            f("-absent", ""),
            Expect::Code("NOT_FOUND"),
            Sync::Same,
        ),
        (
            "file directory".into(),
            f(file::DIR, ""),
            Expect::OneOf(&["INVALID_PATH", "NOT_A_FILE"]),
            Sync::Same,
        ),
        (
            "file fifo".into(),
            f(file::FIFO, ""),
            Expect::Code("NOT_A_FILE"),
            Sync::Same,
        ),
        (
            "file socket".into(),
            f(file::SOCKET, ""),
            Expect::Code("NOT_A_FILE"),
            Sync::Same,
        ),
        (
            "file too large".into(),
            f(file::BIG, ""),
            Expect::Code("TOO_LARGE"),
            Sync::Same,
        ),
        (
            "file symlink escape".into(),
            f(file::ESCAPE, ""),
            Expect::Code("PERMISSION_DENIED"),
            Sync::Same,
        ),
        (
            "file absolute symlink escape".into(),
            f(file::ESCAPE_ABS, ""),
            Expect::Code("PERMISSION_DENIED"),
            Sync::Same,
        ),
        (
            "file symlink to /dev/null".into(),
            f(file::DEVNULL, ""),
            Expect::OneOf(&["PERMISSION_DENIED", "NOT_A_FILE"]),
            Sync::Same,
        ),
        (
            "file mount escape (symlinked mount)".into(),
            format!("file://linkmount/{SEGMENT}/{FILE}"),
            Expect::Code("PERMISSION_DENIED"),
            Sync::Same,
        ),
        (
            "file malformed json".into(),
            f(file::BAD_JSON, "#password"),
            Expect::Code("NOT_JSON"),
            Sync::Same,
        ),
        (
            "file not utf-8".into(),
            f(file::BINARY, ""),
            Expect::Code("MALFORMED_RESPONSE"),
            Sync::Same,
        ),
        (
            "file query".into(),
            f(file::JSON, "?version=1"),
            Expect::Code("UNKNOWN_PARAMETER"),
            Sync::Same,
        ),
        (
            "kv2 field".into(),
            kv("#token"),
            Expect::Value,
            Sync::Unsupported,
        ),
        ("kv2 whole".into(), kv(""), Expect::Whole, Sync::Unsupported),
        (
            "kv2 hashicorp alias".into(),
            format!("hashicorp+kv2://secret/{}#token", kv_path("")),
            Expect::Value,
            Sync::Unsupported,
        ),
        (
            "kv2 openbao alias".into(),
            format!("openbao://secret/{}#token", kv_path("")),
            Expect::Value,
            Sync::Unsupported,
        ),
        (
            "kv2 missing key".into(),
            kv("#missing"),
            Expect::Code("KEY_NOT_FOUND"),
            Sync::Unsupported,
        ),
        (
            "kv2 version destroyed".into(),
            kv("#token?version=1"),
            Expect::Code("VERSION_DESTROYED"),
            Sync::Unsupported,
        ),
        (
            "kv2 version deleted".into(),
            kv("#token?version=2"),
            Expect::Code("VERSION_DELETED"),
            Sync::Unsupported,
        ),
        (
            "kv2 version pinned".into(),
            kv("#token?version=3"),
            Expect::Value,
            Sync::Unsupported,
        ),
        (
            "kv2 version absent".into(),
            kv("#token?version=99"),
            Expect::Code("NOT_FOUND"),
            Sync::Unsupported,
        ),
        (
            "kv2 404".into(),
            format!("openbao+kv2://secret/{SEGMENT}/{FILE}-absent#token"),
            Expect::Code("NOT_FOUND"),
            Sync::Unsupported,
        ),
        (
            "kv2 unknown mount".into(),
            format!("openbao+kv2://nomount/{SEGMENT}/{FILE}#token"),
            Expect::OneOf(&["NOT_FOUND", "PERMISSION_DENIED"]),
            Sync::Unsupported,
        ),
        (
            "kv2 unknown parameter".into(),
            kv("#token?n=1"),
            Expect::Code("UNKNOWN_PARAMETER"),
            Sync::Unsupported,
        ),
        (
            "tenant mount mismatch".into(),
            format!("file://other/{SEGMENT}/{FILE}"),
            Expect::Code("TENANT_MOUNT_MISMATCH"),
            Sync::Same,
        ),
    ];
    for (uri, code) in bad_uris("file", "demo") {
        list.push((
            format!("bad uri {code}"),
            uri,
            Expect::Code(code),
            Sync::Same,
        ));
    }
    list.push((
        "db unsupported".to_owned(),
        format!("db://demo/{SEGMENT}/{FILE}"),
        Expect::Code("UNSUPPORTED_PROVIDER"),
        Sync::Same,
    ));
    // The main client's bootstrap is given in code: it has no `values` section.
    list.push((
        "bootstrap not configured".to_owned(),
        format!("bootstrap://demo/{SEGMENT}/{FILE}"),
        Expect::Code("NOT_CONFIGURED"),
        Sync::Unsupported,
    ));
    // `yaml://` reads files under the same root: a missing one names nothing.
    list.push((
        "yaml missing".to_owned(),
        format!("yaml://demo/{SEGMENT}/{FILE}#a.b"),
        Expect::Code("NOT_FOUND"),
        Sync::Unsupported,
    ));
    // A database URI names one role: a deeper path is refused before any request.
    list.push((
        "db+cred not a role".to_owned(),
        format!("db+cred://demo/{SEGMENT}/{FILE}#password"),
        Expect::Code("INVALID_PATH"),
        Sync::Unsupported,
    ));
    list
}

/// One URI through the four single entry points.
fn entry_points(
    run: &mut Run,
    rt: &Runtime,
    client: &SecretsClient,
    name: &str,
    uri: &str,
    expect: Expect,
    sync: Sync,
) {
    let path = run.path(format!("sdk/resolve {name}"));
    run.secret(&path, &rt.block_on(client.resolve(uri)), expect);
    let path = run.path(format!("sdk/resolve refresh {name}"));
    run.secret(
        &path,
        &rt.block_on(client.resolve_with(uri, ResolveOptions::refresh())),
        expect,
    );
    let path = run.path(format!("sdk/resolve_blocking {name}"));
    run.secret(&path, &client.resolve_blocking(uri), expect);
    let path = run.path(format!("sdk/resolve_file_sync {name}"));
    let sync_expect = match sync {
        Sync::Same => expect,
        Sync::Unsupported => Expect::Code("UNSUPPORTED_PROVIDER"),
    };
    run.secret(&path, &client.resolve_file_sync(uri), sync_expect);
}

/// Drives every `SecretsClient` path.
pub(crate) fn drive(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    main_client(run, rt, fx)?;
    credentials(run, rt, fx)?;
    faults(run, rt, fx)?;
    cache_paths(run, rt, fx)?;
    configuration(run, rt, fx)?;
    more(run, rt, fx)?;
    Ok(())
}

fn main_client(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let sink = Arc::new(MemorySink::new());
    let client = builder(fx)
        .bootstrap(BootstrapConfig::token(fx.bao.addr(), TOKEN))
        .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
        .build()?;
    run.show("sdk/client", format!("{client:?}"));
    let list = scenarios();
    // Cold, then warm: the second pass is served from the cache where the first one cached.
    for pass in ["cold", "warm"] {
        for (name, uri, expect, sync) in &list {
            entry_points(
                run,
                rt,
                &client,
                &format!("{name} ({pass})"),
                uri,
                *expect,
                *sync,
            );
        }
    }
    let uris: Vec<&str> = list.iter().map(|(_, uri, _, _)| uri.as_str()).collect();
    let results = rt.block_on(client.resolve_many(&uris));
    for ((name, _, expect, _), result) in list.iter().zip(&results) {
        let path = run.path(format!("sdk/resolve_many {name}"));
        run.secret(&path, result, *expect);
    }
    // Coalesced: one read for many concurrent callers of one URI.
    client.clear_cache();
    let same = vec![kv("#token"); 8];
    for result in rt.block_on(client.resolve_many(&same)) {
        let path = run.path("sdk/resolve_many coalesced kv2");
        run.secret(&path, &result, Expect::Value);
    }
    run.show(
        "sdk/client after",
        format!("{client:?} {}", client.cache_len()),
    );
    client.close();
    let path = run.path("sdk/resolve closed client");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::Code("CLOSED"),
    );
    let path = run.path("sdk/resolve_blocking closed client");
    run.secret(
        &path,
        &client.resolve_blocking(kv("#token").as_str()),
        Expect::Code("CLOSED"),
    );
    run.audit("sdk/main client", &sink.events());
    Ok(())
}

/// Token, token file, AppRole: each good and bad.
fn credentials(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let addr = fx.bao.addr();
    let token_file = fx.outside.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n"))?;
    let bad_secret_id = format!("{SECRET_ID}-wrong");
    let cases = [
        (
            "bad token",
            BootstrapConfig::token(&addr, crate::common::leak::BAD_TOKEN),
            Expect::OneOf(&["AUTH_FAILED", "PERMISSION_DENIED"]),
        ),
        (
            "limited token",
            BootstrapConfig::token(&addr, limited_token()),
            Expect::Code("PERMISSION_DENIED"),
        ),
        (
            "token file",
            BootstrapConfig::token_file(&addr, &token_file),
            Expect::Value,
        ),
        (
            "missing token file",
            BootstrapConfig::token_file(&addr, fx.outside.path().join("absent-token")),
            Expect::OneOf(&["AUTH_FAILED", "CONFIG", "IO"]),
        ),
        (
            "approle",
            BootstrapConfig::approle(&addr, &fx.role_id, SECRET_ID),
            Expect::Value,
        ),
        (
            "approle wrong secret id",
            BootstrapConfig::approle(&addr, &fx.role_id, bad_secret_id.as_str()),
            Expect::Code("AUTH_FAILED"),
        ),
        (
            "approle unknown role",
            BootstrapConfig::approle(&addr, "lk-no-such-role", SECRET_ID),
            Expect::Code("AUTH_FAILED"),
        ),
    ];
    for (name, bootstrap, expect) in cases {
        run.show(&format!("sdk/bootstrap {name}"), format!("{bootstrap:?}"));
        let client = builder(fx).bootstrap(bootstrap).build()?;
        run.show(&format!("sdk/client {name}"), format!("{client:?}"));
        let path = run.path(format!("sdk/resolve {name}"));
        run.secret(
            &path,
            &rt.block_on(client.resolve(kv("#token").as_str())),
            expect,
        );
        let path = run.path(format!("sdk/resolve_blocking {name} again"));
        run.secret(
            &path,
            &client.resolve_blocking(kv("#token?version=3").as_str()),
            expect,
        );
        client.close();
    }
    // Bootstrap values: a canary in the file's `values`, read before any vault.
    let values_file = fx.outside.path().join("bootstrap-values.json");
    std::fs::write(
        &values_file,
        json!({
            "vault_addr": addr,
            "token": TOKEN,
            "values": {format!("demo/{SEGMENT}/{FILE}"): {"key": VALUE}},
        })
        .to_string(),
    )?;
    let client = builder(fx).bootstrap_path(&values_file).build()?;
    run.show("sdk/client bootstrap values", format!("{client:?}"));
    let values = [
        ("value", "#key", Expect::Value),
        ("missing key", "#nokey", Expect::Code("KEY_NOT_FOUND")),
        ("missing name", "-absent", Expect::Code("NOT_FOUND")),
    ];
    for (name, rest, expect) in values {
        let uri = format!("bootstrap://demo/{SEGMENT}/{FILE}{rest}");
        let path = run.path(format!("sdk/resolve bootstrap {name}"));
        run.secret(&path, &rt.block_on(client.resolve(uri.as_str())), expect);
        let path = run.path(format!("sdk/resolve_blocking bootstrap {name}"));
        run.secret(&path, &client.resolve_blocking(uri.as_str()), expect);
    }
    client.close();
    // No vault configured.
    let client = builder(fx).build()?;
    let path = run.path("sdk/resolve no vault configured");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::Code("NOT_CONFIGURED"),
    );
    Ok(())
}

/// A vault that is down, hangs, or answers with faults whose bodies echo the canaries.
fn faults(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let down = format!("http://127.0.0.1:{}", secrets_test_support::free_port()?);
    let client = builder(fx)
        .bootstrap(BootstrapConfig::token(&down, TOKEN))
        .build()?;
    let path = run.path("sdk/resolve vault down");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::Code("UNAVAILABLE"),
    );
    for (name, script, expect) in vault_faults() {
        let server = FaultServer::start(script)?;
        let client = builder(fx)
            .bootstrap(BootstrapConfig::token(server.addr(), TOKEN))
            .vault_timeout(Duration::from_millis(300))
            .build()?;
        let path = run.path(format!("sdk/resolve vault {name}"));
        run.secret(
            &path,
            &rt.block_on(client.resolve(kv("#token").as_str())),
            expect,
        );
        let path = run.path(format!("sdk/resolve_blocking vault {name}"));
        run.secret(&path, &client.resolve_blocking(kv("").as_str()), expect);
        client.close();
    }
    // The real vault behind a proxy that loses the read's responses: the request reaches the
    // vault, the client never hears back.
    let proxy = secrets_test_support::proxy::CountingProxy::start(&fx.bao.addr())?;
    proxy.drop_responses(&format!("/v1/secret/data/{}", kv_path("")), 100);
    let client = builder(fx)
        .bootstrap(BootstrapConfig::token(proxy.addr(), TOKEN))
        .vault_timeout(Duration::from_millis(300))
        .build()?;
    let path = run.path("sdk/resolve vault answer lost on the way back");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::OneOf(&["TIMEOUT", "UNAVAILABLE"]),
    );
    if proxy.dropped_responses() == 0 {
        run.mismatch(&path, "the proxy lost no response");
    }
    client.close();
    // The resolve deadline ends a read that would otherwise wait much longer.
    let server = FaultServer::start(vec![lookup_never_expires(), Fault::Hang])?;
    let client = builder(fx)
        .bootstrap(BootstrapConfig::token(server.addr(), TOKEN))
        .vault_timeout(Duration::from_secs(30))
        .resolve_deadline(Duration::from_millis(400))
        .build()?;
    let path = run.path("sdk/resolve deadline");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::Code("TIMEOUT"),
    );
    client.close();
    Ok(())
}

/// Stale-if-error, evictions.
fn cache_paths(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        crate::common::kv2::kv_reply(json!({"token": VALUE})),
        Fault::json(503, &echo_body()),
    ])?;
    let client = builder(fx)
        .bootstrap(BootstrapConfig::token(server.addr(), TOKEN))
        .cache_ttl(Duration::from_millis(100))
        .stale_if_error(Duration::from_secs(60))
        .build()?;
    let path = run.path("sdk/resolve stale-if-error fresh");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::Value,
    );
    std::thread::sleep(Duration::from_millis(250));
    let path = run.path("sdk/resolve stale-if-error stale");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::Value,
    );
    let path = run.path("sdk/resolve stale-if-error stale again");
    run.secret(
        &path,
        &client.resolve_blocking(kv("#token").as_str()),
        Expect::Value,
    );
    client.close();

    let client = builder(fx)
        .bootstrap(BootstrapConfig::token(fx.bao.addr(), TOKEN))
        .cache_capacity(2)
        .cache_ttl(Duration::from_millis(50))
        .build()?;
    for round in 0..3 {
        for uri in [
            Fixtures::file_uri(file::JSON, "#password"),
            Fixtures::file_uri(file::TEXT, ""),
            kv("#token"),
            kv("#token?version=3"),
        ] {
            let path = run.path(format!("sdk/resolve evicting cache round {round}"));
            run.secret(
                &path,
                &rt.block_on(client.resolve(uri.as_str())),
                Expect::Value,
            );
        }
        std::thread::sleep(Duration::from_millis(80));
    }
    client.close();
    Ok(())
}

/// Bootstrap files and environments, good and bad, with the canary token in the values.
fn configuration(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let addr = fx.bao.addr();
    // A bootstrap file that works.
    let good = fx.outside.path().join("bootstrap.json");
    std::fs::write(
        &good,
        json!({"vault_addr": addr, "auth_method": "token", "token": TOKEN}).to_string(),
    )?;
    let client = builder(fx).bootstrap_path(&good).build()?;
    let path = run.path("sdk/resolve bootstrap file");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::Value,
    );
    client.close();
    let bootstraps: [(&str, String, &'static [&'static str]); 7] = [
        (
            "malformed",
            format!("{{\"vault_addr\": \"{addr}\", \"token\": \"{TOKEN}"),
            &["BOOTSTRAP_PARSE"],
        ),
        (
            "token of the wrong type",
            json!({"vault_addr": addr, "token": 12345, "approle_secret_id": [TOKEN]}).to_string(),
            &["BOOTSTRAP_INVALID"],
        ),
        (
            "auth method is the token",
            json!({"vault_addr": addr, "auth_method": TOKEN}).to_string(),
            &["BOOTSTRAP_INVALID"],
        ),
        (
            "address is the token",
            json!({"vault_addr": TOKEN, "token": TOKEN}).to_string(),
            &["BOOTSTRAP_INVALID", "CONFIG"],
        ),
        (
            "address with the token as password",
            json!({"vault_addr": format!("http://user:{TOKEN}@127.0.0.1:1"), "token": TOKEN})
                .to_string(),
            &["BOOTSTRAP_INVALID", "CONFIG", "UNAVAILABLE"],
        ),
        (
            "namespace of the wrong type",
            json!({"vault_addr": addr, "token": TOKEN, "namespace": 7}).to_string(),
            &["BOOTSTRAP_INVALID"],
        ),
        (
            "skip_verify is the token",
            json!({"vault_addr": addr, "token": TOKEN, "skip_verify": TOKEN}).to_string(),
            &["BOOTSTRAP_INVALID"],
        ),
    ];
    for (name, text, codes) in bootstraps {
        let path = run.path(format!("sdk/bootstrap from_json {name}"));
        match BootstrapConfig::from_json(&text, "lk-bootstrap.json") {
            Ok(config) => {
                run.show(&path, format!("{config:?}"));
                let client = builder(fx).bootstrap(config).build();
                client_outcome(run, rt, &path, client, Expect::OneOf(codes));
            }
            Err(e) => run.error(&path, e.code(), &e, Expect::OneOf(codes)),
        }
        let file = fx.outside.path().join("bad-bootstrap.json");
        std::fs::write(&file, &text)?;
        let path = run.path(format!("sdk/bootstrap file {name}"));
        let client = builder(fx).bootstrap_path(&file).build();
        client_outcome(run, rt, &path, client, Expect::OneOf(codes));
    }
    // The environment level.
    let base = |extra: &[(&'static str, String)]| {
        let mut vars: Vec<(&'static str, String)> = vec![
            ("OPENBAO_URL", addr.clone()),
            ("OPENBAO_TOKEN", TOKEN.to_owned()),
            ("OPENBAO_RETRY_ATTEMPTS", "1".to_owned()),
        ];
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push((k, v.clone()));
        }
        vars
    };
    let client = SecretsClient::builder()
        .env_lookup(crate::common::vault::env(&base(&[
            ("FILE_MOUNT_PATH", fx.root().display().to_string()),
            ("SECRETS_ALLOWED_MOUNTS", "demo,secret".to_owned()),
            ("SECRET_TENANT_SALT", SALT.to_owned()),
        ])))
        .build()?;
    run.show("sdk/client from env", format!("{client:?}"));
    let path = run.path("sdk/resolve from env");
    run.secret(
        &path,
        &rt.block_on(client.resolve(kv("#token").as_str())),
        Expect::Value,
    );
    let path = run.path("sdk/resolve from env file");
    run.secret(
        &path,
        &rt.block_on(client.resolve(Fixtures::file_uri(file::JSON, "#password").as_str())),
        Expect::Value,
    );
    client.close();
    let bad: [(&str, String, &'static [&'static str]); 11] = [
        ("OPENBAO_TIMEOUT", TOKEN.to_owned(), &["CONFIG"]),
        ("OPENBAO_RETRY_ATTEMPTS", TOKEN.to_owned(), &["CONFIG"]),
        (
            "OPENBAO_URL",
            TOKEN.to_owned(),
            &["CONFIG", "BOOTSTRAP_INVALID"],
        ),
        (
            "OPENBAO_URL",
            format!("http://user:{TOKEN}@127.0.0.1:1"),
            &["CONFIG", "BOOTSTRAP_INVALID", "UNAVAILABLE"],
        ),
        (
            "OPENBAO_AUTH_METHOD",
            TOKEN.to_owned(),
            &["CONFIG", "BOOTSTRAP_INVALID"],
        ),
        ("OPENBAO_MAX_BODY_BYTES", TOKEN.to_owned(), &["CONFIG"]),
        ("FILE_MAX_BYTES", TOKEN.to_owned(), &["CONFIG"]),
        ("SECRETS_RESOLVE_DEADLINE_S", TOKEN.to_owned(), &["CONFIG"]),
        (
            "SECRET_TENANT_SALT",
            "LKSALT-2c8e5b".to_owned(),
            &["CONFIG"],
        ),
        ("SECRETS_ALLOWED_MOUNTS", " , ".to_owned(), &["CONFIG"]),
        (
            "OPENBAO_SKIP_VERIFY",
            TOKEN.to_owned(),
            &["CONFIG", "BOOTSTRAP_INVALID"],
        ),
    ];
    for (name, value, codes) in bad {
        let path = run.path(format!("sdk/env {name} holds a canary"));
        let vars = base(&[
            (name, value),
            ("SECRETS_ALLOWED_MOUNTS", "demo,secret".to_owned()),
        ]);
        let vars = if name == "SECRETS_ALLOWED_MOUNTS" {
            base(&[("SECRETS_ALLOWED_MOUNTS", " , ".to_owned())])
        } else {
            vars
        };
        let client = SecretsClient::builder()
            .env_lookup(crate::common::vault::env(&vars))
            .build();
        client_outcome(run, rt, &path, client, Expect::OneOf(codes));
    }
    // Builder values.
    for (name, client, codes) in [
        (
            "short salt",
            builder(fx).tenant_salt("LKSALT-2c8e5b").build(),
            &["CONFIG"] as &'static [&'static str],
        ),
        (
            "zero deadline",
            builder(fx).resolve_deadline(Duration::ZERO).build(),
            &["CONFIG"],
        ),
        (
            "zero capacity",
            builder(fx).cache_capacity(0).build(),
            &["CONFIG"],
        ),
        (
            "sink without tenant",
            SecretsClient::builder()
                .file_root(fx.root())
                .allow_any_mount()
                .tenant_salt(SALT)
                .audit(Arc::new(MemorySink::new()))
                .build(),
            &["CONFIG"],
        ),
    ] {
        let path = run.path(format!("sdk/builder {name}"));
        client_outcome(run, rt, &path, client, Expect::OneOf(codes));
    }
    Ok(())
}

/// A client that failed to build (the error is the outcome), or one whose first vault read
/// is.
fn client_outcome(
    run: &mut Run,
    rt: &Runtime,
    path: &str,
    client: std::result::Result<SecretsClient, secrets_sdk::Error>,
    expect: Expect,
) {
    match client {
        Err(e) => run.error(path, e.code(), &e, expect),
        Ok(client) => {
            run.show(path, format!("{client:?}"));
            run.secret(
                path,
                &rt.block_on(client.resolve(kv("#token").as_str())),
                expect,
            );
            client.close();
        }
    }
}

/// No tenant salt (spans carry the unkeyed `uri_hash`), blocking calls from inside a runtime,
/// Kubernetes login with a canary service-account token, and the vault behind TLS with and
/// without its CA.
fn more(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let unsalted = SecretsClient::builder()
        .file_root(fx.root())
        .allowed_mounts(AllowedMounts::from_csv("demo,secret"))
        .file_max_bytes(FILE_MAX_BYTES)
        .bootstrap(BootstrapConfig::token(fx.bao.addr(), TOKEN))
        .vault_retry(RetryConfig::attempts(1))
        .build()?;
    for (name, uri, expect) in [
        (
            "file field",
            Fixtures::file_uri(file::JSON, "#password"),
            Expect::Value,
        ),
        (
            "file missing",
            Fixtures::file_uri("-absent", ""),
            Expect::Code("NOT_FOUND"),
        ),
        ("kv2 field", kv("#token"), Expect::Value),
        (
            "kv2 destroyed",
            kv("#token?version=1"),
            Expect::Code("VERSION_DESTROYED"),
        ),
    ] {
        for round in 0..2 {
            let path = run.path(format!("sdk/resolve unsalted {name} {round}"));
            run.secret(&path, &rt.block_on(unsalted.resolve(uri.as_str())), expect);
        }
        // Blocking entry points called from inside a runtime.
        let path = run.path(format!("sdk/resolve_blocking inside a runtime {name}"));
        let result = rt.block_on(async { unsalted.resolve_blocking(uri.as_str()) });
        run.secret(&path, &result, expect);
    }
    unsalted.close();

    let jwt = fx.outside.path().join("service-account-token");
    std::fs::write(&jwt, format!("{TOKEN}.{TOKEN}.{TOKEN}\n"))?;
    for (name, path) in [
        ("kubernetes", jwt.clone()),
        (
            "kubernetes without a token file",
            fx.outside.path().join("absent-jwt"),
        ),
    ] {
        let auth = secrets_sdk::providers::Kv2Auth::kubernetes("lk-role").with_jwt_path(path);
        let config = secrets_sdk::providers::Kv2Config::new(
            secrets_sdk::providers::Kv2Flavor::OpenBao,
            fx.bao.addr(),
            auth,
        );
        run.show(&format!("sdk/{name} config"), format!("{config:?}"));
        let client = builder(fx).bootstrap(config).build()?;
        let at = run.path(format!("sdk/resolve {name}"));
        run.secret(
            &at,
            &rt.block_on(client.resolve(kv("#token").as_str())),
            Expect::Code("AUTH_FAILED"),
        );
        client.close();
    }

    let ca = fx.tls.ca_cert_path().ok_or("the TLS vault has no CA")?;
    // Not a certificate: a file holding the value (its content must not be quoted).
    let not_pem = fx.outside.path().join("not-a-ca.pem");
    std::fs::write(
        &not_pem,
        format!("-----BEGIN CERTIFICATE-----\n{VALUE}\n-----END CERTIFICATE-----\n"),
    )?;
    for (name, config, expect) in [
        (
            "tls with its CA",
            BootstrapConfig::token(fx.tls.addr(), TOKEN).with_ca_bundle(&ca),
            Expect::Value,
        ),
        (
            "tls without its CA",
            BootstrapConfig::token(fx.tls.addr(), TOKEN),
            Expect::Code("TLS"),
        ),
        (
            "tls with a CA that is not PEM",
            BootstrapConfig::token(fx.tls.addr(), TOKEN).with_ca_bundle(&not_pem),
            Expect::OneOf(&["CONFIG", "TLS"]),
        ),
    ] {
        let at = run.path(format!("sdk/resolve {name}"));
        match builder(fx).bootstrap(config).build() {
            Ok(client) => {
                run.secret(
                    &at,
                    &rt.block_on(client.resolve(kv("#token").as_str())),
                    expect,
                );
                client.close();
            }
            Err(e) => run.error(&at, e.code(), &e, expect),
        }
    }
    Ok(())
}
