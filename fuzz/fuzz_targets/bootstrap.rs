//! Arbitrary text never panics the bootstrap file's parser (`BootstrapConfig::from_json`:
//! strict JSON, every field's type and the `values` section checked), every failure has one
//! of its codes, and no secret of the file (token, AppRole secret ID, a value) ever appears in
//! an error or in the `Debug` of what it returns. Each input is also spliced into a real
//! bootstrap file at a structural position (outside its strings), so the fuzzer reaches the
//! field checks with the secrets in place.
//!
//! Input: one byte picks the splice position, the rest is the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrets_sdk::BootstrapConfig;

const CANARY: &str = "CANARY-b00t";

const REAL: &str = r#"{"vault_addr":"https://vault.internal:8200","auth_method":"approle","approle_role_id":"role-1","approle_secret_id":"CANARY-b00t-1","token":"CANARY-b00t-2","namespace":"team","values":{"app/db":{"password":"CANARY-b00t-3","user":"app"},"kafka":"CANARY-b00t-4"}}"#;

/// Byte offsets of REAL's structural characters (outside string literals).
fn splice_points() -> Vec<usize> {
    let mut points = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for (i, b) in REAL.bytes().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
            points.push(i);
        } else if matches!(b, b'{' | b'}' | b',' | b':') {
            points.push(i);
            points.push(i + 1);
        }
    }
    points
}

fn check(text: &str) {
    match BootstrapConfig::from_json(text, "fuzz") {
        Ok(config) => {
            let shown = format!("{config:?}");
            assert!(!shown.contains(CANARY), "Debug shows a secret: {shown}");
        }
        Err(error) => {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(CANARY), "an error shows a secret: {shown}");
            assert!(
                matches!(
                    error.code(),
                    "BOOTSTRAP_PARSE" | "BOOTSTRAP_INVALID" | "CONFIG"
                ),
                "code {}: {shown}",
                error.code()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    // The fuzzer's own canary could rightly be echoed (as a field name, say).
    if text.contains("CANARY") {
        return;
    }
    check(text);
    let points = splice_points();
    let at = points[usize::from(pick) % points.len()];
    check(&format!("{}{text}{}", &REAL[..at], &REAL[at..]));
});
