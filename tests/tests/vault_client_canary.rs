//! Canary: planted values (a vault secret, the vault token, the tenant salt, `jti`s and
//! sender-binding thumbprints) never appear in `Display`/`Debug` of anything the
//! `VaultClient` returns, in TRACE logs and spans, or in the audit sink's events; neither does
//! the secret path (logs and events carry the mount and a keyed `resource_ref`).
//!
//! Its own test binary: it installs a global tracing subscriber.

mod common;

use std::sync::Arc;

use common::vault::{Recording, TENANT, TestResult, authzen, env, reader, servers};
use secrets_sdk::pep::PepConfig;
use secrets_sdk::uri::SecretUri;
use secrets_sdk::{ExecutionContext, VaultClient};
use secrets_test_support::LogCapture as Buffer;
use serde_json::json;

const VALUE_CANARY: &str = "CANARY-value-8c1f";
const FIELD_CANARY: &str = "CANARY-field-2b7e";
const TOKEN_CANARY: &str = "CANARY-token-5f2a";
const BAD_TOKEN_CANARY: &str = "CANARY-bad-token-77d0";
const SALT_CANARY: &str = "CANARY-salt-0123456789abcdef";
const JTI_CANARY: &str = "CANARY-jti";
const JKT_CANARY: &str = "CANARY-jkt-one";
const JKT_THIEF_CANARY: &str = "CANARY-jkt-two";
const X5T_CANARY: &str = "CANARY-x5t-one";
const PATH_CANARY: &str = "canary-path";

fn ctx(n: usize) -> ExecutionContext {
    reader(format!("{JTI_CANARY}-{n}")).with_cnf_jkt(JKT_CANARY)
}

fn show<T: std::fmt::Debug + std::fmt::Display>(
    out: &mut String,
    result: Result<T, secrets_sdk::Error>,
) {
    match result {
        Ok(v) => out.push_str(&format!("{v} {v:?}\n")),
        Err(e) => out.push_str(&format!("{e} {e:?} {}\n", e.code())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_secret_reaches_messages_logs_or_audit_events() -> TestResult {
    let logs = Buffer::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )?;

    let Some(mut s) = servers()? else {
        return Ok(());
    };
    s.bao
        .create_token_with(&json!({"id": TOKEN_CANARY, "policies": ["root"]}))?;
    let secret = format!("{PATH_CANARY}/app");
    s.bao.kv_put(
        "secret",
        &secret,
        &json!({"token": VALUE_CANARY, "other": FIELD_CANARY}),
    )?;
    let vars = |token: &str| {
        vec![
            ("VAULT_URL", s.proxy.addr()),
            ("VAULT_TOKEN", token.to_owned()),
            ("VAULT_RETRY_ATTEMPTS", "1".to_owned()),
            ("TENANT_ID", TENANT.to_owned()),
            ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
            ("SECRET_TENANT_SALT", SALT_CANARY.to_owned()),
            ("AUTHZEN_PDP_URL", s.cerbos.addr()),
            ("AUTHZEN_DIALECT", "cerbos".to_owned()),
            ("GRANT_MAX_USES_DEFAULT", "100".to_owned()),
        ]
    };
    let audit = Arc::new(Recording::default());
    let client = VaultClient::builder()
        .env_lookup(env(&vars(TOKEN_CANARY)))
        .audit(Arc::clone(&audit) as Arc<dyn secrets_sdk::audit::AuditSink>)
        .build()?;
    let mut shown = format!("{client:?}\n");

    let field = format!("openbao+kv2://secret/{secret}#token");
    let whole = format!("openbao+kv2://secret/{secret}");
    let mut n = 0;
    let mut next = || {
        n += 1;
        ctx(n)
    };
    // Successes: a field, the whole secret, the blocking path.
    let value = client.get_credentials(&field, Some(&next())).await?;
    assert_eq!(
        value.expose_str(),
        Some(VALUE_CANARY),
        "the canary was read"
    );
    shown.push_str(&format!(
        "{value} {value:?} {:?} {}\n",
        value.value(),
        value.value()
    ));
    show(
        &mut shown,
        client.get_credentials(&whole, Some(&next())).await,
    );
    show(
        &mut shown,
        client.get_credentials_blocking(&field, Some(&next())),
    );
    // Failures of every kind.
    let replayed = next();
    show(
        &mut shown,
        client.get_credentials(&field, Some(&replayed)).await,
    );
    show(
        &mut shown,
        client.get_credentials(&field, Some(&replayed)).await,
    );
    let thief = next().with_cnf_jkt(JKT_THIEF_CANARY);
    show(
        &mut shown,
        client.get_credentials(&field, Some(&thief)).await,
    );
    let mtls = reader(format!("{JTI_CANARY}-mtls")).with_mtls_thumbprint(X5T_CANARY);
    show(
        &mut shown,
        client.get_credentials(&field, Some(&mtls)).await,
    );
    show(
        &mut shown,
        client
            .get_credentials(format!("{whole}#missing").as_str(), Some(&next()))
            .await,
    );
    show(
        &mut shown,
        client
            .get_credentials(format!("{whole}?version=7").as_str(), Some(&next()))
            .await,
    );
    let wrong_aud = next().with_aud(["billing"]);
    show(
        &mut shown,
        client.get_credentials(&field, Some(&wrong_aud)).await,
    );
    show(
        &mut shown,
        client
            .get_credentials(
                format!("openbao+kv2://secret/denied/{PATH_CANARY}#token").as_str(),
                Some(&next()),
            )
            .await,
    );
    for uri in [
        format!("file://secret/{PATH_CANARY}/app"),
        format!("openbao+kv2://other/{PATH_CANARY}/app#token"),
        format!("openbao+kv2://secret/{PATH_CANARY}/*"),
    ] {
        show(
            &mut shown,
            client.get_credentials(uri.as_str(), Some(&next())).await,
        );
    }
    show(&mut shown, client.get_credentials(&field, None).await);
    // A batch report lists the caller's own URIs (secret-pep's `BatchItem::uri`), so it is
    // checked for values and tokens only.
    let report = client
        .authorize_batch(Some(&next()), &[&field], &[&whole])
        .await?;
    let report = format!("{report:?}");
    // A token the vault refuses.
    let refused = VaultClient::builder()
        .env_lookup(env(&vars(BAD_TOKEN_CANARY)))
        .build()?;
    shown.push_str(&format!("{refused:?}\n"));
    show(
        &mut shown,
        refused.get_credentials(&field, Some(&next())).await,
    );
    // The PDP down.
    s.cerbos.stop();
    show(
        &mut shown,
        client
            .get_credentials(
                format!("openbao+kv2://secret/{PATH_CANARY}/new").as_str(),
                Some(&next()),
            )
            .await,
    );
    // Builders and explicit settings.
    let builder = VaultClient::builder()
        .tenant_salt(SALT_CANARY)
        .pep_config(PepConfig::new(TENANT, "secret".parse()?))
        .default_context(ctx(0));
    shown.push_str(&format!("{builder:?} {:?}\n", authzen(&s.cerbos)));
    drop(value);

    let events = audit.take();
    assert!(events.len() >= 12, "{events:#?}");
    let mut audited = String::new();
    for event in &events {
        audited.push_str(&format!("{event:?}\n"));
    }
    let logs = logs.text();

    let planted = [
        VALUE_CANARY,
        FIELD_CANARY,
        TOKEN_CANARY,
        BAD_TOKEN_CANARY,
        s.bao.root_token(),
        SALT_CANARY,
        JTI_CANARY,
        JKT_CANARY,
        JKT_THIEF_CANARY,
        X5T_CANARY,
    ];
    for (what, text) in [
        ("displayed output", &shown),
        ("TRACE logs", &logs),
        ("audit events", &audited),
        ("the batch report", &report),
    ] {
        for canary in planted {
            assert!(!text.contains(canary), "{what} contain `{canary}`:\n{text}");
        }
        assert!(
            what == "the batch report" || !text.contains(&format!("{PATH_CANARY}/")),
            "{what} contain the secret path:\n{text}"
        );
    }
    // The logs did capture the requests: spans with provider, mount and the keyed reference.
    let uri: SecretUri = field.parse()?;
    let keyed = client.resource_ref(&uri).to_string();
    for expected in [
        "get_credentials",
        "provider=\"openbao\"",
        "mount=\"secret\"",
        &format!("resource_ref={keyed}"),
        "code=\"AUTHZ_DENIED\"",
        "reason=\"REPLAY\"",
        "code=\"KEY_NOT_FOUND\"",
        "code=\"PERMISSION_DENIED\"",
        "code=\"PDP_UNAVAILABLE\"",
    ] {
        assert!(
            logs.contains(expected),
            "no `{expected}` in the logs:\n{logs}"
        );
    }
    // … and the audit events carry the keyed reference.
    assert!(
        events
            .iter()
            .any(|e| e.resource_ref.as_deref() == Some(keyed.as_str()))
    );
    assert!(shown.contains("[REDACTED]"));
    Ok(())
}
