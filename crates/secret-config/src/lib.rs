//! Typed reads of configuration settings, with errors that name the setting.
//!
//! Every crate of secrets-sdk reads its settings (`OPENBAO_*`, `VAULT_*`, `FILE_*`, the PEP's
//! `AUTHZEN_*`, `ANTI_REPLAY_*`, `TENANT_*`, the clients' `SECRETS_*`) through one [`Env`]:
//! a lookup function (the process environment, a test's map, a config store) plus one set of
//! rules, so that a setting means the same wherever it is read:
//!
//! - values are trimmed, and an empty value counts as unset;
//! - a [flag](Env::flag) is `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off` (any case);
//! - [whole numbers](Env::number), [seconds](Env::seconds), [milliseconds](Env::millis),
//!   [fractional seconds](Env::fractional_seconds), comma-separated [lists](Env::list) and
//!   [paths](Env::path) are parsed here, once.
//!
//! A bad setting is a [`ConfigError`] whose [`setting`](ConfigError::setting) is the setting's
//! name as a field — callers never parse message text — and whose message names the setting
//! but never its value (a value may be a token).
//!
//! ```
//! use std::time::Duration;
//! use secret_config::Env;
//!
//! let vars = |name: &str| match name {
//!     "GRANT_TTL_DEFAULT" => Some(" 90 ".to_owned()),
//!     "ANTI_REPLAY_ENABLED" => Some("off".to_owned()),
//!     "SECRETS_PURPOSE" => Some("".to_owned()),
//!     "MAX_USES" => Some("s.hunter2".to_owned()),
//!     _ => None,
//! };
//! let env = Env::new(&vars);
//! assert_eq!(env.seconds("GRANT_TTL_DEFAULT", Duration::from_secs(60))?, Duration::from_secs(90));
//! assert!(!env.flag("ANTI_REPLAY_ENABLED", true)?);
//! assert_eq!(env.get("SECRETS_PURPOSE"), None); // empty is unset
//!
//! let error = env.number("MAX_USES", 1_u32).unwrap_err();
//! assert_eq!(error.code(), "CONFIG");
//! assert_eq!(error.setting(), "MAX_USES");
//! assert_eq!(error.to_string(), "MAX_USES must be a whole number [CONFIG]");
//! assert!(!format!("{error} {error:?}").contains("hunter2"));
//! # Ok::<(), secret_config::ConfigError>(())
//! ```
//!
//! # Features
//! None: this crate depends only on `thiserror` and on no other crate of the workspace.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A boxed error kept as the `source` of another error; the one alias the workspace's
/// provider and PEP crates re-export.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A setting that is missing or invalid.
///
/// [`setting`](Self::setting) names it (an environment variable such as `OPENBAO_URL`, a
/// bootstrap-file field, or a builder option); the message is `"{setting} {reason} [CONFIG]"`
/// and never contains the setting's value. A local cause (an unreadable file) is kept as
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[error("{setting} {reason} [CONFIG]")]
#[non_exhaustive]
pub struct ConfigError {
    /// The setting at fault.
    pub setting: Cow<'static, str>,
    /// What is wrong with it, e.g. `is not set` or `must be true or false`; never its value.
    pub reason: Cow<'static, str>,
    /// The local cause, e.g. the I/O error of an unreadable file.
    #[source]
    pub source: Option<BoxError>,
}

impl ConfigError {
    /// An error about `setting`: `reason` says what is wrong without quoting the value.
    pub fn new(
        setting: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            setting: setting.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// The same error with `source` as its cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The stable code, always `"CONFIG"`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        // A match, like every `code()` of the workspace, so the error-code table sees it.
        match self {
            Self { .. } => "CONFIG",
        }
    }

    /// The setting at fault, e.g. `OPENBAO_URL`.
    #[must_use]
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// What is wrong with the setting, without its name.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The error's parts, for wrapping it in another crate's error type.
    #[must_use]
    pub fn into_parts(self) -> (Cow<'static, str>, Cow<'static, str>, Option<BoxError>) {
        (self.setting, self.reason, self.source)
    }
}

/// The one boolean parser: `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off`, any case, with
/// surrounding whitespace ignored; anything else is `None`.
#[must_use]
pub fn parse_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    const TRUE: [&str; 4] = ["true", "1", "yes", "on"];
    const FALSE: [&str; 4] = ["false", "0", "no", "off"];
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if FALSE.iter().any(|f| f.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

/// A setting that is set: its name (for errors) and its trimmed, non-empty value.
#[derive(Clone, PartialEq, Eq)]
pub struct Setting {
    name: String,
    value: String,
}

impl Setting {
    /// The setting's name, e.g. `VAULT_TIMEOUT`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trimmed, non-empty value.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The value, taken.
    #[must_use]
    pub fn into_value(self) -> String {
        self.value
    }

    /// A [`ConfigError`] about this setting.
    #[must_use]
    pub fn invalid(&self, reason: impl Into<Cow<'static, str>>) -> ConfigError {
        ConfigError::new(self.name.clone(), reason)
    }

    /// The value as a flag ([`parse_bool`]).
    ///
    /// # Errors
    /// `must be true or false` otherwise.
    pub fn flag(&self) -> Result<bool, ConfigError> {
        parse_bool(&self.value).ok_or_else(|| self.invalid("must be true or false"))
    }

    /// The value as a whole number of type `T`.
    ///
    /// # Errors
    /// `must be a whole number` when it does not parse as `T`.
    pub fn number<T: FromStr>(&self) -> Result<T, ConfigError> {
        self.value
            .parse()
            .map_err(|_| self.invalid("must be a whole number"))
    }

    /// The value as seconds with fractions allowed (`1.5`), positive and at most `max`.
    ///
    /// # Errors
    /// `must be a positive number of seconds, at most {max}` otherwise.
    pub fn fractional_seconds(&self, max: Duration) -> Result<Duration, ConfigError> {
        self.value
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero() && *d <= max)
            .ok_or_else(|| {
                self.invalid(format!(
                    "must be a positive number of seconds, at most {}",
                    max.as_secs()
                ))
            })
    }

    /// The value as a path.
    #[must_use]
    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.value)
    }
}

/// The value may be a secret (a token, a salt): `Debug` shows the name only.
impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting")
            .field("name", &self.name)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

/// Typed reads of one lookup function; every error names the setting that was read.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env(..)")
    }
}

impl<'a> Env<'a> {
    /// Reads through `lookup` (a map, a config store); [`process`](Self::process) for the
    /// process environment.
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The raw value, untrimmed, exactly as the lookup returns it (for values that are kept
    /// as secrets and must not be copied twice).
    #[must_use]
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The trimmed value; empty counts as unset.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<String> {
        self.setting(name).map(Setting::into_value)
    }

    /// The setting with its name, when set (trimmed, non-empty).
    #[must_use]
    pub fn setting(&self, name: &str) -> Option<Setting> {
        let raw = (self.lookup)(name)?;
        let value = raw.trim();
        (!value.is_empty()).then(|| Setting {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The first of `names` that is set.
    #[must_use]
    pub fn first<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Option<Setting> {
        names.into_iter().find_map(|name| self.setting(name))
    }

    /// The value, or `is not set` naming the setting.
    ///
    /// # Errors
    /// `CONFIG` when unset or empty.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name.to_owned(), "is not set"))
    }

    /// A flag ([`parse_bool`]); `default` when unset.
    ///
    /// # Errors
    /// `must be true or false` for anything else.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        self.setting(name).map_or(Ok(default), |s| s.flag())
    }

    /// A flag when set.
    ///
    /// # Errors
    /// As [`flag`](Self::flag).
    pub fn flag_opt(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        self.setting(name).map(|s| s.flag()).transpose()
    }

    /// A whole number of type `T`; `default` when unset.
    ///
    /// # Errors
    /// `must be a whole number` when it does not parse as `T`.
    pub fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        self.setting(name).map_or(Ok(default), |s| s.number())
    }

    /// A whole number when set.
    ///
    /// # Errors
    /// As [`number`](Self::number).
    pub fn number_opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, ConfigError> {
        self.setting(name).map(|s| s.number()).transpose()
    }

    /// Whole seconds; `default` when unset.
    ///
    /// # Errors
    /// `must be a whole number` otherwise.
    pub fn seconds(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.number(name, default.as_secs())
            .map(Duration::from_secs)
    }

    /// Whole milliseconds; `default` when unset.
    ///
    /// # Errors
    /// `must be a whole number` otherwise.
    pub fn millis(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.number(name, default_ms).map(Duration::from_millis)
    }

    /// Seconds with fractions allowed (`1.5`), positive and at most `max`, when set.
    ///
    /// # Errors
    /// `must be a positive number of seconds, at most {max}` otherwise.
    pub fn fractional_seconds(
        &self,
        name: &str,
        max: Duration,
    ) -> Result<Option<Duration>, ConfigError> {
        self.setting(name)
            .map(|s| s.fractional_seconds(max))
            .transpose()
    }

    /// A comma-separated list, each item trimmed, empty items dropped; `None` when unset.
    #[must_use]
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }

    /// A path, when set.
    #[must_use]
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.setting(name).map(|s| s.path())
    }
}

impl Env<'static> {
    /// Reads the process environment (a value that is not Unicode counts as unset).
    #[must_use]
    pub fn process() -> Self {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok()
        }
        Self { lookup: &var }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::error::Error as _;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn values_are_trimmed_and_empty_is_unset() {
        let lookup = vars(&[("A", "  x  "), ("B", ""), ("C", "   ")]);
        let env = Env::new(&lookup);
        assert_eq!(env.get("A").as_deref(), Some("x"));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.get("C"), None);
        assert_eq!(env.get("D"), None);
        assert_eq!(env.raw("A").as_deref(), Some("  x  "));
        assert_eq!(
            env.first(["B", "C", "A"])
                .map(|s| s.name().to_owned())
                .as_deref(),
            Some("A")
        );
        let missing = env.required("B").err().map(|e| e.to_string());
        assert_eq!(missing.as_deref(), Some("B is not set [CONFIG]"));
    }

    #[test]
    fn one_boolean_parser_keeps_every_spelling() {
        for on in ["true", "TRUE", "1", "yes", "Yes", "on", " ON "] {
            assert_eq!(parse_bool(on), Some(true), "{on}");
        }
        for off in ["false", "False", "0", "no", "NO", "off", "Off"] {
            assert_eq!(parse_bool(off), Some(false), "{off}");
        }
        for bad in ["", "2", "y", "n", "enabled", "truee", "/etc/ca.pem"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
        let lookup = vars(&[("F", "maybe"), ("T", "on")]);
        let env = Env::new(&lookup);
        assert_eq!(env.flag("T", false).ok(), Some(true));
        assert_eq!(env.flag("UNSET", true).ok(), Some(true));
        assert_eq!(env.flag_opt("UNSET").ok(), Some(None));
        let error = env.flag("F", true).err();
        assert_eq!(error.as_ref().map(ConfigError::setting), Some("F"));
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("F must be true or false [CONFIG]")
        );
    }

    #[test]
    fn numbers_and_durations() {
        let lookup = vars(&[
            ("N", "42"),
            ("NEG", "-1"),
            ("BIG", "300"),
            ("S", "1.5"),
            ("Z", "0"),
            ("HUGE", "1e300"),
        ]);
        let env = Env::new(&lookup);
        assert_eq!(env.number("N", 0_u32).ok(), Some(42));
        assert_eq!(env.number("UNSET", 7_u32).ok(), Some(7));
        assert_eq!(env.number_opt::<u8>("UNSET").ok(), Some(None));
        assert_eq!(
            env.number("NEG", 0_u64)
                .err()
                .map(|e| e.setting().to_owned())
                .as_deref(),
            Some("NEG")
        );
        assert!(env.number::<u8>("BIG", 0).is_err());
        assert_eq!(
            env.seconds("N", Duration::ZERO).ok(),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            env.millis("N", Duration::ZERO).ok(),
            Some(Duration::from_millis(42))
        );
        assert_eq!(
            env.millis("UNSET", Duration::from_secs(2)).ok(),
            Some(Duration::from_millis(2000))
        );
        let max = Duration::from_secs(3600);
        assert_eq!(
            env.fractional_seconds("S", max).ok(),
            Some(Some(Duration::from_millis(1500)))
        );
        assert_eq!(env.fractional_seconds("UNSET", max).ok(), Some(None));
        for bad in ["Z", "NEG", "HUGE"] {
            let error = env.fractional_seconds(bad, max).err();
            assert_eq!(
                error.map(|e| e.to_string()),
                Some(format!(
                    "{bad} must be a positive number of seconds, at most 3600 [CONFIG]"
                ))
            );
        }
    }

    #[test]
    fn lists_and_paths() {
        let lookup = vars(&[("L", " a, b ,,c ,"), ("P", " /etc/ca.pem ")]);
        let env = Env::new(&lookup);
        assert_eq!(
            env.list("L"),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(env.list("UNSET"), None);
        assert_eq!(env.path("P"), Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn errors_carry_the_setting_and_source_but_never_the_value() {
        const CANARY: &str = "s.canary-token-value";
        let lookup = vars(&[("TOKEN_TTL", CANARY), ("FLAG", CANARY)]);
        let env = Env::new(&lookup);
        let errors = [
            env.number::<u64>("TOKEN_TTL", 0).err(),
            env.flag("FLAG", false).err(),
            env.fractional_seconds("TOKEN_TTL", Duration::from_secs(1))
                .err(),
            env.setting("FLAG").map(|s| s.invalid("is wrong")),
        ];
        for error in errors {
            let Some(error) = error else {
                panic!("expected an error");
            };
            assert_eq!(error.code(), "CONFIG");
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(CANARY), "{shown}");
        }
        let setting = env.setting("FLAG");
        assert!(!format!("{setting:?}").contains(CANARY));
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let error = ConfigError::new("CA", "names no readable file").with_source(io);
        assert_eq!(error.reason(), "names no readable file");
        assert_eq!(
            error.source().map(|s| s.to_string()).as_deref(),
            Some("gone")
        );
        let (setting, reason, source) = error.into_parts();
        assert_eq!(
            (&*setting, &*reason, source.is_some()),
            ("CA", "names no readable file", true)
        );
    }

    #[test]
    fn the_process_environment_is_a_lookup() {
        // PATH is set in every test environment; an unset name reads as unset.
        let env = Env::process();
        assert!(env.get("PATH").is_some());
        assert_eq!(env.get("SECRET_CONFIG_SURELY_UNSET_0123"), None);
    }
}
