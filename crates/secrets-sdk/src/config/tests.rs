use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::SecretsClient;

const CANARY: &str = "canary-4f1d9e-value";

#[derive(Debug, Deserialize, Serialize)]
struct Config {
    name: String,
    database: Database,
    #[serde(default)]
    servers: Vec<Server>,
    #[serde(default)]
    extra: BTreeMap<String, SecretRef>,
    optional: Option<SecretRef>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Database {
    port: u16,
    password: SecretRef,
}

#[derive(Debug, Deserialize, Serialize)]
struct Server {
    host: String,
    token: SecretRef,
}

fn client() -> Result<(tempfile::TempDir, SecretsClient), Box<dyn std::error::Error>> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(
        root.path().join("demo/db.json"),
        format!(r#"{{"password":"{CANARY}","user":"app"}}"#),
    )?;
    std::fs::write(root.path().join("demo/token"), "tok-1")?;
    let client = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(crate::uri::AllowedMounts::from_csv("demo"))
        .build()?;
    Ok((root, client))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

const YAML: &str = "\
name: svc
database:
  port: 5432
  password: file://demo/db.json#password
servers:
  - host: a
    token: file://demo/token
  - host: b
    token: FILE://demo/token
extra:
  user: file://demo/db.json#user
optional: ~
";

#[test]
fn every_reference_is_found_with_its_field_path() -> Result<(), Box<dyn std::error::Error>> {
    let config: Config = from_str(YAML, Format::Yaml)?;
    let found: Vec<String> = references_of(&config)?
        .into_iter()
        .map(|(field, r)| format!("{field}={}", r.uri().map(|u| u.as_str()).unwrap_or("?")))
        .collect();
    assert_eq!(
        found,
        [
            "database.password=file://demo/db.json#password",
            "servers[0].token=file://demo/token",
            "servers[1].token=file://demo/token",
            "extra.user=file://demo/db.json#user",
        ]
    );
    Ok(())
}

#[test]
fn the_same_struct_loads_from_yaml_json_and_toml() -> Result<(), Box<dyn std::error::Error>> {
    let (_root, client) = client()?;
    let json = r#"{"name":"svc","database":{"port":5432,"password":"file://demo/db.json#password"},
        "servers":[{"host":"a","token":"file://demo/token"}],"optional":"file://demo/token"}"#;
    let toml = "name = \"svc\"\noptional = \"file://demo/token\"\n[database]\nport = 5432\npassword = \"file://demo/db.json#password\"\n[[servers]]\nhost = \"a\"\ntoken = \"file://demo/token\"\n";
    let rt = runtime();
    for (text, format) in [
        (YAML, Format::Yaml),
        (json, Format::Json),
        (toml, Format::Toml),
    ] {
        let config: Config = rt.block_on(load_str(&client, text, format))?;
        let password = config.database.password.secret().ok_or("resolved")?;
        assert_eq!(password.expose_str(), Some(CANARY), "{format}");
        let token = config.servers[0].token.secret().ok_or("resolved")?;
        assert_eq!(token.expose_str(), Some("tok-1"), "{format}");
        // Neither Debug nor the re-serialization holds a value.
        let printed = format!("{config:?} {}", serde_json::to_string(&config)?);
        assert!(!printed.contains(CANARY), "{format}: {printed}");
        assert!(
            printed.contains("file://demo/db.json#password"),
            "{printed}"
        );
    }
    Ok(())
}

#[test]
fn every_failure_is_reported_at_once_in_field_order() -> Result<(), Box<dyn std::error::Error>> {
    let (_root, client) = client()?;
    let yaml = format!(
        "name: svc\ndatabase:\n  port: 1\n  password: file://demo/missing\nservers:\n  - host: a\n    token: '{CANARY}'\n  - host: b\n    token: file://demo/db.json#nokey\noptional: file://demo/token\n"
    );
    let error = runtime()
        .block_on(load_str::<Config>(&client, &yaml, Format::Yaml))
        .err()
        .ok_or("failures")?;
    assert_eq!(error.code(), "CONFIG_SECRETS");
    let failures: Vec<String> = error.failures().iter().map(ToString::to_string).collect();
    assert_eq!(
        failures,
        [
            "database.password: NOT_FOUND",
            "servers[0].token: ILLEGAL_SEGMENT",
            "servers[1].token: KEY_NOT_FOUND",
        ]
    );
    let printed = format!("{error} {error:?}");
    assert!(!printed.contains(CANARY), "{printed}");
    assert!(!printed.contains("demo/missing"), "no path: {printed}");
    Ok(())
}

#[test]
fn parse_errors_name_the_field_and_line_never_the_value() -> Result<(), Box<dyn std::error::Error>>
{
    let cases = [
        (
            format!("name: svc\ndatabase:\n  port: \"{CANARY}\"\n  password: file://demo/x\n"),
            Format::Yaml,
            "database.port",
        ),
        (
            format!(
                r#"{{"name":"svc","database":{{"port":"{CANARY}","password":"file://demo/x"}}}}"#
            ),
            Format::Json,
            "database.port",
        ),
        (
            format!(
                "name = \"svc\"\n[database]\nport = \"{CANARY}\"\npassword = \"file://demo/x\"\n"
            ),
            Format::Toml,
            "database.port",
        ),
        (
            format!("name: svc\ndatabase:\n  {CANARY}: 1\n  port: 1\n  password: file://demo/x\n"),
            Format::Yaml,
            "database",
        ),
        (format!("name = {CANARY}\n"), Format::Toml, "."),
        (format!("{{\"name\": \"{CANARY}\" ,, }}"), Format::Json, "."),
        (format!("name: [{CANARY}\n"), Format::Yaml, "name"),
        (format!("name: svc\n\t{CANARY}: [\n"), Format::Yaml, "name"),
        (
            format!("name: svc\ndatabase:\n  port: 1\n  password: {{ a: {CANARY} }}\n"),
            Format::Yaml,
            "database.password",
        ),
        (
            format!("name = \"svc\"\n[database]\nport = 1\npassword = 12345\n# {CANARY}\n"),
            Format::Toml,
            "database.password",
        ),
    ];
    for (text, format, field) in cases {
        let error = from_str::<Config>(&text, format)
            .err()
            .ok_or_else(|| format!("an error for {text}"))?;
        let printed = format!("{error} {error:?}");
        assert_eq!(error.code(), "CONFIG_PARSE", "{printed}");
        assert!(!printed.contains(CANARY), "{format}: {printed}");
        assert!(!printed.contains("12345"), "{format}: {printed}");
        let LoadError::Parse {
            field: got, line, ..
        } = &error
        else {
            return Err(format!("not a parse error: {printed}").into());
        };
        assert_eq!(got, field, "{printed}");
        assert!(line.is_some(), "a line: {printed}");
    }
    Ok(())
}

#[test]
fn a_reference_outside_the_loader_fails_like_serde_with_only_the_code() {
    let error = serde_json::from_str::<SecretRef>(&format!("\"{CANARY}\"")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid secret URI [ILLEGAL_SEGMENT]")
    );
    assert!(!error.to_string().contains(CANARY));
    let error = serde_json::from_str::<SecretRef>("918273645").unwrap_err();
    assert!(!error.to_string().contains("918273645"), "{error}");
    let error = serde_json::from_str::<Database>(r#"{"port":1,"password":"fle://x/y"}"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("UNSUPPORTED_ENGINE"), "{error}");
    assert!(!error.contains("fle"), "{error}");
}

#[test]
fn files_are_read_by_extension_capped_and_never_waited_on() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    let yml = dir.path().join("app.YML");
    std::fs::write(&yml, YAML)?;
    let config: Config = read(&yml)?;
    assert_eq!(config.name, "svc");

    let ini = dir.path().join("app.ini");
    std::fs::write(&ini, YAML)?;
    assert_eq!(
        read::<Config>(&ini).err().map(|e| e.code()),
        Some("CONFIG_PARSE")
    );

    let missing = read::<Config>(&dir.path().join("none.yaml"))
        .err()
        .ok_or("missing")?;
    assert_eq!(missing.code(), "CONFIG_IO");

    let fifo = dir.path().join("fifo.yaml");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    assert!(status.success());
    let error = read::<Config>(&fifo).err().ok_or("a FIFO")?;
    assert_eq!(error.code(), "CONFIG_IO");
    assert!(error.to_string().contains("not a regular file"), "{error}");

    let huge = dir.path().join("huge.json");
    let file = std::fs::File::create(&huge)?;
    file.set_len(MAX_CONFIG_BYTES + 1)?;
    let error = read::<Config>(&huge).err().ok_or("too large")?;
    assert!(error.to_string().contains("larger than 16 MiB"), "{error}");
    Ok(())
}

#[test]
fn a_struct_deserialized_by_the_service_is_resolved_in_place()
-> Result<(), Box<dyn std::error::Error>> {
    let (_root, client) = client()?;
    let config: Config = serde_yaml_ng::from_str(YAML)?;
    assert!(!config.database.password.is_resolved());
    runtime().block_on(resolve(&client, &config))?;
    assert!(config.database.password.is_resolved());
    assert_eq!(
        config.extra["user"]
            .secret()
            .and_then(|s| s.expose_str().map(str::to_owned)),
        Some("app".to_owned())
    );
    assert!(format!("{:?}", config.database.password).ends_with(", resolved)"));
    Ok(())
}

#[test]
fn a_watched_reference_follows_its_file() -> Result<(), Box<dyn std::error::Error>> {
    let (root, client) = client()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let config: Config = load_str(&client, YAML, Format::Yaml).await?;
        let mut watch = watch(&client, &config).await?;
        assert_eq!(watch.len(), 4);
        std::fs::write(root.path().join("demo/token"), "tok-2")?;
        // Both fields naming the file hear of it (and only they do).
        let mut changed = Vec::new();
        while changed.len() < 2 {
            let field = tokio::time::timeout(std::time::Duration::from_secs(20), watch.changed())
                .await?
                .ok_or("a change")?;
            changed.push(field);
        }
        changed.sort();
        assert_eq!(changed, ["servers[0].token", "servers[1].token"]);
        for server in &config.servers {
            let token = server.token.secret().ok_or("value")?;
            assert_eq!(token.expose_str(), Some("tok-2"));
        }
        let password = config.database.password.secret().ok_or("value")?;
        assert_eq!(password.expose_str(), Some(CANARY));
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    client.close();
    Ok(())
}

#[test]
fn hostile_documents_are_errors_not_crashes() {
    let deep = 200_000;
    let cases = [
        ("[".repeat(deep), Format::Json),
        (format!("name: {}", "[".repeat(deep)), Format::Yaml),
        (format!("name = {}", "[".repeat(deep)), Format::Toml),
        (format!("name = {}", "{a=".repeat(deep)), Format::Toml),
        (
            // The billion laughs: aliases expanding without bound.
            "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nname: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n".to_owned(),
            Format::Yaml,
        ),
        ("---\nname: a\n---\nname: b\n".to_owned(), Format::Yaml),
        ("\u{feff}{\"name\": 1}".to_owned(), Format::Json),
    ];
    for (text, format) in cases {
        let error = from_str::<Config>(&text, format).err();
        assert_eq!(
            error.as_ref().map(LoadError::code),
            Some("CONFIG_PARSE"),
            "{format}: {error:?}"
        );
    }
}

/// A field that is either a reference or a plain value: serde tries the variants in order.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum Credential {
    Ref(SecretRef),
    Plain(String),
}

#[derive(Debug, Deserialize, Serialize)]
struct Either {
    a: Credential,
    b: Credential,
    c: Credential,
    password: Option<SecretRef>,
    token: Option<SecretRef>,
    #[serde(flatten)]
    tls: Option<Tls>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Tls {
    tls_key: SecretRef,
}

#[test]
fn an_untagged_enum_picks_a_reference_only_for_a_uri() -> Result<(), Box<dyn std::error::Error>> {
    let (_root, client) = client()?;
    let rt = runtime();
    let yaml = "a: file://demo/token\nb: plain-text\nc: fle://demo/typo\n";
    let config: Either = rt.block_on(load_str(&client, yaml, Format::Yaml))?;
    let Credential::Ref(a) = &config.a else {
        return Err(format!("a URI is a reference: {config:?}").into());
    };
    assert_eq!(
        a.secret().and_then(|s| s.expose_str().map(str::to_owned)),
        Some("tok-1".to_owned())
    );
    // Not a URI: the next variant, as serde would pick it anywhere else.
    assert!(matches!(&config.b, Credential::Plain(p) if p == "plain-text"));
    assert!(matches!(&config.c, Credential::Plain(p) if p == "fle://demo/typo"));
    assert!(config.tls.is_none());

    // Every bad reference of a plain field is still reported at once, and only those.
    let yaml = format!(
        "a: plain\nb: also plain\nc: file://demo/token\npassword: '{CANARY}'\ntoken: fle://demo/x\n"
    );
    for format in [Format::Yaml, Format::Json] {
        let text = match format {
            Format::Json => {
                let value: serde_json::Value = serde_yaml_ng::from_str(&yaml)?;
                value.to_string()
            }
            _ => yaml.clone(),
        };
        let error = rt
            .block_on(load_str::<Either>(&client, &text, format))
            .err()
            .ok_or("failures")?;
        let failures: Vec<String> = error.failures().iter().map(ToString::to_string).collect();
        assert_eq!(
            failures,
            ["password: ILLEGAL_SEGMENT", "token: UNSUPPORTED_ENGINE"],
            "{format}: {error}"
        );
        assert!(!format!("{error:?}").contains(CANARY));
    }

    // A flattened `Option` swallows its fields' errors (serde makes it `None`): a bad URI there
    // is still reported, not dropped.
    let yaml = "a: x\nb: y\nc: z\ntls_key: fle://demo/key\n";
    let error = from_str::<Either>(yaml, Format::Yaml)
        .err()
        .ok_or("a bad flattened reference")?;
    let failures: Vec<String> = error.failures().iter().map(ToString::to_string).collect();
    assert_eq!(failures, ["tls_key: UNSUPPORTED_ENGINE"], "{error}");
    let config: Either = from_str("a: x\nb: y\nc: z\ntls_key: file://demo/key\n", Format::Yaml)?;
    assert!(config.tls.is_some());
    Ok(())
}

/// References the walk cannot see: skipped when serializing, or serialized through another
/// serializer.
#[derive(Debug, Deserialize, Serialize)]
struct Hidden {
    shown: SecretRef,
    #[serde(default, skip_serializing)]
    #[expect(
        dead_code,
        reason = "nothing reads it: the walk must not see it either"
    )]
    skipped: Option<SecretRef>,
    #[serde(serialize_with = "through_json")]
    opaque: SecretRef,
    #[serde(default)]
    list: Vec<SecretRef>,
}

fn through_json<S: serde::Serializer>(reference: &SecretRef, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(reference)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

#[test]
fn a_reference_the_walk_cannot_reach_is_an_error_naming_its_field()
-> Result<(), Box<dyn std::error::Error>> {
    let (_root, client) = client()?;
    let rt = runtime();
    let yaml = "shown: file://demo/token\nskipped: file://demo/token\nopaque: file://demo/db.json#user\nlist: [file://demo/token]\n";
    let error = rt
        .block_on(load_str::<Hidden>(&client, yaml, Format::Yaml))
        .err()
        .ok_or("unreachable references")?;
    assert_eq!(error.code(), "CONFIG_UNREACHABLE_REFERENCE");
    let LoadError::Unreachable { count, fields } = &error else {
        return Err(format!("{error:?}").into());
    };
    assert_eq!(
        (*count, fields.as_slice()),
        (2, ["skipped", "opaque"].map(String::from).as_slice())
    );
    let shown = error.to_string();
    assert!(shown.contains("2 secret references"), "{shown}");
    assert!(!shown.contains("demo"), "no URI: {shown}");

    // An invalid URI where the walk cannot see it does not pass either.
    let json = format!(
        r#"{{"shown":"file://demo/token","opaque":"file://demo/token","skipped":"{CANARY}"}}"#
    );
    let toml = format!(
        "shown = \"file://demo/token\"\nopaque = \"file://demo/token\"\nskipped = \"{CANARY}\"\n"
    );
    for (text, format) in [(json, Format::Json), (toml, Format::Toml)] {
        let error = from_str::<Hidden>(&text, format).err().ok_or("an error")?;
        assert_eq!(
            error.code(),
            "CONFIG_UNREACHABLE_REFERENCE",
            "{format}: {error}"
        );
        let LoadError::Unreachable { fields, .. } = &error else {
            return Err(format!("{error:?}").into());
        };
        assert_eq!(fields, &["opaque", "skipped"], "{format}");
        assert!(!format!("{error} {error:?}").contains(CANARY));
    }
    Ok(())
}

/// A port read from a string by a `Deserialize` of its own, whose error quotes the text.
#[derive(Debug, Serialize)]
struct Port(u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map(Port)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a port number")))
    }
}

#[derive(Debug, Deserialize, Serialize)]
struct Listen {
    name: String,
    port: Port,
}

#[test]
fn a_custom_deserialize_error_is_a_schema_error_not_a_syntax_error()
-> Result<(), Box<dyn std::error::Error>> {
    let cases = [
        (format!("name: a\nport: '{CANARY}'\n"), Format::Yaml, 2),
        (
            format!("{{\"name\": \"a\",\n\"port\": \"{CANARY}\"}}"),
            Format::Json,
            2,
        ),
        (
            format!("name = \"a\"\nport = \"{CANARY}\"\n"),
            Format::Toml,
            2,
        ),
    ];
    for (text, format, line) in cases {
        let error = from_str::<Listen>(&text, format)
            .err()
            .ok_or("a custom error")?;
        let printed = format!("{error} {error:?}");
        assert!(!printed.contains(CANARY), "{printed}");
        let LoadError::Parse { field, reason, .. } = &error else {
            return Err(printed.into());
        };
        assert_eq!(field, "port", "{printed}");
        assert_eq!(reason, parse::CUSTOM, "{format}: {printed}");
        if format != Format::Yaml {
            // serde_yaml_ng gives a custom error no location of its own.
            assert!(printed.contains(&format!("(line {line},")), "{printed}");
        }
    }
    // Text that is not valid in its format is still said to be so.
    for (text, format) in [
        (format!("name: a\nport: \"{CANARY}\n"), Format::Yaml),
        (
            format!("{{\"name\": \"a\", \"port\": {CANARY}}}"),
            Format::Json,
        ),
        (format!("name = \"a\"\nport = {CANARY}\n"), Format::Toml),
    ] {
        let error = from_str::<Listen>(&text, format)
            .err()
            .ok_or("a syntax error")?;
        let LoadError::Parse { reason, .. } = &error else {
            return Err(format!("{error:?}").into());
        };
        assert_eq!(reason, &format!("not valid {format}"), "{error}");
    }
    Ok(())
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Step {
    Pair(u8, SecretRef),
    Keyed { key: SecretRef },
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Backend {
    Vault { port: Port16 },
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Port16 {
    number: u16,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Flat {
    x: u8,
    #[serde(flatten)]
    inner: Port16,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct Shapes {
    lists: Vec<Vec<SecretRef>>,
    names: BTreeMap<String, SecretRef>,
    pairs: BTreeMap<Vec<String>, SecretRef>,
    numbered: BTreeMap<u32, SecretRef>,
    steps: Vec<Step>,
    backend: Option<Backend>,
    flat: Option<Flat>,
}

#[test]
fn parse_and_secrets_errors_spell_a_field_the_same_way() -> Result<(), Box<dyn std::error::Error>> {
    let cases = [
        (
            "lists: [[file://demo/a], [file://demo/b, X]]",
            "lists[1][1]",
        ),
        ("names: {db.primary: X}", "names.db.primary"),
        ("names: {'': X}", "names.\"\""),
        ("pairs: {? [a, b] : X}", "pairs.?"),
        ("numbered: {7: X}", "numbered.7"),
        (
            "steps: [!keyed {key: file://demo/a}, !pair [1, X]]",
            "steps[1].pair[1]",
        ),
        ("steps: [!keyed {key: X}]", "steps[0].keyed.key"),
    ];
    for (text, field) in cases {
        let parse = from_str::<Shapes>(&text.replace('X', "5"), Format::Yaml)
            .err()
            .ok_or("a parse error")?;
        let LoadError::Parse { field: parsed, .. } = &parse else {
            return Err(format!("{parse:?}").into());
        };
        let secrets = from_str::<Shapes>(&text.replace('X', "fle://demo/x"), Format::Yaml)
            .err()
            .ok_or("a reference error")?;
        let failed = secrets.failures().first().map(|f| f.field.as_str());
        assert_eq!(
            (parsed.as_str(), failed),
            (field, Some(field)),
            "{text}: {parse} / {secrets}"
        );
    }
    // An unknown field read from serde's buffered copy (an internally tagged enum, a flattened
    // struct) keeps the path up to the enum's or struct's field; only a key the format read
    // itself is dropped.
    for (text, field) in [
        (
            "backend: {kind: vault, port: {number: 1, hunter2: 1}}",
            "backend",
        ),
        ("flat: {x: 1, number: 2, hunter2: 3}", "flat"),
    ] {
        let error = from_str::<Shapes>(text, Format::Yaml)
            .err()
            .ok_or("an unknown field")?;
        let printed = error.to_string();
        let LoadError::Parse { field: got, .. } = &error else {
            return Err(printed.into());
        };
        assert_eq!(got, field, "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
    Ok(())
}

#[test]
fn hostile_map_keys_are_escaped_and_capped_in_every_path() -> Result<(), Box<dyn std::error::Error>>
{
    let long = "k".repeat(10 * 1024);
    let keys = [
        ("line\nbreak", "names.line\\u{a}break".to_owned()),
        ("red\u{1b}[31m\r", "names.red\\u{1b}[31m\\u{d}".to_owned()),
        ("\u{202e}gpj.exe", "names.\\u{202e}gpj.exe".to_owned()),
        ("back\\slash", "names.back\\\\slash".to_owned()),
        (long.as_str(), format!("names.{}…", "k".repeat(64))),
    ];
    for (key, spelled) in &keys {
        let key_json = serde_json::to_string(key)?;
        for (value, code) in [
            ("\"fle://demo/x\"", "CONFIG_SECRETS"),
            ("5", "CONFIG_PARSE"),
        ] {
            let text = format!("{{\"names\": {{{key_json}: {value}}}}}");
            let error = from_str::<Shapes>(&text, Format::Json)
                .err()
                .ok_or("an error")?;
            assert_eq!(error.code(), code);
            let field = match &error {
                LoadError::Parse { field, .. } => field.clone(),
                other => other
                    .failures()
                    .first()
                    .map(|f| f.field.clone())
                    .ok_or("a failure")?,
            };
            assert_eq!(&field, spelled);
            let shown = error.to_string();
            assert!(
                !shown.contains(['\n', '\r', '\u{1b}', '\u{202e}']),
                "{shown:?}"
            );
            assert!(shown.len() < 400, "{} bytes", shown.len());
        }
    }
    Ok(())
}

#[test]
fn a_watch_ends_as_soon_as_its_configuration_is_dropped() -> Result<(), Box<dyn std::error::Error>>
{
    let (_root, client) = client()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let config: Config = load_str(&client, YAML, Format::Yaml).await?;
        let mut watch = watch(&client, &config).await?;
        assert_eq!(watch.len(), 4);
        drop(config);
        // No secret changes: every watch ends with its reference, so `changed` says so.
        let ended =
            tokio::time::timeout(std::time::Duration::from_secs(5), watch.changed()).await?;
        assert_eq!(ended, None);
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    client.close();
    Ok(())
}
