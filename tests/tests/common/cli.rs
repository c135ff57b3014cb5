//! The `secrets` binary for the CLI suites. Only the CLI package's own tests can name it
//! (`CARGO_BIN_EXE_secrets`), so it is built here, once per test binary, with `cargo build -p
//! secrets-cli --bin secrets` (cargo releases its build lock before it runs tests): always
//! from the sources under test, never a stale binary found on disk.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use secrets_test_support::cli::{Invocation, Run};

/// The built `secrets` binary.
///
/// # Panics
/// When it does not build.
pub fn secrets_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build)
}

fn build() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "--message-format=json"])
        .args(["--package", "secrets-cli", "--bin", "secrets"])
        // Writes nothing unless SECRETS_TELEMETRY_CENSUS_DIR is set (`cargo xtask ci` sets it).
        .args(["--features", "census"])
        .current_dir(repo_root());
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "secrets"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("{command:?} named no `secrets` executable:\n{stdout}"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    secrets_test_support::repo_root().expect("the repository root")
}

/// `secrets args…` in a cleared environment, run in `crates/secrets-cli` unless
/// [`dir`](Invocation::dir) says otherwise.
pub fn secrets<I, S>(args: I) -> Invocation
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    Invocation::new(secrets_bin(), args).dir(repo_root().join("crates/secrets-cli"))
}
