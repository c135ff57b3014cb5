//! What the suite reads from: a file root with the canaries planted in every kind of file the
//! file provider refuses or serves, a real OpenBao holding them (three versions: destroyed,
//! deleted, live) with a canary root token, a canary limited token and an AppRole whose
//! secret id is a canary, and a real Cerbos serving the workspace's test policies.

use std::os::unix::fs::symlink;
use std::path::Path;

use secrets_test_support::OpenBaoServer;
use secrets_test_support::cerbos::{CerbosServer, cerbos_or_skip, policies};
use serde_json::json;
use tempfile::TempDir;

use crate::common::leak::{FILE, OTHER_VALUE, SECRET_ID, SEGMENT, TOKEN, VALUE};

/// The token with only `secret/data/allowed/*`: every planted secret is 403 for it.
pub(crate) fn limited_token() -> String {
    format!("{TOKEN}-limited")
}

/// The AppRole whose secret id is [`SECRET_ID`].
pub(crate) const ROLE: &str = "lk-role";

/// The prefixes under mount `secret` the Cerbos test policy treats differently; a planted
/// secret is at `secret/<prefix><SEGMENT>/<FILE>` for each.
pub(crate) const KV_PREFIXES: [&str; 7] = [
    "",
    "seven/",
    "denied/",
    "mfa/",
    "classified/",
    "new/",
    "short/",
];

/// The planted KV v2 secret under `prefix` (mount `secret`): `<prefix><SEGMENT>/<FILE>`.
pub(crate) fn kv_path(prefix: &str) -> String {
    format!("{prefix}{SEGMENT}/{FILE}")
}

/// The file root, OpenBao and Cerbos.
pub(crate) struct Fixtures {
    /// The file root: mounts `demo` and `linkmount` (a symlink out of the root).
    pub(crate) files: TempDir,
    /// Outside the root: what the escaping symlinks point at.
    pub(crate) outside: TempDir,
    /// The vault.
    pub(crate) bao: OpenBaoServer,
    /// A second vault behind TLS (`-dev-tls`), holding the main planted secret.
    pub(crate) tls: OpenBaoServer,
    /// The PDP (stopped near the end for "PDP down").
    pub(crate) cerbos: CerbosServer,
    /// The AppRole's role id.
    pub(crate) role_id: String,
}

impl std::fmt::Debug for Fixtures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixtures")
            .field("bao", &self.bao.addr())
            .field("tls", &self.tls.addr())
            .field("cerbos", &self.cerbos.addr())
            .finish_non_exhaustive()
    }
}

/// The planted files under `demo/<SEGMENT>/` (names after [`FILE`]).
pub(crate) mod file {
    /// `{"password": VALUE, "other": OTHER_VALUE}`.
    pub(crate) const JSON: &str = ".json";
    /// `VALUE` (text, with a final newline the provider drops).
    pub(crate) const TEXT: &str = ".txt";
    /// Many copies of `VALUE`: larger than the suite's `file_max_bytes`.
    pub(crate) const BIG: &str = "-big";
    /// A FIFO.
    pub(crate) const FIFO: &str = "-fifo";
    /// A Unix socket.
    pub(crate) const SOCKET: &str = "-sock";
    /// A symlink to a file outside the root.
    pub(crate) const ESCAPE: &str = "-escape";
    /// A symlink, by absolute path, to a file outside the root.
    pub(crate) const ESCAPE_ABS: &str = "-escape-abs";
    /// A symlink to `/dev/null`.
    pub(crate) const DEVNULL: &str = "-devnull";
    /// A symlink to [`TEXT`] beside it (stays within the mount).
    pub(crate) const INNER_LINK: &str = "-inner-link";
    /// Malformed JSON holding `VALUE`.
    pub(crate) const BAD_JSON: &str = "-bad.json";
    /// Bytes that are not UTF-8, then `VALUE`.
    pub(crate) const BINARY: &str = "-bin";
    /// A directory.
    pub(crate) const DIR: &str = "-dir";
    /// `VALUE`, a NUL byte, `VALUE`: text no environment variable can hold.
    pub(crate) const NUL: &str = "-nul";
}

/// The largest file the suite's clients read.
pub(crate) const FILE_MAX_BYTES: u64 = 4096;

impl Fixtures {
    /// Everything, or `None` (after a SKIP line; a failure under `CI=true`) when `bao` or
    /// `cerbos` is not installed.
    pub(crate) fn start() -> Result<Option<Self>, Box<dyn std::error::Error>> {
        let files = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        plant_files(files.path(), outside.path())?;
        let Some(bao) = secrets_test_support::openbao_or_skip() else {
            return Ok(None);
        };
        let Some(cerbos) = cerbos_or_skip(&policies()) else {
            return Ok(None);
        };
        let Some(tls) = secrets_test_support::openbao_tls_or_skip() else {
            return Ok(None);
        };
        tls.kv_put(
            "secret",
            &kv_path(""),
            &json!({"token": VALUE, "other": OTHER_VALUE}),
        )?;
        tls.create_token_with(&json!({"id": TOKEN, "policies": ["root"]}))?;
        bao.enable_auth("kubernetes", "kubernetes")?;
        for prefix in KV_PREFIXES {
            let path = kv_path(prefix);
            for _ in 0..3 {
                bao.kv_put(
                    "secret",
                    &path,
                    &json!({"token": VALUE, "other": OTHER_VALUE}),
                )?;
            }
        }
        let main = kv_path("");
        bao.kv_destroy_versions("secret", &main, &[1])?;
        bao.kv_delete_versions("secret", &main, &[2])?;
        bao.create_token_with(&json!({"id": TOKEN, "policies": ["root"]}))?;
        bao.put_policy(
            "lk-limited",
            r#"path "secret/data/allowed/*" { capabilities = ["read"] }"#,
        )?;
        bao.create_token_with(&json!({"id": limited_token(), "policies": ["lk-limited"]}))?;
        // Auth methods cannot issue root tokens: the role reads the mount.
        bao.put_policy(
            "lk-reader",
            r#"path "secret/*" { capabilities = ["read"] }"#,
        )?;
        let role = bao.setup_approle(ROLE, &["lk-reader"])?;
        let (status, body) = bao.api(
            "POST",
            &format!("auth/approle/role/{ROLE}/custom-secret-id"),
            Some(&json!({"secret_id": SECRET_ID})),
        )?;
        if status != 200 {
            return Err(format!("custom secret id refused: {status} {body}").into());
        }
        let login = json!({"role_id": role.role_id, "secret_id": SECRET_ID});
        let (status, body) = bao.api_as(None, None, "POST", "auth/approle/login", Some(&login))?;
        if status != 200 {
            return Err(format!(
                "the AppRole login with the custom secret id failed: {status} {body}"
            )
            .into());
        }
        Ok(Some(Self {
            files,
            outside,
            bao,
            tls,
            cerbos,
            role_id: role.role_id,
        }))
    }

    /// The file root.
    pub(crate) fn root(&self) -> &Path {
        self.files.path()
    }

    /// `file://demo/<SEGMENT>/<FILE><suffix>`, with `rest` (`#key`, `?q`) appended.
    pub(crate) fn file_uri(suffix: &str, rest: &str) -> String {
        format!("file://demo/{SEGMENT}/{FILE}{suffix}{rest}")
    }
}

fn plant_files(root: &Path, outside: &Path) -> std::io::Result<()> {
    let dir = root.join(format!("demo/{SEGMENT}"));
    std::fs::create_dir_all(&dir)?;
    let at = |suffix: &str| dir.join(format!("{FILE}{suffix}"));
    std::fs::write(
        at(file::JSON),
        json!({"password": VALUE, "other": OTHER_VALUE}).to_string(),
    )?;
    std::fs::write(at(file::TEXT), format!("{VALUE}\n"))?;
    std::fs::write(
        at(file::BIG),
        VALUE.repeat(1 + 2 * FILE_MAX_BYTES as usize / VALUE.len()),
    )?;
    std::fs::write(at(file::BAD_JSON), format!("{{\"password\": \"{VALUE}\""))?;
    let mut binary = vec![0xff, 0xfe, 0x00, 0xc3];
    binary.extend_from_slice(VALUE.as_bytes());
    std::fs::write(at(file::BINARY), binary)?;
    std::fs::write(at(file::NUL), format!("{VALUE}\0{VALUE}"))?;
    std::fs::create_dir(at(file::DIR))?;
    std::fs::write(at(file::DIR).join(FILE), VALUE)?;
    let status = std::process::Command::new("mkfifo")
        .arg(at(file::FIFO))
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other("mkfifo failed"));
    }
    // Bound, then dropped: the socket file stays.
    drop(std::os::unix::net::UnixListener::bind(at(file::SOCKET))?);
    // Outside the root, named like the canaries too.
    let outside_dir = outside.join(SEGMENT);
    std::fs::create_dir_all(&outside_dir)?;
    std::fs::write(outside_dir.join(FILE), VALUE)?;
    std::fs::write(outside_dir.join(format!("{FILE}{}", file::TEXT)), VALUE)?;
    let relative_out = Path::new("../../..")
        .join(outside.file_name().unwrap_or_default())
        .join(SEGMENT)
        .join(FILE);
    symlink(relative_out, at(file::ESCAPE))?;
    symlink(outside_dir.join(FILE), at(file::ESCAPE_ABS))?;
    symlink("/dev/null", at(file::DEVNULL))?;
    symlink(format!("{FILE}{}", file::TEXT), at(file::INNER_LINK))?;
    // A whole mount that is a symlink out of the root.
    symlink(outside, root.join("linkmount"))?;
    Ok(())
}
