//! The URI and server-fault cases every client is driven through: one bad URI of each error
//! class (each naming the canary path), and scripted vault and PDP replies that echo every
//! canary back in their bodies, as a server that quotes the request in its errors would.

use std::time::Duration;

use secrets_test_support::Fault;
use serde_json::{Value, json};

use super::run::Expect;
use crate::common::kv2::lookup_never_expires;
use crate::common::leak::{FILE, JTI, SEGMENT, SUBJECT, TOKEN, VALUE};

/// One bad URI of each parser error class on `scheme://mount`, with its code.
pub(crate) fn bad_uris(scheme: &str, mount: &str) -> Vec<(String, &'static str)> {
    let (s, m) = (scheme, mount);
    vec![
        (format!("{s}:/{m}/{SEGMENT}/{FILE}"), "ILLEGAL_SEGMENT"),
        (format!("://{m}/{SEGMENT}/{FILE}"), "ILLEGAL_SEGMENT"),
        (format!("{s}://{m}/{SEGMENT}/../{FILE}"), "ILLEGAL_SEGMENT"),
        (format!("{s}://{m}/{SEGMENT}%2f{FILE}"), "ILLEGAL_SEGMENT"),
        (format!("{s}://{m}/{SEGMENT}//{FILE}"), "ILLEGAL_SEGMENT"),
        (format!("{s}://{m}/{SEGMENT}/./{FILE}"), "ILLEGAL_SEGMENT"),
        (format!("{s}://{m}/{SEGMENT}/{FILE} x"), "ILLEGAL_SEGMENT"),
        (format!("{s}://{m}/{SEGMENT}/{FILE}\n"), "ILLEGAL_SEGMENT"),
        (
            format!("{s}://{m}/{SEGMENT}/{FILE}\u{7f}"),
            "ILLEGAL_SEGMENT",
        ),
        (
            format!("{s}://{m}/{SEGMENT}/{FILE}\u{e9}"),
            "ILLEGAL_SEGMENT",
        ),
        (
            format!("{s}://{m}/{SEGMENT}/{FILE}#a#{FILE}"),
            "ILLEGAL_SEGMENT",
        ),
        (
            format!("{s}://{m}/{SEGMENT}/{FILE}?={FILE}"),
            "ILLEGAL_SEGMENT",
        ),
        (format!("{s}://{m}/{SEGMENT}/*"), "INVALID_WILDCARD"),
        (format!("{s}://{m}/{SEGMENT}/{FILE}*"), "INVALID_WILDCARD"),
        (
            format!("{s}://{m}/{SEGMENT}/{FILE}?x=1&x={FILE}"),
            "AMBIGUOUS_QUERY",
        ),
        (
            format!("{s}://{m}/{SEGMENT}/{FILE}?mount={SEGMENT}"),
            "DOUBLE_MOUNT_SOURCE",
        ),
        (
            format!("openbao+kv9://{m}/{SEGMENT}/{FILE}"),
            "UNSUPPORTED_ENGINE",
        ),
        (
            format!("vault://{m}/{SEGMENT}/{FILE}"),
            "UNSUPPORTED_ENGINE",
        ),
        (
            format!("openbao+://{m}/{SEGMENT}/{FILE}"),
            "UNSUPPORTED_ENGINE",
        ),
        (
            format!("openbao+kv2://{m}/{SEGMENT}/{FILE}?version=007"),
            "INVALID_VERSION",
        ),
        (
            format!("openbao+kv2://{m}/{SEGMENT}/{FILE}?version={FILE}"),
            "INVALID_VERSION",
        ),
        (
            format!("{s}://other/{SEGMENT}/{FILE}"),
            "TENANT_MOUNT_MISMATCH",
        ),
    ]
}

/// An error body quoting every canary (a server echoing the request and its data).
pub(crate) fn echo_body() -> Value {
    json!({"errors": [echo_text()]})
}

/// The text [`echo_body`] holds.
pub(crate) fn echo_text() -> String {
    format!(
        "permission denied: token {TOKEN} (jti {JTI}-echo, subject {SUBJECT}) may not read \
         secret/data/{SEGMENT}/{FILE}, whose value is {VALUE}"
    )
}

/// Scripted vault replies (after a `lookup-self` that works, unless the case is about it),
/// with the code each must end in.
pub(crate) fn vault_faults() -> Vec<(&'static str, Vec<Fault>, Expect)> {
    let ok = lookup_never_expires;
    let kv_json = |body: Value| Fault::json(200, &body);
    vec![
        (
            "accepts and never answers",
            vec![ok(), Fault::Hang],
            Expect::Code("TIMEOUT"),
        ),
        (
            "closes the connection",
            vec![ok(), Fault::Close],
            Expect::Code("UNAVAILABLE"),
        ),
        (
            "500 echoing the canaries",
            vec![ok(), Fault::json(500, &echo_body())],
            Expect::Code("UNAVAILABLE"),
        ),
        (
            "429 echoing the canaries",
            vec![ok(), Fault::json(429, &echo_body())],
            Expect::Code("UNAVAILABLE"),
        ),
        (
            "400 echoing the canaries",
            vec![ok(), Fault::json(400, &echo_body())],
            Expect::Code("UNEXPECTED_STATUS"),
        ),
        (
            "401 as text",
            vec![ok(), Fault::text(401, &echo_text())],
            Expect::OneOf(&["UNEXPECTED_STATUS", "AUTH_FAILED"]),
        ),
        (
            "403 echoing the canaries",
            vec![ok(), Fault::json(403, &echo_body())],
            Expect::OneOf(&["PERMISSION_DENIED", "AUTH_FAILED"]),
        ),
        (
            "404 echoing the canaries",
            vec![ok(), Fault::json(404, &echo_body())],
            Expect::Code("NOT_FOUND"),
        ),
        (
            "302 to a URL with the canaries",
            vec![
                ok(),
                Fault::Respond {
                    status: 302,
                    headers: vec![(
                        "Location".into(),
                        format!("http://127.0.0.1:1/v1/secret/data/{SEGMENT}/{FILE}?token={TOKEN}"),
                    )],
                    body: echo_text().into_bytes(),
                },
            ],
            Expect::Code("UNEXPECTED_STATUS"),
        ),
        (
            "200 whose data is the value",
            vec![ok(), kv_json(json!({"data": {"data": VALUE}}))],
            Expect::Code("MALFORMED_RESPONSE"),
        ),
        (
            "200 with a canary where the metadata goes",
            vec![
                ok(),
                kv_json(
                    json!({"data": {"data": {"token": VALUE}, "metadata": {"version": VALUE, "destroyed": TOKEN}}}),
                ),
            ],
            Expect::Code("MALFORMED_RESPONSE"),
        ),
        (
            "200 that is not JSON",
            vec![ok(), Fault::text(200, &echo_text())],
            Expect::Code("MALFORMED_RESPONSE"),
        ),
        (
            "200 cut off mid-body",
            vec![
                ok(),
                Fault::Truncated {
                    declared_len: 4096,
                    body: json!({"data": {"data": {"token": VALUE}}})
                        .to_string()
                        .into_bytes()[..30]
                        .to_vec(),
                },
            ],
            Expect::OneOf(&["UNAVAILABLE", "MALFORMED_RESPONSE"]),
        ),
        (
            "200 larger than the cap",
            vec![
                ok(),
                Fault::Huge {
                    len: 8 * 1024 * 1024,
                },
            ],
            Expect::Code("TOO_LARGE"),
        ),
        (
            "slow, then 500",
            vec![
                ok(),
                Fault::delay(Duration::from_millis(100), Fault::json(500, &echo_body())),
            ],
            Expect::Code("UNAVAILABLE"),
        ),
        (
            "lookup-self refused with the canaries",
            vec![Fault::json(403, &echo_body())],
            Expect::OneOf(&["AUTH_FAILED", "PERMISSION_DENIED"]),
        ),
        (
            "lookup-self answering the canaries",
            vec![
                Fault::json(
                    200,
                    &json!({"data": {"id": TOKEN, "ttl": VALUE, "renewable": TOKEN, "policies": [SEGMENT]}}),
                ),
                Fault::json(403, &echo_body()),
            ],
            Expect::OneOf(&["AUTH_FAILED", "PERMISSION_DENIED"]),
        ),
    ]
}
