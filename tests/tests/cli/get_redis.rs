//! `secrets get` as one more replica: two separate processes with `REDIS_URL` set share the
//! replay window and the grants' use counts, against a real Redis, a real OpenBao and a real
//! Cerbos (each counted by a proxy in front of it). A SKIP line locally when a server is not
//! installed, a failure under CI=true.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use secrets_test_support::cerbos::{cerbos_or_skip, policies};
use secrets_test_support::openbao_or_skip;
use secrets_test_support::proxy::CountingProxy;

use crate::common::cli::secrets;
use crate::common::redis::{STATE_KEY, assert_no_canary, keys_of, state_vars, suite_redis};

const SALT: &str = "cli-redis-salt-0123456789abcdef";
const VALUE: &str = "rcanary-cli-value-0d2e";
/// The policy grants `seven/` 7 uses for 60 s.
const PATH: &str = "seven/rcanary-cli";
const SUBJECT: &str = "rcanary-cli-subject";
const JTI: &str = "rcanary-cli-jti-1";
const OTHER_JTI: &str = "rcanary-cli-jti-2";

#[test]
fn two_runs_share_the_replay_window_and_the_use_counts() {
    let Some(redis) = suite_redis() else {
        return;
    };
    let Some(bao) = openbao_or_skip() else {
        return;
    };
    let Some(cerbos) = cerbos_or_skip(&policies()) else {
        return;
    };
    bao.kv_put("secret", PATH, &serde_json::json!({"token": VALUE}))
        .unwrap();
    let vault = CountingProxy::start(&bao.addr()).unwrap();
    let pdp = CountingProxy::start(&cerbos.addr()).unwrap();
    let server = redis.blocking_read();
    let prefix = "cli-suite:";
    let mut vars: Vec<(&str, String)> = vec![
        ("VAULT_URL", vault.addr()),
        ("VAULT_TOKEN", bao.root_token().to_owned()),
        ("TENANT_ID", "t1".to_owned()),
        ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
        ("SECRET_TENANT_SALT", SALT.to_owned()),
        ("AUTHZEN_PDP_URL", pdp.addr()),
        ("AUTHZEN_DIALECT", "cerbos".to_owned()),
        // Cerbos's metadata names its own port, not the proxy's.
        ("AUTHZEN_DISCOVERY", "false".to_owned()),
    ];
    vars.extend(state_vars(&server, prefix, 2000));
    let uri = format!("openbao+kv2://secret/{PATH}#token");
    // Each run is its own process, in an environment with only these variables (and PATH).
    let get = |jti: &str| {
        let argv = [
            "get",
            uri.as_str(),
            "--subject",
            SUBJECT,
            "--role",
            "reader",
            "--aud",
            "crud.secrets",
            "--jti",
            jti,
        ];
        let run = vars
            .iter()
            .fold(secrets(argv), |secrets, (k, v)| secrets.env(k, v))
            .run();
        (run.code, run.stdout, run.stderr)
    };
    let decisions = || pdp.count("/access/v1/evaluation");
    let reads = || vault.count(&format!("/v1/secret/data/{PATH}"));

    assert_eq!(get(JTI), (0, format!("{VALUE}\n"), String::new()));
    assert_eq!((decisions(), reads()), (1, 1));

    // A second process, the same jti: refused as a replay before the PDP and the vault.
    let (code, out, err) = get(JTI);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.starts_with("AUTHZ_DENIED: ") && err.contains("REPLAY"),
        "{err}"
    );
    assert_eq!((decisions(), reads()), (1, 1));

    // A third, with a fresh jti: use 2 of the grant the first run's decision stored.
    assert_eq!(get(OTHER_JTI), (0, format!("{VALUE}\n"), String::new()));
    assert_eq!(
        (decisions(), reads()),
        (1, 2),
        "the runs share one grant and its use count"
    );
    let uses = keys_of(&server, prefix, "uses");
    assert_eq!(uses.len(), 1);
    let count = server.command(&["GET", uses[0].as_str()]).unwrap();
    assert_eq!(count.as_bytes(), Some(&b"2"[..]));
    assert_eq!(keys_of(&server, prefix, "replay").len(), 2);

    for canary in [VALUE, JTI, SUBJECT, bao.root_token()] {
        assert!(!err.contains(canary), "{canary} in {err}");
    }
    assert!(
        assert_no_canary(
            &server,
            &["rcanary", PATH, &uri, SALT, STATE_KEY, bao.root_token()]
        ) >= 4
    );
}
