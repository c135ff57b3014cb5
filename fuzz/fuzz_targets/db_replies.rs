//! Arbitrary bytes never panic the database engine's reply parsers (`creds/<role>`,
//! `static-creds/<role>`, `sys/leases/renew`, `sys/leases/revoke`), and what they accept keeps
//! their promises (`secret_providers::fuzz_db_replies` asserts them). Each input is also
//! spliced into a real OpenBao reply, so the fuzzer reaches the field checks without a corpus.
//!
//! Input: one byte picks the status, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secret_providers::fuzz_db_replies;

/// `GET database/creds/app` of OpenBao 2.x.
const REAL: &[u8] = br#"{"request_id":"b56a80bd-04ae-f787-0af4-1167ef6281d5","lease_id":"database/creds/app/Sr2Xi56pztZN0TUmON4NOTLO","renewable":true,"lease_duration":3,"data":{"password":"Z4-YL-1Y08A7rM9lEXk7","username":"v-token-app-PPuiyvb69kztyZ0o5mT3-1796298455"},"wrap_info":null,"warnings":null,"auth":null}"#;

const STATUSES: [u16; 8] = [200, 200, 200, 400, 404, 403, 204, 500];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(pick) % STATUSES.len()];
    fuzz_db_replies(status, body);
    // The input spliced into the real reply at a position the first byte picks.
    let at = usize::from(pick) % REAL.len();
    let mut spliced = REAL[..at].to_vec();
    spliced.extend_from_slice(body);
    spliced.extend_from_slice(&REAL[at..]);
    fuzz_db_replies(status, &spliced);
});
