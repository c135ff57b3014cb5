use super::*;

#[cfg(any(feature = "openbao", feature = "hashicorp"))]
mod vault {
    use std::path::Path;
    use std::time::Duration;

    use secrecy::ExposeSecret;
    use secret_providers::{Kv2Auth, Kv2Config, Kv2Flavor};

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn invalid_field(result: Result<Kv2Config, Error>) -> Option<(String, &'static str)> {
        match result {
            Err(Error::BootstrapInvalid { field, reason, .. }) => Some((field, reason)),
            _ => None,
        }
    }

    #[test]
    fn a_file_becomes_the_providers_config() -> Result<(), Error> {
        let config = BootstrapConfig::from_json(
            r#"{
                "vault_addr": " https://bao:8200 ", "auth_method": "Kubernetes",
                "kubernetes_role": " app ", "kubernetes_mount": "/k8s/",
                "service_account_token_path": "/t", "approle_role_id": null,
                "approle_secret_id": null, "approle_mount": "ar", "token": null,
                "token_file": null, "ca_cert_path": "/ca.pem", "skip_verify": false,
                "namespace": "team"
            }"#,
            "t",
        )?;
        assert_eq!(config.address, "https://bao:8200");
        assert!(matches!(
            &config.auth,
            Kv2Auth::Kubernetes { mount, role, jwt_path }
                if mount == "k8s" && role == "app" && jwt_path == Path::new("/t")
        ));
        assert_eq!(config.ca_bundle, Some(PathBuf::from("/ca.pem")));
        assert_eq!(config.namespace.as_deref(), Some("team"));
        assert!(!config.skip_verify);
        Ok(())
    }

    #[test]
    fn defaults() -> Result<(), Error> {
        let token = BootstrapConfig::from_json(r#"{"vault_addr":"http://v","token":" t "}"#, "t")?;
        assert!(matches!(&token.auth, Kv2Auth::Token { token } if token.expose_secret() == "t"));
        assert_eq!(token.flavor, default_flavor());
        assert!(!token.skip_verify && token.namespace.is_none() && token.ca_bundle.is_none());
        let k8s = BootstrapConfig::from_json(
            r#"{"vault_addr":"http://v","auth_method":"kubernetes","kubernetes_role":"r"}"#,
            "t",
        )?;
        assert!(matches!(
            &k8s.auth,
            Kv2Auth::Kubernetes { mount, jwt_path, .. }
                if mount == "kubernetes" && jwt_path == Path::new(DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH)
        ));
        let approle = BootstrapConfig::from_json(
            r#"{"vault_addr":"http://v","auth_method":"approle","approle_role_id":"r","approle_secret_id":"s"}"#,
            "t",
        )?;
        assert!(matches!(&approle.auth, Kv2Auth::AppRole { mount, .. } if mount == "approle"));
        // A blank token with a token file uses the file; a token wins over a file.
        let file = BootstrapConfig::from_json(
            r#"{"vault_addr":"http://v","token":" ","token_file":"/run/token"}"#,
            "t",
        )?;
        assert!(
            matches!(&file.auth, Kv2Auth::TokenFile { path } if path == Path::new("/run/token"))
        );
        let both = BootstrapConfig::from_json(
            r#"{"vault_addr":"http://v","token":"t","token_file":"/run/token"}"#,
            "t",
        )?;
        assert!(matches!(&both.auth, Kv2Auth::Token { .. }));
        Ok(())
    }

    #[test]
    fn every_validation_error_names_its_field() {
        let cases = [
            (r#"{}"#, "vault_addr", "is required"),
            (
                r#"{"vault_addr":"bao:8200","token":"t"}"#,
                "vault_addr",
                "must be an http:// or https:// URL",
            ),
            (
                r#"{"vault_addr":"http://v"}"#,
                "token",
                "(or token_file) is required for auth_method token",
            ),
            (
                r#"{"vault_addr":"http://v","token":"  "}"#,
                "token",
                "(or token_file) is required for auth_method token",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"approle","approle_secret_id":"s"}"#,
                "approle_role_id",
                "is required for auth_method approle",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"approle","approle_role_id":"r"}"#,
                "approle_secret_id",
                "is required for auth_method approle",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"approle","approle_role_id":"r","approle_secret_id":"s","approle_mount":"/"}"#,
                "approle_mount",
                "must not be empty",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"kubernetes"}"#,
                "kubernetes_role",
                "is required for auth_method kubernetes",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"kubernetes","kubernetes_role":"r","service_account_token_path":""}"#,
                "service_account_token_path",
                "must not be empty",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"ldap"}"#,
                "auth_method",
                "must be token, approle or kubernetes",
            ),
            (
                r#"{"vault_addr":"http://v","token":"t","skip_verify":"yes"}"#,
                "skip_verify",
                "must be true or false",
            ),
            (
                r#"{"vault_addr":"http://v","token":12345}"#,
                "token",
                "must be a string",
            ),
            (
                r#"{"vault_addr":"http://v","tokn":"t"}"#,
                "tokn",
                "is not a bootstrap field",
            ),
            (r#"[1]"#, "(document)", "must be a JSON object"),
        ];
        for (json, field, reason) in cases {
            let got = invalid_field(BootstrapConfig::from_json(json, "t"));
            assert_eq!(got, Some((field.to_owned(), reason)), "{json}");
        }
        // A bootstrap built in code passes the same checks.
        let got = invalid_field(
            BootstrapConfig::validate(&BootstrapConfig::approle("http://v", " ", "s"))
                .map(|()| BootstrapConfig::token("http://v", "t")),
        );
        assert_eq!(
            got,
            Some((
                "approle_role_id".to_owned(),
                "is required for auth_method approle"
            ))
        );
    }

    #[test]
    fn errors_never_quote_a_value() {
        for json in [
            r#"{"vault_addr":"http://v","token":987654321}"#,
            r#"{"vault_addr":"http://v","token":"s.canary-987654321","tokn":1}"#,
            r#"{"vault_addr":"ftp://v","token":"s.canary-987654321"}"#,
            r#"{"vault_addr":"http://v","token":"s.canary-987654321",}"#,
        ] {
            let err = BootstrapConfig::from_json(json, "t")
                .err()
                .map(|e| format!("{e} {e:?}"))
                .unwrap_or_default();
            assert!(err.contains("Bootstrap"), "{err}");
            assert!(!err.contains("987654321"), "{err}");
        }
        let config = BootstrapConfig::approle("http://v", "r", "s.canary-987654321");
        assert!(!format!("{config:?}").contains("987654321"));
        let builder = crate::SecretsClient::builder().bootstrap(config);
        let shown = format!("{builder:?}");
        assert!(shown.contains("bootstrap"), "{shown}");
        assert!(!shown.contains("987654321"), "{shown}");
    }

    #[test]
    fn malformed_json_has_line_and_column() {
        let err = BootstrapConfig::from_json(
            "{\n  \"vault_addr\": \"http://v\",\n  \"token\" \"x\"\n}",
            "f.json",
        );
        let at = match err {
            Err(Error::BootstrapParse { line, column, .. }) => Some((line, column)),
            _ => None,
        };
        assert_eq!(at, Some((3, 11)));
    }

    #[cfg(feature = "openbao")]
    #[test]
    fn environment_levels_and_names() -> Result<(), Error> {
        let none = env::from_env_prefix("OPENBAO", &lookup(&[]))?;
        assert!(none.is_none());
        let approle = env::from_env_prefix(
            "VAULT",
            &lookup(&[
                ("VAULT_ADDR", "http://v"),
                ("VAULT_AUTH_METHOD", "approle"),
                ("VAULT_ROLE_ID", "r"),
                ("VAULT_SECRET_ID", "s"),
                ("VAULT_AUTH_MOUNT", "ar"),
                ("VAULT_TIMEOUT", "2"),
            ]),
        )?;
        assert!(approle.is_some_and(|c| c.flavor == Kv2Flavor::HashiCorp
            && c.timeout == Duration::from_secs(2)
            && matches!(&c.auth, Kv2Auth::AppRole { mount, secret_id: Some(_), .. } if mount == "ar")));
        // BAO_ADDR with BAO_TOKEN, as the `bao` CLI reads them.
        let cli = env::from_env_prefix(
            "OPENBAO",
            &lookup(&[("BAO_ADDR", "http://127.0.0.1:8200"), ("BAO_TOKEN", "t")]),
        )?;
        assert!(cli.is_some_and(
            |c| c.address == "http://127.0.0.1:8200" && matches!(c.auth, Kv2Auth::Token { .. })
        ));
        let missing = env::from_env_prefix(
            "OPENBAO",
            &lookup(&[
                ("OPENBAO_URL", "http://v"),
                ("OPENBAO_AUTH_METHOD", "kubernetes"),
            ]),
        )
        .err();
        assert_eq!(
            missing.as_ref().and_then(Error::setting),
            Some("OPENBAO_KUBERNETES_ROLE")
        );
        assert_eq!(
            missing.map(|e| e.to_string()),
            Some("invalid configuration: OPENBAO_KUBERNETES_ROLE is not set [CONFIG]".to_owned())
        );
        Ok(())
    }

    #[test]
    fn a_provider_config_error_keeps_its_setting_and_source() {
        use std::error::Error as _;
        let provider = secret_providers::ProviderError::from_config(
            "openbao",
            secret_config::ConfigError::new("OPENBAO_CACERT", "names no readable file"),
        );
        let error = config_error(provider);
        assert_eq!(error.setting(), Some("OPENBAO_CACERT"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: OPENBAO_CACERT names no readable file [CONFIG]"
        );
        assert!(error.source().is_some());
        let other = config_error(secret_providers::ProviderError::TooLarge {
            provider: "openbao",
            limit: 1,
        });
        assert_eq!(other.setting(), Some("openbao vault"));
    }

    #[cfg(feature = "openbao")]
    #[test]
    fn environment_tuning_applies_to_a_bootstrap_file_and_the_file_wins() -> Result<(), Error> {
        let file = BootstrapConfig::token("https://bao:8200", "t").with_namespace("from-file");
        let config = BootstrapConfig::tuned(
            &file,
            &lookup(&[
                ("OPENBAO_URL", "https://other"),
                ("VAULT_TIMEOUT", "2"),
                ("OPENBAO_NAMESPACE", "from-env"),
                ("OPENBAO_RETRY_ATTEMPTS", "1"),
            ]),
        )?;
        assert_eq!(config.address, "https://bao:8200");
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.retry.attempts, 1);
        assert_eq!(config.namespace.as_deref(), Some("from-file"));
        // Without a namespace of its own the file gets the environment's.
        let config = BootstrapConfig::tuned(
            &BootstrapConfig::token("https://bao:8200", "t"),
            &lookup(&[("OPENBAO_NAMESPACE", "env")]),
        )?;
        assert_eq!(config.namespace.as_deref(), Some("env"));
        // Invalid tuning is CONFIG naming the variable.
        let err = BootstrapConfig::tuned(
            &BootstrapConfig::token("https://bao:8200", "t"),
            &lookup(&[("VAULT_TIMEOUT", "2s")]),
        )
        .err();
        assert_eq!(err.as_ref().and_then(Error::setting), Some("VAULT_TIMEOUT"));
        // An invalid bootstrap is refused before any tuning.
        let err = BootstrapConfig::tuned(&BootstrapConfig::token("bao:8200", "t"), &lookup(&[]));
        assert_eq!(
            invalid_field(err).map(|(field, _)| field).as_deref(),
            Some("vault_addr")
        );
        Ok(())
    }

    #[cfg(feature = "openbao")]
    #[test]
    fn a_bootstrap_skip_verify_follows_the_insecure_tls_rule() {
        let skip = BootstrapConfig::token("https://bao:8200", "t").with_skip_verify(true);
        let field = |result: Result<Kv2Config, Error>| match result {
            Err(Error::BootstrapInvalid { field, .. }) => field,
            Err(other) => format!("other error {}", other.code()),
            Ok(_) => "accepted".into(),
        };
        for environment in ["prd", "live", "staging", "production"] {
            let got = BootstrapConfig::tuned(&skip, &lookup(&[("ENVIRONMENT", environment)]));
            assert_eq!(field(got), "skip_verify", "{environment}");
        }
        assert!(
            BootstrapConfig::tuned(&skip, &lookup(&[("ENVIRONMENT", "dev")]))
                .is_ok_and(|c| c.skip_verify)
        );
        assert!(
            BootstrapConfig::tuned(
                &skip,
                &lookup(&[
                    ("ENVIRONMENT", "prd"),
                    ("SECRETS_ALLOW_INSECURE_TLS", "true")
                ])
            )
            .is_ok()
        );
        // A CA bundle and no verification contradict each other.
        let both = skip.clone().with_ca_bundle("/etc/ca.pem");
        let got = BootstrapConfig::tuned(&both, &lookup(&[("ENVIRONMENT", "dev")]));
        assert_eq!(field(got), "skip_verify");
    }

    #[test]
    fn discovery_lists_what_it_tried() {
        let err = BootstrapConfig::discover_with(
            None,
            &lookup(&[("SECRETS_BOOTSTRAP_PATH", "  ")]),
            Path::new("/nonexistent/bootstrap.json"),
        )
        .err();
        let shown = err.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            shown,
            "no bootstrap configuration found; tried SECRETS_BOOTSTRAP_PATH (not set), \
             /nonexistent/bootstrap.json (not found), OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and \
             VAULT_URL/VAULT_ADDR (not set) [NO_BOOTSTRAP]"
        );
    }

    #[test]
    fn constructors_are_the_providers_config() {
        let config = BootstrapConfig::kubernetes("http://v", "app").with_namespace("team");
        assert!(matches!(
            &config.auth,
            Kv2Auth::Kubernetes { mount, role, .. } if mount == "kubernetes" && role == "app"
        ));
        assert_eq!(config.namespace.as_deref(), Some("team"));
        let approle = BootstrapConfig::approle("http://v", "r", "canary-secret-id");
        assert!(matches!(&approle.auth, Kv2Auth::AppRole { mount, .. } if mount == "approle"));
        assert!(!format!("{approle:?}").contains("canary-secret-id"));
        let file = BootstrapConfig::token_file("http://v", "/run/t");
        assert!(BootstrapConfig::validate(&file).is_ok());
    }
}

#[test]
fn auth_method_names() {
    for method in [
        AuthMethod::Token,
        AuthMethod::AppRole,
        AuthMethod::Kubernetes,
    ] {
        assert_eq!(
            AuthMethod::from_name(&method.as_str().to_uppercase()),
            Some(method)
        );
        assert_eq!(method.to_string(), method.as_str());
    }
    assert_eq!(AuthMethod::from_name("oidc"), None);
}

/// The `values` section: parsed into the zeroizing values `bootstrap://` serves, every wrong
/// type or name refused by its field, no value in any error or `Debug`.
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
mod bootstrap_values {
    use std::fmt::Write as _;
    use std::path::Path;

    use secret_uri::SecretUri;

    use super::*;

    const CANARY: &str = "canary-b00t-5ecret";

    fn parsed(values: &str) -> Result<Option<BootstrapValues>, Error> {
        let json = format!(r#"{{"vault_addr":"http://v","token":"t","values":{values}}}"#);
        file::from_json(&json, "t").map(|(_, values)| values)
    }

    fn read(values: &BootstrapValues, uri: &str) -> Result<Option<String>, &'static str> {
        let uri = SecretUri::parse(uri).map_err(|e| e.code())?;
        values
            .read(&uri)
            .map(|v| match v.expose_str() {
                Some(text) => Some(text.to_owned()),
                None => v.expose_json().map(ToString::to_string),
            })
            .map_err(|e| e.code())
    }

    #[test]
    fn values_are_served_by_name_and_key() -> Result<(), Error> {
        let values = parsed(&format!(
            r#"{{"kafka_password":"{CANARY}","db":{{"user":"app","password":"pw"}},
                "kafka/sasl":"s","Upper.Case-1_x":"u","empty":"","no_fields":{{}}}}"#
        ))?
        .unwrap_or_default();
        assert_eq!(values.len(), 6);
        for (uri, expected) in [
            ("bootstrap://kafka_password", Ok(Some(CANARY.to_owned()))),
            ("BOOTSTRAP://kafka_password", Ok(Some(CANARY.to_owned()))),
            ("bootstrap://db#password", Ok(Some("pw".to_owned()))),
            ("bootstrap://db#user", Ok(Some("app".to_owned()))),
            (
                "bootstrap://db",
                Ok(Some(r#"{"password":"pw","user":"app"}"#.to_owned())),
            ),
            ("bootstrap://kafka/sasl", Ok(Some("s".to_owned()))),
            ("bootstrap://kafka/sasl/", Ok(Some("s".to_owned()))),
            ("bootstrap://Upper.Case-1_x", Ok(Some("u".to_owned()))),
            ("bootstrap://empty", Ok(Some(String::new()))),
            ("bootstrap://no_fields", Ok(Some("{}".to_owned()))),
            // Names are case-sensitive, whole paths: no prefix, no parent.
            ("bootstrap://KAFKA_PASSWORD", Err("NOT_FOUND")),
            ("bootstrap://kafka", Err("NOT_FOUND")),
            ("bootstrap://kafka/sasl/x", Err("NOT_FOUND")),
            ("bootstrap://db/password", Err("NOT_FOUND")),
            ("bootstrap://db#pass", Err("KEY_NOT_FOUND")),
            ("bootstrap://no_fields#x", Err("KEY_NOT_FOUND")),
            ("bootstrap://kafka_password#x", Err("NOT_JSON")),
            (
                "bootstrap://db#password?version=1",
                Err("UNKNOWN_PARAMETER"),
            ),
            ("bootstrap://a/../kafka_password", Err("ILLEGAL_SEGMENT")),
            ("bootstrap://a%2fkafka_password", Err("ILLEGAL_SEGMENT")),
            ("file://kafka_password", Err("UNSUPPORTED_PROVIDER")),
        ] {
            assert_eq!(read(&values, uri), expected, "{uri}");
        }
        // No error names more than the mount.
        let uri = SecretUri::parse("bootstrap://kafka/sasl/x#k")?;
        let shown = values.read(&uri).err().map(|e| format!("{e} {e:?}"));
        assert_eq!(
            shown.as_deref().map(|s| s.split(" NotFound").next()),
            Some(Some(
                "bootstrap: secret not found in mount `kafka` [NOT_FOUND]"
            ))
        );
        Ok(())
    }

    #[test]
    fn no_section_and_null_are_no_values_an_empty_one_is_values() -> Result<(), Error> {
        let none = file::from_json(r#"{"vault_addr":"http://v","token":"t"}"#, "t")?;
        assert!(none.1.is_none());
        assert!(parsed("null")?.is_none());
        let empty = parsed("{}")?;
        assert_eq!(empty.as_ref().map(BootstrapValues::len), Some(0));
        // The public readers check the values and return the settings alone.
        let config = BootstrapConfig::from_json(
            r#"{"vault_addr":"http://v","token":"t","values":{"a":"b"}}"#,
            "t",
        )?;
        assert_eq!(config.address, "http://v");
        Ok(())
    }

    #[test]
    fn every_wrong_value_or_name_is_refused_by_its_field() {
        let cases = [
            (
                format!(r#""{CANARY}""#),
                "values",
                "must be an object of names to values",
            ),
            (
                format!(r#"["{CANARY}"]"#),
                "values",
                "must be an object of names to values",
            ),
            (
                "{\"n\":12345}".to_owned(),
                "values.n",
                "must be a string or an object of strings",
            ),
            (
                "{\"n\":true}".to_owned(),
                "values.n",
                "must be a string or an object of strings",
            ),
            (
                "{\"n\":null}".to_owned(),
                "values.n",
                "must be a string or an object of strings",
            ),
            (
                format!(r#"{{"n":["{CANARY}"]}}"#),
                "values.n",
                "must be a string or an object of strings",
            ),
            (
                format!(r#"{{"ok":"{CANARY}","db":{{"password":"{CANARY}","port":5432}}}}"#),
                "values.db.port",
                "must be a string",
            ),
            (
                format!(r#"{{"db":{{"nested":{{"password":"{CANARY}"}}}}}}"#),
                "values.db.nested",
                "must be a string",
            ),
            (
                format!(r#"{{"db":{{"a\nb":1,"x":"{CANARY}"}}}}"#),
                "values.db.a\\nb",
                "must be a string",
            ),
        ];
        for (section, field, reason) in cases {
            let got = parsed(&section);
            let shown = got
                .as_ref()
                .err()
                .map(|e| format!("{e} {e:?}"))
                .unwrap_or_default();
            assert!(!shown.contains(CANARY), "{shown}");
            assert!(
                matches!(&got, Err(Error::BootstrapInvalid { field: f, reason: r, .. })
                    if f == field && *r == reason),
                "{section}: {shown}"
            );
        }
        let name_reason =
            "is not a bootstrap:// name (path segments of A-Z a-z 0-9 . _ - joined by /)";
        for (name, field) in [
            ("../etc/passwd", "values.../etc/passwd"),
            ("a/../b", "values.a/../b"),
            ("a..b", "values.a..b"),
            (".", "values.."),
            ("./a", "values../a"),
            ("/abs", "values./abs"),
            ("a/", "values.a/"),
            ("a//b", "values.a//b"),
            ("", "values."),
            ("a b", "values.a b"),
            ("a#b", "values.a#b"),
            ("a?version=1", "values.a?version=1"),
            ("a%2fb", "values.a%2fb"),
            ("a*", "values.a*"),
            ("é", "values.é"),
            ("a\\u0000b", "values.a\\0b"),
        ] {
            let got = parsed(&format!(r#"{{"{name}":"{CANARY}"}}"#));
            assert!(
                matches!(&got, Err(Error::BootstrapInvalid { field: f, reason: r, .. })
                    if f == field && *r == name_reason),
                "{name}: {got:?}"
            );
        }
        // A long name is cut in the message.
        let long = "x".repeat(500);
        let got = parsed(&format!(r#"{{"{long} ":"{CANARY}"}}"#));
        assert!(matches!(&got, Err(Error::BootstrapInvalid { field, .. })
            if field.chars().count() == "values.".len() + 65));
    }

    #[test]
    fn other_fields_are_still_checked_first_and_the_file_stays_strict() {
        // An unknown field next to the values: refused by name, before the values.
        let got = BootstrapConfig::from_json(
            r#"{"vault_addr":"http://v","token":"t","value":{"a":"b"}}"#,
            "t",
        );
        assert!(matches!(got, Err(Error::BootstrapInvalid { field, .. }) if field == "value"));
        // A bootstrap without a vault address is invalid, whatever values it holds.
        let got = BootstrapConfig::from_json(r#"{"token":"t","values":{"a":"b"}}"#, "t");
        assert!(matches!(got, Err(Error::BootstrapInvalid { field, .. }) if field == "vault_addr"));
        // Deeply nested values end in the parser's recursion limit, not a stack overflow.
        let deep = format!(
            r#"{{"vault_addr":"http://v","token":"t","values":{{"a":{}"x"{}}}}}"#,
            "{\"k\":".repeat(10_000),
            "}".repeat(10_000)
        );
        let got = BootstrapConfig::from_json(&deep, "t");
        assert_eq!(got.err().map(|e| e.code()), Some("BOOTSTRAP_PARSE"));
    }

    #[test]
    fn a_huge_values_section_is_read_up_to_the_file_cap() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bootstrap.json");
        let mut json = String::from(r#"{"vault_addr":"http://v","token":"t","values":{"#);
        let mut n = 0;
        while json.len() < file::MAX_BOOTSTRAP_BYTES as usize - 64 {
            write!(json, r#""v{n}":"{CANARY}","#)?;
            n += 1;
        }
        json.push_str(r#""last":"x"}}"#);
        std::fs::write(&path, &json)?;
        let loaded =
            LoadedBootstrap::from_file(&path, BootstrapSource::ExplicitPath(path.clone()))?;
        assert_eq!(
            loaded.values.as_ref().map(BootstrapValues::len),
            Some(n + 1)
        );
        assert_eq!(
            format!("{:?}", loaded.values),
            format!("Some(BootstrapValues {{ len: {}, .. }})", n + 1)
        );
        // One byte more than the cap: refused before parsing.
        json.insert_str(json.len() - 2, &" ".repeat(128));
        std::fs::write(&path, &json)?;
        let got = LoadedBootstrap::from_file(&path, BootstrapSource::ExplicitPath(path.clone()));
        assert!(
            matches!(got, Err(Error::BootstrapInvalid { field, reason, .. })
            if field == "(document)" && reason == "is larger than 1 MiB")
        );
        Ok(())
    }

    #[test]
    fn a_fifo_or_a_directory_at_the_path_is_refused_without_waiting()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let fifo = dir.path().join("bootstrap.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()?
                .success()
        );
        for path in [fifo, dir.path().to_owned()] {
            let got =
                LoadedBootstrap::from_file(&path, BootstrapSource::ExplicitPath(path.clone()));
            let code = got.err().map(|e| e.code());
            assert_eq!(code, Some("BOOTSTRAP_IO"), "{}", path.display());
        }
        Ok(())
    }

    #[test]
    fn debug_of_a_loaded_bootstrap_shows_no_value_and_no_name() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|source| Error::BootstrapIo {
            path: "tmp".into(),
            source,
        })?;
        let path = dir.path().join("b.json");
        let json = format!(
            r#"{{"vault_addr":"http://v","token":"{CANARY}-token",
                "values":{{"secret_name_{CANARY}":"{CANARY}","db":{{"password":"{CANARY}"}}}}}}"#
        );
        std::fs::write(&path, json).map_err(|source| Error::BootstrapIo {
            path: path.clone(),
            source,
        })?;
        let loaded = BootstrapConfig::discover_with(Some(&path), &|_| None, Path::new("/none"))?;
        let shown = format!("{loaded:?} {:?}", loaded.clone());
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(shown.contains("BootstrapValues { len: 2, .. }"), "{shown}");
        let provider = BootstrapProvider::new(loaded.values.clone().unwrap_or_default());
        assert!(!format!("{provider:?}").contains(CANARY));
        Ok(())
    }

    #[test]
    fn each_source_says_why_it_has_no_values() {
        let config = BootstrapConfig::token("http://v", "t");
        let given = LoadedBootstrap::given(config.clone());
        assert_eq!(
            given.no_values_note(),
            "the bootstrap was given in code, as settings without values"
        );
        let env = LoadedBootstrap {
            source: BootstrapSource::Environment("OPENBAO"),
            ..given.clone()
        };
        assert!(
            env.no_values_note()
                .starts_with("the bootstrap is the environment (OPENBAO_*)")
        );
        let file = LoadedBootstrap {
            source: BootstrapSource::ExplicitPath("/etc/b.json".into()),
            ..given
        };
        assert_eq!(
            file.no_values_note(),
            "the bootstrap file (explicit path /etc/b.json) has no `values` section"
        );
    }
}
