//! `db+cred://` and `db+db://` through `SecretsClient`, against a real PostgreSQL and a real
//! OpenBao whose database secrets engine issues the users: the credentials log in and carry
//! the role's grants, both fields come from one lease, the lease is renewed past its TTL and
//! rotated before its max TTL ends (announced through `on_change` while the old user still
//! works, with no failed query in a small pool swapping users), `close` revokes, a vault that
//! lost its state is noticed, and no password or lease id reaches a log line or an error.
//!
//! Without PostgreSQL or `bao` the tests print `SKIP` and pass locally; under `CI=true` they
//! fail (`cargo xtask services install` installs both).

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secret_uri::AllowedMounts;
use secrets_sdk::{BootstrapConfig, SecretsClient};
use secrets_test_support::postgres::{PostgresServer, shared_postgres};
use secrets_test_support::{LogCapture, OpenBaoServer};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The database engine's mount in these tests.
const MOUNT: &str = "database";

/// Every log line and span of the whole binary at TRACE (text, with span fields and
/// events): each test checks that its credentials and lease ids reached none of it.
fn logs() -> &'static LogCapture {
    static LOGS: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
    // Only this binary installs one: a capture that saw nothing would prove nothing.
    LOGS.get_or_init(|| {
        LogCapture::install_global().unwrap_or_else(|e| panic!("the TRACE subscriber: {e}"))
    })
}

/// Fails when any of `canaries` (passwords, lease ids) is in the captured logs.
fn assert_not_logged(canaries: &[&str]) {
    let text = logs().text();
    assert!(
        text.len() > 1000,
        "logs were captured ({} bytes)",
        text.len()
    );
    for canary in canaries.iter().filter(|c| !c.is_empty()) {
        assert!(
            !text.contains(canary),
            "a credential or lease id reached the logs"
        );
    }
}

/// The shared vault and database.
type Servers = (Arc<OpenBaoServer>, Arc<PostgresServer>);

/// One OpenBao with the database engine on the shared PostgreSQL, for the tests that do not
/// restart the vault.
fn shared() -> Result<Option<Servers>, secrets_test_support::Error> {
    logs();
    // A shared server lives while some test holds it: a later one is a new server (a new
    // process), configured again.
    static CONFIGURED: Mutex<Option<(Option<u32>, u16)>> = Mutex::new(None);
    let Some(pg) = shared_postgres() else {
        return Ok(None);
    };
    let Some(bao) = common::sdk::shared_bao()? else {
        return Ok(None);
    };
    let mut configured = CONFIGURED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let this = (bao.pid(), pg.port());
    if *configured != Some(this) {
        bao.enable_database(MOUNT, &pg)?;
        *configured = Some(this);
    }
    drop(configured);
    Ok(Some((bao, pg)))
}

/// A role name of its own for each test (the servers are shared).
fn unique(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{name}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn client(bao: &OpenBaoServer, overlap: Duration) -> Result<SecretsClient, secrets_sdk::Error> {
    SecretsClient::builder()
        .allowed_mounts(AllowedMounts::from_csv(MOUNT))
        .bootstrap(BootstrapConfig::token(bao.addr(), bao.root_token()))
        .lease_overlap(overlap)
        .watch_interval(Duration::from_millis(200))
        .build()
}

/// The PostgreSQL users the engine made for `role` (`v-token-<role>-…`).
fn users_of(pg: &PostgresServer, role: &str) -> Result<Vec<String>, secrets_test_support::Error> {
    pg.roles_like(&format!("v-token-{role}-%"))
}

/// Polls `check` every 100 ms until it holds or `within` passes.
async fn eventually(
    within: Duration,
    mut check: impl FnMut() -> Result<bool, secrets_test_support::Error>,
) -> Result<bool, secrets_test_support::Error> {
    let until = Instant::now() + within;
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() > until {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(
    pg: &PostgresServer,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(pg.host())
        .port(pg.port())
        .dbname("postgres")
        .user(user)
        .password(password)
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_log_in_with_the_roles_grants_and_fields_share_one_lease() -> TestResult {
    let Some((bao, pg)) = shared()? else {
        return Ok(());
    };
    let role = unique("grants");
    let table = format!("{role}_items");
    pg.execute(&format!(
        "create table {table} (id int); insert into {table} values (1), (2);"
    ))?;
    // `GRANT SELECT ON ALL TABLES IN SCHEMA public` covers the tables that exist when the
    // user is made.
    bao.create_db_role(MOUNT, &role, "1h", "2h")?;
    let sink = Arc::new(secrets_sdk::audit::MemorySink::new());
    let client = SecretsClient::builder()
        .allowed_mounts(AllowedMounts::from_csv(MOUNT))
        .bootstrap(BootstrapConfig::token(bao.addr(), bao.root_token()))
        .tenant_salt("db-tests-tenant-salt-0123456789abcdef")
        .tenant_id("db-tests")
        .audit(Arc::clone(&sink) as Arc<dyn secrets_sdk::audit::AuditSink>)
        .build()?;
    let user_uri = format!("db+cred://{MOUNT}/{role}#username");
    let pass_uri = format!("db+cred://{MOUNT}/{role}#password");

    // Twenty concurrent first reads of both fields, in several spellings: one lease.
    let uris: Vec<String> = (0..20)
        .map(|i| match i % 4 {
            0 => user_uri.clone(),
            1 => pass_uri.clone(),
            2 => format!("DB+CRED://{MOUNT}/{role}/#username"),
            _ => format!("db+cred://{MOUNT}/{role}#password"),
        })
        .collect();
    let results = client.resolve_many(&uris).await;
    let mut usernames = std::collections::BTreeSet::new();
    let mut passwords = std::collections::BTreeSet::new();
    for (uri, result) in uris.iter().zip(results) {
        let secret = result?;
        let text = secret.expose_str().ok_or("a text field")?.to_owned();
        if uri.ends_with("#username") {
            usernames.insert(text);
        } else {
            passwords.insert(text);
        }
    }
    assert_eq!(
        (usernames.len(), passwords.len()),
        (1, 1),
        "one lease for every read"
    );
    assert_eq!(users_of(&pg, &role)?.len(), 1, "the vault made one user");
    assert_eq!(client.leases_held(), 1);
    let (user, password) = (
        usernames.pop_first().ok_or("a user")?,
        passwords.pop_first().ok_or("a password")?,
    );

    // The whole value: both fields and the TTL, from the same lease.
    let whole = client
        .resolve(format!("db+cred://{MOUNT}/{role}").as_str())
        .await?;
    let json = whole.expose_json().ok_or("a JSON value")?;
    assert_eq!(json["username"], user.as_str());
    assert_eq!(json["password"], password.as_str());
    assert_eq!(json["ttl"], 3600);
    assert!(
        json["lease_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("database/creds/"))
    );
    // A field the credentials do not have.
    let missing = client
        .resolve(format!("db+cred://{MOUNT}/{role}#port").as_str())
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(missing, Some("KEY_NOT_FOUND"));

    // A real login, with the role's grants: reads yes, writes no.
    let db = connect(&pg, &user, &password).await?;
    let rows = db
        .query(&format!("select count(*) from {table}"), &[])
        .await?;
    assert_eq!(rows[0].get::<_, i64>(0), 2);
    let write = db
        .execute(&format!("insert into {table} values (3)"), &[])
        .await;
    assert!(write.is_err(), "the role grants SELECT only");
    drop(db);

    // `close` revokes: the user is gone from PostgreSQL.
    let lease_id = json["lease_id"].as_str().unwrap_or_default().to_owned();
    client.close();
    assert!(users_of(&pg, &role)?.is_empty(), "no user left after close");
    assert!(!pg.can_login(&user, &password)?);
    assert!(!format!("{whole:?} {whole}").contains(&password));
    assert_not_logged(&[&password, &lease_id]);
    // The issue was audited (one backend read for all twenty-two reads), naming neither.
    let events = sink.events();
    assert!(!events.is_empty(), "the issue is audited");
    let mut audited = String::new();
    for event in &events {
        audited.push_str(&format!("{event:?}"));
        audited.push_str(&String::from_utf8_lossy(
            &secrets_sdk::audit::to_ocsf_bytes(event),
        ));
    }
    for canary in [&password, &lease_id, &user] {
        assert!(
            !audited.contains(canary.as_str()),
            "a credential in an audit event"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_roles_and_mounts_are_typed_errors_that_name_nothing_secret() -> TestResult {
    let Some((bao, _pg)) = shared()? else {
        return Ok(());
    };
    let client = client(&bao, Duration::from_secs(30))?;
    let role = unique("no-such-role-canary");
    let missing = client
        .resolve(format!("db+cred://{MOUNT}/{role}#password").as_str())
        .await
        .err()
        .ok_or("an unknown role fails")?;
    assert_eq!(missing.code(), "NOT_FOUND");
    let shown = format!("{missing} {missing:?}");
    assert!(!shown.contains(&role), "{shown}");
    let not_a_role = client
        .resolve(format!("db+cred://{MOUNT}/a/b#password").as_str())
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(not_a_role, Some("INVALID_PATH"));
    let engineless = client
        .resolve(format!("db://{MOUNT}/app#password").as_str())
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(engineless, Some("UNSUPPORTED_PROVIDER"));
    let other_mount = SecretsClient::builder()
        .allowed_mounts(AllowedMounts::from_csv(MOUNT))
        .bootstrap(BootstrapConfig::token(bao.addr(), bao.root_token()))
        .build()?
        .resolve("db+cred://elsewhere/app#password")
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(other_mount, Some("TENANT_MOUNT_MISMATCH"));
    assert_eq!(client.leases_held(), 0);
    Ok(())
}

/// A small connection pool that a rotation swaps to new users: each query takes a
/// connection, and a swap opens the new connections before the old ones close.
struct Pool {
    conns: tokio::sync::RwLock<Vec<tokio_postgres::Client>>,
    /// The user (and password) its connections logged in as.
    login: Mutex<(String, String)>,
}

impl Pool {
    async fn open(
        pg: &PostgresServer,
        user: &str,
        password: &str,
        size: usize,
    ) -> Result<Vec<tokio_postgres::Client>, tokio_postgres::Error> {
        let mut conns = Vec::with_capacity(size);
        for _ in 0..size {
            conns.push(connect(pg, user, password).await?);
        }
        Ok(conns)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_renewed_past_its_ttl_then_rotated_before_max_ttl_with_no_failed_query()
-> TestResult {
    let Some((bao, pg)) = shared()? else {
        return Ok(());
    };
    let role = unique("rot");
    bao.create_db_role(MOUNT, &role, "3s", "10s")?;
    let client = client(&bao, Duration::from_secs(2))?;
    let whole = format!("db+cred://{MOUNT}/{role}");

    // Before the request: the vault's max TTL runs from a later instant, so a rotation seen
    // before `issued + 10 s` is surely before the old lease's end.
    let issued = Instant::now();
    let first = client.resolve(whole.as_str()).await?;
    let first = first.expose_json().ok_or("JSON")?.clone();
    let (user1, pass1) = (
        first["username"].as_str().ok_or("user")?.to_owned(),
        first["password"].as_str().ok_or("password")?.to_owned(),
    );
    let pool = Arc::new(Pool {
        conns: tokio::sync::RwLock::new(Pool::open(&pg, &user1, &pass1, 3).await?),
        login: Mutex::new((user1.clone(), pass1.clone())),
    });

    // Every change: (new user, whether the old one still logs in at that moment, when).
    let changes: Arc<Mutex<Vec<(String, bool, Duration)>>> = Arc::default();
    let seen = Arc::clone(&changes);
    let pg_for_change = Arc::clone(&pg);
    let pool_for_change = Arc::clone(&pool);
    let runtime = tokio::runtime::Handle::current();
    let _subscription = client
        .on_change(whole.as_str(), move |item| {
            // When the change arrived, before the pool's own work below.
            let arrived = issued.elapsed();
            let Ok(change) = item else { return };
            let Some(json) = change.secret().expose_json() else {
                return;
            };
            let (Some(user), Some(password)) =
                (json["username"].as_str(), json["password"].as_str())
            else {
                return;
            };
            let (old_user, old_password) = pool_for_change
                .login
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default();
            let old_works = pg_for_change
                .can_login(&old_user, &old_password)
                .unwrap_or(false);
            // The pool swaps: new connections first, then the old ones go.
            let opened = runtime.block_on(Pool::open(&pg_for_change, user, password, 3));
            if let Ok(fresh) = opened {
                let mut conns = runtime.block_on(pool_for_change.conns.write());
                *conns = fresh;
                if let Ok(mut login) = pool_for_change.login.lock() {
                    *login = (user.to_owned(), password.to_owned());
                }
            }
            if let Ok(mut seen) = seen.lock() {
                seen.push((user.to_owned(), old_works, arrived));
            }
        })
        .await?;

    // Queries through the pool, all along: none may fail.
    let failed = Arc::new(AtomicU64::new(0));
    let ran = Arc::new(AtomicU64::new(0));
    let querying = {
        let (pool, failed, ran) = (Arc::clone(&pool), Arc::clone(&failed), Arc::clone(&ran));
        tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(13);
            let mut i = 0usize;
            while Instant::now() < until {
                {
                    let conns = pool.conns.read().await;
                    let conn = &conns[i % conns.len()];
                    match conn.simple_query("select 1").await {
                        Ok(_) => ran.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Past the first TTL (3 s) the same user is served and still logs in: renewed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = client.resolve(format!("{whole}#username").as_str()).await?;
    assert_eq!(
        again.expose_str(),
        Some(user1.as_str()),
        "renewed, not replaced"
    );
    assert!(
        pg.can_login(&user1, &pass1)?,
        "the renewed user still logs in after 5 s"
    );
    assert!(changes.lock().map(|c| c.is_empty()).unwrap_or(false));

    querying.await?;
    let changes = changes.lock().map(|c| c.clone()).unwrap_or_default();
    let (user2, old_worked, at) = changes.first().cloned().ok_or("a rotation was announced")?;
    assert_ne!(user2, user1, "a new user");
    assert!(old_worked, "announced while the old user still worked");
    assert!(at < Duration::from_secs(10), "before the max TTL: {at:?}");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no failed query across the swap"
    );
    assert!(ran.load(Ordering::Relaxed) > 100);
    let now = client.resolve(format!("{whole}#username").as_str()).await?;
    assert_eq!(now.expose_str(), Some(user2.as_str()));
    // The old user is gone once its lease ended.
    let gone = eventually(Duration::from_secs(5), || {
        Ok(!users_of(&pg, &role)?.contains(&user1))
    })
    .await?;
    assert!(gone, "the old user is dropped after its lease");
    client.close();
    assert!(users_of(&pg, &role)?.is_empty());
    assert_not_logged(&[&pass1, first["lease_id"].as_str().unwrap_or_default()]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_first_read_still_holds_its_lease_and_close_revokes_it() -> TestResult {
    let Some((bao, pg)) = shared()? else {
        return Ok(());
    };
    let role = unique("cancel");
    bao.create_db_role(MOUNT, &role, "1h", "2h")?;
    let client = client(&bao, Duration::from_secs(30))?;
    let uri = format!("db+cred://{MOUNT}/{role}#password");
    // Given up long before the vault answers: the issue goes on without the caller.
    let gave_up =
        tokio::time::timeout(Duration::from_micros(1), client.resolve(uri.as_str())).await;
    assert!(gave_up.is_err(), "the caller gave up first");
    let held = eventually(Duration::from_secs(5), || Ok(client.leases_held() == 1)).await?;
    assert!(held, "the lease the vault issued is held");
    assert_eq!(users_of(&pg, &role)?.len(), 1);
    // The next read is served that lease: no second user.
    client.resolve(uri.as_str()).await?;
    assert_eq!(users_of(&pg, &role)?.len(), 1);
    client.close();
    assert!(users_of(&pg, &role)?.is_empty(), "close revoked the lease");
    // Closed: no new lease.
    let closed = client.resolve(uri.as_str()).await.err().map(|e| e.code());
    assert_eq!(closed, Some("CLOSED"));
    assert!(users_of(&pg, &role)?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_role_is_read_again_when_the_vault_rotates_it() -> TestResult {
    let Some((bao, pg)) = shared()? else {
        return Ok(());
    };
    let role = unique("static");
    let account = format!("{role}_account");
    bao.create_static_db_role(MOUNT, &pg, &role, &account, "5s")?;
    let client = client(&bao, Duration::from_secs(30))?;
    let uri = format!("db+db://{MOUNT}/{role}");
    let mut changes = client.watch(format!("{uri}#password").as_str()).await?;
    let first = match changes.current() {
        Some(Ok(change)) => change.secret().expose_str().ok_or("text")?.to_owned(),
        other => return Err(format!("the watch starts from the value: {other:?}").into()),
    };
    let user = client.resolve(format!("{uri}#username").as_str()).await?;
    assert_eq!(user.expose_str(), Some(account.as_str()));
    assert!(
        pg.can_login(&account, &first)?,
        "the static role's password logs in"
    );
    let whole = client.resolve(uri.as_str()).await?;
    let json = whole.expose_json().ok_or("JSON")?;
    assert!(json.get("lease_id").is_none(), "a static role has no lease");
    // The vault rotates the password every 5 s; the client reads it again and announces it.
    let next = tokio::time::timeout(Duration::from_secs(12), changes.next())
        .await
        .map_err(|_| "no rotation announced within 12 s")?;
    let second = match next {
        Some(Ok(change)) => change.secret().expose_str().ok_or("text")?.to_owned(),
        other => return Err(format!("a rotated password: {other:?}").into()),
    };
    assert_ne!(first, second);
    assert!(
        pg.can_login(&account, &second)?,
        "the announced password logs in"
    );
    client.close();
    // A static role's account is the vault's to keep: close revokes nothing there.
    assert!(pg.can_login(&account, &second)? || pg.roles_like(&account)?.len() == 1);
    assert_not_logged(&[&first, &second]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_that_lost_the_lease_is_noticed_and_new_credentials_announced() -> TestResult {
    logs();
    let Some(pg) = shared_postgres() else {
        return Ok(());
    };
    // A vault of its own: this test restarts it (dev storage: every lease is lost).
    let Some(mut bao) = secrets_test_support::openbao_or_skip() else {
        return Ok(());
    };
    let role = unique("restart");
    bao.enable_database(MOUNT, &pg)?;
    bao.create_db_role(MOUNT, &role, "4s", "1h")?;
    let client = client(&bao, Duration::from_secs(1))?;
    let uri = format!("db+cred://{MOUNT}/{role}#username");
    let mut changes = client.watch(uri.as_str()).await?;
    let first = match changes.current() {
        Some(Ok(change)) => change.secret().expose_str().ok_or("text")?.to_owned(),
        other => return Err(format!("the watch starts from the value: {other:?}").into()),
    };
    bao.restart()?;
    bao.enable_database(MOUNT, &pg)?;
    bao.create_db_role(MOUNT, &role, "4s", "1h")?;
    // The next renewal (about 2.7 s after the issue) hears `lease not found`.
    let next = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .map_err(|_| "no new credentials within 10 s of the restart")?;
    let second = match next {
        Some(Ok(change)) => change.secret().expose_str().ok_or("text")?.to_owned(),
        other => return Err(format!("new credentials: {other:?}").into()),
    };
    assert_ne!(first, second, "a new user from the restarted vault");
    let password = client
        .resolve(format!("db+cred://{MOUNT}/{role}#password").as_str())
        .await?;
    assert!(pg.can_login(&second, password.expose_str().ok_or("text")?)?);
    client.close();
    // The new vault's lease is revoked; the lost one's user is the old vault's (it expires
    // with its `VALID UNTIL`).
    assert!(!users_of(&pg, &role)?.contains(&second));
    Ok(())
}

/// A `VaultClient` whose PEP allows every request (development only) on `bao`.
fn vault_client(bao: &OpenBaoServer) -> Result<secrets_sdk::VaultClient, secrets_sdk::Error> {
    use secrets_sdk::pep::{DevAllowAll, PepConfig};
    use secrets_sdk::providers::{Kv2Auth, Kv2Config, Kv2Flavor};
    let pep = PepConfig::new("db-tests", AllowedMounts::from_csv(MOUNT))
        .with_environment("test")
        .with_grant_defaults(Duration::from_secs(600), 100);
    secrets_sdk::VaultClient::builder()
        .kv2(Kv2Config::new(
            Kv2Flavor::OpenBao,
            bao.addr(),
            Kv2Auth::token(bao.root_token().to_owned()),
        ))
        .pep_config(pep)
        .pdp(DevAllowAll::new())
        .tenant_salt("db-tests-tenant-salt-0123456789abcdef")
        .build()
}

fn request() -> secrets_sdk::ExecutionContext {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    secrets_sdk::ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_jti(format!("db-jti-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_client_read_owns_its_lease_until_the_secret_drops() -> TestResult {
    let Some((bao, pg)) = shared()? else {
        return Ok(());
    };
    let role = unique("request");
    bao.create_db_role(MOUNT, &role, "1h", "2h")?;
    let client = vault_client(&bao)?;
    let uri = format!("db+cred://{MOUNT}/{role}");

    // The whole value: a username and a password of one lease, through the PEP.
    let secret = client
        .get_credentials(uri.as_str(), Some(&request()))
        .await?;
    let json = secret.expose_json().ok_or("JSON")?.clone();
    let (user, password) = (
        json["username"].as_str().ok_or("user")?.to_owned(),
        json["password"].as_str().ok_or("password")?.to_owned(),
    );
    assert!(pg.can_login(&user, &password)?);
    let copy = secret.clone();
    drop(secret);
    assert!(
        pg.can_login(&user, &password)?,
        "a clone still holds the lease"
    );
    // The last handle goes: the lease is revoked, the user dropped.
    drop(copy);
    let gone = eventually(Duration::from_secs(5), || {
        Ok(!users_of(&pg, &role)?.contains(&user))
    })
    .await?;
    assert!(gone, "revoked when the returned secret dropped");

    // Kept: it outlives the handle.
    let kept = client
        .get_credentials(format!("{uri}#username").as_str(), Some(&request()))
        .await?;
    assert!(kept.keep_lease());
    let kept_user = kept.expose_str().ok_or("text")?.to_owned();
    drop(kept);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        users_of(&pg, &role)?.contains(&kept_user),
        "a kept lease outlives its handle"
    );

    // A field the credentials lack: an error, and the lease issued for it is revoked.
    let before = users_of(&pg, &role)?;
    let missing = client
        .get_credentials(format!("{uri}#port").as_str(), Some(&request()))
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(missing, Some("KEY_NOT_FOUND"));
    let back = eventually(Duration::from_secs(5), || {
        Ok(users_of(&pg, &role)? == before)
    })
    .await?;
    assert!(back, "the lease of a failed read is revoked");
    // A replayed request is refused before any user is made.
    let ctx = request();
    let first = client
        .get_credentials(format!("{uri}#password").as_str(), Some(&ctx))
        .await?;
    let replay = client
        .get_credentials(format!("{uri}#password").as_str(), Some(&ctx))
        .await
        .err()
        .ok_or("a replayed jti is refused")?;
    assert_eq!(
        (replay.code(), replay.deny_reason().map(|r| r.code())),
        ("AUTHZ_DENIED", Some("REPLAY"))
    );
    drop(first);
    assert_not_logged(&[&password, json["lease_id"].as_str().unwrap_or_default()]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_client_lease_is_renewed_while_its_secret_lives() -> TestResult {
    let Some((bao, pg)) = shared()? else {
        return Ok(());
    };
    let role = unique("held");
    bao.create_db_role(MOUNT, &role, "3s", "1h")?;
    let client = vault_client(&bao)?;
    let secret = client
        .get_credentials(
            format!("db+cred://{MOUNT}/{role}").as_str(),
            Some(&request()),
        )
        .await?;
    let json = secret.expose_json().ok_or("JSON")?.clone();
    let (user, password) = (
        json["username"].as_str().ok_or("user")?.to_owned(),
        json["password"].as_str().ok_or("password")?.to_owned(),
    );
    // Past its 3 s TTL the user still works: the held secret's lease was renewed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        pg.can_login(&user, &password)?,
        "renewed while the secret lives"
    );
    drop(secret);
    let gone = eventually(Duration::from_secs(5), || {
        Ok(!users_of(&pg, &role)?.contains(&user))
    })
    .await?;
    assert!(gone, "revoked when it dropped");
    Ok(())
}
