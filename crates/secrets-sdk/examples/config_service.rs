//! A service that loads its YAML configuration with `SecretRef` fields:
//! `examples/config/service.yaml` at the repository root, its secrets under
//! `examples/secrets/`.
//!
//! ```sh
//! cargo run -p secrets-sdk --features serde,yaml --example config_service
//! ```
//!
//! No server is needed (`file://` and `yaml://` references). Every reference is resolved at
//! load, concurrently; a bad URI or a missing secret fails the load with every failure named
//! by its field path. Printing the configuration shows redacted URIs, never values.

use std::path::PathBuf;

use secrets_sdk::SecretsClient;
use secrets_sdk::config::{self, SecretRef};
use secrets_sdk::uri::AllowedMounts;
use serde::{Deserialize, Serialize};

/// The service's configuration: plain settings and secret references side by side.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Config {
    service: Service,
    database: Database,
    api: Api,
    kafka: Kafka,
    #[serde(default)]
    smtp_relays: Vec<Relay>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Service {
    name: String,
    listen: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Database {
    host: String,
    port: u16,
    username: SecretRef,
    password: SecretRef,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Api {
    key: SecretRef,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Kafka {
    brokers: Vec<String>,
    sasl_password: SecretRef,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Relay {
    host: String,
    password: SecretRef,
}

/// The client over the shipped example secrets, and the configuration loaded through it.
async fn load() -> Result<(SecretsClient, Result<Config, config::LoadError>), secrets_sdk::Error> {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let client = SecretsClient::builder()
        .file_root(examples.join("secrets"))
        .allowed_mounts(AllowedMounts::from_csv("demo"))
        .build()?;
    let config = config::load(&client, examples.join("config/service.yaml")).await;
    Ok((client, config))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (client, config) = load().await?;
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            // Every failed reference at once: `database.password: NOT_FOUND; …`.
            eprintln!("configuration: {error}");
            std::process::exit(1);
        }
    };

    // Debug shows the references redacted: `SecretRef(file://demo/…, resolved)`.
    println!("{config:#?}");

    let password = config
        .database
        .password
        .secret()
        .ok_or("resolved at load")?;
    let username = config
        .database
        .username
        .secret()
        .ok_or("resolved at load")?;
    println!(
        "connecting to {}:{} as {} (password: {} characters)",
        config.database.host,
        config.database.port,
        username.expose_str().unwrap_or_default(),
        password.expose_str().map_or(0, str::len),
    );
    println!(
        "{} SMTP relay(s), Kafka brokers {:?}",
        config.smtp_relays.len(),
        config.kafka.brokers
    );

    // Written back, the configuration holds the URIs, as the file did.
    println!("{}", serde_json::to_string(&config.kafka)?);
    client.close();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reference: &SecretRef) -> Option<String> {
        reference
            .secret()
            .and_then(|s| s.expose_str().map(str::to_owned))
    }

    #[tokio::test]
    async fn the_shipped_configuration_loads_from_the_shipped_secrets()
    -> Result<(), Box<dyn std::error::Error>> {
        let (client, config) = load().await?;
        let config = config?;
        let password = "demo-password-not-a-secret";
        assert_eq!(text(&config.database.password).as_deref(), Some(password));
        assert_eq!(text(&config.database.username).as_deref(), Some("app"));
        assert_eq!(
            text(&config.kafka.sasl_password).as_deref(),
            Some("demo-kafka-password-not-a-secret")
        );
        assert_eq!(
            text(&config.smtp_relays[0].password).as_deref(),
            Some("demo-smtp-password-not-a-secret")
        );
        assert!(config.api.key.is_resolved());
        let printed = format!("{config:?} {}", serde_json::to_string(&config)?);
        assert!(!printed.contains("not-a-secret"), "{printed}");
        client.close();
        Ok(())
    }
}
