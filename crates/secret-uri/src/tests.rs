//! Unit tests: every rule, every code, and the order in which rules are checked.

use super::*;

fn canon(input: &str) -> String {
    match SecretUri::parse(input) {
        Ok(uri) => uri.into_string(),
        Err(e) => panic!("{input:?} should parse, got {}: {e}", e.code()),
    }
}

fn code(input: &str) -> &'static str {
    match SecretUri::parse(input) {
        Ok(uri) => panic!("{input:?} should fail, parsed as {uri}"),
        Err(e) => e.code(),
    }
}

fn err(input: &str) -> UriError {
    match SecretUri::parse(input) {
        Ok(uri) => panic!("{input:?} should fail, parsed as {uri}"),
        Err(e) => e,
    }
}

#[test]
fn canonical_forms_of_the_bench_mix() {
    let cases = [
        (
            "openbao+kv2://secret/app/api",
            "openbao+kv2://secret/app/api",
        ),
        (
            "OPENBAO+KV2://secret/app/api#token",
            "openbao+kv2://secret/app/api#token",
        ),
        (
            "openbao+kv2://secret/app/api#token?version=3",
            "openbao+kv2://secret/app/api#token?version=3",
        ),
        (
            "hashicorp+kv2://secret/crud/db?version=2",
            "hashicorp+kv2://secret/crud/db?version=2",
        ),
        (
            "openbao+kv2://secret/app/api?z=1&a=2&m=3",
            "openbao+kv2://secret/app/api?a=2&m=3&z=1",
        ),
        (
            "file://dc-infra/config.json#password",
            "file://dc-infra/config.json#password",
        ),
        ("db+cred://db/readonly", "db+cred://db/readonly"),
        ("db://db/readwrite", "db://db/readwrite"),
        ("bootstrap://local/token", "bootstrap://local/token"),
        ("yaml://config/app.yaml#db", "yaml://config/app.yaml#db"),
        (
            "hashicorp+kv2://secret/team-a/svc_b/key.v1#x",
            "hashicorp+kv2://secret/team-a/svc_b/key.v1#x",
        ),
        (
            "openbao+kv2://secret/app/api/",
            "openbao+kv2://secret/app/api",
        ),
        (
            "openbao+kv2://secret/app/api?version=1&x=y",
            "openbao+kv2://secret/app/api?version=1&x=y",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(canon(input), want, "{input}");
    }
}

#[test]
fn accessors() {
    let uri =
        SecretUri::parse("Hashicorp+Kv2://secret/team-a/svc_b/key.v1#x?b=&a=1&version=7").unwrap();
    assert_eq!(uri.provider(), Provider::HashiCorp);
    assert_eq!(uri.engine(), Some(Engine::Kv2));
    assert_eq!(uri.scheme(), "hashicorp+kv2");
    assert_eq!(uri.mount(), "secret");
    assert_eq!(uri.path(), "team-a/svc_b/key.v1");
    assert_eq!(
        uri.segments().collect::<Vec<_>>(),
        ["secret", "team-a", "svc_b", "key.v1"]
    );
    assert_eq!(uri.key(), Some("x"));
    assert_eq!(
        uri.params().collect::<Vec<_>>(),
        [("a", "1"), ("b", ""), ("version", "7")]
    );
    assert_eq!(uri.param("b"), Some(""));
    assert_eq!(uri.param("c"), None);
    assert_eq!(uri.version(), Some(7));
    assert_eq!(
        uri.as_str(),
        "hashicorp+kv2://secret/team-a/svc_b/key.v1#x?a=1&b=&version=7"
    );

    let bare = SecretUri::parse("file://mount").unwrap();
    assert_eq!(
        (bare.mount(), bare.path(), bare.key(), bare.version()),
        ("mount", "", None, None)
    );
    assert_eq!(bare.params().count(), 0);
    assert_eq!(bare.engine(), None);
}

#[test]
fn engine_is_optional_and_kept_absent() {
    let uri = SecretUri::parse("openbao://x/y").unwrap();
    assert_eq!(uri.engine(), None);
    assert_eq!(uri.as_str(), "openbao://x/y");
}

#[test]
fn rfc_order_query_then_fragment_is_accepted() {
    assert_eq!(
        canon("openbao+kv2://secret/app/api?version=3#token"),
        "openbao+kv2://secret/app/api#token?version=3"
    );
    assert_eq!(
        canon("openbao+kv2://secret/app?b=2&a=1#k"),
        "openbao+kv2://secret/app#k?a=1&b=2"
    );
}

#[test]
fn empty_key_and_empty_pairs_vanish() {
    assert_eq!(canon("file://a/b#"), "file://a/b");
    assert_eq!(canon("file://a/b?"), "file://a/b");
    assert_eq!(canon("file://a/b#?&&"), "file://a/b");
    assert_eq!(canon("file://a/b?&x&&y=1&"), "file://a/b?x=&y=1");
}

#[test]
fn key_may_hold_any_text_but_hash_question_mark_and_controls() {
    assert_eq!(canon("file://a/b#my key/é=1&x"), "file://a/b#my key/é=1&x");
    assert_eq!(code("file://a/b#x\n"), "ILLEGAL_SEGMENT");
    let e = err("file://a/b?v=1#k?x");
    assert_eq!(
        e,
        UriError::IllegalSegment {
            offset: 16,
            reason: IllegalSegmentReason::QuestionMarkInKey
        }
    );
}

#[test]
fn rule1_separator_and_empty_scheme() {
    let e = err("openbao+kv2:/secret/app");
    assert!(
        matches!(
            e,
            UriError::IllegalSegment {
                reason: IllegalSegmentReason::MissingSeparator,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(code("secret/app"), "ILLEGAL_SEGMENT");
    assert_eq!(code(""), "ILLEGAL_SEGMENT");
    assert_eq!(
        err("://secret/app"),
        UriError::IllegalSegment {
            offset: 0,
            reason: IllegalSegmentReason::EmptyScheme
        }
    );
    // Rule 1 wins over every later rule.
    assert_eq!(code("://secret/*?version=0"), "ILLEGAL_SEGMENT");
}

#[test]
fn rule2_scheme() {
    for bad in [
        "vault://a/b",
        "openbao+kv1://a/b",
        "openbao+://a/b",
        "file+kv2://a/b",
        "öpenbao://a/b",
        "openbao+kv2+x://a/b",
        "open bao://a/b",
        "db+kv2://a/b",
        "bootstrap+x://a/b",
    ] {
        assert_eq!(code(bad), "UNSUPPORTED_ENGINE", "{bad}");
    }
    assert!(matches!(
        err("openbao+://a/b"),
        UriError::UnsupportedEngine {
            offset: 8,
            reason: EngineReason::EmptyEngine,
            ..
        }
    ));
    assert!(matches!(
        err("openbao+kv1://a/b"),
        UriError::UnsupportedEngine {
            offset: 8,
            reason: EngineReason::UnknownEngine,
            ..
        }
    ));
    assert!(matches!(
        err("vault://a/b"),
        UriError::UnsupportedEngine {
            offset: 0,
            reason: EngineReason::UnknownProvider,
            ..
        }
    ));
    for good in [
        "db+cred://db/x",
        "DB+DB://db/x",
        "File://a/b",
        "YAML://c/a.yaml",
        "Bootstrap://l/t",
        "HashiCorp://s/x",
    ] {
        assert!(SecretUri::parse(good).is_ok(), "{good}");
    }
    // Rule 2 wins over rules 3 and 4.
    assert_eq!(code("vault://a/../b?x=1&x=2"), "UNSUPPORTED_ENGINE");
}

#[test]
fn rule3_fragments() {
    assert_eq!(
        err("file://a/b#x#y"),
        UriError::IllegalSegment {
            offset: 12,
            reason: IllegalSegmentReason::MultipleFragments
        }
    );
    // Two `#` beat a bad version and a bad path.
    assert_eq!(code("file://a/*#x?version=0#y"), "ILLEGAL_SEGMENT");
}

#[test]
fn rule3_query() {
    assert_eq!(
        err("file://a/b?=1"),
        UriError::IllegalSegment {
            offset: 11,
            reason: IllegalSegmentReason::EmptyParameterName
        }
    );
    assert_eq!(
        err("file://a/b?x=1&x=2"),
        UriError::AmbiguousQuery {
            offset: 15,
            name: "x".into()
        }
    );
    assert_eq!(code("file://a/b?x&x"), "AMBIGUOUS_QUERY");
    assert_eq!(
        err("file://a/b?mount=other"),
        UriError::DoubleMountSource { offset: 11 }
    );
    // Repeats are seen as pairs are read: a repeat before an empty name wins, and after it loses.
    assert_eq!(code("file://a/b?x=1&x=2&=3"), "AMBIGUOUS_QUERY");
    assert_eq!(code("file://a/b?=3&x=1&x=2"), "ILLEGAL_SEGMENT");
    // `mount` is checked after all pairs: a later repeat still wins.
    assert_eq!(code("file://a/b?mount=m&x=1&x=2"), "AMBIGUOUS_QUERY");
    // ... and before `version`.
    assert_eq!(code("file://a/b?version=0&mount=m"), "DOUBLE_MOUNT_SOURCE");
    // Values may hold `=` and `?`.
    assert_eq!(canon("file://a/b?x=a=b?c"), "file://a/b?x=a=b?c");
    assert_eq!(code("file://a/b?x=1\t"), "ILLEGAL_SEGMENT");
}

#[test]
fn rule3_version() {
    let ok = [("1", 1), ("3", 3), ("18446744073709551615", u64::MAX)];
    for (v, want) in ok {
        assert_eq!(
            SecretUri::parse(&format!("openbao+kv2://s/a?version={v}"))
                .unwrap()
                .version(),
            Some(want)
        );
    }
    let bad = [
        ("", VersionReason::Empty),
        ("0", VersionReason::Zero),
        ("00", VersionReason::LeadingZero),
        ("007", VersionReason::LeadingZero),
        ("+3", VersionReason::NotDigits),
        ("-3", VersionReason::NotDigits),
        ("3a", VersionReason::NotDigits),
        ("٣", VersionReason::NotDigits),
        ("1.0", VersionReason::NotDigits),
        ("18446744073709551616", VersionReason::Overflow),
    ];
    for (v, reason) in bad {
        let e = err(&format!("openbao+kv2://s/a?version={v}"));
        assert_eq!(e, UriError::InvalidVersion { offset: 26, reason }, "{v:?}");
    }
    assert_eq!(code("openbao+kv2://s/a?version"), "INVALID_VERSION");
    // Rule 3 beats rule 4.
    assert_eq!(code("openbao+kv2://s/../a*?version=0"), "INVALID_VERSION");
}

#[test]
fn rule4_path() {
    use IllegalSegmentReason as R;
    let cases = [
        ("file://a/b%2fc", 10, R::EncodedSlash),
        ("file://a/b%2Fc", 10, R::EncodedSlash),
        ("file://a/../b", 9, R::DotDot),
        ("file://a/b..c", 10, R::DotDot),
        ("file://", 7, R::NoSegment),
        ("file:///", 7, R::NoSegment),
        ("file:///a", 7, R::EmptySegment),
        ("file://a//b", 9, R::EmptySegment),
        ("file://a/b//", 11, R::EmptySegment),
        ("file://a/./b", 9, R::DotSegment),
        ("file://a/b c", 10, R::InvalidCharacter),
        ("file://a/b%41", 10, R::InvalidCharacter),
        ("file://a/é", 9, R::InvalidCharacter),
        ("file://a/b\n", 10, R::ControlCharacter),
        ("file://a/b\r\n", 10, R::ControlCharacter),
        ("file://a\u{7f}/b", 8, R::ControlCharacter),
    ];
    for (input, offset, reason) in cases {
        assert_eq!(
            err(input),
            UriError::IllegalSegment { offset, reason },
            "{input:?}"
        );
    }
    assert_eq!(err("file://a/b*"), UriError::InvalidWildcard { offset: 10 });
    assert_eq!(code("file://*"), "INVALID_WILDCARD");
    // Left to right: an illegal segment before a wildcard wins, and after it loses.
    assert_eq!(code("file://a/b c/d*"), "ILLEGAL_SEGMENT");
    assert_eq!(code("file://a/d*/b c"), "INVALID_WILDCARD");
    // `..`, `%2f` and empty segments are checked before any segment.
    assert_eq!(code("file://a*/../b"), "ILLEGAL_SEGMENT");
    assert_eq!(code("file://a*//b"), "ILLEGAL_SEGMENT");
    // A single dot inside a name is fine.
    assert_eq!(canon("file://a/.env"), "file://a/.env");
    assert_eq!(canon("file://a/b.c.d"), "file://a/b.c.d");
}

#[test]
fn trailing_newline_is_rejected_wherever_it_lands() {
    for input in [
        "openbao+kv2://secret/app/api\n",
        "openbao+kv2://secret/app/api#token\n",
        "openbao+kv2://secret/app/api#token?version=3\n",
        "openbao+kv2://secret/app/api?version=3\n",
    ] {
        assert_eq!(code(input), "ILLEGAL_SEGMENT", "{input:?}");
    }
}

#[test]
fn tenant_mount_guard() {
    let allowed = AllowedMounts::from_csv(" secret , config,,secret");
    assert_eq!(allowed.iter().collect::<Vec<_>>(), ["secret", "config"]);
    let uri = SecretUri::parse("openbao+kv2://secret/app").unwrap();
    assert!(allowed.check(&uri).is_ok());
    let e = SecretUri::parse_allowed("openbao+kv2://Secret/app", &allowed).unwrap_err();
    assert_eq!(
        e,
        UriError::TenantMountMismatch {
            mount: "Secret".into()
        }
    );
    assert_eq!(e.code(), "TENANT_MOUNT_MISMATCH");
    assert_eq!(e.offset(), None);
    assert!(AllowedMounts::default().check(&uri).is_ok());
    assert!(AllowedMounts::default().is_unrestricted());
    // A parse error comes before the guard.
    assert_eq!(
        SecretUri::parse_allowed("openbao+kv2://other/*", &allowed)
            .unwrap_err()
            .code(),
        "INVALID_WILDCARD"
    );
}

#[test]
fn redacted_debug_is_redacted_too() {
    let uri =
        SecretUri::parse("openbao+kv2://secret/app/db#password").unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{:?} {:#?}", uri.redacted(), uri.redacted());
    assert!(
        !shown.contains("app/db") && !shown.contains("password"),
        "{shown}"
    );
    assert!(
        shown.starts_with("Redacted(openbao+kv2://secret/…)"),
        "{shown}"
    );
}

#[test]
fn redacted_shows_scheme_and_mount_only() {
    let uri = SecretUri::parse("openbao+kv2://secret/app/api#token?version=3").unwrap();
    assert_eq!(uri.redacted().to_string(), "openbao+kv2://secret/…");
    assert_eq!(
        SecretUri::parse("file://m").unwrap().redacted().to_string(),
        "file://m"
    );
    assert_eq!(
        SecretUri::parse("file://m#k")
            .unwrap()
            .redacted()
            .to_string(),
        "file://m/…"
    );
}

#[test]
fn every_code_is_distinct_and_messages_carry_offsets() {
    let samples = [
        "x",
        "file://a/*",
        "vault://a",
        "file://a?x&x",
        "file://a?mount=b",
        "file://a?version=0",
    ];
    let mut codes: Vec<&str> = samples.iter().map(|s| code(s)).collect();
    codes.push(UriError::TenantMountMismatch { mount: "m".into() }.code());
    let mut dedup = codes.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), codes.len(), "{codes:?}");
    for s in samples {
        let e = err(s);
        assert!(
            e.to_string()
                .contains(&format!("at byte {}", e.offset().unwrap())),
            "{e}"
        );
    }
}

#[test]
fn error_messages_do_not_echo_the_uri() {
    let e = err("openbao+kv2://secret/sup3r-s3cret-name/*");
    assert!(!e.to_string().contains("sup3r-s3cret-name"), "{e}");
    assert!(!format!("{e:?}").contains("sup3r-s3cret-name"), "{e:?}");
    let long = format!("{}://a/b", "x".repeat(500));
    let e = err(&long);
    assert!(e.to_string().len() < 200, "{e}");
    let e = err("file://a/b?p%0a\u{1b}[31m=1&p%0a\u{1b}[31m=2");
    assert!(
        !e.to_string().contains('\u{1b}'),
        "escape sequences are escaped: {e}"
    );
}

#[test]
fn equality_is_canonical() {
    let a = SecretUri::parse("FILE://x/y?b=1&a=2").unwrap();
    let b = SecretUri::parse("file://x/y/?a=2&b=1").unwrap();
    assert_eq!(a, b);
    assert_eq!(format!("{a:?}"), "SecretUri(\"file://x/y?a=2&b=1\")");
}

#[cfg(feature = "serde")]
#[test]
fn serde_roundtrip_as_canonical_string() {
    let uri = SecretUri::parse("OPENBAO+KV2://secret/app?version=2#k").unwrap();
    let json = serde_json::to_string(&uri).unwrap();
    assert_eq!(json, "\"openbao+kv2://secret/app#k?version=2\"");
    let back: SecretUri = serde_json::from_str(&json).unwrap();
    assert_eq!(back, uri);
    let bad = serde_json::from_str::<SecretUri>("\"file://a/*\"").unwrap_err();
    assert!(bad.to_string().contains("INVALID_WILDCARD"), "{bad}");
}

#[test]
fn the_scheme_fast_path_agrees_with_the_provider_table() {
    // Every provider/engine pair of the table parses, in any case, to itself.
    for provider in Provider::ALL {
        let mut schemes = vec![provider.as_str().to_owned()];
        schemes.extend(provider.engines().iter().map(|e| format!("{provider}+{e}")));
        for scheme in schemes {
            for written in [scheme.clone(), scheme.to_ascii_uppercase()] {
                let uri = SecretUri::parse(&format!("{written}://m/p")).unwrap();
                assert_eq!(uri.scheme(), scheme);
                assert_eq!(uri.provider(), provider);
            }
        }
    }
}

#[test]
fn offsets_never_point_past_the_input() {
    // Found by cargo-fuzz: `version` without `=` at the very end pointed one byte past the end.
    let e = err("openbao+kv2://s/a?version");
    assert_eq!(
        e,
        UriError::InvalidVersion {
            offset: 25,
            reason: VersionReason::Empty
        }
    );
    let fuzzed =
        "openbao+kv2://ag\u{1}/////////////////////q+C\u{0}n=301&file-iyebd+Ɣ:/dƔ:Ɣreb/api?version";
    let e = err(fuzzed);
    assert!(e.offset().unwrap() <= fuzzed.len(), "{e:?}");
    assert_eq!(err("openbao+kv2://s/a?version=x").offset(), Some(26));
}
