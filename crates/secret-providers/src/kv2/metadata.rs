//! What `GET /v1/<mount>/metadata/<path>` answers, mapped to a [`Probe`]: the version a read
//! would return now, without reading the value.
//!
//! The shapes are those a real OpenBao 2.x returns (and HashiCorp Vault, which shares the API):
//!
//! - `200 {"data":{"current_version":2,"oldest_version":0,"versions":{"1":{"created_time":…,
//!   "deletion_time":"","destroyed":false},"2":{…}},…}}`. `deletion_time` is `""` for a live
//!   version, the time of a soft delete, or a time in the future when the secret has
//!   `delete_version_after` (the version is readable until then). `destroyed` is `true` once a
//!   version's data is gone. Versions pruned by `max_versions` are absent.
//! - `200` with `current_version: 0` and `versions: {}`: metadata written before any data.
//! - `404 {"errors":[]}`: no such secret; an unknown mount gives
//!   `404 {"errors":["no handler for route …"]}`.
//!
//! The metadata holds no secret value, but the body (custom metadata) and the path are still
//! never put in an error.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Deserialize;

use super::response::ReadContext;
use crate::ProviderError;
use crate::provider::Probe;

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<MetadataData>,
}

#[derive(Deserialize)]
struct MetadataData {
    #[serde(default)]
    current_version: Option<u64>,
    #[serde(default)]
    versions: Option<HashMap<String, VersionState>>,
}

#[derive(Deserialize)]
struct VersionState {
    /// `null` is taken as `""` (not deleted).
    #[serde(default)]
    deletion_time: Option<String>,
    #[serde(default)]
    destroyed: Option<bool>,
}

/// Why a read of a listed version would fail now.
enum Gone {
    Destroyed,
    Deleted,
}

impl VersionState {
    /// Why a read of this version would fail now, if it would: destroyed, or soft-deleted at
    /// a time that has passed (OpenBao writes UTC RFC 3339 times; one that does not parse
    /// counts as passed).
    fn gone(&self, now: SystemTime) -> Option<Gone> {
        if self.destroyed == Some(true) {
            return Some(Gone::Destroyed);
        }
        match self.deletion_time.as_deref() {
            None | Some("") => None,
            Some(at) => humantime::parse_rfc3339(at)
                .map_or(true, |at| at <= now)
                .then_some(Gone::Deleted),
        }
    }
}

/// Maps a `GET /v1/<mount>/metadata/<path>` response (after retries and re-authentication)
/// for the URI of `cx` (pinned when `cx.version` is set), at time `now`.
pub(crate) fn probe_reply(
    cx: ReadContext<'_>,
    status: u16,
    body: &[u8],
    now: SystemTime,
) -> Result<Probe, ProviderError> {
    match status {
        200 => {}
        // Whatever the body (a proxy's page too): no such secret.
        404 => return Err(cx.not_found(status)),
        _ => return Err(cx.refused(status)),
    }
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|_| cx.malformed(status, "the body is not the expected JSON"))?;
    let Some(data) = envelope.data else {
        return Err(cx.malformed(status, "the response has no `data`"));
    };
    let Some(current) = data.current_version else {
        return Err(cx.malformed(status, "the metadata has no `current_version`"));
    };
    let Some(versions) = data.versions else {
        return Err(cx.malformed(status, "the metadata has no `versions`"));
    };
    let wanted = cx.version.unwrap_or(current);
    if wanted == 0 {
        // Metadata written before any data: nothing to read yet.
        return Err(cx.not_found(status));
    }
    let gone = |why: Gone| {
        let (provider, mount, version) = (cx.provider, cx.mount.to_owned(), Some(wanted));
        // The codes a read of that version gives.
        match why {
            Gone::Destroyed => ProviderError::VersionDestroyed {
                provider,
                mount,
                version,
                status,
            },
            Gone::Deleted => ProviderError::VersionDeleted {
                provider,
                mount,
                version,
                status,
            },
        }
    };
    match versions.get(wanted.to_string().as_str()) {
        Some(state) => match state.gone(now) {
            Some(why) => Err(gone(why)),
            None => Ok(Probe::Version(wanted)),
        },
        // A pinned version never written, or pruned by `max_versions`.
        None if cx.version.is_some() => Err(cx.not_found(status)),
        None => Err(cx.malformed(status, "the metadata does not describe its current version")),
    }
}

/// The metadata reply parser, for the fuzz target: [`probe_reply`] for a URI in mount
/// `secret`, pinned to `version` when given, at the current time.
///
/// # Errors
/// As a probe's: `NOT_FOUND`, `VERSION_DELETED`, `VERSION_DESTROYED`, `PERMISSION_DENIED`, `UNEXPECTED_STATUS`,
/// `MALFORMED_RESPONSE`.
#[doc(hidden)]
pub fn fuzz_metadata_reply(
    status: u16,
    body: &[u8],
    version: Option<u64>,
) -> Result<Probe, ProviderError> {
    let cx = ReadContext {
        provider: "openbao",
        mount: "secret",
        version,
        key: None,
    };
    probe_reply(cx, status, body, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const CX: ReadContext<'static> = ReadContext {
        provider: "openbao",
        mount: "secret",
        version: None,
        key: None,
    };

    /// 2026-12-02T05:20:00Z, between the writes and the deletions below.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_169_600 + 5 * 3600 + 20 * 60)
    }

    fn pinned(version: u64) -> ReadContext<'static> {
        ReadContext {
            version: Some(version),
            ..CX
        }
    }

    fn probe(cx: ReadContext<'_>, status: u16, body: &[u8]) -> Result<Probe, &'static str> {
        probe_reply(cx, status, body, now()).map_err(|e| e.code())
    }

    // Replies of a real OpenBao 2.7.2 dev server, verbatim.

    /// Two versions written, both live.
    const LIVE: &[u8] = br#"{"request_id":"34daabce-b0d4-bfba-c316-7c64ebd74581","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-12-02T05:13:53.290986651Z","current_metadata_version":0,"current_version":2,"custom_metadata":null,"delete_version_after":"0s","max_versions":0,"metadata_cas_required":false,"oldest_version":0,"updated_time":"2026-12-02T05:13:53.331177063Z","versions":{"1":{"created_time":"2026-12-02T05:13:53.290986651Z","deletion_time":"","destroyed":false},"2":{"created_time":"2026-12-02T05:13:53.331177063Z","deletion_time":"","destroyed":false}}},"wrap_info":null,"warnings":null,"auth":null}"#;

    /// Then `DELETE secret/data/app` (the current version, 2, soft-deleted) and
    /// `PUT secret/destroy/app {"versions":[1]}`.
    const DELETED_AND_DESTROYED: &[u8] = br#"{"request_id":"4bd2f7ca-26b0-7d22-9c73-d81f898dbf5e","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-12-02T05:13:53.290986651Z","current_metadata_version":0,"current_version":2,"custom_metadata":null,"delete_version_after":"0s","max_versions":0,"metadata_cas_required":false,"oldest_version":0,"updated_time":"2026-12-02T05:13:53.331177063Z","versions":{"1":{"created_time":"2026-12-02T05:13:53.290986651Z","deletion_time":"","destroyed":true},"2":{"created_time":"2026-12-02T05:13:53.331177063Z","deletion_time":"2026-12-02T05:13:53.356815804Z","destroyed":false}}},"wrap_info":null,"warnings":null,"auth":null}"#;

    /// `delete_version_after: 1h`: the version's deletion time is in the future.
    const EXPIRING: &[u8] = br#"{"request_id":"8527efcd-8bc6-1683-29d8-bbd6094146b9","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-12-02T05:20:38.660526684Z","current_metadata_version":1,"current_version":1,"custom_metadata":null,"delete_version_after":"1h0m0s","max_versions":0,"metadata_cas_required":false,"oldest_version":0,"updated_time":"2026-12-02T05:20:38.679948949Z","versions":{"1":{"created_time":"2026-12-02T05:20:38.679948949Z","deletion_time":"2026-12-02T06:20:38.679948949Z","destroyed":false}}},"wrap_info":null,"warnings":null,"auth":null}"#;

    /// Metadata written (`max_versions: 3`) before any data.
    const NO_DATA_YET: &[u8] = br#"{"request_id":"645df9c2-73a3-a5fb-07a0-93bc065d40c4","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-12-02T05:20:38.600515135Z","current_metadata_version":1,"current_version":0,"custom_metadata":null,"delete_version_after":"0s","max_versions":3,"metadata_cas_required":false,"oldest_version":0,"updated_time":"2026-12-02T05:20:38.600515135Z","versions":{}},"wrap_info":null,"warnings":null,"auth":null}"#;

    /// Then five versions: 1 and 2 pruned by `max_versions`.
    const PRUNED: &[u8] = br#"{"request_id":"0468aa1c-a8f6-0a4a-9e47-d16b254324e1","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-12-02T05:20:38.600515135Z","current_metadata_version":1,"current_version":5,"custom_metadata":null,"delete_version_after":"0s","max_versions":3,"metadata_cas_required":false,"oldest_version":3,"updated_time":"2026-12-02T05:20:41.950149799Z","versions":{"3":{"created_time":"2026-12-02T05:20:41.923912999Z","deletion_time":"","destroyed":false},"4":{"created_time":"2026-12-02T05:20:41.936853594Z","deletion_time":"","destroyed":false},"5":{"created_time":"2026-12-02T05:20:41.950149799Z","deletion_time":"","destroyed":false}}},"wrap_info":null,"warnings":null,"auth":null}"#;

    #[test]
    fn maps_what_the_real_server_returns() {
        assert_eq!(probe(CX, 200, LIVE), Ok(Probe::Version(2)));
        assert_eq!(probe(pinned(1), 200, LIVE), Ok(Probe::Version(1)));
        assert_eq!(probe(pinned(2), 200, LIVE), Ok(Probe::Version(2)));
        assert_eq!(probe(pinned(3), 200, LIVE), Err("NOT_FOUND"));

        // The current version soft-deleted, version 1 destroyed: the codes a read gives.
        assert_eq!(
            probe(CX, 200, DELETED_AND_DESTROYED),
            Err("VERSION_DELETED")
        );
        assert_eq!(
            probe(pinned(2), 200, DELETED_AND_DESTROYED),
            Err("VERSION_DELETED")
        );
        assert_eq!(
            probe(pinned(1), 200, DELETED_AND_DESTROYED),
            Err("VERSION_DESTROYED")
        );

        // Readable until its deletion time, and not found after it.
        assert_eq!(probe(CX, 200, EXPIRING), Ok(Probe::Version(1)));
        let later = now() + Duration::from_secs(2 * 3600);
        assert_eq!(
            probe_reply(CX, 200, EXPIRING, later).map_err(|e| e.code()),
            Err("VERSION_DELETED")
        );

        assert_eq!(probe(CX, 200, NO_DATA_YET), Err("NOT_FOUND"));
        assert_eq!(probe(pinned(1), 200, NO_DATA_YET), Err("NOT_FOUND"));

        assert_eq!(probe(CX, 200, PRUNED), Ok(Probe::Version(5)));
        assert_eq!(probe(pinned(3), 200, PRUNED), Ok(Probe::Version(3)));
        assert_eq!(probe(pinned(1), 200, PRUNED), Err("NOT_FOUND"));
    }

    #[test]
    fn statuses() {
        assert_eq!(probe(CX, 404, br#"{"errors":[]}"#), Err("NOT_FOUND"));
        let no_route = br#"{"errors":["no handler for route \"nomount/metadata/x\". route entry not found."]}"#;
        assert_eq!(probe(CX, 404, no_route), Err("NOT_FOUND"));
        assert_eq!(probe(CX, 404, b"<html>"), Err("NOT_FOUND"));
        let denied = probe_reply(CX, 403, br#"{"errors":["permission denied"]}"#, now()).err();
        assert!(matches!(
            denied,
            Some(ProviderError::PermissionDenied {
                status: Some(403),
                ..
            })
        ));
        for status in [204, 301, 400, 401, 405, 500] {
            assert_eq!(
                probe(CX, status, LIVE),
                Err("UNEXPECTED_STATUS"),
                "{status}"
            );
        }
    }

    #[test]
    fn malformed_bodies() {
        let deep = "[".repeat(100_000);
        // Deep nesting where a boolean belongs.
        let deep_field = format!(
            r#"{{"data":{{"current_version":1,"versions":{{"1":{{"destroyed":{}}}}}}}}}"#,
            "[".repeat(200) + &"]".repeat(200)
        );
        for body in [
            &b""[..],
            b"not json",
            b"null",
            b"[]",
            b"{}",
            br#"{"data":null}"#,
            br#"{"data":{}}"#,
            br#"{"data":{"versions":{}}}"#,
            br#"{"data":{"current_version":2}}"#,
            br#"{"data":{"current_version":-1,"versions":{}}}"#,
            br#"{"data":{"current_version":"2","versions":{}}}"#,
            br#"{"data":{"current_version":1.5,"versions":{}}}"#,
            br#"{"data":{"current_version":18446744073709551616,"versions":{}}}"#,
            br#"{"data":{"current_version":2,"versions":[]}}"#,
            br#"{"data":{"current_version":2,"versions":{"2":"live"}}}"#,
            br#"{"data":{"current_version":2,"versions":{"2":{"destroyed":"no"}}}}"#,
            br#"{"data":{"current_version":2,"versions":{"2":{"deletion_time":0}}}}"#,
            // The current version is not described.
            br#"{"data":{"current_version":2,"versions":{"1":{}}}}"#,
            br#"{"data":{"current_version":2,"versions":{"1":{"deletion_time":"","destroyed":false}}}"#,
            deep.as_bytes(),
            deep_field.as_bytes(),
            &LIVE[..LIVE.len() - 1],
        ] {
            let error = probe_reply(CX, 200, body, now()).err();
            assert!(
                matches!(
                    error,
                    Some(ProviderError::MalformedResponse {
                        provider: "openbao",
                        status: 200,
                        ..
                    })
                ),
                "{error:?} for {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
    }

    #[test]
    fn lenient_where_the_api_is() {
        // Unknown fields, `null` for the version's fields, a version of other fields only.
        let body = br#"{"data":{"current_version":3,"extra":{"a":[1,{"b":null}]},"versions":{"3":{"deletion_time":null,"destroyed":null,"x":1}}}}"#;
        assert_eq!(probe(CX, 200, body), Ok(Probe::Version(3)));
        let body = br#"{"data":{"current_version":3,"versions":{"3":{}}}}"#;
        assert_eq!(probe(CX, 200, body), Ok(Probe::Version(3)));
        // Deeply nested unknown fields are skipped without recursion (no stack to exhaust).
        let depth = 1_000_000;
        let deep = format!(
            r#"{{"data":{{"x":{},"current_version":1,"versions":{{"1":{{"y":{}}}}}}}}}"#,
            "[".repeat(depth) + &"]".repeat(depth),
            "{\"a\":".repeat(depth) + "0" + &"}".repeat(depth),
        );
        assert_eq!(probe(CX, 200, deep.as_bytes()), Ok(Probe::Version(1)));
        // A deletion time that is not a time counts as passed.
        let body = br#"{"data":{"current_version":3,"versions":{"3":{"deletion_time":"soon"}}}}"#;
        assert_eq!(probe(CX, 200, body), Err("VERSION_DELETED"));
    }

    #[test]
    fn huge_replies() {
        // Many versions, each with a long custom field: linear, and the right one is found.
        let mut body = String::from(r#"{"data":{"current_version":50000,"versions":{"#);
        for n in 1..=50_000 {
            if n > 1 {
                body.push(',');
            }
            body.push_str(&format!(
                r#""{n}":{{"deletion_time":"","destroyed":{},"note":"{}"}}"#,
                n % 2 == 0 && n != 50_000,
                "x".repeat(64)
            ));
        }
        body.push_str("}}}");
        assert_eq!(probe(CX, 200, body.as_bytes()), Ok(Probe::Version(50_000)));
        assert_eq!(
            probe(pinned(49_999), 200, body.as_bytes()),
            Ok(Probe::Version(49_999))
        );
        assert_eq!(
            probe(pinned(49_998), 200, body.as_bytes()),
            Err("VERSION_DESTROYED")
        );
        let long_key = format!(
            r#"{{"data":{{"current_version":1,"versions":{{"1":{{}},"{}":{{}}}}}}}}"#,
            "9".repeat(1 << 20)
        );
        assert_eq!(probe(CX, 200, long_key.as_bytes()), Ok(Probe::Version(1)));
    }

    #[test]
    fn errors_name_no_path_body_or_token() {
        let canary = "CANARY-7f3e";
        let bodies = [
            format!(
                r#"{{"data":{{"current_version":1,"custom_metadata":{{"owner":"{canary}"}},"versions":{{"2":{{}}}}}}}}"#
            ),
            format!(r#"{{"errors":["{canary}"]}}"#),
            canary.to_owned(),
        ];
        for body in &bodies {
            for status in [200, 403, 404, 500] {
                if let Err(error) = probe_reply(CX, status, body.as_bytes(), now()) {
                    let shown = format!("{error} {error:?}");
                    assert!(!shown.contains(canary), "{shown}");
                    assert!(shown.contains("openbao"), "names the provider: {shown}");
                }
            }
        }
    }
}
