//! Property tests: round trips, idempotence, and no panics on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use proptest::prelude::*;
use secret_uri::SecretUri;

fn scheme() -> impl Strategy<Value = String> {
    let schemes = prop::sample::select(vec![
        "openbao",
        "openbao+kv2",
        "hashicorp",
        "hashicorp+kv2",
        "db",
        "db+cred",
        "db+db",
        "bootstrap",
        "file",
        "yaml",
    ]);
    (schemes, any::<u64>()).prop_map(|(s, mask)| {
        // Random ASCII case: the canonical form is lowercase whatever was written.
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if (mask >> (i % 64)) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    })
}

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9._-]{0,11}".prop_filter("no `..`", |s| !s.contains(".."))
}

fn key() -> impl Strategy<Value = String> {
    // Any text without `#`, `?` or control characters.
    "[^#?\\p{Cc}]{0,12}"
}

fn query() -> impl Strategy<Value = Vec<(String, Option<String>)>> {
    let name = "[a-z][a-z0-9_]{0,6}".prop_filter("reserved", |n| n != "mount" && n != "version");
    let value = prop::option::of("[^#&\\p{Cc}]{0,8}");
    prop::collection::btree_map(name, value, 0..5).prop_map(|m| m.into_iter().collect())
}

prop_compose! {
    fn uri_text()(
        scheme in scheme(),
        segments in prop::collection::vec(segment(), 1..6),
        trailing_slash in any::<bool>(),
        key in prop::option::of(key()),
        mut pairs in query(),
        version in prop::option::of(1u64..),
        rfc_order in any::<bool>(),
        shuffle in any::<prop::sample::Index>(),
    ) -> String {
        let mut s = format!("{scheme}://{}", segments.join("/"));
        if trailing_slash {
            s.push('/');
        }
        if let Some(v) = version {
            pairs.push(("version".into(), Some(v.to_string())));
        }
        if !pairs.is_empty() {
            let by = shuffle.index(pairs.len());
            pairs.rotate_left(by);
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect();
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        let fragment = key.map(|k| format!("#{k}")).unwrap_or_default();
        if rfc_order {
            s.push_str(&query);
            s.push_str(&fragment);
        } else {
            s.push_str(&fragment);
            s.push_str(&query);
        }
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_uris_parse_and_round_trip(text in uri_text()) {
        let uri = SecretUri::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {}: {e}", e.code())))?;
        let again = SecretUri::parse(uri.as_str()).unwrap();
        prop_assert_eq!(&again, &uri);
        // Every accessor survives the round trip.
        prop_assert_eq!(again.provider(), uri.provider());
        prop_assert_eq!(again.engine(), uri.engine());
        prop_assert_eq!(again.key(), uri.key());
        prop_assert_eq!(again.version(), uri.version());
        prop_assert_eq!(again.params().collect::<Vec<_>>(), uri.params().collect::<Vec<_>>());
        prop_assert_eq!(again.segments().collect::<Vec<_>>(), uri.segments().collect::<Vec<_>>());
        // The canonical scheme is lowercase and the pairs are sorted.
        prop_assert_eq!(uri.scheme(), uri.scheme().to_ascii_lowercase());
        let names: Vec<&str> = uri.params().map(|(n, _)| n).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        prop_assert_eq!(names, sorted);
    }

    #[test]
    fn arbitrary_input_never_panics_and_valid_results_are_fixed_points(text in any::<String>()) {
        if let Ok(uri) = SecretUri::parse(&text) {
            let again = SecretUri::parse(uri.as_str()).unwrap();
            prop_assert_eq!(again.as_str(), uri.as_str());
        }
    }

    #[test]
    fn uri_shaped_noise_never_panics_and_canonicalization_is_idempotent(
        text in "(openbao|OPENBAO\\+kv2|file|db\\+cred|x)?(:|://|:///)?[a-z./%*#?&=+2F\\n-]{0,40}"
    ) {
        match SecretUri::parse(&text) {
            Ok(uri) => {
                let again = SecretUri::parse(uri.as_str()).unwrap();
                prop_assert_eq!(again.as_str(), uri.as_str());
            }
            Err(e) => {
                // Offsets always point inside (or just past) the input.
                if let Some(offset) = e.offset() {
                    prop_assert!(offset <= text.len(), "{offset} > {}", text.len());
                }
            }
        }
    }
}
