//! What the KV v2 and auth endpoints answer, mapped to values and errors.
//!
//! The shapes are those a real OpenBao 2.x returns (and HashiCorp Vault, which shares the API):
//!
//! - `200 {"data":{"data":{…},"metadata":{…}}}`: the secret, even when `metadata.deletion_time`
//!   is in the future (`delete_version_after`).
//! - `404 {"data":{"data":null,"metadata":{"deletion_time":"2026-…","destroyed":false,…}}}`: a
//!   soft-deleted version (also for the latest version when none is pinned).
//! - `404 {"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,…}}}`: destroyed.
//! - `404 {"errors":[]}`: no such secret or version; an unknown mount gives
//!   `404 {"errors":["no handler for route …"]}`.
//!
//! Older servers answered a deleted version with `200` and `data: null`; that maps the same way.

use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::ProviderError;
use crate::value::{SecretValue, Selection, WipedMap};

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<ReadData>,
}

#[derive(Deserialize)]
struct ReadData {
    #[serde(default)]
    data: Option<WipedMap>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    deletion_time: Option<String>,
    #[serde(default)]
    destroyed: bool,
    #[serde(default)]
    version: Option<u64>,
}

/// Where a read happened, for error messages.
#[derive(Clone, Copy)]
pub(crate) struct ReadContext<'a> {
    pub(crate) provider: &'static str,
    pub(crate) mount: &'a str,
    pub(crate) version: Option<u64>,
    pub(crate) key: Option<&'a str>,
}

impl ReadContext<'_> {
    pub(super) fn not_found(&self, status: u16) -> ProviderError {
        ProviderError::NotFound {
            provider: self.provider,
            mount: self.mount.to_owned(),
            status: Some(status),
        }
    }

    pub(super) fn malformed(&self, status: u16, reason: &'static str) -> ProviderError {
        ProviderError::MalformedResponse {
            provider: self.provider,
            status,
            reason,
        }
    }

    /// The error of a status that is neither an answer nor "not found": `403` is
    /// `PERMISSION_DENIED` (after the one re-login), anything else `UNEXPECTED_STATUS`.
    pub(super) fn refused(&self, status: u16) -> ProviderError {
        let (provider, mount) = (self.provider, self.mount.to_owned());
        if status == 403 {
            ProviderError::PermissionDenied {
                provider,
                mount,
                status: Some(status),
            }
        } else {
            ProviderError::UnexpectedStatus {
                provider,
                mount,
                status,
            }
        }
    }

    fn gone(&self, status: u16, metadata: &Metadata) -> Option<ProviderError> {
        let version = metadata.version.or(self.version);
        let (provider, mount) = (self.provider, self.mount.to_owned());
        if metadata.destroyed {
            Some(ProviderError::VersionDestroyed {
                provider,
                mount,
                version,
                status,
            })
        } else if metadata
            .deletion_time
            .as_deref()
            .is_some_and(|t| !t.is_empty())
        {
            Some(ProviderError::VersionDeleted {
                provider,
                mount,
                version,
                status,
            })
        } else {
            None
        }
    }
}

/// Maps a `GET /v1/<mount>/data/<path>` response (after retries and re-authentication). The
/// value carries the version the server read (`data.metadata.version`; the pinned version
/// when the reply has no metadata).
pub(crate) fn read_reply(
    cx: ReadContext<'_>,
    status: u16,
    body: &[u8],
) -> Result<SecretValue, ProviderError> {
    match status {
        200 => {
            let envelope: Envelope = serde_json::from_slice(body)
                .map_err(|_| cx.malformed(status, "the body is not the expected JSON"))?;
            let Some(mut data) = envelope.data else {
                return Err(cx.malformed(status, "the response has no `data`"));
            };
            match data.data.take() {
                Some(mut map) => {
                    let version = data.metadata.as_ref().and_then(|m| m.version);
                    select(cx, std::mem::take(&mut map.0), version.or(cx.version))
                }
                None => Err(data
                    .metadata
                    .as_ref()
                    .and_then(|m| cx.gone(status, m))
                    .unwrap_or_else(|| cx.malformed(status, "the response has no `data.data`"))),
            }
        }
        404 => {
            // A 404 body that is not JSON (a proxy's page) is still "not found".
            let metadata = serde_json::from_slice::<Envelope>(body)
                .ok()
                .and_then(|e| e.data)
                .and_then(|mut d| d.metadata.take());
            Err(metadata
                .and_then(|m| cx.gone(status, &m))
                .unwrap_or_else(|| cx.not_found(status)))
        }
        _ => Err(cx.refused(status)),
    }
}

fn select(
    cx: ReadContext<'_>,
    map: Map<String, Value>,
    version: Option<u64>,
) -> Result<SecretValue, ProviderError> {
    let value = SecretValue::from_object(map);
    let value = match version {
        Some(version) => value.with_version(version),
        None => value,
    };
    match cx.key {
        None => Ok(value),
        Some(key) => value.select(key).map_err(|e| match e {
            Selection::Missing => ProviderError::KeyNotFound {
                provider: cx.provider,
                mount: cx.mount.to_owned(),
            },
            // KV v2 data is always an object; kept for completeness.
            Selection::NotObject => ProviderError::NotJson {
                provider: cx.provider,
                mount: cx.mount.to_owned(),
            },
        }),
    }
}

/// A token and what the server said about its lifetime.
pub(crate) struct Lease {
    pub(crate) token: Option<Zeroizing<String>>,
    /// Seconds; 0 means it does not expire.
    pub(crate) ttl: u64,
    pub(crate) renewable: bool,
}

#[derive(Deserialize)]
struct AuthEnvelope {
    auth: Option<AuthBody>,
}

#[derive(Deserialize)]
struct AuthBody {
    #[serde(default)]
    client_token: Option<String>,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

/// The `auth` block of a login or `renew-self` response.
pub(crate) fn auth_reply(body: &[u8]) -> Option<Lease> {
    let envelope: AuthEnvelope = serde_json::from_slice(body).ok()?;
    let auth = envelope.auth?;
    Some(Lease {
        token: auth
            .client_token
            .filter(|t| !t.is_empty())
            .map(Zeroizing::new),
        ttl: auth.lease_duration,
        renewable: auth.renewable,
    })
}

#[derive(Deserialize)]
struct LookupEnvelope {
    data: Option<LookupBody>,
}

#[derive(Deserialize)]
struct LookupBody {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
    /// `null` for tokens that never expire.
    #[serde(default)]
    expire_time: Option<String>,
}

/// The `data` block of a `lookup-self` response (its `id` is not kept).
pub(crate) fn lookup_reply(body: &[u8]) -> Option<Lease> {
    let data = serde_json::from_slice::<LookupEnvelope>(body).ok()?.data?;
    // TTL 0 with an expiry time: under a second left, not "never expires".
    let ttl = if data.ttl == 0 && data.expire_time.is_some() {
        1
    } else {
        data.ttl
    };
    Some(Lease {
        token: None,
        ttl,
        renewable: data.renewable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CX: ReadContext<'static> = ReadContext {
        provider: "openbao",
        mount: "secret",
        version: None,
        key: None,
    };

    fn code(result: Result<SecretValue, ProviderError>) -> &'static str {
        result.err().map_or("OK", |e| e.code())
    }

    #[test]
    fn maps_what_the_real_server_returns() {
        let ok = br#"{"data":{"data":{"password":"p3"},"metadata":{"deletion_time":"","destroyed":false,"version":3}}}"#;
        let value = read_reply(CX, 200, ok).ok();
        assert_eq!(
            value.and_then(|v| v.expose_json().cloned()),
            Some(serde_json::json!({"password": "p3"}))
        );

        let future_deletion = br#"{"data":{"data":{"a":"b"},"metadata":{"deletion_time":"2999-01-01T00:00:00Z","destroyed":false,"version":1}}}"#;
        assert_eq!(code(read_reply(CX, 200, future_deletion)), "OK");

        let deleted = br#"{"data":{"data":null,"metadata":{"created_time":"x","custom_metadata":null,"deletion_time":"2026-11-28T13:20:58.975157404Z","destroyed":false,"version":1}}}"#;
        assert_eq!(code(read_reply(CX, 404, deleted)), "VERSION_DELETED");
        let destroyed = br#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":2}}}"#;
        let error = read_reply(CX, 404, destroyed).err();
        assert!(matches!(
            error,
            Some(ProviderError::VersionDestroyed {
                version: Some(2),
                status: 404,
                ..
            })
        ));
        // Older servers: 200 with null data.
        assert_eq!(code(read_reply(CX, 200, deleted)), "VERSION_DELETED");
        assert_eq!(code(read_reply(CX, 200, destroyed)), "VERSION_DESTROYED");

        assert_eq!(code(read_reply(CX, 404, br#"{"errors":[]}"#)), "NOT_FOUND");
        assert_eq!(
            code(read_reply(
                CX,
                404,
                br#"{"errors":["no handler for route"]}"#
            )),
            "NOT_FOUND"
        );
        assert_eq!(code(read_reply(CX, 404, b"<html>")), "NOT_FOUND");
        assert_eq!(
            code(read_reply(CX, 403, br#"{"errors":["permission denied"]}"#)),
            "PERMISSION_DENIED"
        );
        assert_eq!(code(read_reply(CX, 307, b"")), "UNEXPECTED_STATUS");
        assert_eq!(code(read_reply(CX, 400, b"")), "UNEXPECTED_STATUS");
    }

    #[test]
    fn a_value_carries_the_version_the_server_read() {
        // The shape OpenBao 2.7 answers `GET secret/data/app` with.
        let ok = br#"{"request_id":"f0bb1276-adfa-df34-3e55-81825ed99116","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":{"password":"p3","port":5432},"metadata":{"created_time":"2026-12-02T05:13:53.331177063Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":7}},"wrap_info":null,"warnings":null,"auth":null}"#;
        let value = read_reply(CX, 200, ok).ok();
        assert_eq!(value.as_ref().and_then(SecretValue::version), Some(7));
        // `#key` keeps it, for text and JSON fields alike.
        for key in ["password", "port"] {
            let cx = ReadContext {
                key: Some(key),
                ..CX
            };
            let field = read_reply(cx, 200, ok).ok();
            assert_eq!(
                field.as_ref().and_then(SecretValue::version),
                Some(7),
                "{key}"
            );
        }
        // The server's version wins over the pinned one (they agree on a real server).
        let pinned = ReadContext {
            version: Some(3),
            ..CX
        };
        let value = read_reply(pinned, 200, ok).ok();
        assert_eq!(value.as_ref().and_then(SecretValue::version), Some(7));
        // Without metadata: the pinned version, else none.
        let bare = br#"{"data":{"data":{"a":"b"}}}"#;
        let value = read_reply(pinned, 200, bare).ok();
        assert_eq!(value.as_ref().and_then(SecretValue::version), Some(3));
        let value = read_reply(CX, 200, bare).ok();
        assert_eq!(value.as_ref().map(SecretValue::version), Some(None));
        let no_version = br#"{"data":{"data":{"a":"b"},"metadata":{"deletion_time":""}}}"#;
        let value = read_reply(CX, 200, no_version).ok();
        assert_eq!(value.as_ref().map(SecretValue::version), Some(None));
        // A version that is not a number is not the API's JSON.
        let bad = br#"{"data":{"data":{"a":"b"},"metadata":{"version":"7"}}}"#;
        assert_eq!(code(read_reply(CX, 200, bad)), "MALFORMED_RESPONSE");
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            &b"{\"data\":{\"data\":{\"a\":"[..],
            b"not json",
            b"{}",
            b"{\"data\":{}}",
            b"{\"data\":{\"data\":\"text\"}}",
        ] {
            assert_eq!(
                code(read_reply(CX, 200, body)),
                "MALFORMED_RESPONSE",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn key_selection() {
        let body = br#"{"data":{"data":{"token":"t","port":5432}}}"#;
        let cx = |key| ReadContext {
            key: Some(key),
            ..CX
        };
        let token = read_reply(cx("token"), 200, body).ok();
        assert_eq!(token.as_ref().and_then(SecretValue::expose_str), Some("t"));
        let port = read_reply(cx("port"), 200, body).ok();
        assert_eq!(
            port.and_then(|v| v.expose_json().cloned()),
            Some(serde_json::json!(5432))
        );
        assert_eq!(code(read_reply(cx("nope"), 200, body)), "KEY_NOT_FOUND");
    }

    #[test]
    fn auth_and_lookup_replies() {
        let login = br#"{"auth":{"client_token":"s.abc","lease_duration":3600,"renewable":true}}"#;
        let lease = auth_reply(login);
        assert_eq!(
            lease
                .as_ref()
                .and_then(|l| l.token.as_deref().map(String::as_str)),
            Some("s.abc")
        );
        assert_eq!(lease.map(|l| (l.ttl, l.renewable)), Some((3600, true)));
        assert!(auth_reply(br#"{"auth":null}"#).is_none());
        let lookup = lookup_reply(br#"{"data":{"id":"root","ttl":0,"renewable":false}}"#);
        assert_eq!(
            lookup.map(|l| (l.ttl, l.renewable, l.token.is_none())),
            Some((0, false, true))
        );
        let ending = lookup_reply(
            br#"{"data":{"ttl":0,"expire_time":"2026-11-28T14:16:25Z","renewable":true}}"#,
        );
        assert_eq!(ending.map(|l| l.ttl), Some(1));
    }
}
