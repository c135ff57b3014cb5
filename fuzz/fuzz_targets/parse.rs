//! Arbitrary bytes never panic the parser, and every accepted URI is a fixed point of
//! canonicalization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secret_uri::{AllowedMounts, SecretUri};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SecretUri::parse(text) {
        Ok(uri) => {
            let again = SecretUri::parse(uri.as_str()).expect("a canonical form parses");
            assert_eq!(again, uri);
            let _ = AllowedMounts::from_csv("secret,app").check(&uri);
            let _ = uri.redacted().to_string();
        }
        Err(e) => {
            assert!(e.offset().is_none_or(|o| o <= text.len()));
            let _ = e.to_string();
        }
    }
});
