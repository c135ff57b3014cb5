//! The conformance table, object_store style: the same reads and errors against every
//! provider, through the object-safe `SecretProvider` trait (a `ProviderRouter` holding the
//! provider under test, so the router's own checks are part of what every provider shows).
//!
//! Every backend gets the same fixture (`<root>/app/db` = a JSON object, `<root>/app/note` =
//! text where the backend can hold text), then the same table of URIs and expected outcomes
//! runs against `file://`, `openbao+kv2://` and `hashicorp+kv2://`. Cases that only apply to
//! versioned stores (pinned versions, deletions) run only there.

use std::sync::Arc;

use secret_providers::{FileConfig, FileProvider, ProviderRouter, SecretProvider};
use secret_uri::{Provider, SecretUri};
use serde_json::{Value, json};

use crate::common::TestResult;

#[derive(Debug)]
enum Expect {
    Json(Value),
    Text(&'static str),
    Code(&'static str),
}

/// A URI template and what reading it must give.
type Case = (&'static str, fn() -> Expect);

/// Where a backend's fixture lives.
#[derive(Debug)]
pub(crate) struct Backend {
    /// The URI scheme: `file`, `openbao+kv2`, `hashicorp+kv2`.
    pub(crate) scheme: &'static str,
    /// The mount (`{mount}` in a template).
    pub(crate) mount: &'static str,
    /// The fixture's folder: the mount, or a folder of its own inside it (`{root}`), so that
    /// runs sharing one server do not write each other's versions.
    pub(crate) root: String,
    /// Whether the store keeps versions (the [`VERSIONED`] cases, else [`UNVERSIONED`]).
    pub(crate) versioned: bool,
}

/// Cases every provider must agree on.
const COMMON: &[Case] = &[
    ("{root}/app/db", || {
        Expect::Json(json!({"user": "app", "password": "pw", "port": 5432, "tls": {"on": true}}))
    }),
    ("{root}/app/db#password", || Expect::Text("pw")),
    ("{root}/app/db#port", || Expect::Json(json!(5432))),
    ("{root}/app/db#tls", || Expect::Json(json!({"on": true}))),
    ("{root}/app/db#nope", || Expect::Code("KEY_NOT_FOUND")),
    ("{root}/app/missing", || Expect::Code("NOT_FOUND")),
    ("{root}/app/db/deeper", || Expect::Code("NOT_FOUND")),
    ("{mount}", || Expect::Code("INVALID_PATH")),
];

/// Cases for versioned stores (KV v2): `app/versions` has versions 1 (live), 2 (deleted),
/// 3 (destroyed), 4 (live, latest); `app/gone` has its latest deleted.
const VERSIONED: &[Case] = &[
    ("{root}/app/versions#v?version=1", || Expect::Text("one")),
    ("{root}/app/versions?version=2", || {
        Expect::Code("VERSION_DELETED")
    }),
    ("{root}/app/versions?version=3", || {
        Expect::Code("VERSION_DESTROYED")
    }),
    ("{root}/app/versions#v", || Expect::Text("four")),
    ("{root}/app/versions?version=99", || {
        Expect::Code("NOT_FOUND")
    }),
    ("{root}/app/gone", || Expect::Code("VERSION_DELETED")),
    // Parameters KV v2 does not serve are refused before the request.
    ("{root}/app/versions?verison=2#v", || {
        Expect::Code("UNKNOWN_PARAMETER")
    }),
    ("{root}/app/versions#v?n=1&version=2", || {
        Expect::Code("UNKNOWN_PARAMETER")
    }),
];

/// Cases for the file store, which has no versions.
const UNVERSIONED: &[Case] = &[
    ("{root}/app/note", || Expect::Text("plain text")),
    ("{root}/app/note#k", || Expect::Code("NOT_JSON")),
    ("{root}/app/db?version=1", || {
        Expect::Code("UNKNOWN_PARAMETER")
    }),
];

/// Runs the whole table for `backend` against `provider`: [`COMMON`], then [`VERSIONED`] or
/// [`UNVERSIONED`].
pub(crate) async fn reads_and_fails_alike(
    provider: &dyn SecretProvider,
    backend: &Backend,
) -> TestResult {
    let extra = if backend.versioned {
        VERSIONED
    } else {
        UNVERSIONED
    };
    for (template, expect) in COMMON.iter().chain(extra) {
        let text = format!(
            "{}://{}",
            backend.scheme,
            template
                .replace("{root}", &backend.root)
                .replace("{mount}", backend.mount)
        );
        let uri: SecretUri = text.parse()?;
        let result = provider.read(&uri).await;
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

/// The file provider's run, and the router's refusals of what no provider serves.
pub(crate) async fn file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let app = dir.path().join("files/app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(
        app.join("db"),
        r#"{"user":"app","password":"pw","port":5432,"tls":{"on":true}}"#,
    )?;
    std::fs::write(app.join("note"), "plain text\n")?;
    let router = ProviderRouter::new().with(
        Provider::File,
        Arc::new(FileProvider::new(FileConfig::new(dir.path()))),
    );
    let backend = Backend {
        scheme: "file",
        mount: "files",
        root: "files".to_owned(),
        versioned: false,
    };
    reads_and_fails_alike(&router, &backend).await?;

    // Providers the router has no route for, and schemes no provider serves.
    for uri in [
        "db+cred://pg/app",
        "bootstrap://b/x",
        "yaml://y/x",
        "openbao+kv2://secret/x",
    ] {
        let result = router.read(&uri.parse()?).await;
        assert_eq!(
            result.err().map(|e| e.code()),
            Some("UNSUPPORTED_PROVIDER"),
            "{uri}"
        );
    }
    assert_eq!(router.name(), "router");
    Ok(())
}
