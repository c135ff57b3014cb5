//! The PEP's calls to its PDP, pinned with a `mockall` mock: which reads reach the PDP, how
//! often, and with what question. The real-PDP (Cerbos) suites are in the workspace's
//! `tests/` crate; these pin the collaborator's side of the flow that a real server cannot
//! count exactly.
//!
//! `SecretPolicyService::authorize_use` returns a future borrowing its request, which
//! `mockall` cannot return from a mock; the mock's `decide` takes the question as owned
//! values and answers synchronously, and `Pinned` turns that into the trait.

use std::sync::{Mutex, MutexGuard, PoisonError};

use mockall::{Sequence, mock, predicate::eq};
use secret_uri::AllowedMounts;

use super::*;
use crate::PdpFailure;
use crate::pdp::PdpFuture;

const URI: &str = "openbao+kv2://secret/app/api#token";

/// What the PEP asked the PDP, as owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Question {
    subject: String,
    tenant: String,
    uri: String,
    jti: Option<String>,
}

mock! {
    Pdp {
        fn decide(&self, question: Question) -> Result<Grant, PepError>;
    }
}

/// A `SecretPolicyService` whose every decision is the mock's; the mutex lets a test
/// [`checkpoint`](MockPdp::checkpoint) the mock between reads while the PEP holds it.
struct Pinned(Mutex<MockPdp>);

impl fmt::Debug for Pinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pinned(MockPdp)")
    }
}

impl Pinned {
    fn new(mock: MockPdp) -> Arc<Self> {
        Arc::new(Self(Mutex::new(mock)))
    }

    fn mock(&self) -> MutexGuard<'_, MockPdp> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SecretPolicyService for Pinned {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        let question = Question {
            subject: request.subject.to_owned(),
            tenant: request.tenant.to_owned(),
            uri: request.uri.as_str().to_owned(),
            jti: request.context.token_jti.clone(),
        };
        let answer = self.mock().decide(question);
        Box::pin(std::future::ready(answer))
    }
}

fn config() -> PepConfig {
    PepConfig::new("t1", AllowedMounts::from_csv("secret"))
        .with_negative_cache(Duration::from_secs(60), Duration::ZERO)
}

fn pep(pdp: &Arc<Pinned>) -> Pep {
    Pep::builder(config())
        .pdp(Arc::clone(pdp) as Arc<dyn SecretPolicyService>)
        .build()
        .unwrap_or_else(|e| panic!("test PEP config: {e}"))
}

fn reader(jti: &str) -> ExecutionContext {
    ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_issuer("https://issuer.test")
        .with_jti(jti)
}

fn grant(id: &str, max_uses: u32) -> Grant {
    Grant::new(id, Duration::from_secs(3600), max_uses)
}

fn reason<T>(result: Result<T, PepError>) -> Option<DenyReason> {
    result.err().and_then(|e| e.deny_reason())
}

#[tokio::test]
async fn a_replayed_jti_never_reaches_the_pdp() {
    let mut mock = MockPdp::new();
    mock.expect_decide()
        .with(eq(Question {
            subject: "alice".into(),
            tenant: "t1".into(),
            uri: URI.into(),
            jti: Some("once".into()),
        }))
        .times(1)
        .returning(|_| Ok(grant("g1", 5)));
    let pdp = Pinned::new(mock);
    let pep = pep(&pdp);
    let ctx = reader("once");
    assert!(pep.authorize(&ctx, URI).await.is_ok());
    // The same token again, on the same resource (a warm grant with uses left) and on a cold
    // one: refused as a replay before any grant lookup or PDP call.
    assert_eq!(
        reason(pep.authorize(&ctx, URI).await),
        Some(DenyReason::Replay)
    );
    assert_eq!(
        reason(pep.authorize(&ctx, "openbao+kv2://secret/app/cold").await),
        Some(DenyReason::Replay)
    );
    assert_eq!(
        reason(pep.authorize_batch(&ctx, &[URI], &[]).await),
        Some(DenyReason::Replay)
    );
    pdp.mock().checkpoint();
}

#[tokio::test]
async fn a_spent_grant_asks_the_pdp_once_more_and_only_then() {
    let mut mock = MockPdp::new();
    mock.expect_decide()
        .times(1)
        .returning(|_| Ok(grant("first", 1)));
    let pdp = Pinned::new(mock);
    let pep = pep(&pdp);
    let first = pep.authorize(&reader("j1"), URI).await;
    assert_eq!(
        first
            .as_ref()
            .map_err(|e| e.code())
            .map(|a| (a.grant().grant_id.as_str(), a.use_number())),
        Ok(("first", 1)),
        "{first:?}"
    );
    // Exactly one decision for the first read; the next read finds the grant spent.
    pdp.mock().checkpoint();
    pdp.mock()
        .expect_decide()
        .times(1)
        .returning(|_| Ok(grant("second", 1)));
    let second = pep.authorize(&reader("j2"), URI).await;
    assert_eq!(
        second
            .as_ref()
            .map_err(|e| e.code())
            .map(|a| (a.grant().grant_id.as_str(), a.use_number())),
        Ok(("second", 1)),
        "{second:?}"
    );
    pdp.mock().checkpoint();
}

#[tokio::test]
async fn a_grant_of_two_uses_is_one_decision_for_two_reads() {
    let mut mock = MockPdp::new();
    let mut order = Sequence::new();
    mock.expect_decide()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(grant("pair", 2)));
    mock.expect_decide()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(grant("next", 2)));
    let pdp = Pinned::new(mock);
    let pep = pep(&pdp);
    let mut served = Vec::new();
    for jti in ["a", "b", "c"] {
        let authorized = pep.authorize(&reader(jti), URI).await;
        let Ok(authorized) = authorized else {
            panic!("{jti}: {authorized:?}");
        };
        served.push((authorized.grant().grant_id.clone(), authorized.use_number()));
    }
    assert_eq!(
        served,
        [("pair".into(), 1), ("pair".into(), 2), ("next".into(), 1)]
    );
    pdp.mock().checkpoint();
}

#[tokio::test]
async fn a_denial_is_negative_cached_and_asked_once() {
    let mut mock = MockPdp::new();
    mock.expect_decide()
        .times(1)
        .returning(|_| Err(PepError::denied(DenyReason::PdpDeny)));
    let pdp = Pinned::new(mock);
    let pep = pep(&pdp);
    assert_eq!(
        reason(pep.authorize(&reader("d1"), URI).await),
        Some(DenyReason::PdpDeny)
    );
    // Another token of the same shape: the negative cache answers, the PDP is not asked.
    assert_eq!(
        reason(pep.authorize(&reader("d2"), URI).await),
        Some(DenyReason::NegativeCached)
    );
    // Every spelling of the resource shares the denial.
    assert_eq!(
        reason(
            pep.authorize(&reader("d3"), "openbao://secret/app/api#token")
                .await
        ),
        Some(DenyReason::NegativeCached)
    );
    pdp.mock().checkpoint();
}

#[tokio::test]
async fn a_pdp_error_is_not_cached() {
    let mut mock = MockPdp::new();
    let mut order = Sequence::new();
    mock.expect_decide()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Err(PepError::unavailable(PdpFailure::Connect)));
    mock.expect_decide()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(grant("after-outage", 1)));
    let pdp = Pinned::new(mock);
    let pep = pep(&pdp);
    let failed = pep.authorize(&reader("e1"), URI).await;
    assert_eq!(
        failed.as_ref().err().map(PepError::code),
        Some("PDP_UNAVAILABLE")
    );
    // Neither a denial nor a grant was cached: the next read asks again and is served.
    let served = pep.authorize(&reader("e2"), URI).await;
    assert_eq!(
        served
            .as_ref()
            .map_err(|e| e.code())
            .map(|a| a.grant().grant_id.as_str()),
        Ok("after-outage"),
        "{served:?}"
    );
    pdp.mock().checkpoint();
}
