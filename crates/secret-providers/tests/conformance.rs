//! One conformance suite, object_store style: the same reads and errors against every
//! provider, through the object-safe `SecretProvider` trait and the `ProviderRouter`.
//!
//! Every backend gets the same fixture (`<mount>/app/db` = a JSON object, `<mount>/app/note`
//! = text where the backend can hold text), then the same table of URIs and expected
//! outcomes runs against `file://`, `openbao+kv2://` and `hashicorp+kv2://`. Cases that only
//! apply to versioned stores (pinned versions, deletions) run only there.
#![cfg(all(feature = "file", feature = "openbao", feature = "hashicorp"))]

mod common;

use std::sync::Arc;

use common::{TestResult, config};
use secret_providers::{
    FileConfig, FileProvider, Kv2Auth, Kv2Flavor, Kv2Provider, ProviderRouter, SecretProvider,
};
use secret_uri::{Provider, SecretUri};
use serde_json::{Value, json};

#[derive(Debug)]
enum Expect {
    Json(Value),
    Text(&'static str),
    Code(&'static str),
}

/// A URI template and what reading it must give.
type Case = (&'static str, fn() -> Expect);

struct Backend {
    scheme: &'static str,
    mount: &'static str,
    versioned: bool,
}

/// Cases every provider must agree on. `{m}` is the backend's mount.
const COMMON: &[Case] = &[
    ("{m}/app/db", || {
        Expect::Json(json!({"user": "app", "password": "pw", "port": 5432, "tls": {"on": true}}))
    }),
    ("{m}/app/db#password", || Expect::Text("pw")),
    ("{m}/app/db#port", || Expect::Json(json!(5432))),
    ("{m}/app/db#tls", || Expect::Json(json!({"on": true}))),
    ("{m}/app/db#nope", || Expect::Code("KEY_NOT_FOUND")),
    ("{m}/app/missing", || Expect::Code("NOT_FOUND")),
    ("{m}/app/db/deeper", || Expect::Code("NOT_FOUND")),
    ("{m}", || Expect::Code("INVALID_PATH")),
];

/// Cases for versioned stores (KV v2): `app/db` has versions 1 (live), 2 (deleted),
/// 3 (destroyed), 4 (live, latest); `app/gone` has its latest deleted.
const VERSIONED: &[Case] = &[
    ("{m}/app/versions#v?version=1", || Expect::Text("one")),
    ("{m}/app/versions?version=2", || {
        Expect::Code("VERSION_DELETED")
    }),
    ("{m}/app/versions?version=3", || {
        Expect::Code("VERSION_DESTROYED")
    }),
    ("{m}/app/versions#v", || Expect::Text("four")),
    ("{m}/app/versions?version=99", || Expect::Code("NOT_FOUND")),
    ("{m}/app/gone", || Expect::Code("VERSION_DELETED")),
    // Parameters KV v2 does not serve are refused before the request.
    ("{m}/app/versions?verison=2#v", || {
        Expect::Code("UNKNOWN_PARAMETER")
    }),
    ("{m}/app/versions#v?n=1&version=2", || {
        Expect::Code("UNKNOWN_PARAMETER")
    }),
];

/// Cases for the file store, which has no versions.
const UNVERSIONED: &[Case] = &[
    ("{m}/app/note", || Expect::Text("plain text")),
    ("{m}/app/note#k", || Expect::Code("NOT_JSON")),
    ("{m}/app/db?version=1", || Expect::Code("UNKNOWN_PARAMETER")),
];

async fn check(router: &ProviderRouter, backend: &Backend, cases: &[Case]) -> TestResult {
    for (template, expect) in cases {
        let text = format!(
            "{}://{}",
            backend.scheme,
            template.replace("{m}", backend.mount)
        );
        let uri: SecretUri = text.parse()?;
        let result = router.read(&uri).await;
        match (expect(), &result) {
            (Expect::Json(want), Ok(value)) => {
                assert_eq!(value.expose_json(), Some(&want), "{text}")
            }
            (Expect::Text(want), Ok(value)) => assert_eq!(value.expose_str(), Some(want), "{text}"),
            (Expect::Code(want), Err(error)) => assert_eq!(error.code(), want, "{text}: {error}"),
            (want, got) => panic!("{text}: expected {want:?}, got {got:?}"),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_reads_and_fails_alike() -> TestResult {
    let dir = tempfile::tempdir()?;
    let app = dir.path().join("files/app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(
        app.join("db"),
        r#"{"user":"app","password":"pw","port":5432,"tls":{"on":true}}"#,
    )?;
    std::fs::write(app.join("note"), "plain text\n")?;
    let mut router = ProviderRouter::new().with(
        Provider::File,
        Arc::new(FileProvider::new(FileConfig::new(dir.path()))),
    );
    let file = Backend {
        scheme: "file",
        mount: "files",
        versioned: false,
    };
    let mut backends = vec![file];

    // The KV v2 providers need the real server; without it (outside CI) only files run.
    let bao = common::shared_bao();
    if let Some(bao) = &bao {
        bao.kv_put(
            "secret",
            "app/db",
            &json!({"user": "app", "password": "pw", "port": 5432, "tls": {"on": true}}),
        )?;
        for v in ["one", "two", "three", "four"] {
            bao.kv_put("secret", "app/versions", &json!({ "v": v }))?;
        }
        bao.kv_delete_versions("secret", "app/versions", &[2])?;
        bao.kv_destroy_versions("secret", "app/versions", &[3])?;
        bao.kv_put("secret", "app/gone", &json!({"v": "x"}))?;
        bao.kv_delete_latest("secret", "app/gone")?;
        for (provider, flavor, scheme) in [
            (Provider::OpenBao, Kv2Flavor::OpenBao, "openbao+kv2"),
            (Provider::HashiCorp, Kv2Flavor::HashiCorp, "hashicorp+kv2"),
        ] {
            let kv2 = Kv2Provider::new(config(
                flavor,
                &bao.addr(),
                Kv2Auth::token(bao.root_token().to_owned()),
            ))?;
            router.insert(provider, Arc::new(kv2));
            backends.push(Backend {
                scheme,
                mount: "secret",
                versioned: true,
            });
        }
    }

    for backend in &backends {
        check(&router, backend, COMMON).await?;
        check(
            &router,
            backend,
            if backend.versioned {
                VERSIONED
            } else {
                UNVERSIONED
            },
        )
        .await?;
    }

    // Providers the router has no route for, and schemes no provider serves.
    for uri in ["db+cred://pg/app", "bootstrap://b/x", "yaml://y/x"] {
        let result = router.read(&uri.parse()?).await;
        assert_eq!(result.err().map(|e| e.code()), Some("UNSUPPORTED_PROVIDER"), "{uri}");
    }
    assert_eq!(router.name(), "router");
    Ok(())
}
