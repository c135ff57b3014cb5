//! Verified callers (`secret-verify`): access tokens and DPoP proofs carrying the canaries
//! (the `jti`s, a token canary claim), verified and refused one check at a time. Every
//! refusal's `Display`, `Debug` and sources are scanned, and so are the `Debug` of what was
//! presented, of the verified caller and of its context: none may hold a token, a proof or a
//! `jti` (the scanner also finds them base64-encoded, as a leaked JWT would show them).

use secret_verify::{
    AccessTokenPolicy, DpopPolicy, KeySet, Presented, VerifiedCaller, Verifier, VerifyError,
};
use secrets_test_support::jose::{EcKey, b64url};
use serde_json::{Value, json};

use super::run::{Expect, Run};
use crate::common::leak::{Class, JTI, TOKEN};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "crud.secrets";
const NOW: u64 = 1_800_000_000;
const URL: &str = "https://secrets.example/v1/read";

fn claims(cnf: Option<Value>) -> Value {
    let mut c = json!({"iss": ISSUER, "sub": "svc", "aud": AUDIENCE, "client_id": "svc",
        "exp": NOW + 300, "iat": NOW, "jti": JTI, "scope": "reader", "note": TOKEN});
    if let Some(cnf) = cnf {
        c["cnf"] = cnf;
    }
    c
}

/// One presentation, checked against `expect`: a verified caller's `Debug` (and its
/// context's) or a refusal's chain is scanned.
fn drive(
    run: &mut Run,
    verifier: &Verifier,
    keys: &KeySet,
    name: &str,
    (authorization, proofs, url): (&str, &[&str], &str),
    expect: Expect,
) {
    let path = run.path(format!("verify/{name}"));
    let presented = Presented {
        authorization,
        dpop: proofs,
        method: "GET",
        url,
        client_certificate: None,
    };
    run.show(&path, format!("{presented:?}"));
    let result: std::result::Result<VerifiedCaller, VerifyError> =
        verifier.verify(&presented, keys, NOW);
    match result {
        Ok(caller) => {
            if !matches!(expect, Expect::Value) {
                run.mismatch(&path, format!("expected {expect:?}, verified"));
            }
            run.show(&path, format!("{caller:?}"));
            // The context names its caller (allowed); its `Debug` redacts the `jti`.
            run.show_allowing(&path, format!("{:?}", caller.context()), &[Class::Subject]);
        }
        Err(error) => run.error(&path, error.code(), &error, expect),
    }
}

/// Drives the verifier through a valid bearer and DPoP request and one refusal of each kind.
pub(crate) fn drive_all(run: &mut Run) -> Result {
    let issuer = EcKey::generate("k1");
    let stranger = EcKey::generate("k1");
    let holder = EcKey::generate("holder");
    let other = EcKey::generate("other");
    let keys =
        KeySet::from_json(&json!({"keys": [issuer.jwk()]}).to_string()).ok_or("a key set")?;
    let verifier = Verifier::new(
        AccessTokenPolicy::new(ISSUER, AUDIENCE),
        DpopPolicy::default(),
    );
    let jkt = secret_pep::jwk_thumbprint(&holder.public_jwk().to_string())?;

    let bearer = issuer.access_token(&claims(None));
    let bound = issuer.access_token(&claims(Some(json!({"jkt": jkt}))));
    let proof = |key: &EcKey, url: &str, iat: u64, token: Option<&str>| {
        key.dpop_proof("GET", url, iat, JTI, token)
    };
    let good_proof = proof(&holder, URL, NOW, Some(&bound));
    let as_bearer = |t: &str| format!("Bearer {t}");
    let as_dpop = |t: &str| format!("DPoP {t}");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(None);
        change(&mut c);
        issuer.access_token(&c)
    };
    let expired = with(&|c| c["exp"] = json!(NOW - 120));
    let other_audience = with(&|c| c["aud"] = json!("another.api"));
    let other_issuer = with(&|c| c["iss"] = json!("https://evil.example"));
    let unsupported_cnf = with(&|c| c["cnf"] = json!({"jwk": {"kty": "EC"}, "note": TOKEN}));
    let (head, signature) = bearer.rsplit_once('.').ok_or("a JWT")?;
    let altered = format!("{head}.{}", b64url(&[signature.len() as u8; 64]));
    let (_, payload) = head.split_once('.').ok_or("a JWT")?;
    let none = format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"at+jwt"}"#));
    let forged = stranger.access_token(&claims(None));
    let critical = issuer.sign(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1", "crit": ["urn:x"], "urn:x": TOKEN}),
        &claims(None),
    );

    let token_cases: Vec<(&str, String, Expect)> = vec![
        ("bearer", as_bearer(&bearer), Expect::Value),
        (
            "expired",
            as_bearer(&expired),
            Expect::Code("INVALID_TOKEN"),
        ),
        (
            "other-audience",
            as_bearer(&other_audience),
            Expect::Code("INVALID_TOKEN"),
        ),
        (
            "other-issuer",
            as_bearer(&other_issuer),
            Expect::Code("INVALID_TOKEN"),
        ),
        (
            "altered-signature",
            as_bearer(&altered),
            Expect::Code("INVALID_TOKEN"),
        ),
        ("alg-none", as_bearer(&none), Expect::Code("INVALID_TOKEN")),
        (
            "key-not-published",
            as_bearer(&forged),
            Expect::Code("INVALID_TOKEN"),
        ),
        (
            "crit-header",
            as_bearer(&critical),
            Expect::Code("INVALID_TOKEN"),
        ),
        (
            "unsupported-cnf",
            as_bearer(&unsupported_cnf),
            Expect::Code("BINDING_DRIFT"),
        ),
        (
            "bound-as-bearer",
            as_bearer(&bound),
            Expect::Code("BINDING_DRIFT"),
        ),
        ("no-scheme", bearer.clone(), Expect::Code("INVALID_TOKEN")),
        (
            "garbage",
            format!("Bearer {TOKEN}.{JTI}.x"),
            Expect::Code("INVALID_TOKEN"),
        ),
    ];
    for (name, authorization, expect) in &token_cases {
        drive(
            run,
            &verifier,
            &keys,
            name,
            (authorization, &[], URL),
            *expect,
        );
    }

    let dpop = as_dpop(&bound);
    let proof_cases: Vec<(&str, Vec<String>, Expect)> = vec![
        ("dpop", vec![good_proof.clone()], Expect::Value),
        ("dpop-no-proof", vec![], Expect::Code("INVALID_DPOP_PROOF")),
        (
            "dpop-two-proofs",
            vec![good_proof.clone(), good_proof.clone()],
            Expect::Code("INVALID_DPOP_PROOF"),
        ),
        (
            "dpop-other-url",
            vec![proof(
                &holder,
                "https://secrets.example/v1/other",
                NOW,
                Some(&bound),
            )],
            Expect::Code("INVALID_DPOP_PROOF"),
        ),
        (
            "dpop-stale",
            vec![proof(&holder, URL, NOW - 600, Some(&bound))],
            Expect::Code("INVALID_DPOP_PROOF"),
        ),
        (
            "dpop-no-ath",
            vec![proof(&holder, URL, NOW, None)],
            Expect::Code("INVALID_DPOP_PROOF"),
        ),
        (
            "dpop-other-key",
            vec![proof(&other, URL, NOW, Some(&bound))],
            Expect::Code("BINDING_DRIFT"),
        ),
        (
            "dpop-garbage",
            vec![format!("{TOKEN}.{JTI}")],
            Expect::Code("INVALID_DPOP_PROOF"),
        ),
    ];
    for (name, proofs, expect) in &proof_cases {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        drive(run, &verifier, &keys, name, (&dpop, &refs, URL), *expect);
    }
    Ok(())
}
