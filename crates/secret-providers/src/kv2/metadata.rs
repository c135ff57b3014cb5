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
use std::time::{SystemTime, UNIX_EPOCH};

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

impl VersionState {
    /// Whether a read of this version would fail now: destroyed, or soft-deleted at a time
    /// that has passed. A deletion time that does not parse counts as passed.
    fn gone(&self, now: SystemTime) -> bool {
        if self.destroyed == Some(true) {
            return true;
        }
        match self.deletion_time.as_deref() {
            None | Some("") => false,
            Some(at) => parse_rfc3339(at).is_none_or(|at| at <= nanos_since_epoch(now)),
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
    match versions.get(wanted.to_string().as_str()) {
        Some(state) if state.gone(now) => Err(cx.not_found(status)),
        Some(_) => Ok(Probe::Version(wanted)),
        // A pinned version never written, or pruned by `max_versions`.
        None if cx.version.is_some() => Err(cx.not_found(status)),
        None => Err(cx.malformed(status, "the metadata does not describe its current version")),
    }
}

/// The metadata reply parser, for the fuzz target: [`probe_reply`] for a URI in mount
/// `secret`, pinned to `version` when given, at the current time.
///
/// # Errors
/// As a probe's: `NOT_FOUND`, `PERMISSION_DENIED`, `UNEXPECTED_STATUS`,
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

fn nanos_since_epoch(now: SystemTime) -> i128 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// An RFC 3339 timestamp (`2026-12-02T05:13:53.356815804Z`, `…+02:00`) as nanoseconds since
/// the Unix epoch; `None` when it is not one. Fractions beyond nanoseconds are cut.
fn parse_rfc3339(text: &str) -> Option<i128> {
    let bytes = text.as_bytes();
    let digits = |from: usize, to: usize| -> Option<i64> {
        let part = bytes.get(from..to)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |index: usize, allowed: &[u8]| bytes.get(index).is_some_and(|b| allowed.contains(b));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = bytes.get(19..)?;
    let mut nanos: i64 = 0;
    if let [b'.', tail @ ..] = rest {
        let count = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        for (place, digit) in tail[..count].iter().take(9).enumerate() {
            nanos += i64::from(digit - b'0') * 10_i64.pow(8 - place as u32);
        }
        rest = &tail[count..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (hours, minutes) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(i128::from(seconds) * 1_000_000_000 + i128::from(nanos))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

        // The current version soft-deleted, version 1 destroyed.
        assert_eq!(probe(CX, 200, DELETED_AND_DESTROYED), Err("NOT_FOUND"));
        assert_eq!(
            probe(pinned(2), 200, DELETED_AND_DESTROYED),
            Err("NOT_FOUND")
        );
        assert_eq!(
            probe(pinned(1), 200, DELETED_AND_DESTROYED),
            Err("NOT_FOUND")
        );

        // Readable until its deletion time, and not found after it.
        assert_eq!(probe(CX, 200, EXPIRING), Ok(Probe::Version(1)));
        let later = now() + Duration::from_secs(2 * 3600);
        assert_eq!(
            probe_reply(CX, 200, EXPIRING, later).map_err(|e| e.code()),
            Err("NOT_FOUND")
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
        assert_eq!(probe(CX, 200, body), Err("NOT_FOUND"));
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
            Err("NOT_FOUND")
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

    #[test]
    fn parses_rfc3339() {
        let at = |s| parse_rfc3339(s);
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            at("2026-12-02T05:13:53.356815804Z"),
            Some(1_796_188_433_356_815_804)
        );
        // More than nanosecond precision is cut; offsets are applied.
        assert_eq!(
            at("2026-12-02T05:13:53.3568158049999Z"),
            at("2026-12-02T05:13:53.356815804Z")
        );
        assert_eq!(at("2026-12-02T07:13:53+02:00"), at("2026-12-02T05:13:53Z"));
        assert_eq!(at("2026-12-01T23:43:53-05:30"), at("2026-12-02T05:13:53Z"));
        assert_eq!(at("2024-02-29t12:00:00z"), Some(1_709_208_000_000_000_000));
        assert_eq!(at("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        for bad in [
            "",
            "soon",
            "2026-12-02",
            "2026-12-02T05:13:53",
            "2026-12-02T05:13:53.Z",
            "2026-12-02T05:13:53ZZ",
            "2026-13-02T05:13:53Z",
            "2026-12-00T05:13:53Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T05:60:00Z",
            "2026-12-02 05:13:53Z",
            "2026-12-02T05:13:53+0200",
            "2026-12-02T05:13:53+24:00",
            "+026-12-02T05:13:53Z",
            "2026-12-02T05:13:53.1é",
            "２026-12-02T05:13:53Z",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        // `now` is what its doc says.
        assert_eq!(
            nanos_since_epoch(now()),
            at("2026-12-02T05:20:00Z").unwrap_or_default()
        );
        assert!(nanos_since_epoch(UNIX_EPOCH - Duration::from_secs(1)) < 0);
    }
}
