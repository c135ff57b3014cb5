//! Typed reads of the environment (or any lookup), with errors that name the variable.

use std::time::Duration;

use crate::PepError;

/// Typed reads of one lookup function, with errors that name the variable.
pub(super) struct Lookup<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Lookup<'_> {
    /// The trimmed value; empty counts as unset.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn flag(&self, name: &str, default: bool) -> Result<bool, PepError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(_) => Err(PepError::config(format!("{name} must be true or false"))),
        }
    }

    pub(super) fn number<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
    ) -> Result<T, PepError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| PepError::config(format!("{name} must be a whole number"))),
        }
    }

    pub(super) fn seconds(&self, name: &str, default: Duration) -> Result<Duration, PepError> {
        self.number(name, default.as_secs())
            .map(Duration::from_secs)
    }

    pub(super) fn millis(&self, name: &str, default: Duration) -> Result<Duration, PepError> {
        let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.number(name, default_ms).map(Duration::from_millis)
    }
}
