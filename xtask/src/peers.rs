//! `cargo xtask bench --peers`: the same KV v2 read with vaultrs, vault-client-rs and
//! secrets-sdk, from the `peers/` crate outside the workspace.

/// Runs the peers benchmark. (Being built: issue 15 part 6.)
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("the peers benchmark is not built yet")
}
