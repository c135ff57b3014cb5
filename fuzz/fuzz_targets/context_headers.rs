//! Arbitrary gateway headers never panic the context reader: every header is either read
//! (trimmed, never empty) or refused with `BAD_CONTEXT` naming a header, never its value.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use secret_pep::{ContextHeaders, headers};

/// The names the fuzzer may pick by index, so repeats and mixes are likely.
const NAMES: [&str; 14] = [
    headers::SUBJECT,
    headers::AUD,
    headers::JTI,
    headers::CNF_JKT,
    headers::MTLS_THUMBPRINT,
    headers::ISSUER,
    headers::CLIENT_ID,
    headers::CORRELATION_ID,
    headers::ROLES,
    headers::EXP,
    headers::WORKFLOW_RUN_ID,
    headers::NODE_ID,
    headers::SYSTEM_ID,
    "x-unrelated",
];

fuzz_target!(|data: &[u8]| {
    // Records: one byte of name index, one byte of length, then the value bytes.
    let mut map = HeaderMap::new();
    let mut rest = data;
    while let [index, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (value, next) = tail.split_at(len);
        rest = next;
        let name = HeaderName::from_static(NAMES[usize::from(*index) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name, value);
        }
    }
    let contracts = [
        ContextHeaders::original(),
        ContextHeaders::original()
            .trust_all("x-roles,x-exp,x-workflow-run-id,x-node-id,x-system-id")
            .expect("the opt-in names are accepted"),
    ];
    for contract in contracts {
        match contract.read(&map) {
            Ok(ctx) => {
                for value in [&ctx.subject, &ctx.token_jti, &ctx.issuer, &ctx.client_id] {
                    assert!(
                        value
                            .as_deref()
                            .is_none_or(|v| !v.is_empty() && v.trim() == v)
                    );
                }
                assert!(ctx.aud.iter().chain(&ctx.roles).all(|v| !v.is_empty()));
                let _ = format!("{ctx:?}");
            }
            Err(error) => {
                assert_eq!(error.code(), "BAD_CONTEXT");
                let shown = error.to_string();
                assert!(NAMES.iter().any(|name| shown.contains(name)), "{shown}");
            }
        }
    }
});
