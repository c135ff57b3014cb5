//! The PEP's spans against an AuthZEN PDP on loopback: `pep_decision` and `pdp_call` carry
//! their outcome, reason, provider, mount, keyed reference, decision and breaker state, and
//! no span field or event names the subject, the `jti`, the token or the secret's path.
#![cfg(feature = "authzen")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{CapturedSpan, RecordingAudit, SpanCapture, config};
use secret_pep::{AuthzenConfig, ExecutionContext, PdpSettings, Pep};
use secret_telemetry::names::span;
use secret_telemetry::testing::MetricsCapture;
use secrets_test_support::{Fault, FaultServer, LogCapture};
use serde_json::json;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;

const SUBJECT: &str = "CANARY-SUBJECT-91ab";
const TOKEN: &str = "CANARY-TOKEN-3f9a";
const JTI: &str = "CANARY-JTI-77c1";
const PATH: &str = "canary-path-e5d0";
const CANARIES: [&str; 4] = [SUBJECT, TOKEN, JTI, PATH];

fn caller(jti: &str) -> ExecutionContext {
    ExecutionContext::new(SUBJECT)
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_jti(format!("{JTI}-{jti}"))
}

fn field<'a>(span: &'a CapturedSpan, name: &str) -> &'a str {
    span.field(name).unwrap_or("<unset>")
}

#[test]
fn decision_and_pdp_spans_carry_their_fields_and_no_canary() {
    let spans = SpanCapture::default();
    let logs = LogCapture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry().with(spans.clone()).with(
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(move || writer.clone()),
    );
    // No filter: every level, TRACE included.
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let server = FaultServer::start(vec![
        Fault::json(200, &json!({"decision": true, "context": {"max_uses": 5}})),
        Fault::json(200, &json!({"decision": false})),
        Fault::json(500, &json!({"echo": TOKEN})),
    ])
    .unwrap();
    let authzen = AuthzenConfig::new(server.addr())
        .with_discovery(false)
        .with_timeout(Duration::from_secs(2))
        .with_breaker(1, Duration::from_secs(60))
        .with_token(TOKEN.to_owned().into());
    let metrics = MetricsCapture::new();
    let audit = Arc::new(RecordingAudit::default());
    let pep = Pep::builder(config().with_pdp(PdpSettings::AuthZen(authzen)))
        .auditor(audit.auditor())
        .metrics(metrics.metrics())
        .build()
        .unwrap();

    let uri = |path: &str| format!("openbao+kv2://secret/{PATH}/{path}#k");
    runtime.block_on(async {
        let _permit = pep.authorize(&caller("1"), &uri("a")).await.unwrap();
        let _held = pep.authorize(&caller("2"), &uri("a")).await.unwrap();
        let replay = pep.authorize(&caller("2"), &uri("a")).await.unwrap_err();
        assert_eq!(replay.code(), "AUTHZ_DENIED");
        let denied = pep.authorize(&caller("3"), &uri("b")).await.unwrap_err();
        assert_eq!(denied.code(), "AUTHZ_DENIED");
        let outage = pep.authorize(&caller("4"), &uri("c")).await.unwrap_err();
        assert_eq!(outage.code(), "PDP_UNAVAILABLE");
        // The breaker opened on the 500: this one fails fast.
        let open = pep.authorize(&caller("5"), &uri("d")).await.unwrap_err();
        assert_eq!(open.code(), "PDP_UNAVAILABLE");
    });
    assert_eq!(
        server.request_count(),
        3,
        "the open breaker made no request"
    );

    let decisions = spans.named(span::PEP_DECISION);
    let summary: Vec<(&str, &str)> = decisions
        .iter()
        .map(|s| (field(s, "outcome"), field(s, "reason")))
        .collect();
    assert_eq!(
        summary,
        [
            ("permit", "pdp"),
            ("permit", "grant"),
            ("deny", "REPLAY"),
            ("deny", "PDP_DENY"),
            ("error", "PDP_UNAVAILABLE"),
            ("error", "PDP_UNAVAILABLE"),
        ]
    );
    for decision in &decisions {
        assert_eq!(field(decision, "provider"), "openbao", "{decision:?}");
        assert_eq!(field(decision, "mount"), "secret", "{decision:?}");
        // The audit's keyed reference: 32 hex digits.
        let reference = field(decision, "resource_ref");
        assert_eq!(reference.len(), 32, "{decision:?}");
        assert!(reference.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    let calls = spans.named(span::PDP_CALL);
    let summary: Vec<(&str, &str, Option<&str>)> = calls
        .iter()
        .map(|s| (field(s, "decision"), field(s, "breaker"), s.field("cause")))
        .collect();
    assert_eq!(
        summary,
        [
            ("permit", "closed", None),
            ("deny", "closed", None),
            ("error", "closed", Some("http_status")),
            ("error", "open", Some("circuit_open")),
        ]
    );
    for call in &calls {
        assert_eq!(call.parent, Some(span::PEP_DECISION), "{call:?}");
        let latency: f64 = field(call, "latency_ms").parse().unwrap();
        assert!((0.0..2000.0).contains(&latency), "{call:?}");
    }
    let points = metrics.points().unwrap();
    assert_eq!(
        points.sum(secret_telemetry::names::metric::PDP_DURATION),
        4.0
    );
    assert_eq!(
        points.sum(secret_telemetry::names::metric::PEP_DECISIONS),
        6.0
    );

    // The canaries were really used: the token went to the PDP, the audit saw the subject.
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(
        audit
            .take()
            .iter()
            .any(|e| e.subject.as_deref() == Some(SUBJECT))
    );
    drop(runtime);
    let captured = format!("{}\n{}", spans.text(), logs.text());
    assert!(captured.contains("pep_decision") && captured.contains("pdp_call"));
    for canary in CANARIES {
        assert!(
            !captured.contains(canary),
            "a span or log leaks {canary}: {captured}"
        );
    }
}
