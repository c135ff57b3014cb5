//! `secrets inject`: templates rendered from file, yaml and real OpenBao secrets; all or
//! nothing; the output's mode and atomic replacement; `--escape json|yaml|shell`; `--dry-run`;
//! no value on stderr; no terminal, no FIFO; the shipped example.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::cli::{Invocation, Run, repo_root, secrets, secrets_bin};
use secrets_test_support::shared_openbao;
use serde_json::json;

/// A value that must reach the output file only.
const CANARY: &str = "canary-5e8c1f0d7a";
/// A path segment that must never be printed (`--dry-run` shows scheme and mount only).
const CANARY_PATH: &str = "path-canary-93b1";
/// A value with everything a format must quote.
const TRICKY: &str = "a \"quoted\" 'single' \\back\\slash\nnew line\ttab $HOME `id` ü";

/// A file root with `demo/db.json`, `demo/api-key`, `demo/tricky`, `demo/app.yaml` and
/// `demo/<CANARY_PATH>`.
fn root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let demo = root.path().join("demo");
    std::fs::create_dir(&demo).unwrap();
    std::fs::write(
        demo.join("db.json"),
        json!({"username": "app", "password": CANARY, "port": 5432, "tls": {"on": true}})
            .to_string(),
    )
    .unwrap();
    std::fs::write(demo.join("api-key"), "key-1\n").unwrap();
    std::fs::write(demo.join("tricky"), TRICKY).unwrap();
    std::fs::write(
        demo.join("app.yaml"),
        "db:\n  password: yaml-pw\n  port: 6543\nservers:\n  - token: srv-0\n",
    )
    .unwrap();
    std::fs::write(demo.join(CANARY_PATH), CANARY).unwrap();
    root
}

fn inject(root: &Path, args: &[&str]) -> Invocation {
    let mut all = vec![
        "inject".to_owned(),
        "--file-root".to_owned(),
        root.to_str().unwrap().to_owned(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    secrets(all)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// `template` rendered with `--escape ESCAPE` on stdout.
fn render(root: &Path, escape: &str, template: &Path) -> Run {
    inject(root, &["--escape", escape, "-i", s(template), "-o", "-"]).run()
}

/// `line` rendered with `--escape shell` into a script, which `sh` then runs (with a `HOME`
/// that does not exist): the shell's run. The rendering must succeed.
fn render_and_source(root: &Path, line: &str) -> Run {
    let template = write(root, "t.sh.tmpl", line);
    let script = root.join("t.sh");
    let run = inject(
        root,
        &["--escape", "shell", "-i", s(&template), "-o", s(&script)],
    )
    .run();
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{line}: {run:?}");
    Invocation::new("sh", [s(&script)])
        .env("HOME", "/nowhere")
        .run()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn the_shipped_template_renders_from_the_example_secrets() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("app.env");
    let run = secrets([
        "inject",
        "--file-root",
        "examples/secrets",
        "-i",
        "examples/templates/app.env.tmpl",
        "-o",
        s(&path),
    ])
    .dir(repo_root())
    .run();
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    let template =
        std::fs::read_to_string(repo_root().join("examples/templates/app.env.tmpl")).unwrap();
    let comments: String = template
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect::<Vec<_>>()
        .join("");
    let mut lines = comments.lines();
    let expected = format!(
        "{}\n{}\nDB_USER=app\nDB_PASSWORD=demo-password-not-a-secret\n\
         API_KEY=demo-api-key-not-a-secret\n{}\nREGION={{{{ .Values.region }}}}\n",
        lines.next().unwrap(),
        lines.next().unwrap(),
        lines.next().unwrap(),
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    assert_eq!(mode(&path), 0o600);
}

/// Ten references across file, yaml and a real OpenBao (both KV v2 schemes on one address),
/// one of them twice, beside text that only looks like a template.
#[test]
fn ten_references_across_three_providers_render_exactly() {
    let Some(bao) = shared_openbao() else {
        return;
    };
    bao.kv_put(
        "secret",
        "inject/app",
        &json!({"token": "bao-token", "port": 8443}),
    )
    .unwrap();
    let root = root();
    let template = write(
        root.path(),
        "app.tmpl",
        "user={{ file://demo/db.json#username }}\n\
         password={{file://demo/db.json#password}}\n\
         port={{ file://demo/db.json#port }}\n\
         key={{ file://demo/api-key }}\n\
         yaml={{ yaml://demo/app.yaml#db.password }} {{ yaml://demo/app.yaml#servers.0.token }}\n\
         yaml_port={{\tyaml://demo/app.yaml#db.port\t}}\n\
         token={{ openbao+kv2://secret/inject/app#token }}\n\
         alias={{ hashicorp+kv2://secret/inject/app#port }}\n\
         object={{ openbao+kv2://secret/inject/app }}\n\
         again={{ file://demo/db.json#password }}\n\
         helm={{ .Values.x }} \\{{ file://demo/db.json#password }}\n",
    );
    let out = root.path().join("out.env");
    let run = inject(root.path(), &["-i", s(&template), "-o", s(&out)])
        .env("OPENBAO_URL", bao.addr())
        .env("OPENBAO_TOKEN", bao.root_token());
    let (plain, traced) = run.run_traced();
    for run in [&plain, &traced] {
        assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
        run.assert_hidden(&[CANARY, "bao-token", bao.root_token()], false);
    }
    assert_eq!(plain.stderr, "");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!(
            "user=app\npassword={CANARY}\nport=5432\nkey=key-1\nyaml=yaml-pw srv-0\n\
             yaml_port=6543\ntoken=bao-token\nalias=8443\n\
             object={{\"port\":8443,\"token\":\"bao-token\"}}\nagain={CANARY}\n\
             helm={{{{ .Values.x }}}} {{{{ file://demo/db.json#password }}}}\n"
        )
    );
    assert_eq!(mode(&out), 0o600);
}

#[test]
fn one_bad_reference_writes_nothing_and_lists_every_failure() {
    let root = root();
    let template = write(
        root.path(),
        "bad.tmpl",
        "a={{ file://demo/db.json#password }}\n\
         b={{ fle://demo/x }}\n\
         c={{ file://demo/* }} {{ file://demo/a?version=2 }}\n\
         d={{ file://demo/api-key\n",
    );
    let fresh = root.path().join("fresh.env");
    let existing = write(root.path(), "existing.env", "old contents\n");
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
    let expected = format!(
        "UNSUPPORTED_ENGINE: {t}:2:6: unsupported engine at byte 0: unknown provider in scheme \
         `fle`\n\
         INVALID_WILDCARD: {t}:3:6: invalid wildcard at byte 12: `*` is not allowed in a path \
         segment\n\
         UNKNOWN_PARAMETER: {t}:3:26: file: unknown query parameter `version` in mount `demo`; \
         this provider serves no parameters\n\
         UNTERMINATED_REFERENCE: {t}:4:3: unterminated reference at line 4, column 3: `{{{{` \
         has no closing `}}}}`\n",
        t = s(&template)
    );
    for out in [&fresh, &existing] {
        let (plain, traced) = inject(root.path(), &["-i", s(&template), "-o", s(out)]).run_traced();
        assert_eq!((plain.code, plain.stdout.as_str()), (1, ""));
        assert_eq!(plain.stderr, expected);
        traced.assert_hidden(&[CANARY], false);
    }
    assert!(!fresh.exists());
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "old contents\n"
    );
    assert_eq!(mode(&existing), 0o640);
    // Nothing left beside them either.
    let mut names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["bad.tmpl", "demo", "existing.env"]);
}

#[test]
fn a_secret_that_cannot_be_resolved_writes_nothing() {
    let root = root();
    let template = write(
        root.path(),
        "t.tmpl",
        "a={{ file://demo/db.json#password }}\nb={{ file://demo/nope }}\n\
         c={{ file://demo/db.json#nokey }}\nd={{ openbao+kv2://secret/app#k }}\n",
    );
    let existing = write(root.path(), "out.env", "old\n");
    let run = inject(root.path(), &["-i", s(&template), "-o", s(&existing)]).run();
    assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{run:?}");
    let t = s(&template);
    let lines: Vec<_> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    assert_eq!(
        lines[0],
        format!("NOT_FOUND: {t}:2:6 (file://demo/…): file: secret not found in mount `demo`")
    );
    assert_eq!(
        lines[1],
        format!(
            "KEY_NOT_FOUND: {t}:3:6 (file://demo/…): file: the secret in mount `demo` has no \
             such key"
        )
    );
    assert!(
        lines[2].starts_with(&format!(
            "NOT_CONFIGURED: {t}:4:6 (openbao+kv2://secret/…): openbao: no vault is configured"
        )),
        "{run:?}"
    );
    run.assert_hidden(&[CANARY], false);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old\n");
}

#[test]
fn the_mode_is_0600_unless_told_otherwise_and_replaces_the_old_one() {
    let root = root();
    let template = write(root.path(), "t.tmpl", "{{ file://demo/api-key }}");
    let out = root.path().join("out");
    for (args, want) in [(&[][..], 0o600), (&["--mode", "0640"][..], 0o640)] {
        let mut all = vec!["-i", s(&template), "-o", s(&out)];
        all.extend(args);
        let run = inject(root.path(), &all).run();
        assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
        assert_eq!(mode(&out), want, "{args:?}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "key-1");
    }
    // Whatever the umask: the mode is exact.
    let run = Invocation::new(
        "sh",
        [
            "-c",
            &format!(
                "umask 077; exec \"$0\" inject --file-root {} -i {} -o {} --mode 644",
                s(root.path()),
                s(&template),
                s(&out)
            ),
            s(secrets_bin()),
        ],
    )
    .run();
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    assert_eq!(mode(&out), 0o644);
}

#[test]
fn escape_json_gives_valid_json_with_the_values() {
    let root = root();
    let template = write(
        root.path(),
        "t.json.tmpl",
        "{\"bare\": {{ file://demo/tricky }}, \"quoted\": \"{{ file://demo/tricky }}\",\n \
         \"port\": {{ file://demo/db.json#port }}, \"tls\": {{ file://demo/db.json#tls }},\n \
         \"tls_text\": \"{{ file://demo/db.json#tls }}\", \"nested\": {\"k\":{{file://demo/api-key}}}}",
    );
    let run = render(root.path(), "json", &template);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    let parsed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        parsed,
        json!({
            "bare": TRICKY,
            "quoted": TRICKY,
            "port": 5432,
            "tls": {"on": true},
            "tls_text": "{\"on\":true}",
            "nested": {"k": "key-1"},
        })
    );
    // Inside a longer string, the value is that string's contents.
    let template = write(
        root.path(),
        "dsn.json.tmpl",
        "{\"dsn\": \"postgres://app:{{ file://demo/tricky }}@db/x\", \"after\": {{ file://demo/api-key }}}",
    );
    let run = render(root.path(), "json", &template);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    let parsed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        parsed,
        json!({"dsn": format!("postgres://app:{TRICKY}@db/x"), "after": "key-1"})
    );
    // Without --escape, the same value breaks the JSON: the escape is what makes it valid.
    let raw = inject(root.path(), &["-i", s(&template), "-o", "-"]).run();
    assert_eq!(raw.code, 0);
    assert!(serde_json::from_str::<serde_json::Value>(&raw.stdout).is_err());
}

#[test]
fn escape_shell_round_trips_through_sh() {
    let root = root();
    for line in [
        "printf %s {{ file://demo/tricky }}",
        "printf %s '{{ file://demo/tricky }}'",
        "printf %s \"{{ file://demo/tricky }}\"",
        "V={{ file://demo/tricky }}; printf %s \"$V\"",
    ] {
        let shell = render_and_source(root.path(), line);
        assert_eq!((shell.code, shell.stdout.as_str()), (0, TRICKY), "{line}");
    }
    // Inside a longer quoted string, after a comment with a stray quote, in a sourced
    // assignment: the value stays data (no command of it runs) and comes back whole.
    let pwned = root.path().join("pwned");
    std::fs::write(
        root.path().join("demo/hostile"),
        format!("'$(touch {p})`touch {p}`'\"$(touch {p})\"\\", p = s(&pwned)),
    )
    .unwrap();
    let hostile = std::fs::read_to_string(root.path().join("demo/hostile")).unwrap();
    for (line, expected) in [
        (
            "# don't\nDSN=\"postgres://app:{{ file://demo/hostile }}@db/x\"; printf %s \"$DSN\"",
            format!("postgres://app:{hostile}@db/x"),
        ),
        (
            "DSN='postgres://app:{{ file://demo/hostile }}@db/x'; printf %s \"$DSN\"",
            format!("postgres://app:{hostile}@db/x"),
        ),
        (
            "printf %s \"a'{{ file://demo/hostile }}'b\"",
            format!("a'{hostile}'b"),
        ),
        (
            "printf %s pre{{ file://demo/hostile }}post",
            format!("pre{hostile}post"),
        ),
    ] {
        let shell = render_and_source(root.path(), line);
        assert_eq!(
            (shell.code, shell.stdout.as_str()),
            (0, expected.as_str()),
            "{line}"
        );
        assert!(!pwned.exists(), "a command in the value ran: {line}");
    }
    // A NUL byte cannot be a shell word's: refused, nothing written.
    std::fs::write(root.path().join("demo/nul"), "a\0b").unwrap();
    let template = write(root.path(), "nul.tmpl", "x {{ file://demo/nul }}");
    let out = root.path().join("nul.sh");
    let run = inject(
        root.path(),
        &["--escape", "shell", "-i", s(&template), "-o", s(&out)],
    )
    .run();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "UNQUOTABLE_VALUE: {}:1:6 (file://demo/…): the value contains a NUL byte, which no \
             shell word can hold\n",
            s(&template)
        )
    );
    assert!(!out.exists());
}

#[test]
fn escape_yaml_keeps_every_value() {
    let root = root();
    let template = write(
        root.path(),
        "t.yaml.tmpl",
        "bare: {{ file://demo/tricky }}\nquoted: \"{{ file://demo/tricky }}\"\n\
         single: '{{ file://demo/api-key }}'\nport: {{ file://demo/db.json#port }}\n\
         tls: {{ file://demo/db.json#tls }}\n",
    );
    let run = render(root.path(), "yaml", &template);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    // YAML's JSON subset: double-quoted scalars with JSON's escapes, flow objects.
    let expected = format!(
        "bare: {b}\nquoted: {b}\nsingle: 'key-1'\nport: 5432\ntls: {{\"on\":true}}\n",
        b = serde_json::to_string(TRICKY).unwrap()
    );
    assert_eq!(run.stdout, expected);
}

/// Every character YAML escapes or refuses raw (C0, DEL, C1, NEL, U+2028/9, BOM, U+FFFE/F)
/// and the ones that end or break quoting.
fn hostile_text() -> String {
    let mut text: String = (0u32..0x100).filter_map(char::from_u32).collect();
    text.push_str("\u{2028}\u{2029}\u{feff}\u{fffe}\u{ffff}\u{1f600}");
    text.push_str("\"\\\" '' \\u0041 # : - [ ] { } , & * ! | > % @ `");
    text
}

/// JSON values (objects, arrays) with hostile strings, inserted as YAML flow values, quoted
/// text and a quoted JSON text: the output parses as YAML to exactly the values. (serde_json
/// writes DEL, C1 and U+2028 raw, and a YAML parser refuses or folds them.)
#[test]
fn escape_yaml_keeps_hostile_json_values_valid_yaml() {
    let root = root();
    let hostile = hostile_text();
    let value = json!({
        "s": hostile,
        "list": [hostile, 1, null, {"in": hostile}],
        hostile.clone(): {"n": hostile},
    });
    std::fs::write(root.path().join("demo/hostile.json"), value.to_string()).unwrap();
    let template = write(
        root.path(),
        "t.yaml.tmpl",
        "object: {{ file://demo/hostile.json }}\n\
         list:\n  - {{ file://demo/hostile.json#list }}\n  \
         - nested: {{ file://demo/hostile.json#list }}\n\
         flow: [{{ file://demo/hostile.json#list }}, {{ file://demo/hostile.json#s }}]\n\
         bare: {{ file://demo/hostile.json#s }}\n\
         quoted: \"{{ file://demo/hostile.json#s }}\"\n\
         as_text: \"{{ file://demo/hostile.json }}\"\n",
    );
    let run = render(root.path(), "yaml", &template);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    let parsed: serde_json::Value = serde_yaml_ng::from_str(&run.stdout).unwrap();
    let list = &value["list"];
    assert_eq!(parsed["object"], value);
    assert_eq!(parsed["list"], json!([list, {"nested": list}]));
    assert_eq!(parsed["flow"], json!([list, hostile]));
    assert_eq!(parsed["bare"], hostile);
    assert_eq!(parsed["quoted"], hostile);
    let as_text = parsed["as_text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(as_text).unwrap(),
        value
    );
}

/// A JSON number the parser keeps only as a float (no `arbitrary_precision`) would be written
/// with other digits than the secret's (`12345678901234567890123` as
/// `1.2345678901234568e22`): refused, in every escape, and nothing is written. Numbers it
/// keeps exactly are written as they were.
#[test]
fn a_number_that_would_lose_digits_is_refused_not_altered() {
    let root = root();
    std::fs::write(
        root.path().join("demo/numbers.json"),
        r#"{"big": 12345678901234567890123, "pi": 3.141592653589793238, "id": 18446744073709551615, "neg": -9223372036854775808, "ok": 1.5}"#,
    )
    .unwrap();
    let template = write(
        root.path(),
        "t.tmpl",
        "a: {{ file://demo/numbers.json#big }}\n\
         b: \"{{ file://demo/numbers.json }}\"\n\
         c: {{ file://demo/numbers.json#pi }}\n\
         d: {{ file://demo/numbers.json#ok }}\n",
    );
    let out = root.path().join("out");
    let t = s(&template);
    let message = "a number in the value has more significant digits than a 64-bit float keeps \
                   (15), or is beyond 64-bit integers, so it would be written with other digits \
                   than the secret's; store it as a string";
    let expected = format!(
        "INEXACT_NUMBER: {t}:1:7 (file://demo/…): {message}\n\
         INEXACT_NUMBER: {t}:2:8 (file://demo/…): {message}\n\
         INEXACT_NUMBER: {t}:3:7 (file://demo/…): {message}\n"
    );
    for escape in [
        &[][..],
        &["--escape", "json"],
        &["--escape", "yaml"],
        &["--escape", "shell"],
    ] {
        let mut args = vec!["-i", t, "-o", s(&out)];
        args.extend(escape);
        let run = inject(root.path(), &args).run();
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (1, "", expected.as_str()),
            "{escape:?}"
        );
        assert!(!out.exists());
    }
    let template = write(
        root.path(),
        "exact.tmpl",
        "{{ file://demo/numbers.json#id }} {{ file://demo/numbers.json#neg }} \
         {{ file://demo/numbers.json#ok }}",
    );
    let run = inject(root.path(), &["-i", s(&template), "-o", "-"]).run();
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "18446744073709551615 -9223372036854775808 1.5", "")
    );
}

/// `\{{{ URI }}}` (an escaped Mustache-style triple brace) is text, as `\{{ URI }}` is:
/// the backslash before the run of braces escapes the reference they open, so the secret is
/// never written where the template's author escaped it.
#[test]
fn a_backslash_before_more_than_two_braces_escapes_the_reference() {
    let root = root();
    let uri = format!("file://demo/{CANARY_PATH}");
    let template = write(
        root.path(),
        "t.tmpl",
        &format!("a=\\{{{{{{ {uri} }}}}}}\nb=\\\\{{{{{{ {uri} }}}}}}\n"),
    );
    let run = inject(root.path(), &["-i", s(&template), "-o", "-"]).run();
    assert_eq!(
        (run.code, run.stdout, run.stderr.as_str()),
        (0, format!("a={{{{{{ {uri} }}}}}}\nb=\\{{{CANARY}}}\n"), ""),
    );
}

#[test]
fn dry_run_lists_redacted_references_and_writes_nothing() {
    let root = root();
    let template = write(
        root.path(),
        "t.tmpl",
        &format!(
            "a={{{{ file://demo/{CANARY_PATH} }}}}\n  b={{{{ openbao+kv2://secret/{CANARY_PATH}#k }}}}\n"
        ),
    );
    let out = root.path().join("out");
    let run = inject(
        root.path(),
        &["--dry-run", "-i", s(&template), "-o", s(&out)],
    )
    // A vault that is never contacted: a dry run resolves nothing.
    .env("OPENBAO_URL", "http://127.0.0.1:9")
    .env("OPENBAO_TOKEN", "t");
    let (plain, traced) = run.run_traced();
    assert_eq!(
        (plain.code, plain.stdout.as_str(), plain.stderr.as_str()),
        (0, "1:6 file://demo/…\n2:8 openbao+kv2://secret/…\n", "")
    );
    for run in [&plain, &traced] {
        run.assert_hidden(&[CANARY, CANARY_PATH], false);
    }
    assert!(!out.exists());
}

#[test]
fn stdin_to_stdout_and_never_to_a_terminal() {
    let root = root();
    let run = inject(root.path(), &["-i", "-"])
        .stdin(b"k={{ file://demo/api-key }}\n")
        .run();
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "k=key-1\n", "")
    );
    // A terminal on stdout (script(1) gives the command one): refused without -o -.
    let template = write(
        root.path(),
        "t.tmpl",
        &format!("{{{{ file://demo/{CANARY_PATH} }}}}"),
    );
    let command = |extra: &str| {
        format!(
            "{} inject --file-root {} -i {} {extra}",
            s(secrets_bin()),
            s(root.path()),
            s(&template)
        )
    };
    let Some(refused) = Invocation::new("script", ["-qec", &command(""), "/dev/null"])
        .run_within(Duration::from_secs(20))
    else {
        panic!("script did not return");
    };
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stdout
            .contains("refusing to write secrets to a terminal"),
        "{refused:?}"
    );
    assert!(!refused.stdout.contains(CANARY), "{refused:?}");
    let asked = Invocation::new("script", ["-qec", &command("-o -"), "/dev/null"])
        .run_within(Duration::from_secs(20))
        .unwrap();
    assert_eq!(asked.code, 0, "{asked:?}");
    assert!(asked.stdout.contains(CANARY), "{asked:?}");
}

#[test]
fn a_fifo_template_is_refused_without_hanging() {
    let root = root();
    let fifo = root.path().join("t.fifo");
    mkfifo(&fifo);
    let run = inject(
        root.path(),
        &["-i", s(&fifo), "-o", s(&root.path().join("out"))],
    )
    .run_within(Duration::from_secs(10))
    .expect("inject of a FIFO did not return");
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (
            2,
            "",
            format!(
                "secrets inject: {}: NOT_A_FILE: the template is not a regular file\n",
                s(&fifo)
            )
            .as_str()
        )
    );
    // A folder for the output that does not exist: nothing is written, exit 2.
    let template = write(root.path(), "t.tmpl", "{{ file://demo/api-key }}");
    let run = inject(
        root.path(),
        &["-i", s(&template), "-o", s(&root.path().join("no/out"))],
    )
    .run();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with("secrets inject: cannot write "),
        "{run:?}"
    );
}

/// `sh -c SCRIPT` with `$0` the `secrets` binary, `$1` the file root, `$2` the template and
/// `$3` `extra`: for outputs that only a shell's redirections set up.
fn inject_in_sh(root: &Path, template: &Path, extra: &Path, script: &str) -> Run {
    Invocation::new(
        "sh",
        [
            "-c",
            script,
            s(secrets_bin()),
            s(root),
            s(template),
            s(extra),
        ],
    )
    .run_within(Duration::from_secs(20))
    .expect("inject did not return")
}

/// `-o /dev/stdout >> app.log`: the path leads, through `/proc/self/fd/1`, to app.log, which
/// must be appended to, never replaced by a new file renamed over it (that lost the log). The
/// same for every other name of a descriptor, and for `/dev/null` and a FIFO.
#[test]
fn a_descriptor_device_or_fifo_output_is_written_in_place_never_renamed_over() {
    let root = root();
    let template = write(root.path(), "t.tmpl", "k={{ file://demo/api-key }}\n");
    let log = root.path().join("app.log");
    for (output, redirect) in [
        ("/dev/stdout", ">>"),
        ("/proc/self/fd/1", ">>"),
        ("/dev/fd/1", ">>"),
        ("/dev/stderr", "2>>"),
        ("/dev/fd/3", "3>>"),
    ] {
        std::fs::write(&log, "earlier line\n").unwrap();
        let inode = std::fs::metadata(&log).unwrap().ino();
        let script = format!(
            "exec \"$0\" inject --file-root \"$1\" -i \"$2\" -o {output} {redirect} \"$3\""
        );
        let run = inject_in_sh(root.path(), &template, &log, &script);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (0, "", ""),
            "{output}"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "earlier line\nk=key-1\n",
            "{output}"
        );
        assert_eq!(std::fs::metadata(&log).unwrap().ino(), inode, "{output}");
    }
    // Written through stdout itself: the shell's offset moves on, so what others write to
    // the same descriptor afterwards follows the output instead of overwriting it.
    let script = "{ echo before; \"$0\" inject --file-root \"$1\" -i \"$2\" -o /dev/stdout; \
                  echo after; } > \"$3\"";
    let run = inject_in_sh(root.path(), &template, &log, script);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "before\nk=key-1\nafter\n"
    );
    // /dev/null takes it and stays a device.
    let run = inject(root.path(), &["-i", s(&template), "-o", "/dev/null"]).run();
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // A FIFO: its reader gets the output, and it stays a FIFO.
    let fifo = root.path().join("out.fifo");
    mkfifo(&fifo);
    let got = root.path().join("got");
    let script = format!(
        "cat {} > \"$3\" & \"$0\" inject --file-root \"$1\" -i \"$2\" -o {}; code=$?; wait; \
         exit $code",
        s(&fifo),
        s(&fifo)
    );
    let run = inject_in_sh(root.path(), &template, &got, &script);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "k=key-1\n");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

/// A symlink is followed to the file it names, which is replaced; a dangling one is refused
/// (nothing is created where a link points) and so is a folder, each with its code and
/// before anything is resolved.
#[test]
fn an_output_symlink_must_lead_to_a_file() {
    let root = root();
    let template = write(root.path(), "t.tmpl", "{{ file://demo/api-key }}");
    let file = write(root.path(), "real.env", "old\n");
    let link = root.path().join("link.env");
    std::os::unix::fs::symlink("real.env", &link).unwrap();
    let run = inject(root.path(), &["-i", s(&template), "-o", s(&link)]).run();
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "key-1");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let dangling = root.path().join("dangling.env");
    std::os::unix::fs::symlink("missing/new.env", &dangling).unwrap();
    std::fs::create_dir(root.path().join("missing")).unwrap();
    let folder = root.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    // A vault that is never contacted: a refused output resolves nothing.
    let vault_template = write(
        root.path(),
        "v.tmpl",
        "{{ file://demo/api-key }} {{ openbao+kv2://secret/app#k }}",
    );
    for (out, message) in [
        (
            &dangling,
            "DANGLING_SYMLINK: it is a symlink to a file that does not exist; nothing is created \
             where a link points",
        ),
        (&folder, "NOT_A_FILE: it is a folder, not a file"),
    ] {
        let run = inject(root.path(), &["-i", s(&vault_template), "-o", s(out)])
            .env("OPENBAO_URL", "http://127.0.0.1:9")
            .env("OPENBAO_TOKEN", "t")
            .run_within(Duration::from_secs(20))
            .expect("inject did not return");
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (
                2,
                "",
                format!("secrets inject: cannot write {}: {message}\n", s(out)).as_str()
            )
        );
    }
    assert!(!root.path().join("missing/new.env").exists());
}
