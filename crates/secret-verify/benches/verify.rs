//! What verifying a caller costs: an ES256 access token and its DPoP proof, keys warm.
//!
//! - `verify_token_and_proof`: [`Verifier::verify`] of a DPoP-bound token the verifier has not
//!   seen and a proof of the request (two P-256 signatures, the claims, the binding): a
//!   client's first request with a token.
//! - `verify_token_and_proof_seen`: the same token again with a fresh proof each time (one
//!   signature: the token is remembered for a minute), as a client's later requests are.
//! - `verify_token`: a bearer token not seen before (one signature).
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
    /// (`DPoP <token>`, proof) pairs of distinct tokens, each verified once.
    fresh: Vec<(String, String)>,
    /// One token and distinct proofs of it.
    seen: (String, Vec<String>),
    /// Distinct bearer tokens.
    bearers: Vec<String>,
    floor_message: Vec<u8>,
    floor_signature: Vec<u8>,
    floor_key: Vec<u8>,
}

fn fixture() -> Fixture {
    let (issuer, holder) = (key(), key());
    let mut jwk = issuer.jwk.clone();
    jwk["kid"] = json!("k1");
    let keys = KeySet::from_json(&json!({"keys": [jwk]}).to_string()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some("k1".to_owned());
    let thumbprint = secret_pep::jwk_thumbprint(&holder.jwk.to_string()).unwrap();
    let token = |i: usize, cnf: bool| {
        let mut c = json!({"iss": "https://issuer.example", "sub": "svc", "aud": "crud.secrets",
            "client_id": "svc", "exp": NOW + 300, "iat": NOW, "jti": format!("t-{i}"), "scope": "read"});
        if cnf {
            c["cnf"] = json!({"jkt": thumbprint});
        }
        encode(&header, &c, &issuer.encoding).unwrap()
    };
    let proof = |token: &str, i: usize| {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": holder.jwk});
        let claims = json!({"htm": "GET", "htu": URL, "iat": NOW, "jti": format!("p-{i}"),
            "ath": access_token_hash(token)});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &holder.encoding, Algorithm::ES256)
                .unwrap();
        format!("{input}.{signature}")
    };
    let runs = SAMPLES + SAMPLES / 10;
    let fresh = (0..runs)
        .map(|i| {
            let t = token(i, true);
            let p = proof(&t, i);
            (format!("DPoP {t}"), p)
        })
        .collect();
    let reused = token(usize::MAX, true);
    let seen = (
        format!("DPoP {reused}"),
        (0..runs).map(|i| proof(&reused, runs + i)).collect(),
    );
    let bearers = (0..runs)
        .map(|i| format!("Bearer {}", token(2 * runs + i, false)))
        .collect();
    let floor_token = token(0, false);
    let (floor_message, _) = floor_token.rsplit_once('.').unwrap();
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
        fresh,
        seen,
        bearers,
        floor_message: floor_message.as_bytes().to_vec(),
        floor_signature: floor_signature.as_ref().to_vec(),
        floor_key: issuer.pair.public_key().as_ref().to_vec(),
    }
}

impl Fixture {
    /// One request's verification: `authorization` with these `DPoP` proofs.
    fn check(&self, authorization: &str, proofs: &[&str]) {
        let presented = Presented {
            authorization,
            dpop: proofs,
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

    fn with_proof(&self, i: usize) {
        let (authorization, proof) = &self.fresh[i % self.fresh.len()];
        self.check(authorization, &[proof]);
    }

    fn with_proof_seen(&self, i: usize) {
        let proofs = &self.seen.1;
        self.check(&self.seen.0, &[&proofs[i % proofs.len()]]);
    }

    fn bearer(&self, i: usize) {
        self.check(&self.bearers[i % self.bearers.len()], &[]);
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
        // Criterion runs many more iterations than there are fresh tokens: past them, the
        // first scenario measures seen tokens too. The JSON run below keeps them apart.
        let mut criterion = criterion::Criterion::default().configure_from_args();
        let mut i = 0;
        criterion.bench_function("verify_token_and_proof_seen", |b| {
            b.iter(|| {
                i += 1;
                fx.with_proof_seen(i);
            });
        });
        criterion.bench_function("floor_p256_verify", |b| b.iter(|| fx.floor()));
        criterion.final_summary();
        return;
    };
    let warmup = SAMPLES / 10;
    for i in 0..warmup {
        fx.with_proof(i);
        fx.with_proof_seen(i);
        fx.bearer(i);
        fx.floor();
    }
    let mut scenarios: [Latencies; 4] = std::array::from_fn(|_| Latencies::with_capacity(SAMPLES));
    for i in warmup..warmup + SAMPLES {
        let started = Instant::now();
        fx.with_proof(i);
        scenarios[0].push(started.elapsed());
        let started = Instant::now();
        fx.with_proof_seen(i);
        scenarios[1].push(started.elapsed());
        let started = Instant::now();
        fx.bearer(i);
        scenarios[2].push(started.elapsed());
        let started = Instant::now();
        fx.floor();
        scenarios[3].push(started.elapsed());
    }
    let names = [
        "verify_token_and_proof",
        "verify_token_and_proof_seen",
        "verify_token",
        "floor_p256_verify",
    ];
    for (scenario, name) in scenarios.iter().zip(names) {
        append(&path, &scenario.json_line(name)).unwrap();
    }
    let floor = scenarios[3].quantile_us(0.5);
    println!(
        "p50 / floor_p256_verify p50: verify_token_and_proof {:.2} (two signatures: 2.0 is the floor), verify_token_and_proof_seen {:.2}, verify_token {:.2} (one: 1.0)",
        scenarios[0].quantile_us(0.5) / floor,
        scenarios[1].quantile_us(0.5) / floor,
        scenarios[2].quantile_us(0.5) / floor,
    );
}
