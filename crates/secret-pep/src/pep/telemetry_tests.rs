//! The PEP's metrics, read back from an in-memory meter provider: one
//! `secrets.pep.decisions` count per decision with the right `outcome` and `reason`, one
//! `secrets.pdp.duration` point per PDP call with its `decision`.

use std::sync::atomic::{AtomicUsize, Ordering};

use secret_telemetry::names::{PDP_DECISIONS, PEP_OUTCOMES, PERMIT_REASONS, metric};
use secret_telemetry::testing::{MetricsCapture, Points};

use super::*;
use crate::PdpFailure;
use crate::pdp::PdpFuture;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Permits `secret/app/*` with 2 uses, denies `secret/denied/*`, is down for `secret/down/*`.
#[derive(Debug, Default)]
struct Scripted {
    calls: AtomicUsize,
}

impl Scripted {
    fn decide(request: &AccessRequest<'_>) -> Result<Grant, PepError> {
        let path = request.uri.as_str();
        if path.contains("/down/") {
            Err(PepError::unavailable(PdpFailure::Connect))
        } else if path.contains("/denied/") {
            Err(PepError::denied(DenyReason::PdpDeny))
        } else {
            Ok(Grant::new("g", Duration::from_secs(60), 2))
        }
    }
}

impl SecretPolicyService for Scripted {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready(Self::decide(request)))
    }
}

fn pep(capture: &MetricsCapture) -> (Pep, Arc<Scripted>) {
    let pdp = Arc::new(Scripted::default());
    let pep = Pep::builder(PepConfig::new("t1", "secret".parse().unwrap()))
        .pdp(Arc::clone(&pdp))
        .metrics(capture.metrics())
        .build()
        .unwrap();
    (pep, pdp)
}

fn reader(jti: &str) -> ExecutionContext {
    ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_jti(jti)
}

fn decisions(points: &Points, outcome: &str, reason: &str) -> f64 {
    points.sum_where(
        metric::PEP_DECISIONS,
        &[("outcome", outcome), ("reason", reason)],
    )
}

fn pdp_calls(points: &Points, decision: &str) -> f64 {
    points.sum_where(metric::PDP_DURATION, &[("decision", decision)])
}

/// Every label the PEP recorded is from its closed set (or an error code, for reasons).
fn assert_closed(points: &Points) {
    for point in points.named(metric::PEP_DECISIONS) {
        let outcome = point.label("outcome").unwrap_or_default();
        let reason = point.label("reason").unwrap_or_default();
        assert!(PEP_OUTCOMES.contains(&outcome), "{point:?}");
        assert_eq!(
            outcome == "permit",
            PERMIT_REASONS.contains(&reason),
            "{point:?}"
        );
        assert!(
            reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                || reason.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{point:?}"
        );
    }
    for point in points.named(metric::PDP_DURATION) {
        assert!(PDP_DECISIONS.contains(&point.label("decision").unwrap_or_default()));
    }
}

#[tokio::test]
async fn permits_denials_replays_and_outages_are_counted_with_their_reasons() -> TestResult {
    let capture = MetricsCapture::new();
    let (pep, pdp) = pep(&capture);
    const URI: &str = "openbao+kv2://secret/app/api#token";

    // A fresh PDP decision, then the same grant's second use.
    let _first = pep.authorize(&reader("j1"), URI).await?;
    let _second = pep.authorize(&reader("j2"), URI).await?;
    // The same jti again: refused before any PDP call.
    let replay = pep.authorize(&reader("j2"), URI).await.unwrap_err();
    assert_eq!(replay.deny_reason(), Some(DenyReason::Replay));
    // The PDP says no, then the denial is served from the negative cache.
    let uri = "openbao+kv2://secret/denied/x";
    assert!(pep.authorize(&reader("j3"), uri).await.is_err());
    assert!(pep.authorize(&reader("j4"), uri).await.is_err());
    // The PDP is down.
    let down = pep
        .authorize(&reader("j5"), "openbao+kv2://secret/down/x")
        .await
        .unwrap_err();
    assert_eq!(down.code(), "PDP_UNAVAILABLE");
    // Refused before the PDP: the audience, the mount guard, a URI that does not parse.
    let stranger = ExecutionContext::new("alice")
        .with_aud(["other"])
        .with_jti("j6");
    assert!(pep.authorize(&stranger, URI).await.is_err());
    assert!(
        pep.authorize(&reader("j7"), "file://other/x")
            .await
            .is_err()
    );
    assert!(
        pep.authorize(&reader("j8"), "openbao+kv2://secret/*")
            .await
            .is_err()
    );
    // A client's own refusal, reported through the PEP.
    pep.audit_refused(&reader("j9"), None, "UNSUPPORTED_PROVIDER");

    let points = capture.points()?;
    assert_eq!(decisions(&points, "permit", "pdp"), 1.0);
    assert_eq!(decisions(&points, "permit", "grant"), 1.0);
    assert_eq!(decisions(&points, "deny", "REPLAY"), 1.0);
    assert_eq!(decisions(&points, "deny", "PDP_DENY"), 1.0);
    assert_eq!(decisions(&points, "deny", "NEGATIVE_CACHED"), 1.0);
    assert_eq!(decisions(&points, "error", "PDP_UNAVAILABLE"), 1.0);
    assert_eq!(decisions(&points, "deny", "AUDIENCE"), 1.0);
    assert_eq!(decisions(&points, "deny", "TENANT_MOUNT_MISMATCH"), 1.0);
    assert_eq!(decisions(&points, "deny", "UNSUPPORTED_PROVIDER"), 1.0);
    // One count per decision, no more.
    assert_eq!(points.sum(metric::PEP_DECISIONS), 10.0, "{points:?}");

    // Three PDP calls (permit, deny, outage), each timed once with its decision.
    assert_eq!(pdp.calls.load(Ordering::SeqCst), 3);
    assert_eq!(pdp_calls(&points, "permit"), 1.0);
    assert_eq!(pdp_calls(&points, "deny"), 1.0);
    assert_eq!(pdp_calls(&points, "error"), 1.0);
    assert_eq!(points.sum(metric::PDP_DURATION), 3.0);
    assert_closed(&points);
    Ok(())
}

#[tokio::test]
async fn a_spent_grant_counts_its_replacement_as_a_fresh_decision() -> TestResult {
    let capture = MetricsCapture::new();
    let (pep, _pdp) = pep(&capture);
    const URI: &str = "openbao+kv2://secret/app/api#token";
    for jti in ["a", "b", "c", "d", "e"] {
        let _used = pep.authorize(&reader(jti), URI).await?;
    }
    // Two uses per grant: pdp, grant, pdp, grant, pdp.
    let points = capture.points()?;
    assert_eq!(decisions(&points, "permit", "pdp"), 3.0);
    assert_eq!(decisions(&points, "permit", "grant"), 2.0);
    assert_eq!(pdp_calls(&points, "permit"), 3.0);
    Ok(())
}

#[tokio::test]
async fn batches_count_each_item_and_one_pdp_call() -> TestResult {
    let capture = MetricsCapture::new();
    let (pep, _pdp) = pep(&capture);
    let required = [
        "openbao+kv2://secret/app/a",
        "openbao+kv2://secret/denied/b",
    ];
    let optional = ["openbao+kv2://secret/down/c"];

    let report = pep
        .authorize_batch(&reader("b1"), &required, &optional)
        .await?;
    assert_eq!(report.items().len(), 3);
    let points = capture.points()?;
    assert_eq!(decisions(&points, "permit", "pdp"), 1.0);
    assert_eq!(decisions(&points, "deny", "PDP_DENY"), 1.0);
    assert_eq!(decisions(&points, "error", "PDP_UNAVAILABLE"), 1.0);
    // The default batch asks once per URI but is one call of the PEP's: its worst answer.
    assert_eq!(points.sum(metric::PDP_DURATION), 1.0);
    assert_eq!(pdp_calls(&points, "error"), 1.0);

    // Again: the grant is held, the denial cached; nothing asks the PDP but the outage,
    // which is not cached.
    let report = pep
        .authorize_batch(&reader("b2"), &required[..1], &[])
        .await?;
    assert!(report.is_satisfied());
    let points = capture.points()?;
    assert_eq!(decisions(&points, "permit", "grant"), 1.0);
    assert_eq!(points.sum(metric::PDP_DURATION), 1.0);

    // A batch refused as a whole counts once.
    let replayed = pep.authorize_batch(&reader("b2"), &required, &[]).await;
    assert!(replayed.is_ok(), "a batch only peeks at its jti");
    let stranger = ExecutionContext::new("alice").with_aud(["x"]);
    assert!(
        pep.authorize_batch(&stranger, &required, &[])
            .await
            .is_err()
    );
    let points = capture.points()?;
    assert_eq!(decisions(&points, "deny", "AUDIENCE"), 1.0);
    assert_closed(&points);
    Ok(())
}

#[tokio::test]
async fn many_reads_count_the_batch_decisions_as_fresh_and_reuses_as_grants() -> TestResult {
    let capture = MetricsCapture::new();
    let (pep, _pdp) = pep(&capture);
    let a = "openbao+kv2://secret/app/a";
    let results = pep
        .authorize_many(
            &reader("m1"),
            &[a, a, "openbao+kv2://secret/denied/b", "bad"],
        )
        .await?;
    assert_eq!(results.len(), 4);
    let points = capture.points()?;
    // The first use of a's batch-decided grant is the PDP's, the second the grant's.
    assert_eq!(decisions(&points, "permit", "pdp"), 1.0);
    assert_eq!(decisions(&points, "permit", "grant"), 1.0);
    assert_eq!(decisions(&points, "deny", "PDP_DENY"), 1.0);
    assert_eq!(points.sum(metric::PEP_DECISIONS), 4.0, "{points:?}");
    assert_eq!(points.sum(metric::PDP_DURATION), 1.0);

    // A replayed token is refused once, for the whole call.
    assert!(pep.authorize_many(&reader("m1"), &[a]).await.is_err());
    let points = capture.points()?;
    assert_eq!(decisions(&points, "deny", "REPLAY"), 1.0);
    assert_closed(&points);
    Ok(())
}

#[test]
fn the_default_metrics_are_the_global_ones() {
    let pep = Pep::builder(
        PepConfig::new("t1", "secret".parse().unwrap())
            .with_environment("test")
            .with_pdp(crate::PdpSettings::DisabledForDevelopment),
    )
    .build()
    .unwrap();
    assert_eq!(format!("{:?}", pep.metrics()), "Metrics { .. }");
}
