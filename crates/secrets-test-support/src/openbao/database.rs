//! OpenBao's database secrets engine against a real [`PostgresServer`]: the setup of the
//! tests of dynamic (leased) and static (rotated) PostgreSQL credentials.
//!
//! ```no_run
//! # fn main() -> Result<(), secrets_test_support::Error> {
//! use secrets_test_support::OpenBaoServer;
//! use secrets_test_support::postgres::PostgresServer;
//!
//! let (bao, pg) = (OpenBaoServer::start()?, PostgresServer::start()?);
//! bao.enable_database("database", &pg)?;
//! bao.create_db_role("database", "app", "1h", "24h")?;
//! let (status, creds) = bao.api("GET", "database/creds/app", None)?;
//! assert_eq!(status, 200);
//! let (user, password) = (&creds["data"]["username"], &creds["data"]["password"]);
//! assert!(pg.can_login(user.as_str().unwrap_or(""), password.as_str().unwrap_or(""))?);
//! # Ok(()) }
//! ```

use serde_json::{Value, json};

use super::OpenBaoServer;
use crate::Error;
use crate::postgres::PostgresServer;

/// The name of the connection [`OpenBaoServer::enable_database`] configures
/// (`<mount>/config/pg`), the `db_name` of every role made here.
const DB_NAME: &str = "pg";

/// A dynamic user: it logs in until its `VALID UNTIL` (the lease's end) and reads every table
/// of `public`.
const CREATION: [&str; 2] = [
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
];

/// Revocation really removes the user: its sessions are ended, what it owns and was granted
/// in `postgres` goes (`DROP OWNED BY`, else `DROP ROLE` refuses a role with privileges),
/// then the role.
const REVOCATION: [&str; 3] = [
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';",
    "DROP OWNED BY \"{{name}}\";",
    "DROP ROLE IF EXISTS \"{{name}}\";",
];

impl OpenBaoServer {
    /// Mounts the database secrets engine at `mount` and configures its connection `pg`
    /// (`<mount>/config/pg`) to `pg`: `postgresql-database-plugin`, the
    /// [`connection_url_template`](PostgresServer::connection_url_template) with the
    /// superuser's name and password, `allowed_roles="*"`, `verify_connection=true` (so the
    /// write fails unless OpenBao logs in).
    ///
    /// # Errors
    /// `UNEXPECTED_STATUS` when OpenBao refuses the mount or the connection (its `errors`
    /// name why), `STOPPED`/`IO` when it cannot be reached.
    pub fn enable_database(&self, mount: &str, pg: &PostgresServer) -> Result<(), Error> {
        self.mount_secrets(mount, "database", &json!({}))?;
        let config = json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": pg.connection_url_template(),
            "allowed_roles": "*",
            "username": pg.superuser(),
            "password": pg.superuser_password(),
            "verify_connection": true,
        });
        self.expect(
            "POST",
            &format!("{}/config/{DB_NAME}", trim(mount)),
            &config,
        )
    }

    /// Creates or replaces the dynamic role `name` (`<mount>/roles/<name>`) on the connection
    /// of [`Self::enable_database`]: each `GET <mount>/creds/<name>` makes a PostgreSQL user
    /// `v-token-<name>-…` that logs in until its lease ends (`VALID UNTIL`) and reads the
    /// tables of `public`, leased for `default_ttl` and renewable up to `max_ttl` (`"3s"`,
    /// `"1h"`); revoking the lease ends the user's sessions and drops it.
    ///
    /// # Errors
    /// As [`Self::enable_database`].
    pub fn create_db_role(
        &self,
        mount: &str,
        name: &str,
        default_ttl: &str,
        max_ttl: &str,
    ) -> Result<(), Error> {
        let role = json!({
            "db_name": DB_NAME,
            "creation_statements": CREATION,
            "revocation_statements": REVOCATION,
            "default_ttl": default_ttl,
            "max_ttl": max_ttl,
        });
        self.expect(
            "POST",
            &format!("{}/roles/{}", trim(mount), trim(name)),
            &role,
        )
    }

    /// Creates the PostgreSQL role `username` (`LOGIN`, a random password) in `pg` unless it
    /// exists, then the static role `name` (`<mount>/static-roles/<name>`) that manages it:
    /// OpenBao sets a password of its own at once and again every `rotation_period`
    /// (`"1h"`, at least 5 s); `GET <mount>/static-creds/<name>` reads it, with no lease.
    ///
    /// # Errors
    /// As [`Self::enable_database`], and `IO` when the role cannot be created in `pg`.
    pub fn create_static_db_role(
        &self,
        mount: &str,
        pg: &PostgresServer,
        name: &str,
        username: &str,
        rotation_period: &str,
    ) -> Result<(), Error> {
        pg.ensure_login_role(username)?;
        let role = json!({
            "db_name": DB_NAME,
            "username": username,
            "rotation_period": rotation_period,
        });
        self.expect(
            "POST",
            &format!("{}/static-roles/{}", trim(mount), trim(name)),
            &role,
        )
    }

    /// One admin write that must answer 200 (with warnings) or 204.
    fn expect(&self, method: &str, path: &str, body: &Value) -> Result<(), Error> {
        self.call(method, path, Some(body), &[200, 204]).map(drop)
    }
}

fn trim(segment: &str) -> &str {
    segment.trim_matches('/')
}
