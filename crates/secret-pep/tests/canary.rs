//! Canary: planted token, `jti`, binding and secret values must appear in no error message,
//! `Debug` output, log line (captured at TRACE), span field (`pep_decision`, `pdp_call`, as
//! the fmt layer writes them when a span closes) or audit event.
#![cfg(feature = "authzen")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{RecordingAudit, config, reader};
use secret_pep::{AuthzenConfig, AuthzenDialect, ExecutionContext, PdpSettings, Pep, PepError};
use secrets_test_support::{Fault, FaultServer, LogCapture as Captured};
use serde_json::json;
use tracing_subscriber::fmt::format::FmtSpan;

const TOKEN: &str = "CANARY-TOKEN-3f9a";
const JTI: &str = "CANARY-JTI-77c1";
const JKT: &str = "CANARY-JKT-0b2e";
const MTLS: &str = "CANARY-MTLS-5d4c";
const VALUE: &str = "CANARY-VALUE-a1b2";
const CANARIES: [&str; 5] = [TOKEN, JTI, JKT, MTLS, VALUE];

fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} leaks {canary}: {text}");
    }
}

#[test]
fn no_canary_in_errors_logs_or_audit_events() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let server = FaultServer::start(vec![
        Fault::json(200, &json!({"decision": true, "context": {"max_uses": 1}})),
        Fault::json(200, &json!({"decision": false})),
        Fault::json(
            200,
            &json!({"decision": true, "context": {"obligations": ["x"]}}),
        ),
        Fault::json(500, &json!({"echo": TOKEN})),
        Fault::text(200, TOKEN),
    ])
    .unwrap();
    let authzen = AuthzenConfig::new(server.addr())
        .with_discovery(false)
        .with_dialect(AuthzenDialect::Cerbos)
        .with_timeout(Duration::from_secs(2))
        .with_token(TOKEN.to_owned().into());
    let audit = Arc::new(RecordingAudit::default());
    let pep = Pep::builder(config().with_pdp(PdpSettings::AuthZen(authzen.clone())))
        .auditor(audit.auditor())
        .build()
        .unwrap();

    let ctx = reader(JTI).with_cnf_jkt(JKT).with_mtls_thumbprint(MTLS);
    let mut errors: Vec<PepError> = Vec::new();
    runtime.block_on(async {
        // Permit and a read whose value is the canary.
        let value = pep
            .execute(&ctx, "openbao+kv2://secret/a#k", |_uri| async {
                Ok::<_, PepError>(VALUE.to_owned())
            })
            .await
            .unwrap();
        assert_eq!(value, VALUE);
        // Replay, drift, spent uses.
        errors.push(
            pep.authorize(&ctx, "openbao+kv2://secret/a#k")
                .await
                .unwrap_err(),
        );
        let thief = reader("other-jti").with_cnf_jkt("different");
        errors.push(
            pep.authorize(&thief, "openbao+kv2://secret/a#k")
                .await
                .unwrap_err(),
        );
        let again = reader("third-jti")
            .with_cnf_jkt(JKT)
            .with_mtls_thumbprint(MTLS);
        errors.push(
            pep.authorize(&again, "openbao+kv2://secret/a#k")
                .await
                .unwrap_err(),
        );
        // PDP deny, obligation, 500 with the token echoed, a body that is the token.
        for path in ["b", "c", "d", "e"] {
            let fresh = reader(format!("{JTI}-{path}")).with_cnf_jkt(JKT);
            let uri = format!("openbao+kv2://secret/{path}");
            errors.push(pep.authorize(&fresh, &uri).await.unwrap_err());
        }
        // Bad URI, mount guard, audience.
        errors.push(
            pep.authorize(&ctx, "openbao+kv2://secret/*")
                .await
                .unwrap_err(),
        );
        errors.push(pep.authorize(&ctx, "file://other/x").await.unwrap_err());
        let wrong = ExecutionContext::new("alice").with_aud(["x"]).with_jti(JTI);
        errors.push(
            pep.authorize(&wrong, "openbao+kv2://secret/a")
                .await
                .unwrap_err(),
        );
        // A provider failure.
        let fresh = reader("provider-jti");
        errors.push(
            pep.execute(&fresh, "openbao+kv2://secret/a#k", |_| async {
                Err::<(), _>(PepError::provider(
                    "NOT_FOUND",
                    std::io::Error::other("gone"),
                ))
            })
            .await
            .unwrap_err(),
        );
    });
    assert_eq!(errors.len(), 11);

    // The token really went to the PDP, so its absence elsewhere means something.
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    for error in &errors {
        assert_clean("error Display", &error.to_string());
        assert_clean("error Debug", &format!("{error:?}"));
    }
    let events = audit.take();
    assert!(events.len() >= 12, "{} events", events.len());
    for event in &events {
        assert_clean("audit event", &event.debug);
    }
    assert_clean("Pep Debug", &format!("{pep:?}"));
    assert_clean("AuthzenConfig Debug", &format!("{authzen:?}"));
    assert_clean("context Debug", &format!("{ctx:?}"));

    drop(runtime);
    let captured = logs.text();
    assert!(!captured.is_empty(), "nothing was logged at TRACE");
    // The spans were written with their fields, so their absence of canaries means something.
    for written in [
        "pep_decision{",
        "pdp_call{",
        "outcome=\"permit\"",
        "reason=\"pdp\"",
    ] {
        assert!(captured.contains(written), "no `{written}` in the logs");
    }
    assert_clean("logs", &captured);
}
