//! Resolves the demo secrets shipped in `examples/secrets/` at the repository root.
//!
//! ```sh
//! cargo run -p secrets-sdk --example secrets_client
//! ```
//!
//! No server is needed: `file://` secrets resolve before any vault is reachable. Point
//! `OPENBAO_URL`/`OPENBAO_TOKEN` at a server to resolve `openbao+kv2://` URIs the same way.

use std::path::PathBuf;

use secrets_sdk::SecretsClient;
use secrets_sdk::uri::AllowedMounts;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/secrets");
    let client = SecretsClient::builder()
        .file_root(root)
        .allowed_mounts(AllowedMounts::from_csv("demo"))
        .build()?;

    // At configuration time, before any runtime work: file secrets only.
    let username = client.resolve_file_sync("file://demo/db.json#username")?;
    println!("username: {}", username.expose_str().unwrap_or_default());

    // At run time: any provider. Values print as [REDACTED] unless exposed explicitly.
    let password = client.resolve("file://demo/db.json#password").await?;
    println!("password: {password} ({password:?})");
    println!(
        "password length: {}",
        password.expose_str().map_or(0, str::len)
    );

    // Many at once, results in order; a non-canonical spelling is the same cache entry.
    let all = client
        .resolve_many(["FILE://demo/db.json", "file://demo/api-key"])
        .await;
    for result in all {
        match result {
            Ok(secret) => println!("{}: {} value", secret.uri().redacted(), kind(&secret)),
            Err(e) => println!("error {}: {e}", e.code()),
        }
    }

    // Errors carry stable codes; a vault URI without a configured vault is NOT_CONFIGURED.
    if let Err(e) = client.resolve("openbao+kv2://demo/app/api#token").await {
        println!("openbao without a vault: {} ({e})", e.code());
    }
    if let Err(e) = client.resolve("file://demo/missing").await {
        println!("missing file: {}", e.code());
    }

    client.close();
    Ok(())
}

fn kind(secret: &secrets_sdk::Secret) -> &'static str {
    if secret.is_text() { "text" } else { "JSON" }
}
