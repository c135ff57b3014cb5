//! `secrets resolve` and `secrets exec` of `db+cred://` against a real OpenBao whose database
//! engine issues users on a real PostgreSQL: `exec` hands one lease's user and password to
//! `psql`, which logs in, and revokes the lease when the command exits (`--keep-lease`
//! leaves it); `resolve` prints credentials that keep working after it exits.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::cli::{Invocation, secrets};
use secrets_test_support::OpenBaoServer;
use secrets_test_support::postgres::{PostgresServer, postgres_or_skip};

/// A vault with the database engine at `database/` on `pg` and the role `app`.
fn servers() -> Option<(OpenBaoServer, PostgresServer)> {
    let pg = postgres_or_skip()?;
    let bao = secrets_test_support::openbao_or_skip()?;
    bao.enable_database("database", &pg).unwrap();
    bao.create_db_role("database", "app", "1h", "2h").unwrap();
    Some((bao, pg))
}

fn psql() -> Option<std::path::PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("psql"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "psql is missing: install Debian's postgresql (`cargo xtask services install`)"
        );
        eprintln!("SKIP: psql is not installed");
    }
    found
}

fn with_vault(invocation: Invocation, bao: &OpenBaoServer) -> Invocation {
    invocation
        .env("OPENBAO_URL", bao.addr())
        .env("OPENBAO_TOKEN", bao.root_token())
        .env("SECRETS_ALLOWED_MOUNTS", "database")
}

/// `secrets exec FLAGS… -- psql … -c SQL` with PGUSER/PGPASSWORD from one lease.
fn exec_psql(bao: &OpenBaoServer, pg: &PostgresServer, flags: &[&str], sql: &str) -> Invocation {
    let psql = psql().unwrap();
    let port = pg.port().to_string();
    let mut args: Vec<String> = vec!["exec".into()];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    args.extend([
        "--env".into(),
        "PGUSER=db+cred://database/app#username".into(),
        "--env".into(),
        "PGPASSWORD=db+cred://database/app#password".into(),
        "--".into(),
        psql.display().to_string(),
        "-h".into(),
        pg.host().into(),
        "-p".into(),
        port,
        "-d".into(),
        "postgres".into(),
        "-tAc".into(),
        sql.into(),
    ]);
    with_vault(secrets(args), bao)
}

#[test]
fn exec_hands_one_lease_to_psql_and_revokes_it_when_psql_exits() {
    let Some((bao, pg)) = servers() else { return };
    if psql().is_none() {
        return;
    }
    let run = exec_psql(&bao, &pg, &[], "select current_user").run();
    assert_eq!(run.code, 0, "{run:?}");
    let user = run.stdout.trim().to_owned();
    assert!(
        user.starts_with("v-token-app-"),
        "psql logged in as the issued user: {run:?}"
    );
    assert!(
        pg.roles_like("v-token-app-%").unwrap().is_empty(),
        "the lease was revoked after psql exited"
    );
    // The command's status is ours, and the lease is revoked on failure too.
    let failed = exec_psql(&bao, &pg, &[], "select * from no_such_table").run();
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(pg.roles_like("v-token-app-%").unwrap().is_empty());

    // --keep-lease: the command replaces `secrets`, and its user outlives it.
    let kept = exec_psql(&bao, &pg, &["--keep-lease"], "select current_user").run();
    assert_eq!(kept.code, 0, "{kept:?}");
    let kept_user = kept.stdout.trim().to_owned();
    assert_eq!(pg.roles_like("v-token-app-%").unwrap(), [kept_user]);
}

#[test]
fn resolve_prints_credentials_that_outlive_it() {
    let Some((bao, pg)) = servers() else { return };
    let run = with_vault(
        secrets([
            "resolve",
            "db+cred://database/app#username",
            "db+cred://database/app#password",
        ]),
        &bao,
    )
    .run();
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.stdout_lines();
    let [user, password] = lines.as_slice() else {
        panic!("two lines: {run:?}")
    };
    assert!(
        pg.can_login(user, password).unwrap(),
        "one lease's user and password"
    );
    assert_eq!(pg.roles_like("v-token-app-%").unwrap(), [user.to_string()]);
    run.assert_hidden(&[password], true);

    // Without a vault: a typed error naming the setting, no value.
    let unconfigured = secrets(["resolve", "db+cred://database/app#password"])
        .env("SECRETS_ALLOWED_MOUNTS", "database")
        .run();
    assert_eq!(unconfigured.code, 1, "{unconfigured:?}");
    assert!(
        unconfigured
            .stderr
            .starts_with("NOT_CONFIGURED: URI 1 (db+cred://database/…)"),
        "{unconfigured:?}"
    );
}

#[test]
fn exec_watch_restarts_the_command_with_the_rotated_user_and_revokes_at_the_end() {
    let Some((bao, pg)) = servers() else { return };
    // Leases of 3 s renewable up to 6 s: a new user arrives within about 6 s.
    bao.create_db_role("database", "short", "3s", "6s").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let script = format!(
        r#"trap 'exit 3' TERM; echo "$PGUSER" >> {}; while :; do sleep 0.1; done"#,
        log.display()
    );
    let invocation = with_vault(
        secrets([
            "exec",
            "--watch",
            "--env",
            "PGUSER=db+cred://database/short#username",
            "--env",
            "PGPASSWORD=db+cred://database/short#password",
            "--",
            "sh",
            "-c",
            &script,
        ]),
        &bao,
    );
    let running = crate::watch::Running::start(&invocation);
    let users = |at_least: usize| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= at_least || std::time::Instant::now() > until {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let started = users(2);
    assert_eq!(
        started.len(),
        2,
        "the command restarted once with new credentials"
    );
    assert_ne!(started[0], started[1], "a new user after the rotation");
    // Both fields changed together: one restart, not one per field.
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(users(2).len(), 2);
    running.signal("TERM");
    let (status, _stdout, stderr) = running.wait(std::time::Duration::from_secs(10));
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        !pg.roles_like("v-token-short-%")
            .unwrap()
            .contains(&started[1]),
        "the current lease was revoked when secrets ended"
    );
}
