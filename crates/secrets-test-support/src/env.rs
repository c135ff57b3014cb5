//! Fixed environments for the `env_lookup` hooks of the clients and configuration readers.

use std::collections::HashMap;

/// A lookup over fixed variables (`name → Some(value)`, anything else `None`), for
/// `env_lookup(…)` in place of the process environment.
///
/// ```
/// let env = secrets_test_support::env_map(&[("VAULT_URL", "http://127.0.0.1:8200")]);
/// assert_eq!(env("VAULT_URL").as_deref(), Some("http://127.0.0.1:8200"));
/// assert_eq!(env("VAULT_TOKEN"), None);
/// ```
pub fn env_map<V: AsRef<str>>(
    vars: &[(&str, V)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_ref().to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}
