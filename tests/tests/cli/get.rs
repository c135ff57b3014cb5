//! `secrets get` end to end: the built binary against a real OpenBao and a real Cerbos serving
//! the workspace's test policies (`secrets_test_support::cerbos::policies()`). A SKIP line
//! locally when either is not installed, a failure under CI=true.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::cli::secrets;
use secrets_test_support::cerbos::{cerbos_or_skip, policies};
use secrets_test_support::openbao_or_skip;

#[test]
fn reads_through_the_pep_against_openbao_and_cerbos() {
    let Some(bao) = openbao_or_skip() else {
        return;
    };
    let Some(cerbos) = cerbos_or_skip(&policies()) else {
        return;
    };
    bao.kv_put(
        "secret",
        "seven/api",
        &serde_json::json!({"token": "get-token", "n": 1}),
    )
    .unwrap();
    let vars: Vec<(&str, String)> = vec![
        ("VAULT_URL", bao.addr()),
        ("VAULT_TOKEN", bao.root_token().to_owned()),
        ("TENANT_ID", "t1".to_owned()),
        ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
        ("SECRET_TENANT_SALT", "cli-test-salt-0123456789".to_owned()),
        ("AUTHZEN_PDP_URL", cerbos.addr()),
        ("AUTHZEN_DIALECT", "cerbos".to_owned()),
    ];
    // URI, then flags; `alice` is a `reader` unless the flags say otherwise. Each run is its
    // own process, in an environment with only these variables (and PATH).
    let get_as = |argv: &[&str]| {
        let mut argv = argv.to_vec();
        argv.extend(["--subject", "alice", "--role", "reader"]);
        let run = vars
            .iter()
            .fold(
                secrets(std::iter::once("get").chain(argv)),
                |secrets, (k, v)| secrets.env(k, v),
            )
            .run();
        (run.code, run.stdout, run.stderr)
    };
    let get = |uri: &str, extra: &[&str]| {
        let mut argv = vec![uri, "--aud", "crud.secrets"];
        argv.extend(extra);
        get_as(&argv)
    };
    // The policy grants `seven/` 7 uses; each run is a fresh client, so a fresh grant.
    let token = "openbao+kv2://secret/seven/api#token";
    assert_eq!(
        get(token, &["--jti", "a"]),
        (0, "get-token\n".into(), String::new())
    );
    assert_eq!(
        get(token, &["--jti", "b", "--format", "json"]),
        (0, "\"get-token\"\n".into(), String::new())
    );
    assert_eq!(
        get(
            "openbao+kv2://secret/seven/api",
            &["--jti", "c", "--cnf-jkt", "k"]
        ),
        (
            0,
            "{\"n\":1,\"token\":\"get-token\"}\n".into(),
            String::new()
        )
    );
    let (code, out, err) = get("openbao+kv2://secret/seven/api#nope", &["--jti", "d"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("KEY_NOT_FOUND: "), "{err}");
    let (code, _, err) = get("openbao+kv2://secret/denied/x", &["--jti", "e"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("AUTHZ_DENIED: ") && err.contains("PDP_DENY"),
        "{err}"
    );
    let (code, _, err) = get_as(&[token, "--aud", "billing", "--jti", "f"]);
    assert_eq!(code, 1);
    assert!(err.contains("AUDIENCE"), "{err}");
    // No value, token or thumbprint in any message.
    assert!(!err.contains("get-token") && !err.contains(bao.root_token()));
}

/// `secrets get` with `ENABLE_KAFKA_PRODUCER=true`: its decision and read events land in
/// `<prefix>secrets.audit` on a real Kafka-protocol broker (tansu), flushed before the
/// command exits; a stock Kafka client reads them back as OCSF with the keyed `resource_ref`,
/// and no value, token, `jti` or URI is in any record.
#[test]
fn publishes_its_audit_events_to_kafka() {
    use crate::common::kafka::consume;
    use secrets_sdk::audit::{AuditKey, EventType, from_ocsf};

    let Some(bao) = openbao_or_skip() else {
        return;
    };
    let Some(cerbos) = cerbos_or_skip(&policies()) else {
        return;
    };
    let Some(kafka) = secrets_test_support::tansu::tansu_or_skip() else {
        return;
    };
    const SALT: &str = "cli-kafka-salt-0123456789abcdef";
    const VALUE: &str = "kafka-get-VALUE-7e1f";
    const JTI: &str = "kafka-get-JTI-41c2";
    bao.kv_put(
        "secret",
        "seven/kafka",
        &serde_json::json!({"token": VALUE}),
    )
    .unwrap();
    let uri = "openbao+kv2://secret/seven/kafka#token";
    let vars: Vec<(&str, String)> = vec![
        ("VAULT_URL", bao.addr()),
        ("VAULT_TOKEN", bao.root_token().to_owned()),
        ("TENANT_ID", "t1".to_owned()),
        ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
        ("SECRET_TENANT_SALT", SALT.to_owned()),
        ("AUTHZEN_PDP_URL", cerbos.addr()),
        ("AUTHZEN_DIALECT", "cerbos".to_owned()),
        ("ENABLE_KAFKA_PRODUCER", "true".to_owned()),
        ("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap()),
        ("KAFKA_TOPIC_PREFIX", "cli-get.".to_owned()),
    ];
    let run = vars
        .iter()
        .fold(
            secrets([
                "get",
                uri,
                "--subject",
                "alice",
                "--role",
                "reader",
                "--aud",
                "crud.secrets",
                "--jti",
                JTI,
            ]),
            |secrets, (k, v)| secrets.env(k, v),
        )
        .run();
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, format!("{VALUE}\n").as_str(), ""),
        "{run:?}"
    );

    // Flushed before the command exited: both events are on the broker now.
    let consumed = consume(&kafka.bootstrap(), "cli-get.secrets.audit", 2).unwrap();
    let key = AuditKey::new(SALT.as_bytes(), None).unwrap();
    let keyed = key.resource_ref(&uri.parse().unwrap()).to_string();
    let mut kinds = Vec::new();
    for consumed in &consumed {
        let record = &consumed.record.record;
        let event = from_ocsf(record.value.as_deref().unwrap_or_default()).unwrap();
        assert_eq!(
            event.resource_ref().map(ToString::to_string),
            Some(keyed.clone())
        );
        assert_eq!(record.key.as_deref(), Some(keyed.as_bytes()));
        assert_eq!(event.tenant(), "t1");
        kinds.push(event.kind());
        let text = crate::common::kafka::record_text(record);
        for canary in [VALUE, JTI, bao.root_token(), SALT, "seven/kafka", "#token"] {
            assert!(!text.contains(canary), "{canary} in a record: {text}");
        }
    }
    kinds.sort_by_key(|kind| kind.as_str());
    assert_eq!(kinds, [EventType::AccessGranted, EventType::Read]);
}
