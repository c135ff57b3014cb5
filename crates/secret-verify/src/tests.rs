//! The verifier against tokens and proofs signed here with fresh keys (ring), one check at a
//! time: each refusal has its code and reason, and no message holds a token, proof or `jti`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use super::*;

pub(crate) const ISSUER: &str = "https://issuer.example";
pub(crate) const AUDIENCE: &str = "crud.secrets";
pub(crate) const NOW: u64 = 1_800_000_000;
const URL: &str = "https://secrets.example/v1/read";
const TOKEN_JTI: &str = "token-jti-canary-7f3a";
const PROOF_JTI: &str = "proof-jti-canary-91bc";

/// A P-256 key: its signing half for jsonwebtoken and its public JWK.
pub(crate) struct TestKey {
    encoding: EncodingKey,
    pub(crate) jwk: Value,
}

impl TestKey {
    pub(crate) fn new(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("the key parses");
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Self {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        }
    }

    fn thumbprint(&self) -> String {
        secret_pep::jwk_thumbprint(&self.jwk.to_string()).expect("a thumbprint")
    }

    /// A JWS of `claims` with `typ`, signed by this key, naming `kid`.
    pub(crate) fn sign(&self, typ: &str, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &self.encoding).expect("signed")
    }

    /// A DPoP proof of `claims` by this key, its public JWK in the header.
    fn prove(&self, claims: &Value) -> String {
        self.prove_with_jwk(&self.public_jwk(), claims)
    }

    fn public_jwk(&self) -> Value {
        let mut jwk = self.jwk.clone();
        if let Some(object) = jwk.as_object_mut() {
            object.remove("kid");
            object.remove("use");
        }
        jwk
    }

    /// A proof signed by this key whose header carries `jwk` (which may be another key's).
    fn prove_with_jwk(&self, jwk: &Value, claims: &Value) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.encoding, Algorithm::ES256)
                .expect("signed");
        format!("{signing_input}.{signature}")
    }
}

pub(crate) fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "svc-billing", "aud": [AUDIENCE, "other"], "client_id": "billing",
        "exp": NOW + 300, "iat": NOW - 10, "jti": TOKEN_JTI, "scope": "secrets:read audit",
    })
}

fn keys(keys: &[&TestKey]) -> KeySet {
    let set = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    KeySet::from_json(&set.to_string()).expect("a key set")
}

fn verifier() -> Verifier {
    Verifier::new(
        AccessTokenPolicy::new(ISSUER, AUDIENCE),
        DpopPolicy::default(),
    )
}

fn bearer<'a>(authorization: &'a str) -> Presented<'a> {
    Presented {
        authorization,
        dpop: &[],
        method: "GET",
        url: URL,
        client_certificate: None,
    }
}

fn proof_claims(token: &str) -> Value {
    json!({"htm": "GET", "htu": URL, "iat": NOW - 2, "jti": PROOF_JTI, "ath": access_token_hash(token)})
}

/// The code and reason of a refusal, and that its message and `Debug` hold no canary.
fn refusal(result: Result<VerifiedCaller, VerifyError>, secrets: &[&str]) -> (String, String) {
    let error = result.expect_err("refused");
    let text = format!("{error} {error:?}");
    for secret in secrets.iter().chain([&TOKEN_JTI, &PROOF_JTI]) {
        assert!(!text.contains(secret), "{text} holds a secret");
    }
    let reason = match &error {
        VerifyError::InvalidToken { reason } => reason.code().to_owned(),
        VerifyError::InvalidDpopProof { reason } => reason.code().to_owned(),
        VerifyError::BindingDrift { .. } => "drift".to_owned(),
        _ => "other".to_owned(),
    };
    (error.code().to_owned(), reason)
}

#[test]
fn a_valid_bearer_token_becomes_a_context_of_its_claims() {
    let key = TestKey::new("k1");
    let token = key.sign("at+jwt", Some("k1"), &claims());
    let authorization = format!("Bearer {token}");
    let caller = verifier()
        .verify(&bearer(&authorization), &keys(&[&key]), NOW)
        .expect("verified");
    assert_eq!(caller.token.subject, "svc-billing");
    assert_eq!(caller.token.client_id, "billing");
    assert_eq!(caller.token.roles, ["secrets:read", "audit"]);
    assert!(caller.proof.is_none());
    let ctx = caller.context();
    assert_eq!(ctx.subject.as_deref(), Some("svc-billing"));
    assert_eq!(ctx.client_id.as_deref(), Some("billing"));
    assert_eq!(ctx.token_jti.as_deref(), Some(TOKEN_JTI));
    assert_eq!(ctx.exp, Some(NOW + 300));
    let debug = format!("{caller:?}");
    assert!(!debug.contains(TOKEN_JTI), "{debug}");
    // `application/at+jwt` is the same type.
    let token = key.sign("application/AT+JWT", Some("k1"), &claims());
    let authorization = format!("bearer {token}");
    assert!(
        verifier()
            .verify(&bearer(&authorization), &keys(&[&key]), NOW)
            .is_ok()
    );
}

#[test]
fn each_bad_token_is_refused_with_its_reason() {
    let key = TestKey::new("k1");
    let stranger = TestKey::new("k1");
    let set = keys(&[&key]);
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = claims();
        if let Some(object) = c.as_object_mut() {
            f(object);
        }
        key.sign("at+jwt", Some("k1"), &c)
    };
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let hmac = {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some("k1".to_owned());
        // An HMAC "signed" with the public key's bytes, the classic confusion.
        encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(key.jwk.to_string().as_bytes()),
        )
        .expect("signed")
    };
    let good = key.sign("at+jwt", Some("k1"), &claims());
    let altered = {
        let (head, signature) = good.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        bytes[10] ^= 0x01;
        format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("not a JWT", "abc.def".to_owned(), "TOKEN_MALFORMED"),
        (
            "typ JWT",
            key.sign("JWT", Some("k1"), &claims()),
            "TOKEN_TYPE",
        ),
        ("alg none", none, "TOKEN_ALGORITHM"),
        ("HMAC with the public key", hmac, "TOKEN_ALGORITHM"),
        (
            "unknown kid",
            key.sign("at+jwt", Some("k9"), &claims()),
            "UNKNOWN_KEY",
        ),
        ("altered signature", altered, "TOKEN_SIGNATURE"),
        (
            "a key not in the set",
            stranger.sign("at+jwt", Some("k1"), &claims()),
            "TOKEN_SIGNATURE",
        ),
        (
            "TOKEN_EXPIRED",
            with(&|c| {
                c.insert("exp".into(), json!(NOW - 61));
            }),
            "TOKEN_EXPIRED",
        ),
        (
            "not yet valid",
            with(&|c| {
                c.insert("nbf".into(), json!(NOW + 61));
            }),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "issued in the future",
            with(&|c| {
                c.insert("iat".into(), json!(NOW + 61));
            }),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "other issuer",
            with(&|c| {
                c.insert("iss".into(), json!("https://evil.example"));
            }),
            "TOKEN_ISSUER",
        ),
        (
            "other audience",
            with(&|c| {
                c.insert("aud".into(), json!("another.api"));
            }),
            "AUDIENCE",
        ),
        (
            "no client_id",
            with(&|c| {
                c.remove("client_id");
            }),
            "TOKEN_CLAIM_MISSING",
        ),
        (
            "no exp",
            with(&|c| {
                c.remove("exp");
            }),
            "TOKEN_CLAIM_MISSING",
        ),
        (
            "exp a string",
            with(&|c| {
                c.insert("exp".into(), json!("soon"));
            }),
            "TOKEN_MALFORMED",
        ),
    ];
    for (what, token, reason) in cases {
        let authorization = format!("Bearer {token}");
        let got = refusal(
            verifier().verify(&bearer(&authorization), &set, NOW),
            &[&token],
        );
        assert_eq!(
            got,
            ("INVALID_TOKEN".to_owned(), reason.to_owned()),
            "{what}"
        );
    }
    // Within the skew an expired-by-a-little token still passes; fractional dates are read.
    let late = with(&|c| {
        c.insert("exp".into(), json!(NOW - 59));
    });
    assert!(
        verifier()
            .verify(&bearer(&format!("Bearer {late}")), &set, NOW)
            .is_ok()
    );
    let fractional = with(&|c| {
        c.insert("exp".into(), json!(NOW as f64 + 10.5));
    });
    assert!(
        verifier()
            .verify(&bearer(&format!("Bearer {fractional}")), &set, NOW)
            .is_ok()
    );
}

#[test]
fn a_dpop_bound_token_needs_a_proof_of_this_request_by_its_key() {
    let issuer = TestKey::new("k1");
    let holder = TestKey::new("holder");
    let other = TestKey::new("other");
    let set = keys(&[&issuer]);
    let mut bound = claims();
    bound["cnf"] = json!({"jkt": holder.thumbprint()});
    let token = issuer.sign("at+jwt", Some("k1"), &bound);
    let authorization = format!("DPoP {token}");
    let request = |proofs: &[&str]| -> Result<VerifiedCaller, VerifyError> {
        verifier().verify(
            &Presented {
                authorization: &authorization,
                dpop: proofs,
                method: "GET",
                url: "https://Secrets.Example:443/v1/read?x=1",
                client_certificate: None,
            },
            &set,
            NOW,
        )
    };
    let proof = holder.prove(&proof_claims(&token));
    let caller = request(&[&proof]).expect("verified");
    let ctx = caller.context();
    assert_eq!(
        ctx.token_jti,
        Some(format!("dpop:{}:{PROOF_JTI}", holder.thumbprint())),
        "the proof's jti, one per request"
    );
    assert_eq!(ctx.cnf_jkt.as_deref(), Some(holder.thumbprint().as_str()));

    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = proof_claims(&token);
        if let Some(object) = c.as_object_mut() {
            f(object);
        }
        holder.prove(&c)
    };
    let mut private = holder.public_jwk();
    private["d"] = json!("AAAA");
    let mut wrong_typ_header = json!({"typ": "jwt", "alg": "ES256", "jwk": holder.public_jwk()});
    let wrong_typ = {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(wrong_typ_header.to_string()),
            URL_SAFE_NO_PAD.encode(proof_claims(&token).to_string())
        );
        wrong_typ_header = Value::Null;
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &holder.encoding, Algorithm::ES256)
                .expect("signed");
        format!("{input}.{signature}")
    };
    assert!(wrong_typ_header.is_null());
    let cases: Vec<(&str, Vec<String>, (&str, &str))> = vec![
        (
            "no proof",
            vec![],
            ("INVALID_DPOP_PROOF", "PROOF_MALFORMED"),
        ),
        (
            "two proofs",
            vec![proof.clone(), proof.clone()],
            ("INVALID_DPOP_PROOF", "PROOF_MALFORMED"),
        ),
        (
            "typ jwt",
            vec![wrong_typ],
            ("INVALID_DPOP_PROOF", "PROOF_TYPE"),
        ),
        (
            "another method",
            vec![with(&|c| {
                c.insert("htm".into(), json!("POST"));
            })],
            ("INVALID_DPOP_PROOF", "PROOF_METHOD"),
        ),
        (
            "another URL",
            vec![with(&|c| {
                c.insert("htu".into(), json!("https://secrets.example/v1/other"));
            })],
            ("INVALID_DPOP_PROOF", "PROOF_URL"),
        ),
        (
            "a stale iat",
            vec![with(&|c| {
                c.insert("iat".into(), json!(NOW - 61));
            })],
            ("INVALID_DPOP_PROOF", "PROOF_STALE"),
        ),
        (
            "an iat ahead",
            vec![with(&|c| {
                c.insert("iat".into(), json!(NOW + 6));
            })],
            ("INVALID_DPOP_PROOF", "PROOF_STALE"),
        ),
        (
            "another token's ath",
            vec![with(&|c| {
                c.insert("ath".into(), json!(access_token_hash("other")));
            })],
            ("INVALID_DPOP_PROOF", "PROOF_ATH"),
        ),
        (
            "no jti",
            vec![with(&|c| {
                c.remove("jti");
            })],
            ("INVALID_DPOP_PROOF", "PROOF_CLAIM_MISSING"),
        ),
        (
            "a private key in the header",
            vec![holder.prove_with_jwk(&private, &proof_claims(&token))],
            ("INVALID_DPOP_PROOF", "PROOF_KEY"),
        ),
        (
            "signed by a key other than its header's",
            vec![other.prove_with_jwk(&holder.public_jwk(), &proof_claims(&token))],
            ("INVALID_DPOP_PROOF", "PROOF_SIGNATURE"),
        ),
        (
            "a valid proof by another key",
            vec![other.prove(&proof_claims(&token))],
            ("BINDING_DRIFT", "drift"),
        ),
    ];
    for (what, proofs, (code, reason)) in cases {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let mut secrets: Vec<&str> = refs.clone();
        secrets.push(&token);
        let got = refusal(request(&refs), &secrets);
        assert_eq!(got, (code.to_owned(), reason.to_owned()), "{what}");
    }
    // The bound token as a bearer token (a downgrade), and a DPoP request with an unbound one.
    let as_bearer = format!("Bearer {token}");
    let got = refusal(verifier().verify(&bearer(&as_bearer), &set, NOW), &[&token]);
    assert_eq!(got, ("BINDING_DRIFT".to_owned(), "drift".to_owned()));
    let unbound = issuer.sign("at+jwt", Some("k1"), &claims());
    let unbound_dpop = format!("DPoP {unbound}");
    let unbound_proof = holder.prove(&proof_claims(&unbound));
    let got = refusal(
        verifier().verify(
            &Presented {
                authorization: &unbound_dpop,
                dpop: &[&unbound_proof],
                method: "GET",
                url: URL,
                client_certificate: None,
            },
            &set,
            NOW,
        ),
        &[&unbound],
    );
    assert_eq!(got, ("BINDING_DRIFT".to_owned(), "drift".to_owned()));
}

#[test]
fn a_certificate_bound_token_needs_its_certificate() {
    let issuer = TestKey::new("k1");
    let set = keys(&[&issuer]);
    let certificate = b"a DER certificate, as the TLS layer handed it over".as_slice();
    let mut bound = claims();
    bound["cnf"] = json!({"x5t#S256": secret_pep::certificate_thumbprint(certificate)});
    let token = issuer.sign("at+jwt", Some("k1"), &bound);
    let authorization = format!("Bearer {token}");
    let with_cert = |cert: Option<&[u8]>| {
        verifier().verify(
            &Presented {
                client_certificate: cert,
                ..bearer(&authorization)
            },
            &set,
            NOW,
        )
    };
    let caller = with_cert(Some(certificate)).expect("verified");
    assert!(caller.context().mtls_thumbprint.is_some());
    for cert in [None, Some(b"another certificate".as_slice())] {
        let got = refusal(with_cert(cert), &[&token]);
        assert_eq!(got, ("BINDING_DRIFT".to_owned(), "drift".to_owned()));
    }
}

#[test]
fn key_sets_keep_only_public_signing_keys() {
    let key = TestKey::new("k1");
    let mut enc = TestKey::new("enc").jwk;
    enc["use"] = json!("enc");
    let mut private = TestKey::new("private").jwk;
    private["d"] = json!("AAAA");
    let oct = json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"});
    let set = json!({"keys": [key.jwk.clone(), enc, private, oct, {"kty": "EC", "crv": "P-521"}]});
    let parsed = KeySet::from_json(&set.to_string()).expect("one usable key");
    assert_eq!(parsed.len(), 1);
    assert!(parsed.has("k1") && !parsed.has("hmac") && !parsed.has("enc"));
    for bad in [
        "",
        "[]",
        r#"{"keys":[]}"#,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
        r#"{"keys":{}}"#,
    ] {
        assert!(KeySet::from_json(bad).is_none(), "{bad}");
    }
    let many = json!({"keys": vec![key.jwk.clone(); 65]});
    assert!(KeySet::from_json(&many.to_string()).is_none());
}

#[test]
fn policies_refuse_symmetric_algorithms_and_wide_windows() {
    let policy = AccessTokenPolicy::new(ISSUER, AUDIENCE);
    for algorithms in [
        &[][..],
        &[Algorithm::HS256][..],
        &[Algorithm::ES256, Algorithm::HS512][..],
    ] {
        let error = policy.clone().with_algorithms(algorithms).err();
        assert_eq!(
            error.and_then(|e| e.setting()),
            Some("algorithms"),
            "{algorithms:?}"
        );
    }
    assert_eq!(
        policy
            .clone()
            .with_skew_s(301)
            .err()
            .and_then(|e| e.setting()),
        Some("skew")
    );
    assert!(policy.with_skew_s(300).is_ok());
    for (age, skew) in [(0, 0), (301, 0), (60, 61)] {
        let error = DpopPolicy::default().with_window(age, skew).err();
        assert_eq!(
            error.and_then(|e| e.setting()),
            Some("dpop_window"),
            "{age} {skew}"
        );
    }
    assert_eq!(DpopPolicy::default().lifetime_s(), 65);
}

/// A token presented again within a minute is not verified again but its expiry is; after a
/// minute it is verified again against the current keys (a withdrawn key stops verifying).
#[test]
fn a_token_seen_before_is_trusted_for_a_minute_and_its_expiry_always_checked() {
    let key = TestKey::new("k1");
    let other = TestKey::new("k2");
    let (with_key, without_key) = (keys(&[&key]), keys(&[&other]));
    let token = key.sign("at+jwt", Some("k1"), &claims());
    let authorization = format!("Bearer {token}");
    let seeing = verifier();
    assert!(
        seeing
            .verify(&bearer(&authorization), &with_key, NOW)
            .is_ok()
    );
    // The key was withdrawn: within the minute the token still passes, after it, it does not.
    assert!(
        seeing
            .verify(&bearer(&authorization), &without_key, NOW + 59)
            .is_ok()
    );
    let got = refusal(
        seeing.verify(&bearer(&authorization), &without_key, NOW + 60),
        &[&token],
    );
    assert_eq!(got, ("INVALID_TOKEN".to_owned(), "UNKNOWN_KEY".to_owned()));
    // A clone shares what was seen; a fresh verifier has seen nothing.
    let strict = Verifier::new(
        AccessTokenPolicy::new(ISSUER, AUDIENCE)
            .with_skew_s(0)
            .expect("a skew"),
        DpopPolicy::default(),
    );
    let mut short = claims();
    short["exp"] = json!(NOW + 10);
    let short = key.sign("at+jwt", Some("k1"), &short);
    let authorization = format!("Bearer {short}");
    assert!(
        strict
            .verify(&bearer(&authorization), &with_key, NOW)
            .is_ok()
    );
    let clone = strict.clone();
    assert!(
        clone
            .verify(&bearer(&authorization), &without_key, NOW + 10)
            .is_ok()
    );
    let got = refusal(
        clone.verify(&bearer(&authorization), &with_key, NOW + 11),
        &[&short],
    );
    assert_eq!(
        got,
        ("INVALID_TOKEN".to_owned(), "TOKEN_EXPIRED".to_owned())
    );
    assert!(
        verifier()
            .verify(&bearer(&authorization), &without_key, NOW + 5)
            .is_err()
    );
}

/// Found by review: what a verifier cannot enforce is refused, not ignored. A `cnf` of another
/// method (or empty) would have made a bound token a bearer one; a critical header extension
/// or an unencoded payload must be refused; a key published for one algorithm verifies only
/// that one; and `Debug` of what was presented holds no credential.
#[test]
fn what_cannot_be_enforced_is_refused() {
    let key = TestKey::new("k1");
    let set = keys(&[&key]);
    for cnf in [
        json!({"jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}}),
        json!({"kid": "client-key"}),
        json!({"x5t": "sha1-thumbprint"}),
        json!({}),
        json!({"jkt": "a", "jku": "https://evil.example/keys"}),
    ] {
        let mut c = claims();
        c["cnf"] = cnf.clone();
        let token = key.sign("at+jwt", Some("k1"), &c);
        let got = refusal(
            verifier().verify(&bearer(&format!("Bearer {token}")), &set, NOW),
            &[&token],
        );
        assert_eq!(
            got,
            ("BINDING_DRIFT".to_owned(), "drift".to_owned()),
            "{cnf}"
        );
    }
    for extra in [
        json!({"crit": ["urn:x"], "urn:x": true}),
        json!({"crit": ["b64"], "b64": false}),
        json!({"b64": true}),
    ] {
        let mut header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"});
        if let (Some(h), Some(e)) = (header.as_object_mut(), extra.as_object()) {
            h.extend(e.clone());
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, Algorithm::ES256)
                .expect("signed");
        let token = format!("{input}.{signature}");
        let got = refusal(
            verifier().verify(&bearer(&format!("Bearer {token}")), &set, NOW),
            &[&token],
        );
        assert_eq!(
            got,
            ("INVALID_TOKEN".to_owned(), "TOKEN_MALFORMED".to_owned()),
            "{extra}"
        );
    }
    let mut es384 = key.jwk.clone();
    es384["alg"] = json!("ES384");
    let declared = KeySet::from_json(&json!({"keys": [es384]}).to_string()).expect("a key set");
    let token = key.sign("at+jwt", Some("k1"), &claims());
    let authorization = format!("Bearer {token}");
    let got = refusal(
        verifier().verify(&bearer(&authorization), &declared, NOW),
        &[&token],
    );
    assert_eq!(
        got,
        ("INVALID_TOKEN".to_owned(), "TOKEN_ALGORITHM".to_owned())
    );
    let mut es256 = key.jwk.clone();
    es256["alg"] = json!("ES256");
    let declared = KeySet::from_json(&json!({"keys": [es256]}).to_string()).expect("a key set");
    assert!(
        verifier()
            .verify(&bearer(&authorization), &declared, NOW)
            .is_ok()
    );
    let shown = format!("{:?}", bearer(&authorization));
    assert!(
        !shown.contains(&token) && shown.contains("Bearer"),
        "{shown}"
    );
    // A value without a scheme may be the token itself (found by the leak suite).
    let shown = format!("{:?}", bearer(&token));
    assert!(!shown.contains(&token), "{shown}");
}

/// The size limits: a token or proof over 16 KiB is refused unread, a proof `jti` over 256
/// bytes is refused (the replay store keeps every `jti`), and a key set over 64 keys too.
#[test]
fn oversized_inputs_are_refused() {
    let key = TestKey::new("k1");
    let set = keys(&[&key]);
    let mut big = claims();
    big["padding"] = json!("x".repeat(17 * 1024));
    let token = key.sign("at+jwt", Some("k1"), &big);
    let got = refusal(
        verifier().verify(&bearer(&format!("Bearer {token}")), &set, NOW),
        &[&token],
    );
    assert_eq!(
        got,
        ("INVALID_TOKEN".to_owned(), "TOKEN_MALFORMED".to_owned())
    );

    let holder = TestKey::new("holder");
    let mut bound = claims();
    bound["cnf"] = json!({"jkt": holder.thumbprint()});
    let token = key.sign("at+jwt", Some("k1"), &bound);
    let authorization = format!("DPoP {token}");
    for (jti, reason) in [
        ("j".repeat(256), None),
        ("j".repeat(257), Some("PROOF_CLAIM_MISSING")),
    ] {
        let mut c = proof_claims(&token);
        c["jti"] = json!(jti);
        let proof = holder.prove(&c);
        let result = verifier().verify(
            &Presented {
                authorization: &authorization,
                dpop: &[&proof],
                method: "GET",
                url: URL,
                client_certificate: None,
            },
            &set,
            NOW,
        );
        match reason {
            None => assert!(result.is_ok(), "a 256-byte jti is accepted"),
            Some(reason) => {
                let got = refusal(result, &[&proof]);
                assert_eq!(got, ("INVALID_DPOP_PROOF".to_owned(), reason.to_owned()));
            }
        }
    }
}
