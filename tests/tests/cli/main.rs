//! The `secrets` binary end to end (secrets-cli over the sdk): `resolve` and `exec` on file
//! secrets, a scripted HTTP server and a real OpenBao, `watch` and `exec --watch` on file
//! secrets (a kubelet-style swap) and a real OpenBao, and `get` through the PEP against a
//! real OpenBao and a real Cerbos, `inject` of templates from file, yaml and OpenBao secrets,
//! and `lint` of templates. The binary is built from the sources under test
//! (`common/cli.rs`); the CLI's suites that need no server (`uri`, `lint`) stay beside it.
//!
//! Without `bao` or `cerbos` installed the real-server tests print `SKIP` and pass locally;
//! under `CI=true` they fail (install both with `cargo xtask services install`).

#[path = "../common/mod.rs"]
mod common;

mod audit_hash;
mod db;
mod exec;
mod exec_watch;
mod get;
mod get_redis;
mod inject;
mod lint_templates;
mod resolve;
mod watch;
