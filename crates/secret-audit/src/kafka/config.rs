//! [`KafkaConfig`]: the `KAFKA_*` settings, named the way Kafka clients name them.

use std::fmt;
use std::path::PathBuf;

use secret_config::Env;
use zeroize::Zeroizing;

use crate::{AuditError, PRODUCT_NAME};

/// Turns the Kafka sink on (`true`/`false`, default `false`).
pub const ENABLE_KAFKA_PRODUCER_ENV: &str = "ENABLE_KAFKA_PRODUCER";
/// The brokers to bootstrap from: `host:port`, comma separated.
pub const KAFKA_BOOTSTRAP_SERVERS_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";
/// Put before `secrets.audit` to name the topic (default empty).
pub const KAFKA_TOPIC_PREFIX_ENV: &str = "KAFKA_TOPIC_PREFIX";
/// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` (Kafka's `security.protocol`).
pub const KAFKA_SECURITY_PROTOCOL_ENV: &str = "KAFKA_SECURITY_PROTOCOL";
/// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (Kafka's `sasl.mechanism`).
pub const KAFKA_SASL_MECHANISM_ENV: &str = "KAFKA_SASL_MECHANISM";
/// The SASL user name.
pub const KAFKA_SASL_USERNAME_ENV: &str = "KAFKA_SASL_USERNAME";
/// The SASL password: a secret, never in `Debug`, an error or a log line.
pub const KAFKA_SASL_PASSWORD_ENV: &str = "KAFKA_SASL_PASSWORD";
/// CA certificates (PEM) that replace the webpki roots (librdkafka's `ssl.ca.location`).
pub const KAFKA_SSL_CA_LOCATION_ENV: &str = "KAFKA_SSL_CA_LOCATION";
/// The client certificate chain (PEM) for mutual TLS (`ssl.certificate.location`).
pub const KAFKA_SSL_CERTIFICATE_LOCATION_ENV: &str = "KAFKA_SSL_CERTIFICATE_LOCATION";
/// The client certificate's private key (PEM) (`ssl.key.location`).
pub const KAFKA_SSL_KEY_LOCATION_ENV: &str = "KAFKA_SSL_KEY_LOCATION";
/// Allows a plaintext protocol to a broker that is not on loopback (default `false`).
pub const KAFKA_ALLOW_PLAINTEXT_ENV: &str = "KAFKA_ALLOW_PLAINTEXT";

/// The topic's name after the prefix.
pub const TOPIC_SUFFIX: &str = "secrets.audit";
/// The longest topic name Kafka accepts.
const MAX_TOPIC_LEN: usize = 249;

/// How the sink talks to the brokers, as Kafka's `security.protocol` names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// Plain TCP (only to loopback brokers unless `KAFKA_ALLOW_PLAINTEXT=true`). The default.
    #[default]
    Plaintext,
    /// TLS (rustls with `ring`, TLS 1.2+, through `secret-http`).
    Ssl,
    /// SASL over plain TCP (the same loopback rule: a PLAIN password would travel in clear).
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The name as Kafka spells it, e.g. `"SASL_SSL"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether it uses TLS.
    #[must_use]
    pub const fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether it authenticates with SASL.
    #[must_use]
    pub const fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::Plaintext,
            Self::Ssl,
            Self::SaslPlaintext,
            Self::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }
}

/// The SASL mechanism, as Kafka's `sasl.mechanism` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): the password itself is sent, so only over TLS or to loopback.
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    /// The name as Kafka spells it, e.g. `"SCRAM-SHA-256"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Plain, Self::ScramSha256, Self::ScramSha512]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }
}

/// SASL credentials. The password is wiped when dropped and `[REDACTED]` in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    mechanism: SaslMechanism,
    username: String,
    password: Zeroizing<String>,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

impl SaslCredentials {
    /// Credentials for `mechanism`.
    #[must_use]
    pub fn new(
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            mechanism,
            username: username.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// The mechanism.
    #[must_use]
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// The user name.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password: an explicit, greppable exposure.
    #[must_use]
    pub fn expose_password(&self) -> &str {
        &self.password
    }
}

/// TLS files, as Kafka clients name them (`ssl.ca.location`, `ssl.certificate.location`,
/// `ssl.key.location`). Built into a rustls configuration by `secret-http`, by the rules its
/// HTTP client follows: a CA bundle replaces the webpki roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaTls {
    /// CA certificates (PEM); the webpki roots when unset.
    pub ca_location: Option<PathBuf>,
    /// The client certificate chain and its key (PEM), for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Where and how the Kafka sink publishes.
///
/// | Setting | Meaning | Default |
/// |---|---|---|
/// | `ENABLE_KAFKA_PRODUCER` | turn the sink on | `false` |
/// | `KAFKA_BOOTSTRAP_SERVERS` | `host:port,…` to bootstrap from | required when on |
/// | `KAFKA_TOPIC_PREFIX` | the topic is `<prefix>secrets.audit` | empty |
/// | `KAFKA_SECURITY_PROTOCOL` | `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL` | `PLAINTEXT` |
/// | `KAFKA_SASL_MECHANISM` | `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` | required for `SASL_*` |
/// | `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` | SASL credentials | required for `SASL_*` |
/// | `KAFKA_SSL_CA_LOCATION` | CA bundle (PEM), replacing the webpki roots | webpki roots |
/// | `KAFKA_SSL_CERTIFICATE_LOCATION`, `KAFKA_SSL_KEY_LOCATION` | client certificate and key (PEM) | none |
/// | `KAFKA_ALLOW_PLAINTEXT` | allow `PLAINTEXT`/`SASL_PLAINTEXT` to brokers off loopback | `false` |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// The bootstrap brokers, `host:port`.
    pub bootstrap_servers: Vec<String>,
    /// The topic: `<KAFKA_TOPIC_PREFIX>secrets.audit`.
    pub topic: String,
    /// How to talk to the brokers.
    pub security_protocol: SecurityProtocol,
    /// SASL credentials (`SASL_PLAINTEXT`, `SASL_SSL`).
    pub sasl: Option<SaslCredentials>,
    /// TLS files (`SSL`, `SASL_SSL`).
    pub tls: KafkaTls,
    /// The `ce_source` header of every record (default `secrets-sdk`).
    pub ce_source: String,
    /// The client id the brokers see (default `secrets-sdk-audit`).
    pub client_id: String,
}

impl KafkaConfig {
    /// Plain TCP to `bootstrap_servers` (`host:port`, loopback unless allowed by
    /// [`from_lookup`](Self::from_lookup)'s `KAFKA_ALLOW_PLAINTEXT`), topic `secrets.audit`.
    #[must_use]
    pub fn new(bootstrap_servers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into_iter().map(Into::into).collect(),
            topic: TOPIC_SUFFIX.to_owned(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: None,
            tls: KafkaTls::default(),
            ce_source: PRODUCT_NAME.to_owned(),
            client_id: format!("{PRODUCT_NAME}-audit"),
        }
    }

    /// The same configuration with the topic `<prefix>secrets.audit`.
    #[must_use]
    pub fn with_topic_prefix(mut self, prefix: &str) -> Self {
        self.topic = format!("{prefix}{TOPIC_SUFFIX}");
        self
    }

    /// Reads the `KAFKA_*` settings through `lookup` (values trimmed, empty is unset):
    /// `None` when `ENABLE_KAFKA_PRODUCER` is unset or false.
    ///
    /// # Errors
    /// `CONFIG` naming the setting: no bootstrap servers, a server without a port, a topic
    /// prefix Kafka would refuse, an unknown protocol or mechanism, SASL or TLS settings the
    /// protocol does not use, missing credentials, half a client certificate, or a plaintext
    /// protocol to a broker off loopback without `KAFKA_ALLOW_PLAINTEXT=true`. Messages name
    /// the setting, never its value.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, AuditError> {
        let env = Env::new(lookup);
        if !env.flag(ENABLE_KAFKA_PRODUCER_ENV, false)? {
            return Ok(None);
        }
        let servers = env.list(KAFKA_BOOTSTRAP_SERVERS_ENV).unwrap_or_default();
        if servers.is_empty() {
            return Err(AuditError::config(
                KAFKA_BOOTSTRAP_SERVERS_ENV,
                "must be set when ENABLE_KAFKA_PRODUCER is true",
            ));
        }
        let mut hosts = Vec::with_capacity(servers.len());
        for server in &servers {
            hosts.push(broker_host(server).ok_or_else(|| {
                AuditError::config(KAFKA_BOOTSTRAP_SERVERS_ENV, "must be host:port entries")
            })?);
        }
        let prefix = env.get(KAFKA_TOPIC_PREFIX_ENV).unwrap_or_default();
        let mut config = Self::new(servers.clone()).with_topic_prefix(&prefix);
        if !valid_topic(&config.topic) {
            return Err(AuditError::config(
                KAFKA_TOPIC_PREFIX_ENV,
                "must be letters, digits, '.', '_' or '-', at most 236 of them",
            ));
        }
        config.security_protocol = match env.setting(KAFKA_SECURITY_PROTOCOL_ENV) {
            None => SecurityProtocol::Plaintext,
            Some(setting) => SecurityProtocol::from_name(setting.value()).ok_or_else(|| {
                setting.invalid("must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            })?,
        };
        let protocol = config.security_protocol;
        config.sasl = read_sasl(&env, protocol)?;
        config.tls = read_tls(&env, protocol)?;
        if !protocol.is_tls()
            && !env.flag(KAFKA_ALLOW_PLAINTEXT_ENV, false)?
            && !hosts.iter().all(|host| secret_http::is_loopback(host))
        {
            return Err(AuditError::config(
                KAFKA_SECURITY_PROTOCOL_ENV,
                "is plaintext to a broker that is not on loopback; use SSL or SASL_SSL, or set \
                 KAFKA_ALLOW_PLAINTEXT=true",
            ));
        }
        Ok(Some(config))
    }
}

fn read_sasl(
    env: &Env<'_>,
    protocol: SecurityProtocol,
) -> Result<Option<SaslCredentials>, AuditError> {
    let names = [
        KAFKA_SASL_MECHANISM_ENV,
        KAFKA_SASL_USERNAME_ENV,
        KAFKA_SASL_PASSWORD_ENV,
    ];
    if !protocol.is_sasl() {
        if let Some(name) = names.into_iter().find(|name| env.get(name).is_some()) {
            return Err(AuditError::config(
                name,
                "is set but KAFKA_SECURITY_PROTOCOL is not SASL_PLAINTEXT or SASL_SSL",
            ));
        }
        return Ok(None);
    }
    let mechanism = match env.setting(KAFKA_SASL_MECHANISM_ENV) {
        None => {
            return Err(AuditError::config(
                KAFKA_SASL_MECHANISM_ENV,
                "must be set for a SASL protocol",
            ));
        }
        Some(setting) => SaslMechanism::from_name(setting.value())
            .ok_or_else(|| setting.invalid("must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))?,
    };
    let username = env.required(KAFKA_SASL_USERNAME_ENV)?;
    // Read raw: a password is not trimmed, and its value never enters an error.
    let password = Zeroizing::new(env.raw(KAFKA_SASL_PASSWORD_ENV).unwrap_or_default());
    if password.is_empty() {
        return Err(AuditError::config(
            KAFKA_SASL_PASSWORD_ENV,
            "must be set for a SASL protocol",
        ));
    }
    Ok(Some(SaslCredentials {
        mechanism,
        username,
        password,
    }))
}

fn read_tls(env: &Env<'_>, protocol: SecurityProtocol) -> Result<KafkaTls, AuditError> {
    let ca = env.path(KAFKA_SSL_CA_LOCATION_ENV);
    let cert = env.path(KAFKA_SSL_CERTIFICATE_LOCATION_ENV);
    let key = env.path(KAFKA_SSL_KEY_LOCATION_ENV);
    if !protocol.is_tls() {
        let set = [
            (KAFKA_SSL_CA_LOCATION_ENV, ca.is_some()),
            (KAFKA_SSL_CERTIFICATE_LOCATION_ENV, cert.is_some()),
            (KAFKA_SSL_KEY_LOCATION_ENV, key.is_some()),
        ];
        if let Some((name, _)) = set.into_iter().find(|(_, set)| *set) {
            return Err(AuditError::config(
                name,
                "is set but KAFKA_SECURITY_PROTOCOL is not SSL or SASL_SSL",
            ));
        }
        return Ok(KafkaTls::default());
    }
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(AuditError::config(
                KAFKA_SSL_KEY_LOCATION_ENV,
                "must be set with KAFKA_SSL_CERTIFICATE_LOCATION",
            ));
        }
        (None, Some(_)) => {
            return Err(AuditError::config(
                KAFKA_SSL_CERTIFICATE_LOCATION_ENV,
                "must be set with KAFKA_SSL_KEY_LOCATION",
            ));
        }
    };
    Ok(KafkaTls {
        ca_location: ca,
        client_cert,
    })
}

/// The host of `host:port` (`[v6]:port` too), when the port is a number.
pub(super) fn broker_host(server: &str) -> Option<&str> {
    let (host, port) = server.rsplit_once(':')?;
    let bracketed = host.starts_with('[') && host.ends_with(']');
    let plain = !host.is_empty() && !host.contains([':', '/', '@', ' ']);
    (port.parse::<u16>().is_ok_and(|p| p > 0) && (bracketed || plain)).then_some(host)
}

fn valid_topic(topic: &str) -> bool {
    topic.len() <= MAX_TOPIC_LEN
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<KafkaConfig>, AuditError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        KafkaConfig::from_lookup(&move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn setting_of(result: Result<Option<KafkaConfig>, AuditError>) -> Option<String> {
        result.err().and_then(|e| e.setting().map(str::to_owned))
    }

    const ON: (&str, &str) = (ENABLE_KAFKA_PRODUCER_ENV, "true");

    #[test]
    fn off_unless_enabled_and_defaults_when_on() -> Result<(), AuditError> {
        assert_eq!(read(&[])?, None);
        assert_eq!(read(&[(ENABLE_KAFKA_PRODUCER_ENV, "false")])?, None);
        let config = read(&[
            ON,
            (
                KAFKA_BOOTSTRAP_SERVERS_ENV,
                "127.0.0.1:9092, localhost:9093",
            ),
        ])?
        .ok_or_else(|| AuditError::config("test", "expected a config"))?;
        assert_eq!(
            config.bootstrap_servers,
            ["127.0.0.1:9092", "localhost:9093"]
        );
        assert_eq!(config.topic, "secrets.audit");
        assert_eq!(config.security_protocol, SecurityProtocol::Plaintext);
        assert_eq!((config.sasl, config.tls), (None, KafkaTls::default()));
        assert_eq!(config.ce_source, "secrets-sdk");
        let prefixed = read(&[
            ON,
            (KAFKA_BOOTSTRAP_SERVERS_ENV, "[::1]:9092"),
            (KAFKA_TOPIC_PREFIX_ENV, "prod."),
        ])?
        .map(|c| c.topic);
        assert_eq!(prefixed.as_deref(), Some("prod.secrets.audit"));
        Ok(())
    }

    #[test]
    fn every_bad_setting_is_named() {
        let servers = (KAFKA_BOOTSTRAP_SERVERS_ENV, "127.0.0.1:9092");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[(ENABLE_KAFKA_PRODUCER_ENV, "maybe")],
                ENABLE_KAFKA_PRODUCER_ENV,
            ),
            (&[ON], KAFKA_BOOTSTRAP_SERVERS_ENV),
            (
                &[ON, (KAFKA_BOOTSTRAP_SERVERS_ENV, "broker")],
                KAFKA_BOOTSTRAP_SERVERS_ENV,
            ),
            (
                &[ON, (KAFKA_BOOTSTRAP_SERVERS_ENV, "tcp://b:9092")],
                KAFKA_BOOTSTRAP_SERVERS_ENV,
            ),
            (
                &[ON, (KAFKA_BOOTSTRAP_SERVERS_ENV, "b:0")],
                KAFKA_BOOTSTRAP_SERVERS_ENV,
            ),
            (
                &[ON, servers, (KAFKA_TOPIC_PREFIX_ENV, "a/b")],
                KAFKA_TOPIC_PREFIX_ENV,
            ),
            (
                &[ON, servers, (KAFKA_SECURITY_PROTOCOL_ENV, "TLS")],
                KAFKA_SECURITY_PROTOCOL_ENV,
            ),
            (
                &[ON, servers, (KAFKA_SASL_USERNAME_ENV, "u")],
                KAFKA_SASL_USERNAME_ENV,
            ),
            (
                &[ON, servers, (KAFKA_SSL_CA_LOCATION_ENV, "/ca.pem")],
                KAFKA_SSL_CA_LOCATION_ENV,
            ),
            (
                &[ON, servers, (KAFKA_SECURITY_PROTOCOL_ENV, "SASL_SSL")],
                KAFKA_SASL_MECHANISM_ENV,
            ),
            (
                &[
                    ON,
                    servers,
                    (KAFKA_SECURITY_PROTOCOL_ENV, "SASL_SSL"),
                    (KAFKA_SASL_MECHANISM_ENV, "GSSAPI"),
                ],
                KAFKA_SASL_MECHANISM_ENV,
            ),
            (
                &[
                    ON,
                    servers,
                    (KAFKA_SECURITY_PROTOCOL_ENV, "SASL_SSL"),
                    (KAFKA_SASL_MECHANISM_ENV, "PLAIN"),
                    (KAFKA_SASL_USERNAME_ENV, "u"),
                ],
                KAFKA_SASL_PASSWORD_ENV,
            ),
            (
                &[
                    ON,
                    servers,
                    (KAFKA_SECURITY_PROTOCOL_ENV, "SSL"),
                    (KAFKA_SSL_CERTIFICATE_LOCATION_ENV, "/c.pem"),
                ],
                KAFKA_SSL_KEY_LOCATION_ENV,
            ),
            (
                &[ON, (KAFKA_BOOTSTRAP_SERVERS_ENV, "kafka.example:9092")],
                KAFKA_SECURITY_PROTOCOL_ENV,
            ),
            (
                &[
                    ON,
                    (
                        KAFKA_BOOTSTRAP_SERVERS_ENV,
                        "127.0.0.1:9092,kafka.example:9092",
                    ),
                    (KAFKA_SECURITY_PROTOCOL_ENV, "SASL_PLAINTEXT"),
                    (KAFKA_SASL_MECHANISM_ENV, "SCRAM-SHA-256"),
                    (KAFKA_SASL_USERNAME_ENV, "u"),
                    (KAFKA_SASL_PASSWORD_ENV, "p"),
                ],
                KAFKA_SECURITY_PROTOCOL_ENV,
            ),
        ];
        for (vars, setting) in cases {
            let result = read(vars);
            assert_eq!(
                result.as_ref().err().map(AuditError::code),
                Some("CONFIG"),
                "{vars:?}"
            );
            assert_eq!(setting_of(result).as_deref(), Some(*setting), "{vars:?}");
        }
    }

    #[test]
    fn plaintext_off_loopback_only_when_allowed_and_tls_settings_are_read() -> Result<(), AuditError>
    {
        let allowed = read(&[
            ON,
            (KAFKA_BOOTSTRAP_SERVERS_ENV, "kafka.example:9092"),
            (KAFKA_ALLOW_PLAINTEXT_ENV, "true"),
        ])?;
        assert!(allowed.is_some());
        let tls = read(&[
            ON,
            (KAFKA_BOOTSTRAP_SERVERS_ENV, "kafka.example:9093"),
            (KAFKA_SECURITY_PROTOCOL_ENV, "sasl_ssl"),
            (KAFKA_SASL_MECHANISM_ENV, "scram-sha-512"),
            (KAFKA_SASL_USERNAME_ENV, "audit"),
            (KAFKA_SASL_PASSWORD_ENV, " pass word "),
            (KAFKA_SSL_CA_LOCATION_ENV, "/etc/kafka/ca.pem"),
            (KAFKA_SSL_CERTIFICATE_LOCATION_ENV, "/etc/kafka/client.pem"),
            (KAFKA_SSL_KEY_LOCATION_ENV, "/etc/kafka/client.key"),
        ])?
        .ok_or_else(|| AuditError::config("test", "expected a config"))?;
        assert_eq!(tls.security_protocol, SecurityProtocol::SaslSsl);
        let sasl = tls
            .sasl
            .as_ref()
            .ok_or_else(|| AuditError::config("test", "expected SASL"))?;
        assert_eq!(sasl.mechanism(), SaslMechanism::ScramSha512);
        assert_eq!(sasl.username(), "audit");
        assert_eq!(
            sasl.expose_password(),
            " pass word ",
            "a password is not trimmed"
        );
        assert_eq!(
            tls.tls.ca_location,
            Some(PathBuf::from("/etc/kafka/ca.pem"))
        );
        assert_eq!(
            tls.tls.client_cert,
            Some((
                PathBuf::from("/etc/kafka/client.pem"),
                PathBuf::from("/etc/kafka/client.key")
            ))
        );
        Ok(())
    }

    #[test]
    fn the_password_is_in_no_debug_and_no_error() -> Result<(), AuditError> {
        let canary = "kafka-pw-CANARY-7f3a";
        let base = [
            ON,
            (KAFKA_BOOTSTRAP_SERVERS_ENV, "127.0.0.1:9092"),
            (KAFKA_SECURITY_PROTOCOL_ENV, "SASL_PLAINTEXT"),
            (KAFKA_SASL_MECHANISM_ENV, "PLAIN"),
            (KAFKA_SASL_USERNAME_ENV, "audit"),
            (KAFKA_SASL_PASSWORD_ENV, canary),
        ];
        let config = read(&base)?;
        let shown = format!("{config:?}");
        assert!(!shown.contains(canary), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
        // An error elsewhere in the same settings does not carry it either.
        let mut broken = base.to_vec();
        broken.push((KAFKA_SSL_CA_LOCATION_ENV, "/ca.pem"));
        let error = read(&broken).err();
        let text = format!(
            "{error:?} {}",
            error.as_ref().map(ToString::to_string).unwrap_or_default()
        );
        assert!(error.is_some() && !text.contains(canary), "{text}");
        Ok(())
    }
}
