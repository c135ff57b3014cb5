//! What verifying a caller costs: an ES256 access token and its DPoP proof, keys warm.
//!
//! - `verify_token_and_proof`: [`Verifier::verify`] of a DPoP-bound token and a proof of the
//!   request (two P-256 signatures, the claims, the binding), as a `DPoP` request is checked.
//! - `verify_token`: the same for a bearer token (one signature).
//! - `floor_p256_verify`: one bare P-256 ECDSA verification by ring of a message as long as
//!   the token's signing input, the least any verifier of an ES256 token pays.
//!
//! With `SECRETS_BENCH_JSON=<path>` (as `cargo xtask bench` sets it) each scenario appends
//! `{"scenario":…,"p50_us":…,"p99_us":…,"n":…}` and the ratio to the floor is printed; without
//! it the scenarios run as criterion benchmarks. Aim: `verify_token_and_proof` ≤ 100 µs.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use secret_verify::{
    AccessTokenPolicy, Algorithm, DpopPolicy, KeySet, Presented, Verifier, access_token_hash,
};
use secrets_test_support::bench::{Latencies, append, json_path};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;
const URL: &str = "https://secrets.example/v1/read";
const SAMPLES: usize = 5_000;

struct Key {
    pair: EcdsaKeyPair,
    encoding: EncodingKey,
    jwk: Value,
}

fn key() -> Key {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    Key {
        pair,
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}),
    }
}

struct Fixture {
    verifier: Verifier,
    keys: KeySet,
    bound: String,
    proof: String,
    bearer: String,
    floor_message: Vec<u8>,
    floor_signature: Vec<u8>,
    floor_key: Vec<u8>,
}

fn fixture() -> Fixture {
    let (issuer, holder) = (key(), key());
    let mut jwk = issuer.jwk.clone();
    jwk["kid"] = json!("k1");
    let keys = KeySet::from_json(&json!({"keys": [jwk]}).to_string()).unwrap();
    let claims = |cnf: Option<Value>| {
        let mut c = json!({"iss": "https://issuer.example", "sub": "svc", "aud": "crud.secrets",
            "client_id": "svc", "exp": NOW + 300, "iat": NOW, "jti": "t-1", "scope": "read"});
        if let Some(cnf) = cnf {
            c["cnf"] = cnf;
        }
        c
    };
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some("k1".to_owned());
    let thumbprint = secret_pep::jwk_thumbprint(&holder.jwk.to_string()).unwrap();
    let token = encode(
        &header,
        &claims(Some(json!({"jkt": thumbprint}))),
        &issuer.encoding,
    )
    .unwrap();
    let bearer = encode(&header, &claims(None), &issuer.encoding).unwrap();
    let proof_header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": holder.jwk});
    let proof_claims = json!({"htm": "GET", "htu": URL, "iat": NOW, "jti": "p-1",
        "ath": access_token_hash(&token)});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(proof_header.to_string()),
        URL_SAFE_NO_PAD.encode(proof_claims.to_string())
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &holder.encoding, Algorithm::ES256).unwrap();
    let (floor_message, _) = token.rsplit_once('.').unwrap();
    let floor_signature = issuer
        .pair
        .sign(&SystemRandom::new(), floor_message.as_bytes())
        .unwrap();
    Fixture {
        verifier: Verifier::new(
            AccessTokenPolicy::new("https://issuer.example", "crud.secrets"),
            DpopPolicy::default(),
        ),
        keys,
        bound: format!("DPoP {token}"),
        proof: format!("{input}.{signature}"),
        bearer: format!("Bearer {bearer}"),
        floor_message: floor_message.as_bytes().to_vec(),
        floor_signature: floor_signature.as_ref().to_vec(),
        floor_key: issuer.pair.public_key().as_ref().to_vec(),
    }
}

impl Fixture {
    fn with_proof(&self) {
        let proofs = [self.proof.as_str()];
        let presented = Presented {
            authorization: &self.bound,
            dpop: &proofs,
            method: "GET",
            url: URL,
            client_certificate: None,
        };
        black_box(
            self.verifier
                .verify(black_box(&presented), &self.keys, NOW)
                .unwrap(),
        );
    }

    fn bearer(&self) {
        let presented = Presented {
            authorization: &self.bearer,
            dpop: &[],
            method: "GET",
            url: URL,
            client_certificate: None,
        };
        black_box(
            self.verifier
                .verify(black_box(&presented), &self.keys, NOW)
                .unwrap(),
        );
    }

    fn floor(&self) {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.floor_key)
            .verify(black_box(&self.floor_message), &self.floor_signature)
            .unwrap();
    }
}

fn main() {
    let fx = fixture();
    let Some(path) = json_path() else {
        let mut criterion = criterion::Criterion::default().configure_from_args();
        criterion.bench_function("verify_token_and_proof", |b| b.iter(|| fx.with_proof()));
        criterion.bench_function("verify_token", |b| b.iter(|| fx.bearer()));
        criterion.bench_function("floor_p256_verify", |b| b.iter(|| fx.floor()));
        criterion.final_summary();
        return;
    };
    for _ in 0..SAMPLES / 10 {
        fx.with_proof();
        fx.bearer();
        fx.floor();
    }
    let (mut both, mut one, mut floor) = (
        Latencies::with_capacity(SAMPLES),
        Latencies::with_capacity(SAMPLES),
        Latencies::with_capacity(SAMPLES),
    );
    for _ in 0..SAMPLES {
        let started = Instant::now();
        fx.with_proof();
        both.push(started.elapsed());
        let started = Instant::now();
        fx.bearer();
        one.push(started.elapsed());
        let started = Instant::now();
        fx.floor();
        floor.push(started.elapsed());
    }
    append(&path, &both.json_line("verify_token_and_proof")).unwrap();
    append(&path, &one.json_line("verify_token")).unwrap();
    append(&path, &floor.json_line("floor_p256_verify")).unwrap();
    println!(
        "verify_token_and_proof p50 / floor_p256_verify p50 = {:.2} (two signatures: 2.0 is the floor)",
        both.quantile_us(0.5) / floor.quantile_us(0.5)
    );
}
