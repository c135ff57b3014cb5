//! Real PostgreSQL fixtures, alone and behind OpenBao's database secrets engine. These need
//! Debian's `postgresql` (`cargo xtask services install`; OpenBao too for the engine); without
//! it they print SKIP locally and fail under `CI=true`.

use std::time::Duration;

use secrets_test_support::openbao_or_skip;
use secrets_test_support::postgres::{PostgresServer, postgres_or_skip, shared_postgres};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn the_superuser_logs_in_with_its_password_only() -> TestResult {
    let Some(pg) = shared_postgres() else {
        return Ok(());
    };
    assert_eq!(pg.host(), "127.0.0.1");
    assert_eq!(pg.superuser(), "postgres");
    assert!(PostgresServer::is_ready_at(
        pg.port(),
        pg.superuser_password()
    ));
    assert!(!PostgresServer::is_ready_at(pg.port(), "wrong"));
    assert!(pg.can_login("postgres", pg.superuser_password())?);
    assert!(!pg.can_login("postgres", "wrong")?);
    assert!(!pg.can_login("nobody-at-all", "wrong")?);
    assert_eq!(
        pg.connection_url_template(),
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            pg.port()
        )
    );
    assert!(
        !format!("{pg:?}").contains(pg.superuser_password()),
        "Debug redacts the password"
    );
    Ok(())
}

#[test]
fn roles_made_with_execute_are_listed_and_log_in() -> TestResult {
    let Some(pg) = shared_postgres() else {
        return Ok(());
    };
    pg.execute(
        "CREATE ROLE selftest_reader LOGIN PASSWORD 'pw-1'; \
         CREATE ROLE selftest_nologin PASSWORD 'pw-2'",
    )?;
    assert_eq!(
        pg.roles_like("selftest\\_%")?,
        vec!["selftest_nologin".to_owned(), "selftest_reader".to_owned()]
    );
    assert!(pg.can_login("selftest_reader", "pw-1")?);
    assert!(!pg.can_login("selftest_reader", "pw-2")?);
    assert!(!pg.can_login("selftest_nologin", "pw-2")?, "no LOGIN");
    let err = pg.execute("CREATE ROLE selftest_reader").err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("IO"));
    assert!(
        err.map(|e| e.to_string())
            .unwrap_or_default()
            .contains("SQLSTATE 42710"),
        "duplicate_object"
    );
    pg.execute("DROP ROLE selftest_reader; DROP ROLE selftest_nologin")?;
    assert!(pg.roles_like("selftest\\_%")?.is_empty());
    assert!(!pg.can_login("selftest_reader", "pw-1")?);
    Ok(())
}

#[test]
fn a_stopped_server_refuses_and_restarts_on_the_same_port_with_its_data() -> TestResult {
    let Some(mut pg) = postgres_or_skip() else {
        return Ok(());
    };
    let (port, password) = (pg.port(), pg.superuser_password().to_owned());
    pg.execute("CREATE ROLE survivor LOGIN PASSWORD 'pw'")?;
    let first = pg.pid();

    pg.stop();
    assert!(!pg.is_running());
    assert!(!PostgresServer::is_ready_at(port, &password));
    assert_eq!(
        pg.execute("select 1").err().map(|e| e.code()),
        Some("STOPPED")
    );
    assert_eq!(
        pg.can_login("survivor", "pw").err().map(|e| e.code()),
        Some("STOPPED")
    );

    pg.restart()?;
    assert_eq!(pg.port(), port);
    assert_ne!(pg.pid(), first);
    assert!(PostgresServer::is_ready_at(port, &password));
    assert!(
        pg.can_login("survivor", "pw")?,
        "committed before the crash"
    );
    assert!(pg.log_tail(50).contains("database system is ready"));
    Ok(())
}

#[test]
fn openbao_issues_users_that_log_in_and_revocation_drops_them() -> TestResult {
    let Some(pg) = shared_postgres() else {
        return Ok(());
    };
    let Some(bao) = openbao_or_skip() else {
        return Ok(());
    };
    bao.enable_database("db", &pg)?;
    bao.create_db_role("db", "app", "3s", "10s")?;

    let (status, creds) = bao.api("GET", "db/creds/app", None)?;
    assert_eq!(status, 200, "{creds}");
    let lease = creds["lease_id"].as_str().unwrap_or_default().to_owned();
    assert!(lease.starts_with("db/creds/app/"), "{lease}");
    assert_eq!(creds["renewable"], true);
    assert_eq!(creds["lease_duration"], 3);
    let user = creds["data"]["username"].as_str().unwrap_or_default();
    let password = creds["data"]["password"].as_str().unwrap_or_default();
    assert!(user.starts_with("v-token-app-"), "{user}");
    assert_eq!(pg.roles_like("v-token-app-%")?, vec![user.to_owned()]);
    assert!(pg.can_login(user, password)?);
    assert!(!pg.can_login(user, "wrong")?);

    let (status, body) = bao.api(
        "PUT",
        "sys/leases/revoke",
        Some(&json!({ "lease_id": lease })),
    )?;
    assert_eq!(status, 204, "{body}");
    assert!(pg.roles_like("v-token-app-%")?.is_empty());
    assert!(!pg.can_login(user, password)?);

    // A static role: OpenBao took the account over and rotated its password at once.
    bao.create_static_db_role("db", &pg, "reporting", "reporting_account", "1h")?;
    let (status, creds) = bao.api("GET", "db/static-creds/reporting", None)?;
    assert_eq!(status, 200, "{creds}");
    assert_eq!(creds["lease_id"], "");
    assert_eq!(creds["data"]["username"], "reporting_account");
    let password = creds["data"]["password"].as_str().unwrap_or_default();
    assert!(pg.can_login("reporting_account", password)?);
    Ok(())
}

#[test]
fn an_issued_user_stops_logging_in_when_its_lease_ends() -> TestResult {
    let Some(pg) = shared_postgres() else {
        return Ok(());
    };
    let Some(bao) = openbao_or_skip() else {
        return Ok(());
    };
    bao.enable_database("database", &pg)?;
    bao.create_db_role("database", "short", "2s", "2s")?;
    let (status, creds) = bao.api("GET", "database/creds/short", None)?;
    assert_eq!(status, 200, "{creds}");
    let user = creds["data"]["username"].as_str().unwrap_or_default();
    let password = creds["data"]["password"].as_str().unwrap_or_default();
    assert!(pg.can_login(user, password)?);
    // Expiry revokes the lease (dropping the user); VALID UNTIL refuses it even before.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pg.can_login(user, password)? || !pg.roles_like(user)?.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{user} still logs in or exists 30 s after its 2 s lease"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
