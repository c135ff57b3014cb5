//! Real `bao server -dev` fixtures. These need `cargo xtask services install`; without it they
//! print SKIP locally and fail under `CI=true`.

use std::time::Duration;

use secrets_test_support::{Error, openbao_or_skip, openbao_tls_or_skip};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn put_then_read_latest_and_pinned_versions() -> TestResult {
    let Some(bao) = openbao_or_skip() else {
        return Ok(());
    };
    assert_eq!(bao.addr(), format!("http://127.0.0.1:{}", bao.port()));
    assert!(bao.root_token().starts_with("root-"));
    assert!(!format!("{bao:?}").contains(bao.root_token()));

    assert_eq!(bao.kv_put("secret", "app/api", &json!({"token": "v1"}))?, 1);
    assert_eq!(
        bao.kv_put("secret", "/app/api/", &json!({"token": "v2"}))?,
        2
    );

    let (status, body) = bao.api("GET", "/v1/secret/data/app/api", None)?;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["data"]["token"], "v2");
    assert_eq!(body["data"]["metadata"]["version"], 2);

    let (status, body) = bao.kv_get("secret", "app/api", Some(1))?;
    assert_eq!(
        (status, &body["data"]["data"]["token"]),
        (200, &json!("v1"))
    );

    let (status, body) = bao.kv_get("secret", "app/missing", None)?;
    assert_eq!((status, body), (404, json!({"errors": []})));
    Ok(())
}

#[test]
fn deletions_and_destruction_show_in_404_metadata() -> TestResult {
    let Some(bao) = openbao_or_skip() else {
        return Ok(());
    };
    for n in 1..=3 {
        bao.kv_put("secret", "app/db", &json!({ "password": format!("p{n}") }))?;
    }
    bao.kv_delete_versions("secret", "app/db", &[1])?;
    bao.kv_destroy_versions("secret", "app/db", &[2])?;

    let (status, deleted) = bao.kv_get("secret", "app/db", Some(1))?;
    assert_eq!(status, 404);
    assert_eq!(deleted["data"]["data"], json!(null));
    assert_ne!(deleted["data"]["metadata"]["deletion_time"], "");

    let (status, destroyed) = bao.kv_get("secret", "app/db", Some(2))?;
    assert_eq!(status, 404);
    assert_eq!(destroyed["data"]["metadata"]["destroyed"], true);

    bao.kv_delete_latest("secret", "app/db")?;
    let (status, latest) = bao.kv_get("secret", "app/db", None)?;
    assert_eq!(
        (status, &latest["data"]["metadata"]["version"]),
        (404, &json!(3))
    );

    bao.kv_undelete_versions("secret", "app/db", &[3])?;
    assert_eq!(bao.kv_get("secret", "app/db", None)?.0, 200);

    bao.kv_write_metadata(
        "secret",
        "app/db",
        &json!({"custom_metadata": {"owner": "t"}}),
    )?;
    let (_, meta) = bao.api("GET", "secret/metadata/app/db", None)?;
    assert_eq!(meta["data"]["custom_metadata"]["owner"], "t");
    bao.kv_delete_metadata("secret", "app/db")?;
    assert_eq!(bao.kv_get("secret", "app/db", None)?.0, 404);
    Ok(())
}

#[test]
fn restart_keeps_port_and_root_token_but_loses_data() -> TestResult {
    let Some(mut bao) = openbao_or_skip() else {
        return Ok(());
    };
    let (port, token) = (bao.port(), bao.root_token().to_owned());
    bao.kv_put("secret", "app/api", &json!({"token": "before"}))?;
    let first_pid = bao.pid();

    bao.stop();
    assert!(!bao.is_running());
    assert!(matches!(
        bao.api("GET", "sys/health", None),
        Err(Error::Stopped)
    ));
    let refused = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    );
    assert!(refused.is_err());

    bao.restart()?;
    assert!(bao.is_running());
    assert_ne!(bao.pid(), first_pid);
    assert_eq!((bao.port(), bao.root_token()), (port, token.as_str()));
    assert_eq!(
        bao.kv_get("secret", "app/api", None)?.0,
        404,
        "dev storage is in memory"
    );
    assert_eq!(
        bao.kv_put("secret", "app/api", &json!({"token": "after"}))?,
        1
    );

    // restart() also works on a running server.
    bao.restart()?;
    assert_eq!(bao.kv_get("secret", "app/api", None)?.0, 404);
    Ok(())
}

#[test]
fn drop_kills_the_server() -> TestResult {
    let Some(bao) = openbao_or_skip() else {
        return Ok(());
    };
    let pid = bao.pid().ok_or("no pid")?;
    let port = bao.port();
    drop(bao);
    // The child was reaped, so its /proc entry is gone (pids are not reused this fast).
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    Ok(())
}

#[test]
fn tokens_policies_and_permission_denied() -> TestResult {
    let Some(bao) = openbao_or_skip() else {
        return Ok(());
    };
    bao.put_policy(
        "reader",
        r#"path "secret/data/allowed/*" { capabilities = ["read"] }"#,
    )?;
    bao.kv_put("secret", "allowed/x", &json!({"k": "v"}))?;
    bao.kv_put("secret", "other/x", &json!({"k": "v"}))?;
    let token = bao.create_token(&["reader"], "1h")?;

    let (status, body) = bao.api_as(Some(&token), None, "GET", "secret/data/allowed/x", None)?;
    assert_eq!((status, &body["data"]["data"]["k"]), (200, &json!("v")));
    let (status, body) = bao.api_as(Some(&token), None, "GET", "secret/data/other/x", None)?;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
    );

    let (status, lookup) = bao.api_as(Some(&token), None, "GET", "auth/token/lookup-self", None)?;
    assert_eq!(
        (status, &lookup["data"]["policies"]),
        (200, &json!(["default", "reader"]))
    );

    bao.revoke_token(&token)?;
    let (status, body) = bao.api_as(Some(&token), None, "GET", "secret/data/allowed/x", None)?;
    assert_eq!(
        (status, body),
        (403, json!({"errors": ["permission denied"]}))
    );

    let auth =
        bao.create_token_with(&json!({"policies": ["reader"], "ttl": "1h", "renewable": false}))?;
    assert_eq!(auth["renewable"], false);

    let err = bao
        .put_policy("broken", "path {")
        .err()
        .ok_or("bad HCL was accepted")?;
    assert_eq!(err.code(), "UNEXPECTED_STATUS");
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    Ok(())
}

#[test]
fn approle_login_and_namespaces() -> TestResult {
    let Some(bao) = openbao_or_skip() else {
        return Ok(());
    };
    let creds = bao.setup_approle("app", &["default"])?;
    assert!(!format!("{creds:?}").contains(&creds.secret_id));
    let login = json!({"role_id": creds.role_id, "secret_id": creds.secret_id});
    let (status, body) = bao.api_as(None, None, "POST", "auth/approle/login", Some(&login))?;
    assert_eq!(status, 200);
    assert!(
        body["auth"]["client_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(body["auth"]["metadata"]["role_name"], "app");
    // A second role reuses the enabled mount.
    bao.setup_approle("other", &["default"])?;

    bao.create_namespace("team-a")?;
    let root = Some(bao.root_token());
    let mount = json!({"type": "kv", "options": {"version": "2"}});
    let (status, _) = bao.api_as(
        root,
        Some("team-a"),
        "POST",
        "sys/mounts/secret",
        Some(&mount),
    )?;
    assert_eq!(status, 204);
    let put = json!({"data": {"token": "in-ns"}});
    bao.api_as(
        root,
        Some("team-a"),
        "POST",
        "secret/data/app/api",
        Some(&put),
    )?;
    let (status, body) = bao.api_as(root, Some("team-a"), "GET", "secret/data/app/api", None)?;
    assert_eq!(
        (status, &body["data"]["data"]["token"]),
        (200, &json!("in-ns"))
    );
    assert_eq!(
        bao.kv_get("secret", "app/api", None)?.0,
        404,
        "root namespace is separate"
    );
    Ok(())
}

#[test]
fn sealed_server_answers_503() -> TestResult {
    let Some(mut bao) = openbao_or_skip() else {
        return Ok(());
    };
    bao.seal()?;
    let (status, body) = bao.kv_get("secret", "app/api", None)?;
    assert_eq!(
        (status, body),
        (503, json!({"errors": ["Vault is sealed"]}))
    );
    bao.restart()?;
    assert_eq!(bao.kv_put("secret", "app/api", &json!({"k": "v"}))?, 1);
    Ok(())
}

#[test]
fn tls_server_serves_https_with_a_ca_and_plain_admin() -> TestResult {
    let Some(mut bao) = openbao_tls_or_skip() else {
        return Ok(());
    };
    assert!(bao.is_tls());
    assert_eq!(bao.addr(), format!("https://127.0.0.1:{}", bao.port()));
    assert_ne!(bao.admin_addr(), bao.addr());
    let ca_path = bao.ca_cert_path().ok_or("no CA path")?;
    let ca = std::fs::read_to_string(&ca_path)?;
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));

    assert_eq!(bao.kv_put("secret", "app/api", &json!({"token": "t"}))?, 1);
    assert_eq!(bao.kv_get("secret", "app/api", None)?.0, 200);

    // Plain HTTP to the TLS port is refused at the HTTP level.
    let tls_addr = std::net::SocketAddr::from(([127, 0, 0, 1], bao.port()));
    let mut stream = std::net::TcpStream::connect(tls_addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    std::io::Write::write_all(
        &mut stream,
        b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n",
    )?;
    let mut reply = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut reply);
    assert!(reply.starts_with("HTTP/1.0 400"), "{reply}");

    bao.restart()?;
    let new_ca = std::fs::read_to_string(&ca_path)?;
    assert!(new_ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(ca, new_ca, "every start generates a new CA");
    Ok(())
}

#[test]
fn servers_run_side_by_side() -> TestResult {
    let (Some(a), Some(b)) = (openbao_or_skip(), openbao_or_skip()) else {
        return Ok(());
    };
    assert_ne!(a.port(), b.port());
    assert_ne!(a.root_token(), b.root_token());
    a.kv_put("secret", "only/a", &json!({"k": "a"}))?;
    assert_eq!(b.kv_get("secret", "only/a", None)?.0, 404);
    Ok(())
}

/// Kills a detached server (SIGKILL) and waits until its port is no longer ready.
fn kill(pid: u32, ready: impl Fn() -> bool) -> TestResult {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    assert!(status.success(), "kill {pid}: {status}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid} still answers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

#[test]
fn a_detached_server_outlives_its_launch_and_keeps_its_files() -> TestResult {
    if secrets_test_support::bao_bin().is_err() {
        secrets_test_support::skip_or_fail("OpenBao unavailable");
        return Ok(());
    }
    let dir = tempfile_dir("detached-bao")?;
    let server = secrets_test_support::OpenBaoServer::start_detached(&dir)?;
    let token = server.root_token.clone().ok_or("no root token")?;
    assert!(!format!("{server:?}").contains(&token));
    assert_eq!(server.addr, format!("http://127.0.0.1:{}", server.port));
    assert_eq!(server.log, dir.join("openbao.log"));
    // The launcher's value is gone; the server is not.
    assert!(secrets_test_support::OpenBaoServer::is_ready_at(
        server.port,
        Some(&token)
    ));
    assert!(!secrets_test_support::OpenBaoServer::is_ready_at(
        server.port,
        Some("not-the-root-token")
    ));
    assert!(server.log.is_file(), "the caller's folder is kept");
    kill(server.pid, || {
        secrets_test_support::OpenBaoServer::is_ready_at(server.port, None)
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn a_detached_cerbos_watches_its_policies() -> TestResult {
    use secrets_test_support::cerbos::{CerbosServer, policies};
    if secrets_test_support::cerbos_bin().is_err() {
        secrets_test_support::skip_or_fail("Cerbos unavailable");
        return Ok(());
    }
    let dir = tempfile_dir("detached-cerbos")?;
    let server = CerbosServer::start_detached(&policies(), &dir)?;
    assert_eq!(server.root_token, None);
    assert!(CerbosServer::is_ready_at(server.port));
    let config = std::fs::read_to_string(dir.join("cerbos.yaml"))?;
    assert!(config.contains("watchForChanges: true"), "{config}");
    assert_eq!(server.log, dir.join("cerbos.log"));
    kill(server.pid, || CerbosServer::is_ready_at(server.port))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A fresh folder under the system temp dir.
fn tempfile_dir(name: &str) -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "secrets-test-support-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
