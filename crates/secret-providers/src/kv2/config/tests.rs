use super::*;
use crate::ProviderError;
use std::collections::HashMap;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// The reason of a `CONFIG` error, or a description of what came instead.
fn reason(result: Result<Kv2Config, ProviderError>) -> String {
    match result {
        Err(error @ ProviderError::Config { .. }) => {
            // The setting is a field, and the message is "<setting> <reason>".
            let setting = error.setting().unwrap_or_default().to_owned();
            let shown = error.to_string();
            let prefix = format!("{}: invalid configuration: {setting} ", error.provider());
            let reason = shown
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(" [CONFIG]"));
            assert!(reason.is_some(), "{shown}");
            format!("{setting} {}", reason.unwrap_or_default())
        }
        Err(other) => format!("not CONFIG: {}", other.code()),
        Ok(_) => "accepted".into(),
    }
}

const BASE: [(&str, &str); 2] = [("OPENBAO_URL", "https://bao:8200"), ("OPENBAO_TOKEN", "t")];

fn with_base<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = BASE.to_vec();
    vars.extend_from_slice(extra);
    vars
}

#[test]
fn reads_prefixed_names_with_vault_fallbacks() -> Result<(), ProviderError> {
    let config = Kv2Config::from_lookup(
        Kv2Flavor::OpenBao,
        lookup(&[
            ("OPENBAO_URL", "https://bao:8200"),
            ("OPENBAO_TOKEN", "s.canary"),
            ("OPENBAO_NAMESPACE", "team"),
            ("VAULT_TIMEOUT", "2.5"),
            ("VAULT_VERIFY_SSL", "false"),
            ("ENVIRONMENT", "dev"),
            ("OPENBAO_RETRY_ATTEMPTS", "5"),
        ]),
    )?;
    assert_eq!(config.address, "https://bao:8200");
    assert_eq!(config.namespace.as_deref(), Some("team"));
    assert_eq!(config.timeout, Duration::from_millis(2500));
    assert!(config.skip_verify);
    assert_eq!(config.retry.attempts, 5);
    assert!(matches!(config.auth, Kv2Auth::Token { .. }));
    assert!(!format!("{config:?}").contains("s.canary"));
    Ok(())
}

#[test]
fn verify_ssl_path_is_a_ca_bundle_and_cacert_wins() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (a, b) = (dir.path().join("a.pem"), dir.path().join("b.pem"));
    std::fs::write(&a, "a")?;
    std::fs::write(&b, "b")?;
    let (a_text, b_text) = (a.display().to_string(), b.display().to_string());
    let config = Kv2Config::from_lookup(
        Kv2Flavor::HashiCorp,
        lookup(&[
            ("VAULT_URL", "https://v"),
            ("VAULT_TOKEN_FILE", "/t"),
            ("VAULT_VERIFY_SSL", &a_text),
        ]),
    )?;
    assert_eq!(config.ca_bundle, Some(a.clone()));
    assert!(!config.skip_verify);
    assert!(matches!(config.auth, Kv2Auth::TokenFile { .. }));
    let both = Kv2Config::from_lookup(
        Kv2Flavor::HashiCorp,
        lookup(&[
            ("VAULT_URL", "https://v"),
            ("VAULT_TOKEN", "t"),
            ("VAULT_VERIFY_SSL", &a_text),
            ("VAULT_CACERT", &b_text),
        ]),
    )?;
    assert_eq!(both.ca_bundle, Some(b));
    Ok(())
}

#[test]
fn vault_names_stand_in_for_openbao_only_without_a_vault_server() -> Result<(), ProviderError> {
    let alone = Kv2Config::from_lookup(
        Kv2Flavor::OpenBao,
        lookup(&with_base(&[
            ("VAULT_NAMESPACE", "ns"),
            ("VAULT_RETRY_ATTEMPTS", "7"),
            ("VAULT_TIMEOUT", "4"),
        ])),
    )?;
    assert_eq!(alone.namespace.as_deref(), Some("ns"));
    assert_eq!(alone.retry.attempts, 7);
    assert_eq!(alone.timeout, Duration::from_secs(4));
    let two_servers = Kv2Config::from_lookup(
        Kv2Flavor::OpenBao,
        lookup(&with_base(&[
            ("VAULT_URL", "https://vault"),
            ("VAULT_NAMESPACE", "ns"),
            ("VAULT_RETRY_ATTEMPTS", "7"),
            ("VAULT_TIMEOUT", "4"),
        ])),
    )?;
    assert_eq!(two_servers.namespace, None);
    assert_eq!(two_servers.retry.attempts, 3);
    // VAULT_TIMEOUT and VAULT_VERIFY_SSL are the original SDK's shared names.
    assert_eq!(two_servers.timeout, Duration::from_secs(4));
    // BAO_ADDR, BAO_TOKEN and BAO_CACERT, as the `bao` CLI reads them: a shell set up for
    // `bao` with VAULT_URL also set must not lose its CA.
    let ca_dir =
        tempfile::tempdir().map_err(|e| ProviderError::config("test", "tempdir", e.to_string()))?;
    let ca = ca_dir.path().join("ca.pem");
    std::fs::write(&ca, "not parsed here")
        .map_err(|e| ProviderError::config("test", "tempdir", e.to_string()))?;
    let ca_text = ca.display().to_string();
    let bao_cli = Kv2Config::from_lookup(
        Kv2Flavor::OpenBao,
        lookup(&[
            ("BAO_ADDR", "https://127.0.0.1:8200"),
            ("BAO_TOKEN", "t"),
            ("BAO_CACERT", &ca_text),
            ("BAO_NAMESPACE", "team"),
            ("VAULT_URL", "https://vault.example"),
        ]),
    )?;
    assert_eq!(bao_cli.ca_bundle.as_deref(), Some(ca.as_path()));
    assert_eq!(bao_cli.namespace.as_deref(), Some("team"));
    let cli = Kv2Config::from_lookup(
        Kv2Flavor::OpenBao,
        lookup(&[("BAO_ADDR", "http://127.0.0.1:8200"), ("BAO_TOKEN", "t")]),
    )?;
    assert_eq!(cli.address, "http://127.0.0.1:8200");
    assert!(matches!(cli.auth, Kv2Auth::Token { .. }));
    Ok(())
}

#[test]
fn skip_verify_needs_a_development_environment_or_an_explicit_allow() {
    let process_environment = std::env::var("ENVIRONMENT").is_ok();
    let refused: &[&[(&str, &str)]] = &[
        &[("ENVIRONMENT", "prd")],
        &[("ENVIRONMENT", "live")],
        &[("ENVIRONMENT", "staging")],
        &[("ENVIRONMENT", "ci")],
        &[("ENVIRONMENT", "production")],
        &[("ENVIRONMENT", "Prod")],
        &[("ENVIRONMENT", "develop")],
        &[
            ("ENVIRONMENT", "prd"),
            ("SECRETS_ALLOW_INSECURE_TLS", "false"),
        ],
    ];
    for extra in refused {
        let mut vars = with_base(&[("VAULT_VERIFY_SSL", "false")]);
        vars.extend_from_slice(extra);
        let got = reason(Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&vars)));
        assert!(
            got.starts_with("VAULT_VERIFY_SSL turns verification off"),
            "{extra:?}: {got}"
        );
    }
    if !process_environment {
        let unset = with_base(&[("OPENBAO_VERIFY_SSL", "no")]);
        let got = reason(Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&unset)));
        assert!(
            got.starts_with("OPENBAO_VERIFY_SSL turns verification off"),
            "{got}"
        );
    }
    let accepted: &[&[(&str, &str)]] = &[
        &[("ENVIRONMENT", "dev")],
        &[("ENVIRONMENT", " Development ")],
        &[("ENVIRONMENT", "TEST")],
        &[("ENVIRONMENT", "local")],
        &[
            ("ENVIRONMENT", "prd"),
            ("SECRETS_ALLOW_INSECURE_TLS", "true"),
        ],
        &[("SECRETS_ALLOW_INSECURE_TLS", "1")],
    ];
    for extra in accepted {
        let mut vars = with_base(&[("VAULT_VERIFY_SSL", "false")]);
        vars.extend_from_slice(extra);
        let config = Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&vars));
        assert!(config.is_ok_and(|c| c.skip_verify), "{extra:?}");
    }
    let typo = with_base(&[
        ("VAULT_VERIFY_SSL", "false"),
        ("SECRETS_ALLOW_INSECURE_TLS", "ture"),
    ]);
    assert_eq!(
        reason(Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&typo))),
        "SECRETS_ALLOW_INSECURE_TLS must be true or false"
    );
    // Programmatic settings follow the same rule (checked again by Kv2Provider::new).
    let code = Kv2Config::new(Kv2Flavor::OpenBao, "https://b", Kv2Auth::token("t"))
        .with_skip_verify(true)
        .with_environment("staging");
    assert!(!code.insecure_tls_allowed());
    assert!(
        code.clone()
            .with_allow_insecure_tls(true)
            .insecure_tls_allowed()
    );
    assert_eq!(
        code.check_insecure_tls().err().map(|e| e.code()),
        Some("CONFIG")
    );
    assert!(code.with_environment("local").insecure_tls_allowed());
}

#[test]
fn approle_secret_id_file() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("secret-id");
    std::fs::write(&file, "canary-secret-id\n")?;
    let path = file.display().to_string();
    let approle = |extra: &[(&'static str, &str)]| {
        let mut vars = vec![
            ("OPENBAO_URL", "http://127.0.0.1:8200"),
            ("OPENBAO_AUTH_METHOD", "approle"),
            ("OPENBAO_ROLE_ID", "r"),
        ];
        vars.extend_from_slice(extra);
        Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&vars))
    };
    let config = approle(&[("OPENBAO_SECRET_ID_FILE", &path)])?;
    match &config.auth {
        Kv2Auth::AppRole {
            secret_id: Some(id),
            ..
        } => {
            use secrecy::ExposeSecret;
            assert_eq!(id.expose_secret(), "canary-secret-id");
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{config:?}").contains("canary"));
    let missing = dir.path().join("missing").display().to_string();
    let got = reason(approle(&[("OPENBAO_SECRET_ID_FILE", &missing)]));
    assert_eq!(got, "OPENBAO_SECRET_ID_FILE is unreadable");
    std::fs::write(&file, " \n")?;
    assert_eq!(
        reason(approle(&[("OPENBAO_SECRET_ID_FILE", &path)])),
        "OPENBAO_SECRET_ID_FILE is empty"
    );
    let dir_path = dir.path().display().to_string();
    assert_eq!(
        reason(approle(&[("OPENBAO_SECRET_ID_FILE", &dir_path)])),
        "OPENBAO_SECRET_ID_FILE is unreadable"
    );
    // bind_secret_id=false roles have no secret ID.
    assert!(matches!(
        approle(&[])?.auth,
        Kv2Auth::AppRole {
            secret_id: None,
            ..
        }
    ));
    Ok(())
}

#[test]
fn approle_and_kubernetes_from_env() -> Result<(), ProviderError> {
    let approle = Kv2Config::from_lookup(
        Kv2Flavor::OpenBao,
        lookup(&[
            ("OPENBAO_ADDR", "http://127.0.0.1:8200"),
            ("OPENBAO_AUTH_METHOD", "AppRole"),
            ("OPENBAO_ROLE_ID", "r"),
            ("OPENBAO_SECRET_ID", "s"),
            ("OPENBAO_AUTH_MOUNT", "/ar/"),
        ]),
    )?;
    assert!(
        matches!(&approle.auth, Kv2Auth::AppRole { mount, secret_id: Some(_), .. } if mount == "ar")
    );
    let k8s = Kv2Config::from_lookup(
        Kv2Flavor::OpenBao,
        lookup(&[
            ("OPENBAO_URL", "http://x"),
            ("OPENBAO_AUTH_METHOD", "kubernetes"),
            ("OPENBAO_KUBERNETES_ROLE", "app"),
        ]),
    )?;
    assert!(
        matches!(&k8s.auth, Kv2Auth::Kubernetes { mount, jwt_path, .. } if mount == "kubernetes" && jwt_path.ends_with("token"))
    );
    Ok(())
}

#[test]
fn tuning_applies_to_given_address_and_auth() -> Result<(), ProviderError> {
    let config = Kv2Config::new(Kv2Flavor::OpenBao, "https://file", Kv2Auth::kubernetes("r"))
        .with_namespace("from-file")
        .tuned_by_lookup(lookup(&[
            ("OPENBAO_URL", "https://env"),
            ("OPENBAO_TOKEN", "t"),
            ("VAULT_TIMEOUT", "2"),
            ("OPENBAO_MAX_BODY_BYTES", "4096"),
        ]))?;
    assert_eq!(config.address, "https://file");
    assert!(matches!(config.auth, Kv2Auth::Kubernetes { .. }));
    assert_eq!(config.namespace.as_deref(), Some("from-file"));
    assert_eq!(config.timeout, Duration::from_secs(2));
    assert_eq!(config.max_body_bytes, 4096);
    Ok(())
}

#[test]
fn invalid_settings_name_the_variable_and_never_the_value() -> Result<(), std::io::Error> {
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "x")?;
    let ca = ca.display().to_string();
    let dir_text = dir.path().display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "OPENBAO_URL is not set"),
        (vec![("OPENBAO_URL", " ")], "OPENBAO_URL is not set"),
        (
            vec![("OPENBAO_URL", "http://x")],
            "OPENBAO_TOKEN (or OPENBAO_TOKEN_FILE) is not set",
        ),
        (
            vec![("OPENBAO_URL", "http://x"), ("OPENBAO_AUTH_METHOD", "ldap")],
            "OPENBAO_AUTH_METHOD must be token, approle or kubernetes",
        ),
        (
            vec![
                ("OPENBAO_URL", "http://x"),
                ("OPENBAO_AUTH_METHOD", "approle"),
            ],
            "OPENBAO_ROLE_ID is not set",
        ),
        (
            vec![
                ("OPENBAO_URL", "http://x"),
                ("OPENBAO_AUTH_METHOD", "kubernetes"),
                ("OPENBAO_KUBERNETES_ROLE", "r"),
                ("OPENBAO_AUTH_MOUNT", "//"),
            ],
            "OPENBAO_AUTH_MOUNT must name a mount",
        ),
        (
            with_base(&[("VAULT_TIMEOUT", "soon-canary")]),
            "VAULT_TIMEOUT must be",
        ),
        (
            with_base(&[("OPENBAO_TIMEOUT", "-1")]),
            "OPENBAO_TIMEOUT must be",
        ),
        (
            with_base(&[("OPENBAO_TIMEOUT", "0")]),
            "OPENBAO_TIMEOUT must be",
        ),
        (
            with_base(&[("OPENBAO_TIMEOUT", "3601")]),
            "OPENBAO_TIMEOUT must be",
        ),
        (
            with_base(&[("OPENBAO_TIMEOUT", "1e300")]),
            "OPENBAO_TIMEOUT must be",
        ),
        (
            with_base(&[("OPENBAO_TIMEOUT", "NaN")]),
            "OPENBAO_TIMEOUT must be",
        ),
        (
            with_base(&[("OPENBAO_TIMEOUT", "inf")]),
            "OPENBAO_TIMEOUT must be",
        ),
        (
            with_base(&[("VAULT_VERIFY_SSL", "flase")]),
            "VAULT_VERIFY_SSL must be true, false or the path of a CA bundle file",
        ),
        (
            with_base(&[("VAULT_VERIFY_SSL", &dir_text)]),
            "VAULT_VERIFY_SSL must be true, false or the path of a CA bundle file",
        ),
        (
            with_base(&[
                ("VAULT_VERIFY_SSL", "false"),
                ("OPENBAO_CACERT", &ca),
                ("ENVIRONMENT", "dev"),
            ]),
            "VAULT_VERIFY_SSL turns verification off, which conflicts with OPENBAO_CACERT",
        ),
        (
            with_base(&[("VAULT_SKIP_VERIFY", "true"), ("VAULT_VERIFY_SSL", "true")]),
            "VAULT_SKIP_VERIFY contradicts VAULT_VERIFY_SSL",
        ),
        (
            with_base(&[("OPENBAO_SKIP_VERIFY", "maybe")]),
            "OPENBAO_SKIP_VERIFY must be true or false",
        ),
        (
            with_base(&[("OPENBAO_SKIP_VERIFY", "true"), ("ENVIRONMENT", "prd")]),
            "OPENBAO_SKIP_VERIFY turns verification off, which is refused",
        ),
        (
            with_base(&[("OPENBAO_CACERT", "/nonexistent/canary.pem")]),
            "OPENBAO_CACERT names no readable file",
        ),
        (
            with_base(&[("OPENBAO_CACERT", &dir_text)]),
            "OPENBAO_CACERT does not name a file",
        ),
        (
            with_base(&[("OPENBAO_CACERT_MODE", "merge")]),
            "OPENBAO_CACERT_MODE must be replace or append",
        ),
        (
            with_base(&[("OPENBAO_CLIENT_CERT", &ca)]),
            "OPENBAO_CLIENT_CERT is set without _CLIENT_KEY",
        ),
        (
            with_base(&[("VAULT_CLIENT_KEY", &ca)]),
            "VAULT_CLIENT_KEY is set without _CLIENT_CERT",
        ),
        (
            with_base(&[
                ("OPENBAO_CLIENT_CERT", &ca),
                ("OPENBAO_CLIENT_KEY", "/nonexistent"),
            ]),
            "OPENBAO_CLIENT_KEY names no readable file",
        ),
        (
            with_base(&[("OPENBAO_RETRY_ATTEMPTS", "x")]),
            "OPENBAO_RETRY_ATTEMPTS must be a whole number",
        ),
        (
            with_base(&[("OPENBAO_RETRY_ATTEMPTS", "0")]),
            "OPENBAO_RETRY_ATTEMPTS must be between 1 and 100",
        ),
        (
            with_base(&[("OPENBAO_RETRY_ATTEMPTS", "101")]),
            "OPENBAO_RETRY_ATTEMPTS must be between 1 and 100",
        ),
        (
            with_base(&[("OPENBAO_RETRY_ATTEMPTS", "18446744073709551616")]),
            "OPENBAO_RETRY_ATTEMPTS must be a whole number",
        ),
        (
            with_base(&[("OPENBAO_RETRY_MAX_DELAY_MS", "18446744073709551615")]),
            "OPENBAO_RETRY_MAX_DELAY_MS must be at most 3600000 (1 h)",
        ),
        (
            with_base(&[("OPENBAO_RETRY_BASE_DELAY_MS", "5000")]),
            "OPENBAO_RETRY_BASE_DELAY_MS must not exceed _RETRY_MAX_DELAY_MS",
        ),
        (
            with_base(&[("VAULT_RETRY_MAX_DELAY_MS", "50")]),
            "VAULT_RETRY_MAX_DELAY_MS must not be below _RETRY_BASE_DELAY_MS",
        ),
        (
            with_base(&[("OPENBAO_MAX_BODY_BYTES", "0")]),
            "OPENBAO_MAX_BODY_BYTES must be between 1 and 1073741824 (1 GiB)",
        ),
        (
            with_base(&[("OPENBAO_MAX_BODY_BYTES", "18446744073709551615")]),
            "OPENBAO_MAX_BODY_BYTES must be between 1 and 1073741824 (1 GiB)",
        ),
        (
            with_base(&[("OPENBAO_ALLOW_INSECURE_HTTP", "yes please")]),
            "OPENBAO_ALLOW_INSECURE_HTTP must be true or false",
        ),
    ];
    for (vars, want) in cases {
        let got = reason(Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&vars)));
        assert!(got.starts_with(want), "{vars:?}: {got}");
        assert!(!got.contains("canary"), "{got}");
    }
    // Empty values count as unset: defaults, not errors.
    let empty = Kv2Config::from_lookup(
        Kv2Flavor::OpenBao,
        lookup(&with_base(&[
            ("VAULT_TIMEOUT", ""),
            ("OPENBAO_RETRY_ATTEMPTS", " "),
        ])),
    );
    assert!(empty.is_ok_and(|c| c.timeout == DEFAULT_TIMEOUT && c.retry.attempts == 3));
    Ok(())
}

#[test]
fn userinfo_is_redacted_wherever_it_sits() {
    for (given, shown) in [
        ("https://u:pw@bao:8200/x", "https://***@bao:8200/x"),
        ("http://pw@127.0.0.1:1", "http://***@127.0.0.1:1"),
        ("https://a@b:c@bao", "https://***@bao"),
        ("bao.internal:8200", "bao.internal:8200"),
        ("https://bao/p@th", "https://bao/p@th"),
        ("u:pw@bao", "***@bao"),
    ] {
        assert_eq!(redact_userinfo(given), shown, "{given}");
    }
}
