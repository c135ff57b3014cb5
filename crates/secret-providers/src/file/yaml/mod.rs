//! `yaml://`: a YAML file under the file provider's root (same mount guard, confinement and
//! size cap), whose `#a.b.0.c` picks a nested value by a dotted path (a number indexes a
//! list). A string leaf is text; any other leaf (a number, a list, a map) is JSON.

use serde_json::Value;
use zeroize::Zeroizing;

use crate::value::wipe;
use crate::{ProviderError, SecretValue};

const NAME: &str = "yaml";

mod flow;

pub use flow::yaml_flow_within_budget;

/// Parses `bytes` as one YAML document (libyaml's parser with serde_yaml's alias and
/// recursion limits: an alias bomb is an error, not a gigabyte) and picks `key`'s dotted
/// path from it.
pub(super) fn decode(
    bytes: &Zeroizing<Vec<u8>>,
    key: Option<&str>,
    mount: &str,
) -> Result<SecretValue, ProviderError> {
    let malformed = || ProviderError::MalformedResponse {
        provider: NAME,
        status: 200,
        reason: "the file is not one YAML document of plain data",
    };
    if !yaml_flow_within_budget(bytes) {
        return Err(ProviderError::MalformedResponse {
            provider: NAME,
            status: 200,
            reason: "the file has too many flow collections ([…], {…}) for its size",
        });
    }
    let mut document: Value = serde_yaml_ng::from_slice(bytes).map_err(|_| malformed())?;
    let Some(key) = key else {
        return Ok(SecretValue::from_json(document));
    };
    let picked = take_at(&mut document, key);
    // The rest of the document is wiped.
    wipe(&mut document);
    picked
        .map(SecretValue::from_json)
        .ok_or_else(|| ProviderError::KeyNotFound {
            provider: NAME,
            mount: mount.to_owned(),
        })
}

/// Takes the value at `path` (segments split on `.`; a number indexes a list) out of
/// `document`, a `null` leaf included; `None` when there is none.
fn take_at(document: &mut Value, path: &str) -> Option<Value> {
    let mut here = document;
    for segment in path.split('.') {
        here = match here {
            Value::Object(map) => map.get_mut(segment)?,
            Value::Array(items) => items.get_mut(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(std::mem::take(here))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
db:
  password: s3cr3t
  port: 5432
  empty: null
servers:
  - name: a
    password: pa
  - name: b
    password: pb
flags: [1, 2]
";

    fn read(text: &str, key: Option<&str>) -> Result<SecretValue, ProviderError> {
        decode(&Zeroizing::new(text.as_bytes().to_vec()), key, "config")
    }

    fn code(result: Result<SecretValue, ProviderError>) -> &'static str {
        result.err().map_or("OK", |e| e.code())
    }

    #[test]
    fn dotted_paths_and_list_indexes() -> Result<(), ProviderError> {
        assert_eq!(
            read(CONFIG, Some("db.password"))?.expose_str(),
            Some("s3cr3t")
        );
        assert_eq!(
            read(CONFIG, Some("servers.1.password"))?.expose_str(),
            Some("pb")
        );
        // Non-string leaves come back as JSON.
        assert_eq!(
            read(CONFIG, Some("db.port"))?.expose_json(),
            Some(&serde_json::json!(5432))
        );
        assert_eq!(
            read(CONFIG, Some("flags"))?.expose_json(),
            Some(&serde_json::json!([1, 2]))
        );
        assert_eq!(
            read(CONFIG, Some("db.empty"))?.expose_json(),
            Some(&Value::Null)
        );
        let whole = read(CONFIG, None)?;
        assert_eq!(
            whole.expose_json().map(|v| v["db"]["port"].clone()),
            Some(serde_json::json!(5432))
        );
        Ok(())
    }

    #[test]
    fn missing_keys_and_odd_documents() {
        for key in [
            "db.nope",
            "servers.2.password",
            "servers.x",
            "db.password.deeper",
            "",
            "db.",
        ] {
            assert_eq!(code(read(CONFIG, Some(key))), "KEY_NOT_FOUND", "{key}");
        }
        for text in ["a: [1, 2", "\t- x", "a: 1\n---\nb: 2\n"] {
            assert_eq!(code(read(text, None)), "MALFORMED_RESPONSE", "{text:?}");
        }
        // A scalar document is text.
        assert_eq!(
            read("just-a-token\n", None)
                .ok()
                .and_then(|v| v.expose_str().map(str::to_owned)),
            Some("just-a-token".to_owned())
        );
    }

    #[test]
    fn an_alias_bomb_is_refused_not_expanded() -> Result<(), ProviderError> {
        // An alias as such is plain YAML.
        assert_eq!(read("a: &x s\nb: *x\n", Some("b"))?.expose_str(), Some("s"));
        // Nine levels of nine aliases: 9^9 strings if expanded.
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let (prev, next) = (pair[0], pair[1]);
            text.push_str(&format!(
                "{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        assert_eq!(code(read(&text, Some("i"))), "MALFORMED_RESPONSE");
        Ok(())
    }
}
