//! Arbitrary credentials never panic the verifier: an `Authorization` value, `DPoP` proofs, a
//! URL and a JWK Set, each from the input, end in a verified caller or a refusal with a stable
//! code whose message holds none of the token or proof text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secret_verify::{AccessTokenPolicy, DpopPolicy, KeySet, Presented, Verifier};

/// A P-256 key (the RFC 7638 example's), for inputs whose own key set does not parse.
const FALLBACK: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
  "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
  "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}"#;

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xFF (never in UTF-8): key set, authorization, url, proofs…
    let fields: Vec<String> = data
        .split(|b| *b == 0xFF)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let field = |i: usize| fields.get(i).map_or("", String::as_str);
    let keys = KeySet::from_json(field(0))
        .or_else(|| KeySet::from_json(FALLBACK))
        .expect("the fallback key set parses");
    let proofs: Vec<&str> = fields.iter().skip(3).map(String::as_str).collect();
    let verifier = Verifier::new(
        AccessTokenPolicy::new("https://issuer.example", "crud.secrets"),
        DpopPolicy::default(),
    );
    let presented = Presented {
        authorization: field(1),
        dpop: &proofs,
        method: "GET",
        url: field(2),
        client_certificate: (data.len() % 2 == 0).then_some(data),
    };
    if let Err(error) = verifier.verify(&presented, &keys, 1_800_000_000) {
        assert!(
            ["INVALID_TOKEN", "INVALID_DPOP_PROOF", "BINDING_DRIFT"].contains(&error.code()),
            "{}",
            error.code()
        );
        // Refusals are built from fixed words only, none with a '.': an input with one (every
        // JWT has two) found in the text was copied there.
        let text = format!("{error} {error:?}");
        assert!(!text.contains('.'), "{text}");
        for secret in std::iter::once(field(1)).chain(proofs.iter().copied()) {
            if secret.contains('.') {
                assert!(!text.contains(secret), "a refusal holds its input");
            }
        }
    }
});
