//! [`OtlpConfig`]: where to export, with what headers, TLS and timing, and which spans; read
//! from the standard `OTEL_*` variables and set in code.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secret_config::Env;
use zeroize::Zeroizing;

use super::OtlpError;

/// Base URL of the OTLP/HTTP endpoint; `/v1/traces` and `/v1/metrics` are appended.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Full URL for traces, used as is (overrides the base URL for traces).
pub const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// Full URL for metrics, used as is (overrides the base URL for metrics).
pub const METRICS_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// Headers sent with every export, `key=value` pairs separated by commas, values
/// percent-encoded. May hold a token: never logged, never shown by `Debug`.
pub const HEADERS_ENV: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// The `service.name` resource attribute.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";
/// Milliseconds one export may take (and what shutdown waits at most).
pub const TIMEOUT_ENV: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// Milliseconds between two metric exports.
pub const METRIC_INTERVAL_ENV: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// Only `http/protobuf` is served; any other value is refused.
pub const PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// A PEM CA bundle that replaces the webpki roots for the endpoint.
pub const CERTIFICATE_ENV: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// A PEM client certificate chain for mutual TLS (with the key).
pub const CLIENT_CERTIFICATE_ENV: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
/// The PEM private key of the client certificate.
pub const CLIENT_KEY_ENV: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
/// Which spans are exported: `tracing` filter directives (`info`, `debug`,
/// `info,secret_http=debug`, …).
pub const FILTER_ENV: &str = "SECRETS_OTEL_FILTER";
/// `true` allows plain `http://` to an endpoint that is not loopback (a collector sidecar
/// on a private network); otherwise plain HTTP goes to loopback only.
pub const ALLOW_INSECURE_HTTP_ENV: &str = "SECRETS_OTEL_ALLOW_INSECURE_HTTP";

/// The endpoint when none is set: an OpenTelemetry Collector on this host.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
/// The per-export timeout when none is set, 10 s (the OpenTelemetry default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The metric export interval when none is set, 60 s (the OpenTelemetry default).
pub const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_secs(60);
/// The span filter when none is set: the SDK's INFO spans (`secret_resolve`,
/// `get_credentials`) and everything above.
pub const DEFAULT_FILTER: &str = "info";
/// The service name when none is set.
pub const DEFAULT_SERVICE_NAME: &str = "unknown_service";

/// Settings of an OTLP [`Pipeline`](super::Pipeline).
///
/// Start from [`default`](Self::default) (or [`from_env`](Self::from_env)), then set in code
/// or read variables with [`read_env`](Self::read_env): **what is set last wins**, so a
/// program can give defaults that the environment overrides (read the environment last) or
/// settings the environment cannot change (set them after).
///
/// Errors name each setting by its variable, also when it was set in code.
///
/// `Debug` shows the endpoint's origin and the header *names*, never a header value (one
/// may be a token) or an endpoint's path.
///
/// ```
/// use std::time::Duration;
/// use secret_config::Env;
/// use secret_telemetry::otlp::OtlpConfig;
///
/// let vars = |name: &str| match name {
///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".to_owned()),
///     "OTEL_EXPORTER_OTLP_HEADERS" => Some("authorization=Bearer%20s.canary".to_owned()),
///     "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("2500".to_owned()),
///     _ => None,
/// };
/// let config = OtlpConfig::default()
///     .with_service_name("billing") // a default: OTEL_SERVICE_NAME, read next, wins
///     .read_env(&Env::new(&vars))?
///     .with_filter("info,secrets_sdk=debug");
/// assert_eq!(config.timeout(), Duration::from_millis(2500));
/// assert_eq!(config.service_name(), "billing");
/// assert!(!format!("{config:?}").contains("canary"));
/// # Ok::<(), secret_telemetry::otlp::OtlpError>(())
/// ```
#[derive(Clone)]
pub struct OtlpConfig {
    pub(crate) endpoint: String,
    pub(crate) traces_endpoint: Option<String>,
    pub(crate) metrics_endpoint: Option<String>,
    pub(crate) headers: Vec<(String, Zeroizing<String>)>,
    pub(crate) service_name: String,
    pub(crate) timeout: Duration,
    pub(crate) metric_interval: Duration,
    pub(crate) ca_bundle: Option<PathBuf>,
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
    pub(crate) filter: String,
    pub(crate) allow_insecure_http: bool,
}

impl Default for OtlpConfig {
    /// [`DEFAULT_ENDPOINT`], no headers, [`DEFAULT_SERVICE_NAME`], [`DEFAULT_TIMEOUT`],
    /// [`DEFAULT_METRIC_INTERVAL`], the webpki roots, [`DEFAULT_FILTER`], plain HTTP to
    /// loopback only.
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            traces_endpoint: None,
            metrics_endpoint: None,
            headers: Vec::new(),
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            metric_interval: DEFAULT_METRIC_INTERVAL,
            ca_bundle: None,
            client_cert: None,
            filter: DEFAULT_FILTER.to_owned(),
            allow_insecure_http: false,
        }
    }
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &Origin(&self.endpoint))
            .field(
                "traces_endpoint",
                &self.traces_endpoint.as_deref().map(Origin),
            )
            .field(
                "metrics_endpoint",
                &self.metrics_endpoint.as_deref().map(Origin),
            )
            .field("header_names", &header_names)
            .field("service_name", &self.service_name)
            .field("timeout", &self.timeout)
            .field("metric_interval", &self.metric_interval)
            .field("ca_bundle", &self.ca_bundle)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|(cert, _)| cert),
            )
            .field("filter", &self.filter)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

/// A URL shown as `scheme://host:port` only: no credentials, path or query.
struct Origin<'a>(&'a str);

impl fmt::Debug for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.trim().parse::<http::Uri>() {
            Ok(uri) => {
                let scheme = uri.scheme_str().unwrap_or("?");
                let host = uri.host().unwrap_or("?");
                match uri.port_u16() {
                    Some(port) => write!(f, "\"{scheme}://{host}:{port}\""),
                    None => write!(f, "\"{scheme}://{host}\""),
                }
            }
            Err(_) => f.write_str("\"[not a URL]\""),
        }
    }
}

impl OtlpConfig {
    /// The defaults, then the process environment ([`read_env`](Self::read_env)).
    ///
    /// # Errors
    /// As [`read_env`](Self::read_env).
    pub fn from_env() -> Result<Self, OtlpError> {
        Self::default().read_process_env()
    }

    /// [`read_env`](Self::read_env) of the process environment: what was set before are
    /// defaults that the variables override.
    ///
    /// # Errors
    /// As [`read_env`](Self::read_env).
    pub fn read_process_env(self) -> Result<Self, OtlpError> {
        self.read_env(&Env::process())
    }

    /// Applies every variable that is set (an empty one counts as unset), over what was set before:
    /// [`OTEL_EXPORTER_OTLP_ENDPOINT`](ENDPOINT_ENV),
    /// [`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`](TRACES_ENDPOINT_ENV),
    /// [`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`](METRICS_ENDPOINT_ENV),
    /// [`OTEL_EXPORTER_OTLP_HEADERS`](HEADERS_ENV) (replacing the headers set before),
    /// [`OTEL_SERVICE_NAME`](SERVICE_NAME_ENV), [`OTEL_EXPORTER_OTLP_TIMEOUT`](TIMEOUT_ENV) and
    /// [`OTEL_METRIC_EXPORT_INTERVAL`](METRIC_INTERVAL_ENV) (milliseconds),
    /// [`OTEL_EXPORTER_OTLP_PROTOCOL`](PROTOCOL_ENV) (`http/protobuf` only),
    /// [`OTEL_EXPORTER_OTLP_CERTIFICATE`](CERTIFICATE_ENV),
    /// [`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`](CLIENT_CERTIFICATE_ENV) with
    /// [`OTEL_EXPORTER_OTLP_CLIENT_KEY`](CLIENT_KEY_ENV), [`SECRETS_OTEL_FILTER`](FILTER_ENV) and
    /// [`SECRETS_OTEL_ALLOW_INSECURE_HTTP`](ALLOW_INSECURE_HTTP_ENV).
    ///
    /// Files are read and URLs checked when the pipeline is built.
    ///
    /// # Errors
    /// `CONFIG` naming the variable (never its value): malformed headers, a timeout or
    /// interval that is not a positive whole number of milliseconds, another protocol, a
    /// client certificate without its key (or the reverse), a flag that is not a flag.
    pub fn read_env(mut self, env: &Env<'_>) -> Result<Self, OtlpError> {
        if let Some(endpoint) = env.get(ENDPOINT_ENV) {
            self.endpoint = endpoint;
        }
        if let Some(endpoint) = env.get(TRACES_ENDPOINT_ENV) {
            self.traces_endpoint = Some(endpoint);
        }
        if let Some(endpoint) = env.get(METRICS_ENDPOINT_ENV) {
            self.metrics_endpoint = Some(endpoint);
        }
        // One header set serves both signals: a per-signal one would be silently dropped.
        for per_signal in [
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        ] {
            if env.get(per_signal).is_some() {
                return Err(OtlpError::config(
                    per_signal,
                    "is not supported: set OTEL_EXPORTER_OTLP_HEADERS (sent with both signals)",
                ));
            }
        }
        if let Some(raw) = env.raw(HEADERS_ENV).map(Zeroizing::new)
            && !raw.trim().is_empty()
        {
            self.headers = parse_headers(&raw)?;
        }
        if let Some(name) = env.get(SERVICE_NAME_ENV) {
            self.service_name = name;
        }
        if let Some(timeout) = positive_millis(env, TIMEOUT_ENV)? {
            self.timeout = timeout;
        }
        if let Some(interval) = positive_millis(env, METRIC_INTERVAL_ENV)? {
            self.metric_interval = interval;
        }
        if let Some(protocol) = env.setting(PROTOCOL_ENV)
            && protocol.value() != "http/protobuf"
        {
            return Err(OtlpError::config(
                PROTOCOL_ENV,
                "must be http/protobuf (the only protocol served)",
            ));
        }
        if let Some(path) = env.path(CERTIFICATE_ENV) {
            self.ca_bundle = Some(path);
        }
        match (env.path(CLIENT_CERTIFICATE_ENV), env.path(CLIENT_KEY_ENV)) {
            (Some(cert), Some(key)) => self.client_cert = Some((cert, key)),
            (None, None) => {}
            (Some(_), None) => {
                return Err(OtlpError::config(
                    CLIENT_KEY_ENV,
                    "is not set, but OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is",
                ));
            }
            (None, Some(_)) => {
                return Err(OtlpError::config(
                    CLIENT_CERTIFICATE_ENV,
                    "is not set, but OTEL_EXPORTER_OTLP_CLIENT_KEY is",
                ));
            }
        }
        if let Some(filter) = env.get(FILTER_ENV) {
            self.filter = filter;
        }
        self.allow_insecure_http = env.flag(ALLOW_INSECURE_HTTP_ENV, self.allow_insecure_http)?;
        Ok(self)
    }

    /// Sets the base URL ([`OTEL_EXPORTER_OTLP_ENDPOINT`](ENDPOINT_ENV)):
    /// `http(s)://host[:port][/path]`.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Sets the full traces URL ([`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`](TRACES_ENDPOINT_ENV)).
    #[must_use]
    pub fn with_traces_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.traces_endpoint = Some(endpoint.into());
        self
    }

    /// Sets the full metrics URL ([`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`](METRICS_ENDPOINT_ENV)).
    #[must_use]
    pub fn with_metrics_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.metrics_endpoint = Some(endpoint.into());
        self
    }

    /// Adds a header sent with every export (as [`OTEL_EXPORTER_OTLP_HEADERS`](HEADERS_ENV) does;
    /// checked when the pipeline is built). The value is never logged or shown by `Debug`.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.into(), Zeroizing::new(value.into())));
        self
    }

    /// Sets `service.name` ([`OTEL_SERVICE_NAME`](SERVICE_NAME_ENV)).
    #[must_use]
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Sets the per-export timeout ([`OTEL_EXPORTER_OTLP_TIMEOUT`](TIMEOUT_ENV)), which also bounds
    /// how long shutdown waits.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the time between metric exports ([`OTEL_METRIC_EXPORT_INTERVAL`](METRIC_INTERVAL_ENV)).
    #[must_use]
    pub fn with_metric_interval(mut self, interval: Duration) -> Self {
        self.metric_interval = interval;
        self
    }

    /// Sets the CA bundle ([`OTEL_EXPORTER_OTLP_CERTIFICATE`](CERTIFICATE_ENV)); it replaces the
    /// webpki roots.
    #[must_use]
    pub fn with_ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Sets a client certificate and key for mutual TLS
    /// ([`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`](CLIENT_CERTIFICATE_ENV),
    /// [`OTEL_EXPORTER_OTLP_CLIENT_KEY`](CLIENT_KEY_ENV)).
    #[must_use]
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Sets which spans are exported ([`SECRETS_OTEL_FILTER`](FILTER_ENV)): `tracing` filter
    /// directives.
    #[must_use]
    pub fn with_filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = directives.into();
        self
    }

    /// Allows plain `http://` to an endpoint that is not loopback
    /// ([`SECRETS_OTEL_ALLOW_INSECURE_HTTP`](ALLOW_INSECURE_HTTP_ENV)).
    #[must_use]
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The `service.name` resource attribute.
    #[must_use]
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The per-export timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The time between metric exports.
    #[must_use]
    pub fn metric_interval(&self) -> Duration {
        self.metric_interval
    }

    /// The span filter's directives.
    #[must_use]
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The names of the headers sent with every export (never their values).
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(name, _)| name.as_str())
    }
}

/// Whole milliseconds, positive, when set.
fn positive_millis(env: &Env<'_>, name: &'static str) -> Result<Option<Duration>, OtlpError> {
    match env.setting(name) {
        None => Ok(None),
        Some(setting) => {
            let millis: u64 = setting.number()?;
            if millis == 0 {
                return Err(OtlpError::config(name, "must be positive"));
            }
            Ok(Some(Duration::from_millis(millis)))
        }
    }
}

/// `key=value` pairs separated by commas, keys and values trimmed, values percent-decoded
/// (the OpenTelemetry format of [`OTEL_EXPORTER_OTLP_HEADERS`](HEADERS_ENV)).
fn parse_headers(text: &str) -> Result<Vec<(String, Zeroizing<String>)>, OtlpError> {
    let mut headers = Vec::new();
    for pair in text.split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = pair.split_once('=') else {
            return Err(OtlpError::config(
                HEADERS_ENV,
                "must be comma-separated key=value pairs",
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(OtlpError::config(
                HEADERS_ENV,
                "has a pair with an empty key",
            ));
        }
        let value = percent_decode(value.trim()).ok_or_else(|| {
            OtlpError::config(
                HEADERS_ENV,
                "has a value that is not UTF-8 once percent-decoded",
            )
        })?;
        headers.push((name.to_owned(), value));
    }
    Ok(headers)
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(text: &str) -> Option<Zeroizing<String>> {
    let bytes = text.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits: at most 255.
                out.push(u8::try_from(high * 16 + low).unwrap_or(0));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    let text = std::str::from_utf8(&out).ok()?;
    Some(Zeroizing::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CANARY: &str = "s.canary-otlp-token-4f1d";

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn per_signal_headers_and_half_a_client_certificate_are_refused_by_name() {
        for (set, named, says) in [
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ),
            (
                CLIENT_CERTIFICATE_ENV,
                CLIENT_KEY_ENV,
                CLIENT_CERTIFICATE_ENV,
            ),
            (CLIENT_KEY_ENV, CLIENT_CERTIFICATE_ENV, CLIENT_KEY_ENV),
        ] {
            let value = format!("authorization={CANARY}");
            let lookup = vars(&[(set, value.as_str())]);
            let error = OtlpConfig::default()
                .read_env(&Env::new(&lookup))
                .err()
                .map(|e| (e.setting().map(str::to_owned), e.to_string()));
            let Some((setting, message)) = error else {
                panic!("{set} was accepted");
            };
            assert_eq!(setting.as_deref(), Some(named), "{message}");
            assert!(message.contains(says), "{message}");
            assert!(!message.contains(CANARY), "{message}");
            assert!(!message.contains("_ENV"), "{message}");
        }
    }

    #[test]
    fn every_variable_is_read_and_later_settings_win() -> Result<(), OtlpError> {
        let lookup = vars(&[
            (ENDPOINT_ENV, " http://127.0.0.1:4318/base/ "),
            (TRACES_ENDPOINT_ENV, "http://127.0.0.1:1/t"),
            (HEADERS_ENV, "a=1, b = x%20y%3D ,,"),
            (SERVICE_NAME_ENV, "billing"),
            (TIMEOUT_ENV, "1500"),
            (METRIC_INTERVAL_ENV, "250"),
            (PROTOCOL_ENV, "http/protobuf"),
            (CERTIFICATE_ENV, "/etc/ca.pem"),
            (CLIENT_CERTIFICATE_ENV, "/etc/c.pem"),
            (CLIENT_KEY_ENV, "/etc/k.pem"),
            (FILTER_ENV, "debug"),
            (ALLOW_INSECURE_HTTP_ENV, "true"),
        ]);
        let config = OtlpConfig::default()
            .with_service_name("secrets")
            .with_header("dropped", "by the variable")
            .read_env(&Env::new(&lookup))?
            .with_timeout(Duration::from_secs(3));
        assert_eq!(config.endpoint, "http://127.0.0.1:4318/base/");
        assert_eq!(
            config.traces_endpoint.as_deref(),
            Some("http://127.0.0.1:1/t")
        );
        assert_eq!(config.metrics_endpoint, None);
        let headers: Vec<(&str, &str)> = config
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(headers, vec![("a", "1"), ("b", "x y=")]);
        assert_eq!(config.service_name(), "billing");
        assert_eq!(config.timeout(), Duration::from_secs(3));
        assert_eq!(config.metric_interval(), Duration::from_millis(250));
        assert_eq!(config.ca_bundle, Some(PathBuf::from("/etc/ca.pem")));
        assert!(config.client_cert.is_some());
        assert_eq!(config.filter(), "debug");
        assert!(config.allow_insecure_http);

        let unset = OtlpConfig::default()
            .with_service_name("secrets")
            .read_env(&Env::new(&vars(&[])))?;
        assert_eq!(unset.service_name(), "secrets");
        assert_eq!(unset.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(unset.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(unset.filter(), DEFAULT_FILTER);
        Ok(())
    }

    #[test]
    fn bad_settings_name_the_variable_and_never_the_value() {
        let cases: [(&str, &str, &str); 7] = [
            (
                HEADERS_ENV,
                CANARY,
                "must be comma-separated key=value pairs",
            ),
            (
                HEADERS_ENV,
                "=s.canary-otlp-token-4f1d",
                "has a pair with an empty key",
            ),
            (
                HEADERS_ENV,
                "a=%ff s.canary-otlp-token-4f1d",
                "has a value that is not UTF-8 once percent-decoded",
            ),
            (TIMEOUT_ENV, CANARY, "must be a whole number"),
            (METRIC_INTERVAL_ENV, "0", "must be positive"),
            (
                PROTOCOL_ENV,
                "grpc",
                "must be http/protobuf (the only protocol served)",
            ),
            (ALLOW_INSECURE_HTTP_ENV, CANARY, "must be true or false"),
        ];
        for (name, value, reason) in cases {
            let lookup = vars(&[(name, value)]);
            let error = match OtlpConfig::default().read_env(&Env::new(&lookup)) {
                Ok(config) => panic!("{name}={value} was accepted: {config:?}"),
                Err(error) => error,
            };
            assert_eq!(error.code(), "CONFIG");
            assert_eq!(error.setting(), Some(name));
            assert_eq!(error.to_string(), format!("{name} {reason} [CONFIG]"));
            assert!(!format!("{error:?}").contains("canary"), "{error:?}");
        }
        let lookup = vars(&[(CLIENT_CERTIFICATE_ENV, "/c.pem")]);
        let error = OtlpConfig::default().read_env(&Env::new(&lookup)).err();
        assert_eq!(
            error
                .and_then(|e| e.setting().map(str::to_owned))
                .as_deref(),
            Some(CLIENT_KEY_ENV)
        );
    }

    #[test]
    fn debug_shows_header_names_and_origins_only() -> Result<(), OtlpError> {
        let header = format!("authorization=Bearer%20{CANARY},x-tenant=t1");
        let lookup = vars(&[
            (
                ENDPOINT_ENV,
                "https://collector.example:4318/s.canary-otlp-token-4f1d",
            ),
            (HEADERS_ENV, &header),
        ]);
        let config = OtlpConfig::default()
            .read_env(&Env::new(&lookup))?
            .with_header("x-api-key", CANARY)
            .with_metrics_endpoint("https://user:s.canary-otlp-token-4f1d@collector.example/m");
        let shown = format!("{config:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(!shown.contains("Bearer"), "{shown}");
        assert!(
            shown.contains("\"authorization\"") && shown.contains("\"x-api-key\""),
            "{shown}"
        );
        assert!(shown.contains("https://collector.example:4318"), "{shown}");
        assert_eq!(
            config.header_names().collect::<Vec<_>>(),
            ["authorization", "x-tenant", "x-api-key"]
        );
        Ok(())
    }
}
