//! `docs/audit.md` stays true: every example record parses with `from_ocsf`, there is one of
//! each event type, and the reference vectors in its table are what `AuditKey` computes.

use std::collections::HashSet;

use secret_audit::{AuditKey, EventType, from_ocsf};
use secret_uri::SecretUri;

fn doc() -> std::io::Result<String> {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"))
}

/// The bodies of the fenced blocks of `lang`.
fn blocks<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    let open = format!("```{lang}\n");
    text.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .collect()
}

#[test]
fn every_example_parses_and_every_type_has_one() -> Result<(), Box<dyn std::error::Error>> {
    let text = doc()?;
    let examples = blocks(&text, "json");
    assert!(examples.len() >= EventType::ALL.len());
    let key = AuditKey::new(b"tenant-salt-0001-for-acme-corp-x", Some("2026-q4"))?;
    let references: HashSet<String> = [
        "openbao+kv2://secret/app/api#token?version=3",
        "file://dc-infra/config.json#password",
    ]
    .into_iter()
    .map(|uri| SecretUri::parse(uri).map(|uri| key.resource_ref(&uri).to_string()))
    .collect::<Result<_, _>>()?;
    let mut kinds = HashSet::new();
    for example in examples {
        let event =
            from_ocsf(example.as_bytes()).map_err(|e| format!("{e} in the example:\n{example}"))?;
        kinds.insert(event.kind());
        assert_eq!(event.resource_ref_key_id(), Some("2026-q4"));
        if let Some(reference) = event.resource_ref() {
            assert!(references.contains(reference.as_str()), "{reference}");
        }
    }
    for kind in EventType::ALL {
        assert!(kinds.contains(&kind), "no example of {kind}");
    }
    Ok(())
}

#[test]
fn the_vector_table_is_what_the_key_computes() -> Result<(), Box<dyn std::error::Error>> {
    let text = doc()?;
    let mut rows = 0;
    for line in text.lines() {
        let cells: Vec<&str> = line
            .split('|')
            .map(|cell| cell.trim().trim_matches('`'))
            .collect();
        // | salt | uri | reference |
        if let [_, salt, uri, reference, _] = cells[..]
            && reference.len() == 32
            && uri.contains("://")
        {
            let key = AuditKey::new(salt.as_bytes(), None)?;
            assert_eq!(
                key.resource_ref(&SecretUri::parse(uri)?).as_str(),
                reference
            );
            rows += 1;
        }
    }
    assert_eq!(rows, 3);
    Ok(())
}
