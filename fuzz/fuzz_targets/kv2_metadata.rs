//! Arbitrary bytes never panic the KV v2 metadata reply parser (what a probe maps
//! `GET <mount>/metadata/<path>` to): every input is a version (from a `200`, the pinned one
//! when pinned) or one of a probe's codes (`VERSION_DELETED` / `VERSION_DESTROYED` only from a
//! `200` whose body says so). Each input is also spliced into a real OpenBao
//! reply, so the fuzzer reaches the version checks without a corpus.
//!
//! Input: one byte picks the status, one the pin (none, or 1-7), the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secret_providers::{Probe, fuzz_metadata_reply};

/// A reply of OpenBao 2.7: version 1 destroyed, version 2 current and soft-deleted, 3 live.
const REAL: &[u8] = br#"{"request_id":"4bd2f7ca-26b0-7d22-9c73-d81f898dbf5e","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-12-02T05:13:53.290986651Z","current_metadata_version":0,"current_version":3,"custom_metadata":null,"delete_version_after":"0s","max_versions":0,"metadata_cas_required":false,"oldest_version":0,"updated_time":"2026-12-02T05:13:53.331177063Z","versions":{"1":{"created_time":"2026-12-02T05:13:53.290986651Z","deletion_time":"","destroyed":true},"2":{"created_time":"2026-12-02T05:13:53.331177063Z","deletion_time":"2026-12-02T05:13:53.356815804Z","destroyed":false},"3":{"created_time":"2026-12-02T05:13:54.331177063Z","deletion_time":"","destroyed":false}}},"wrap_info":null,"warnings":null,"auth":null}"#;

const STATUSES: [u16; 8] = [200, 200, 200, 200, 404, 403, 500, 301];

fn check(status: u16, pin: Option<u64>, body: &[u8]) {
    match fuzz_metadata_reply(status, body, pin) {
        Ok(Probe::Version(version)) => {
            assert_eq!(status, 200);
            assert!(version > 0);
            if let Some(pin) = pin {
                assert_eq!(version, pin);
            }
        }
        Ok(other) => panic!("a KV v2 probe always knows: {other:?}"),
        Err(error) => {
            let code = error.code();
            assert!(
                matches!(
                    code,
                    "NOT_FOUND"
                        | "PERMISSION_DENIED"
                        | "UNEXPECTED_STATUS"
                        | "MALFORMED_RESPONSE"
                        | "VERSION_DELETED"
                        | "VERSION_DESTROYED"
                ),
                "{code}"
            );
            // Only a 200 has a body to read; the other statuses map whatever the body.
            let expected = match status {
                200 => code,
                404 => "NOT_FOUND",
                403 => "PERMISSION_DENIED",
                _ => "UNEXPECTED_STATUS",
            };
            assert_eq!(code, expected, "HTTP {status}");
            if status == 200 {
                assert_ne!(code, "UNEXPECTED_STATUS");
                assert_ne!(code, "PERMISSION_DENIED");
            } else {
                // Only a 200's body can say a version is deleted or destroyed.
                assert!(!code.starts_with("VERSION_"), "HTTP {status}: {code}");
            }
            let _ = error.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [status, pin, rest @ ..] = data else {
        check(200, None, data);
        return;
    };
    let status = STATUSES[usize::from(*status) % STATUSES.len()];
    let pin = (*pin != 0).then(|| u64::from(*pin % 7) + 1);
    check(status, pin, rest);
    // Splice the rest into the real reply: the first two bytes of it pick where and how much.
    if let [at, cut, spliced @ ..] = rest {
        let mut reply = REAL.to_vec();
        let at = usize::from(*at) * reply.len() / 256;
        let end = (at + usize::from(*cut % 32)).min(reply.len());
        reply.splice(at..end, spliced.iter().copied());
        check(200, pin, &reply);
    }
});
