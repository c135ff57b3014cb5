//! What the database engine and the lease endpoints answer, mapped to credentials and errors.
//!
//! The shapes are those a real OpenBao 2.x returns (HashiCorp Vault shares the API):
//!
//! - `GET <mount>/creds/<role>` → `200 {"lease_id":"<mount>/creds/<role>/…","renewable":true,
//!   "lease_duration":3,"data":{"username":"v-token-app-…","password":"…"}}`.
//! - `GET <mount>/static-creds/<role>` → `200 {"lease_id":"","renewable":false,
//!   "lease_duration":0,"data":{"username":"…","password":"…","ttl":60,
//!   "rotation_period":60,"last_vault_rotation":"…"}}`.
//! - An unknown role: `400 {"errors":["unknown role: app"]}` (creds) or
//!   `400 {"errors":["… not found"]}`; an unknown mount `404`.
//! - `PUT sys/leases/renew` → `200 {"lease_id":…,"lease_duration":N,"warnings":[…]}`, capped
//!   (with a warning) near the role's `max_ttl`; `400 {"errors":["lease not found"]}` (or
//!   `"invalid lease"`) once it expired, was revoked or the vault lost it.
//! - `PUT sys/leases/revoke` → `204`, also for a lease the vault does not know.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::NAME;
use super::lease::{DbLease, LeaseId, Renewal};
use crate::ProviderError;
use crate::value::{SecretValue, WipedMap, wipe};

/// The largest TTL believed (about ten years); a longer one is read as this.
const MAX_TTL_S: u64 = 10 * 365 * 24 * 60 * 60;

#[derive(Deserialize)]
struct CredsEnvelope {
    #[serde(default)]
    lease_id: Option<String>,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    lease_duration: Option<u64>,
    #[serde(default)]
    data: Option<WipedMap>,
}

#[derive(Deserialize)]
struct RenewEnvelope {
    #[serde(default)]
    lease_duration: Option<u64>,
}

#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

/// Which endpoint issued the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Issued {
    /// `creds/<role>`: a fresh user on a lease.
    Dynamic,
    /// `static-creds/<role>`: the static role's current password, no lease.
    Static,
}

fn malformed(status: u16, reason: &'static str) -> ProviderError {
    ProviderError::MalformedResponse {
        provider: NAME,
        status,
        reason,
    }
}

/// Maps the answer to a credentials request.
pub(crate) fn creds_reply(
    issued: Issued,
    mount: &str,
    status: u16,
    body: &[u8],
) -> Result<DbLease, ProviderError> {
    match status {
        200 => {}
        403 => {
            return Err(ProviderError::PermissionDenied {
                provider: NAME,
                mount: mount.to_owned(),
                status: Some(status),
            });
        }
        // The database engine answers an unknown role with 400 and a message; an unknown
        // mount is 404.
        400 | 404 if status == 404 || names_missing_role(body) => {
            return Err(ProviderError::NotFound {
                provider: NAME,
                mount: mount.to_owned(),
                status: Some(status),
            });
        }
        _ => {
            return Err(ProviderError::UnexpectedStatus {
                provider: NAME,
                mount: mount.to_owned(),
                status,
            });
        }
    }
    let mut envelope: CredsEnvelope = serde_json::from_slice(body)
        .map_err(|_| malformed(status, "the body is not the expected JSON"))?;
    let Some(mut data) = envelope.data.take() else {
        return Err(malformed(status, "the response has no `data`"));
    };
    let text = |map: &mut Map<String, Value>, field: &str| match map.remove(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(mut other) => {
            wipe(&mut other);
            Err(malformed(
                status,
                "a credential field is not a non-empty string",
            ))
        }
        None => Err(malformed(
            status,
            "the credentials lack `username` or `password`",
        )),
    };
    let username = text(&mut data.0, "username")?;
    let password = text(&mut data.0, "password")?;
    let lease = envelope
        .lease_id
        .take()
        .filter(|id| !id.is_empty())
        .map(LeaseId::new);
    let ttl_s = match issued {
        Issued::Dynamic => {
            if lease.is_none() {
                return Err(malformed(
                    status,
                    "dynamic credentials came without a lease",
                ));
            }
            let ttl = envelope
                .lease_duration
                .ok_or_else(|| malformed(status, "the response has no `lease_duration`"))?;
            if ttl == 0 {
                // A user that expires as it is made: nothing to hand out or renew.
                return Err(malformed(
                    status,
                    "dynamic credentials came with a lease of no duration",
                ));
            }
            ttl
        }
        Issued::Static => data
            .0
            .get("ttl")
            .and_then(Value::as_u64)
            .or(envelope.lease_duration)
            .unwrap_or(0),
    };
    let ttl_s = ttl_s.min(MAX_TTL_S);
    let mut value = Map::new();
    value.insert("username".to_owned(), Value::String(username));
    value.insert("password".to_owned(), Value::String(password));
    value.insert("ttl".to_owned(), Value::from(ttl_s));
    if let Some(lease) = &lease {
        value.insert(
            "lease_id".to_owned(),
            Value::String(lease.expose().to_owned()),
        );
    }
    Ok(DbLease {
        value: SecretValue::from_object(value),
        renewable: envelope.renewable && lease.is_some(),
        lease,
        ttl: Duration::from_secs(ttl_s),
    })
}

/// The lease id in a body, however malformed the rest: a lease the vault issued with
/// credentials we refuse is revoked.
pub(crate) fn lease_id_of(body: &[u8]) -> Option<LeaseId> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        lease_id: Option<String>,
    }
    serde_json::from_slice::<Only>(body)
        .ok()
        .and_then(|only| only.lease_id)
        .filter(|id| !id.is_empty())
        .map(LeaseId::new)
}

/// Whether a `400` says the role does not exist (`unknown role: …`, `… not found`).
fn names_missing_role(body: &[u8]) -> bool {
    serde_json::from_slice::<Errors>(body).is_ok_and(|e| {
        e.errors.iter().any(|message| {
            let message = message.to_ascii_lowercase();
            message.contains("unknown role") || message.contains("not found")
        })
    })
}

/// Maps the answer to `PUT sys/leases/renew` asking for `increment`.
pub(crate) fn renew_reply(
    increment: Duration,
    status: u16,
    body: &[u8],
) -> Result<Renewal, ProviderError> {
    match status {
        200 => {
            let envelope: RenewEnvelope = serde_json::from_slice(body)
                .map_err(|_| malformed(status, "the body is not the expected JSON"))?;
            let ttl_s = envelope
                .lease_duration
                .ok_or_else(|| malformed(status, "the response has no `lease_duration`"))?
                .min(MAX_TTL_S);
            let ttl = Duration::from_secs(ttl_s);
            // The server warns too ("TTL … exceeded the effective max_ttl"); the duration
            // says the same without parsing prose.
            Ok(Renewal {
                ttl,
                capped: ttl < increment,
            })
        }
        400 | 404 if is_lease_unknown(body) => Err(ProviderError::LeaseNotFound {
            provider: NAME,
            status,
        }),
        _ => Err(sys_refused(status)),
    }
}

/// A `sys/leases` answer that is neither done nor "lease unknown": `403` is
/// `PERMISSION_DENIED`, anything else `UNEXPECTED_STATUS`.
fn sys_refused(status: u16) -> ProviderError {
    let mount = "sys".to_owned();
    if status == 403 {
        ProviderError::PermissionDenied {
            provider: NAME,
            mount,
            status: Some(status),
        }
    } else {
        ProviderError::UnexpectedStatus {
            provider: NAME,
            mount,
            status,
        }
    }
}

/// Maps the answer to `PUT sys/leases/revoke`: `204` (or `200`) is done, for an unknown
/// lease too.
pub(crate) fn revoke_reply(status: u16, body: &[u8]) -> Result<(), ProviderError> {
    match status {
        200 | 204 => Ok(()),
        400 | 404 if is_lease_unknown(body) => Ok(()),
        _ => Err(sys_refused(status)),
    }
}

/// Whether an error body says the lease is unknown (`lease not found`, `invalid lease`).
fn is_lease_unknown(body: &[u8]) -> bool {
    serde_json::from_slice::<Errors>(body).is_ok_and(|e| {
        e.errors.iter().any(|message| {
            let message = message.to_ascii_lowercase();
            message.contains("lease not found") || message.contains("invalid lease")
        })
    })
}

/// Fuzzing entry: every reply parser over arbitrary bytes and a status. Never panics on its
/// own; it asserts what the parsers promise: credentials only from a `200`, with a non-empty
/// username and password, a lease for dynamic ones, a renewable lease only with an id, a TTL
/// of at most about ten years, `Debug` naming neither; errors only with the documented codes.
#[doc(hidden)]
pub fn fuzz_db_replies(status: u16, body: &[u8]) {
    const CREDS: [&str; 4] = [
        "NOT_FOUND",
        "PERMISSION_DENIED",
        "UNEXPECTED_STATUS",
        "MALFORMED_RESPONSE",
    ];
    for issued in [Issued::Dynamic, Issued::Static] {
        match creds_reply(issued, "database", status, body) {
            Ok(lease) => {
                assert_eq!(status, 200);
                let json = lease.value().expose_json().cloned().unwrap_or_default();
                for field in ["username", "password"] {
                    let text = json[field].as_str().unwrap_or_default();
                    assert!(!text.is_empty(), "a credential without its {field}");
                    let shown = format!("{lease:?}");
                    assert!(
                        !shown.contains(text) || text.len() < 4,
                        "Debug shows a credential"
                    );
                }
                assert!(lease.ttl().as_secs() <= MAX_TTL_S);
                assert!(!lease.renewable() || lease.lease_id().is_some());
                if issued == Issued::Dynamic {
                    assert!(
                        lease.lease_id().is_some(),
                        "dynamic credentials without a lease"
                    );
                }
            }
            Err(error) => assert!(CREDS.contains(&error.code()), "{}", error.code()),
        }
    }
    let asked = Duration::from_secs(3);
    match renew_reply(asked, status, body) {
        Ok(renewal) => {
            assert_eq!(status, 200);
            assert!(renewal.ttl.as_secs() <= MAX_TTL_S);
            assert_eq!(renewal.capped, renewal.ttl < asked);
        }
        Err(error) => assert!(
            [
                "LEASE_NOT_FOUND",
                "PERMISSION_DENIED",
                "UNEXPECTED_STATUS",
                "MALFORMED_RESPONSE"
            ]
            .contains(&error.code()),
            "{}",
            error.code()
        ),
    }
    if let Err(error) = revoke_reply(status, body) {
        assert!(["PERMISSION_DENIED", "UNEXPECTED_STATUS"].contains(&error.code()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DYNAMIC: &str = r#"{"request_id":"b56a","lease_id":"database/creds/app/Sr2Xi56pztZN0TUmON4NOTLO","renewable":true,"lease_duration":3,"data":{"password":"Z4-YL-1Y08A7rM9lEXk7","username":"v-token-app-PPuiyvb69kztyZ0o5mT3-1796298455"},"wrap_info":null,"warnings":null,"auth":null}"#;
    const STATIC: &str = r#"{"request_id":"09d9","lease_id":"","renewable":false,"lease_duration":0,"data":{"last_vault_rotation":"2026-12-03T11:47:51.93446906Z","password":"J-mX7RuOhXRbWPJ10pbQ","rotation_period":60,"ttl":60,"username":"staticapp"},"wrap_info":null,"warnings":null,"auth":null}"#;

    fn code<T>(result: Result<T, ProviderError>) -> &'static str {
        result.err().map_or("OK", |e| e.code())
    }

    #[test]
    fn dynamic_credentials_carry_their_lease() -> Result<(), ProviderError> {
        let lease = creds_reply(Issued::Dynamic, "database", 200, DYNAMIC.as_bytes())?;
        assert_eq!(lease.ttl(), Duration::from_secs(3));
        assert!(lease.renewable());
        assert_eq!(
            lease.lease_id().map(LeaseId::expose),
            Some("database/creds/app/Sr2Xi56pztZN0TUmON4NOTLO")
        );
        let password = lease.field(Some("password"), "database")?;
        assert_eq!(password.expose_str(), Some("Z4-YL-1Y08A7rM9lEXk7"));
        let username = lease.field(Some("username"), "database")?;
        assert!(
            username
                .expose_str()
                .is_some_and(|u| u.starts_with("v-token-app-"))
        );
        let whole = lease.field(None, "database")?;
        let json = whole.expose_json().cloned().unwrap_or_default();
        assert_eq!(json["ttl"], 3);
        assert_eq!(
            json["lease_id"],
            "database/creds/app/Sr2Xi56pztZN0TUmON4NOTLO"
        );
        assert_eq!(code(lease.field(Some("nope"), "database")), "KEY_NOT_FOUND");
        // Neither the value nor the lease id is ever printed.
        let debug = format!("{lease:?}");
        assert!(!debug.contains("Z4-YL") && !debug.contains("Sr2Xi") && !debug.contains("v-token"));
        assert!(debug.contains("[REDACTED]"), "{debug}");
        Ok(())
    }

    #[test]
    fn static_credentials_have_no_lease_and_the_rotation_ttl() -> Result<(), ProviderError> {
        let lease = creds_reply(Issued::Static, "database", 200, STATIC.as_bytes())?;
        assert!(lease.lease_id().is_none());
        assert!(!lease.renewable());
        assert_eq!(lease.ttl(), Duration::from_secs(60));
        let json = lease.value().expose_json().cloned().unwrap_or_default();
        assert_eq!(json["username"], "staticapp");
        assert!(json.get("lease_id").is_none());
        // Only what the whole value promises: no rotation bookkeeping.
        assert!(json.get("last_vault_rotation").is_none());
        Ok(())
    }

    #[test]
    fn what_the_real_server_refuses() {
        let missing_role = br#"{"errors":["unknown role: nope"]}"#;
        assert_eq!(
            code(creds_reply(Issued::Dynamic, "d", 400, missing_role)),
            "NOT_FOUND"
        );
        let missing_static = br#"{"errors":["static role \"nope\" not found"]}"#;
        assert_eq!(
            code(creds_reply(Issued::Static, "d", 400, missing_static)),
            "NOT_FOUND"
        );
        assert_eq!(
            code(creds_reply(Issued::Dynamic, "d", 404, b"")),
            "NOT_FOUND"
        );
        assert_eq!(
            code(creds_reply(Issued::Dynamic, "d", 403, b"")),
            "PERMISSION_DENIED"
        );
        let other = br#"{"errors":["plugin exploded"]}"#;
        assert_eq!(
            code(creds_reply(Issued::Dynamic, "d", 400, other)),
            "UNEXPECTED_STATUS"
        );
        assert_eq!(
            code(creds_reply(Issued::Dynamic, "d", 500, b"")),
            "UNEXPECTED_STATUS"
        );
    }

    #[test]
    fn malformed_credentials() {
        for body in [
            "not json",
            "{}",
            r#"{"lease_id":"x","lease_duration":3,"data":{"username":"u"}}"#,
            r#"{"lease_id":"x","lease_duration":3,"data":{"username":"u","password":7}}"#,
            r#"{"lease_id":"x","lease_duration":3,"data":{"username":"","password":"p"}}"#,
            // Dynamic credentials without a lease could never be revoked.
            r#"{"lease_id":"","lease_duration":3,"data":{"username":"u","password":"p"}}"#,
            r#"{"lease_id":"x","data":{"username":"u","password":"p"}}"#,
            r#"{"lease_id":"x","lease_duration":0,"data":{"username":"u","password":"p"}}"#,
        ] {
            let result = creds_reply(Issued::Dynamic, "d", 200, body.as_bytes());
            assert_eq!(code(result), "MALFORMED_RESPONSE", "{body}");
        }
        // A huge TTL is believed only up to about ten years.
        let huge = format!(
            r#"{{"lease_id":"x","renewable":true,"lease_duration":{},"data":{{"username":"u","password":"p"}}}}"#,
            u64::MAX
        );
        let lease = creds_reply(Issued::Dynamic, "d", 200, huge.as_bytes());
        assert_eq!(lease.map(|l| l.ttl().as_secs()).ok(), Some(MAX_TTL_S));
    }

    #[test]
    fn the_lease_id_of_a_reply_that_is_refused() {
        let refused = br#"{"lease_id":"database/creds/app/x","lease_duration":0,"data":{}}"#;
        assert_eq!(
            lease_id_of(refused).as_ref().map(LeaseId::expose),
            Some("database/creds/app/x")
        );
        assert!(lease_id_of(br#"{"lease_id":""}"#).is_none());
        assert!(lease_id_of(b"not json").is_none());
    }

    #[test]
    fn renewals() -> Result<(), ProviderError> {
        let asked = Duration::from_secs(3);
        let full = br#"{"lease_id":"x","renewable":true,"lease_duration":3,"warnings":null}"#;
        assert_eq!(
            renew_reply(asked, 200, full)?,
            Renewal {
                ttl: asked,
                capped: false
            }
        );
        let capped = br#"{"lease_id":"x","lease_duration":1,"warnings":["TTL of \"3s\" exceeded the effective max_ttl of \"1s\"; TTL value is capped accordingly"]}"#;
        assert!(renew_reply(asked, 200, capped)?.capped);
        assert_eq!(
            code(renew_reply(
                asked,
                400,
                br#"{"errors":["lease not found"]}"#
            )),
            "LEASE_NOT_FOUND"
        );
        assert_eq!(
            code(renew_reply(asked, 400, br#"{"errors":["invalid lease"]}"#)),
            "LEASE_NOT_FOUND"
        );
        assert_eq!(code(renew_reply(asked, 400, b"{}")), "UNEXPECTED_STATUS");
        assert_eq!(code(renew_reply(asked, 403, b"")), "PERMISSION_DENIED");
        assert_eq!(code(renew_reply(asked, 200, b"{}")), "MALFORMED_RESPONSE");
        Ok(())
    }

    #[test]
    fn revocations() {
        assert_eq!(code(revoke_reply(204, b"")), "OK");
        assert_eq!(
            code(revoke_reply(400, br#"{"errors":["lease not found"]}"#)),
            "OK"
        );
        assert_eq!(code(revoke_reply(403, b"")), "PERMISSION_DENIED");
        assert_eq!(code(revoke_reply(500, b"")), "UNEXPECTED_STATUS");
    }

    #[test]
    fn the_fuzz_entry_survives_odd_input() {
        for status in [200, 204, 400, 403, 404, 500] {
            for body in [
                &b""[..],
                b"\xff",
                b"[]",
                b"{\"data\":[]}",
                b"{\"errors\":[1]}",
            ] {
                fuzz_db_replies(status, body);
            }
        }
    }
}
