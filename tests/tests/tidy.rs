//! Tidy tests in rust-analyzer's style: the workspace's shape, checked by `cargo test`.
//!
//! - Dependencies between workspace crates follow the layers of `docs/ARCHITECTURE.md`
//!   (read from `cargo metadata --no-deps`).
//! - Only `secret-http` depends directly on `rustls`, `hyper-rustls` or `webpki-roots`.
//! - Every crate root starts with `//!` docs holding an example, and forbids `unsafe`.
//!
//! Allow-lists name today's known exceptions; an entry that is no longer needed fails the test,
//! so that the lists only shrink.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use secrets_integration_tests::{Json, display_path, workspace_root};

/// The crates in layers, with the workspace crates each may depend on (normal and build
/// dependencies; dev-dependencies may add `secrets-test-support`), as the house style states
/// them; `docs/ARCHITECTURE.md`'s "dependencies flow one way" picture is checked as well.
/// A crate listed here but not in the workspace is skipped (`secret-http` until it lands).
const LAYERS: &[(&str, &[&str])] = &[
    ("secret-uri", &[]),
    ("secret-http", &[]),
    ("secret-config", &[]),
    // secret-http and secret-config only for the OTLP exporter (feature `otlp`).
    ("secret-telemetry", &["secret-http", "secret-config"]),
    // secret-http only for the Kafka sink's TLS and its loopback rule (feature `kafka`).
    (
        "secret-audit",
        &[
            "secret-uri",
            "secret-config",
            "secret-http",
            "secret-telemetry",
        ],
    ),
    (
        "secret-providers",
        &[
            "secret-uri",
            "secret-http",
            "secret-config",
            "secret-telemetry",
        ],
    ),
    (
        "secret-pep",
        &[
            "secret-uri",
            "secret-http",
            "secret-config",
            "secret-telemetry",
            "secret-audit",
        ],
    ),
    // Verified callers: builds the PEP's context from what a caller proved.
    ("secret-verify", &["secret-pep", "secret-http"]),
    (
        "secrets-sdk",
        &[
            "secret-uri",
            "secret-http",
            "secret-config",
            "secret-telemetry",
            "secret-audit",
            "secret-providers",
            "secret-pep",
            "secret-verify",
        ],
    ),
    // The CLI is built on the sdk; it may name what the sdk is made of (`secret-uri` today).
    (
        "secrets-cli",
        &[
            "secrets-sdk",
            "secret-uri",
            "secret-http",
            "secret-config",
            "secret-telemetry",
            "secret-audit",
            "secret-providers",
            "secret-pep",
        ],
    ),
];

/// Layered crates that may be absent (the new transport crate, until it lands).
const OPTIONAL: &[&str] = &["secret-http"];

/// Test and tool crates, outside the layers, with what they may depend on.
const TEST_CRATES: &[(&str, &[&str])] = &[
    // Fixtures and test doubles over the lower crates. Not the sdk: the sdk's own tests use
    // this crate, and would then see a second copy of the sdk's types.
    (
        "secrets-test-support",
        &[
            "secret-uri",
            "secret-http",
            "secret-config",
            "secret-telemetry",
            "secret-audit",
            "secret-providers",
            "secret-pep",
        ],
    ),
    // Cross-crate suites: anything.
    (
        "secrets-integration-tests",
        &[
            "secret-uri",
            "secret-http",
            "secret-config",
            "secret-telemetry",
            "secret-audit",
            "secret-providers",
            "secret-pep",
            "secret-verify",
            "secrets-sdk",
            "secrets-cli",
            "secrets-test-support",
        ],
    ),
    // Dev tasks start servers through the test support's launcher.
    ("xtask", &["secrets-test-support"]),
];

/// The TLS stack: only [`TLS_OWNER`] may depend on these directly.
const TLS_CRATES: &[&str] = &["rustls", "hyper-rustls", "webpki-roots"];
const TLS_OWNER: &str = "secret-http";
/// The crates whose HTTP goes through [`TLS_OWNER`].
const TLS_CLIENTS: &[&str] = &["secret-providers", "secret-pep", "secret-verify"];

/// Crate roots that today lack part of their docs: (root, "example" | "forbid").
const KNOWN_ROOT_GAPS: &[(&str, &str)] = &[];

#[test]
fn dependencies_follow_the_layers() {
    let workspace = Workspace::load();
    let mut problems = Vec::new();
    let rules: BTreeMap<&str, &[&str]> = LAYERS.iter().chain(TEST_CRATES).copied().collect();
    for krate in workspace.members.keys() {
        if !rules.contains_key(krate.as_str()) {
            problems.push(format!(
                "`{krate}` is in no layer: add it to LAYERS (and to docs/ARCHITECTURE.md)"
            ));
        }
    }
    for (krate, deps) in &workspace.members {
        let Some(allowed) = rules.get(krate.as_str()) else {
            continue;
        };
        for dep in deps
            .iter()
            .filter(|d| workspace.members.contains_key(&d.name))
        {
            let ok = allowed.contains(&dep.name.as_str())
                || (dep.kind == Kind::Dev && dep.name == "secrets-test-support");
            if !ok {
                problems.push(format!(
                    "`{krate}` has a {} dependency on `{}`, against the layers",
                    dep.kind.as_str(),
                    dep.name
                ));
            }
        }
    }
    assert_no_problems("dependency layers", &problems);
}

#[test]
fn dependencies_follow_the_architecture_picture() {
    let workspace = Workspace::load();
    let doc = fs::read_to_string(workspace_root().join("docs/ARCHITECTURE.md"))
        .unwrap_or_else(|e| panic!("docs/ARCHITECTURE.md: {e}"));
    let layers = architecture_layers(&doc);
    let layer_of = |name: &str| layers.iter().position(|group| group.contains(name));
    let mut problems = Vec::new();

    for (krate, _) in LAYERS {
        let in_workspace = workspace.members.contains_key(*krate);
        match (in_workspace, layer_of(krate)) {
            (true, None) => problems.push(format!(
                "`{krate}` is missing from the \"dependencies flow one way\" line of \
                 docs/ARCHITECTURE.md"
            )),
            (false, Some(_)) if !OPTIONAL.contains(krate) => problems.push(format!(
                "docs/ARCHITECTURE.md's layer line names `{krate}`, which is not in the workspace"
            )),
            _ => {}
        }
    }
    for name in layers.iter().flatten() {
        if !LAYERS.iter().any(|(krate, _)| krate == name) {
            problems.push(format!(
                "docs/ARCHITECTURE.md's layer line names `{name}`, which LAYERS does not"
            ));
        }
    }
    // The picture: a crate depends only on crates of earlier groups (`a` ← `b`: b uses a).
    for (krate, deps) in &workspace.members {
        let Some(layer) = layer_of(krate) else {
            continue;
        };
        for dep in deps.iter().filter(|d| d.kind != Kind::Dev) {
            if let Some(dep_layer) = layer_of(&dep.name)
                && dep_layer >= layer
            {
                problems.push(format!(
                    "`{krate}` depends on `{}`, which docs/ARCHITECTURE.md puts {}",
                    dep.name,
                    if dep_layer == layer {
                        "beside it"
                    } else {
                        "above it"
                    }
                ));
            }
        }
    }

    // "Nothing depends on `secrets-sdk` but the CLI" (and the test crates).
    let sdk_invariant = "nothing depends on `secrets-sdk` but the CLI";
    if !doc.contains(sdk_invariant) {
        problems.push(format!(
            "docs/ARCHITECTURE.md no longer says \"{sdk_invariant}\"; update this test with it"
        ));
    }
    for (krate, deps) in &workspace.members {
        let allowed = ["secrets-cli", "secrets-integration-tests"];
        if deps.iter().any(|d| d.name == "secrets-sdk") && !allowed.contains(&krate.as_str()) {
            problems.push(format!(
                "`{krate}` depends on `secrets-sdk`: only the CLI and the test crates may"
            ));
        }
    }
    assert_no_problems("docs/ARCHITECTURE.md layers", &problems);
}

#[test]
fn only_secret_http_uses_the_tls_stack_directly() {
    let workspace = Workspace::load();
    let mut problems = Vec::new();
    if !workspace.members.contains_key(TLS_OWNER) {
        problems.push(format!("`{TLS_OWNER}` is not in the workspace"));
    }
    for (krate, deps) in &workspace.members {
        for dep in deps
            .iter()
            .filter(|d| TLS_CRATES.contains(&d.name.as_str()))
        {
            if krate != TLS_OWNER {
                problems.push(format!(
                    "`{krate}` depends directly on `{}` ({}); only `{TLS_OWNER}` may: use it",
                    dep.name,
                    dep.kind.as_str()
                ));
            }
        }
    }
    for krate in TLS_CLIENTS {
        let uses_owner = workspace.members.get(*krate).is_some_and(|deps| {
            deps.iter()
                .any(|d| d.name == TLS_OWNER && d.kind != Kind::Dev)
        });
        if !uses_owner {
            problems.push(format!("`{krate}` should reach TLS through `{TLS_OWNER}`"));
        }
    }
    assert_no_problems("direct TLS users", &problems);
}

#[test]
fn crate_roots_have_docs_with_an_example_and_forbid_unsafe() {
    let workspace = Workspace::load();
    let mut gaps = BTreeSet::new();
    let mut problems = Vec::new();
    for root in &workspace.roots {
        let path = display_path(&root.path);
        let text = fs::read_to_string(&root.path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for gap in root_gaps(&text, root.is_lib) {
            gaps.insert((path.clone(), gap));
        }
    }
    for (path, gap) in &gaps {
        if !KNOWN_ROOT_GAPS.contains(&(path.as_str(), *gap)) {
            problems.push(format!("{path}: {}", describe_gap(gap)));
        }
    }
    for (path, gap) in KNOWN_ROOT_GAPS {
        if !gaps.contains(&((*path).to_owned(), *gap)) {
            problems.push(format!(
                "{path} no longer lacks its {gap}: remove it from KNOWN_ROOT_GAPS"
            ));
        }
    }
    assert_no_problems("crate roots", &problems);
}

#[test]
fn the_checks_see_what_they_check() {
    // The picture as ARCHITECTURE.md draws it today.
    let doc = "x\n**Architecture Invariant:** dependencies flow one way:\n\
               `secret-uri` ← `secret-providers` / `secret-pep` ← `secrets-sdk`.\n\nmore `a` ← `b`";
    let layers = architecture_layers(doc);
    let names = |group: &BTreeSet<String>| group.iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        layers.iter().map(names).collect::<Vec<_>>(),
        [
            vec!["secret-uri".to_owned()],
            vec!["secret-pep".to_owned(), "secret-providers".to_owned()],
            vec!["secrets-sdk".to_owned()],
        ]
    );
    // Crate roots.
    let good = "//! Docs.\n//!\n//! ```\n//! assert!(true);\n//! ```\n#![forbid(unsafe_code)]\n";
    assert!(root_gaps(good, true).is_empty());
    let text_only = "//! Docs.\n//! ```text\n//! usage\n//! ```\n#![forbid(unsafe_code)]\n";
    assert_eq!(root_gaps(text_only, true), ["example"]);
    assert!(
        root_gaps(text_only, false).is_empty(),
        "a binary's usage block is its example"
    );
    assert_eq!(root_gaps("//! Docs.\n", true), ["example", "forbid"]);
    assert_eq!(
        root_gaps("#![forbid(unsafe_code)]\n//! ```\n//! x\n//! ```\n", true),
        ["docs", "example"]
    );
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Dev,
    Build,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Dev => "dev",
            Self::Build => "build",
        }
    }
}

#[derive(Debug)]
struct Dep {
    name: String,
    kind: Kind,
}

#[derive(Debug)]
struct Root {
    path: PathBuf,
    is_lib: bool,
}

/// What `cargo metadata --no-deps` says about the workspace members.
#[derive(Debug)]
struct Workspace {
    /// Member → its direct dependencies (every kind, optional ones too).
    members: BTreeMap<String, Vec<Dep>>,
    /// The lib and bin roots of the members under `crates/` and `tests/`.
    roots: Vec<Root>,
}

impl Workspace {
    fn load() -> Self {
        let root = workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .output()
            .unwrap_or_else(|e| panic!("cargo metadata: {e}"));
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let metadata = Json::parse(&stdout).unwrap_or_else(|e| panic!("cargo metadata: {e}"));
        let ids: BTreeSet<&str> = metadata
            .get("workspace_members")
            .items()
            .iter()
            .filter_map(Json::as_str)
            .collect();
        let mut members = BTreeMap::new();
        let mut roots = Vec::new();
        let packages = metadata.get("packages").items().iter();
        for package in packages.filter(|p| p.get("id").as_str().is_some_and(|id| ids.contains(id)))
        {
            let name = text(package.get("name"));
            let deps = package
                .get("dependencies")
                .items()
                .iter()
                .map(|dep| Dep {
                    name: text(dep.get("name")),
                    kind: match dep.get("kind").as_str() {
                        Some("dev") => Kind::Dev,
                        Some("build") => Kind::Build,
                        _ => Kind::Normal,
                    },
                })
                .collect();
            members.insert(name, deps);
            let manifest = PathBuf::from(text(package.get("manifest_path")));
            let under = |dir: &str| manifest.starts_with(root.join(dir));
            if !(under("crates") || under("tests")) {
                continue;
            }
            for target in package.get("targets").items() {
                let kinds: Vec<&str> = target
                    .get("kind")
                    .items()
                    .iter()
                    .filter_map(Json::as_str)
                    .collect();
                let is_lib = kinds.iter().any(|k| k.ends_with("lib"));
                if is_lib || kinds.contains(&"bin") {
                    roots.push(Root {
                        path: PathBuf::from(text(target.get("src_path"))),
                        is_lib,
                    });
                }
            }
        }
        assert!(
            members.contains_key("secret-uri"),
            "cargo metadata lists no secret-uri: {members:?}"
        );
        Self { members, roots }
    }
}

fn text(value: &Json) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The groups of the "dependencies flow one way" invariant: `` `a` ← `b` / `c` ← `d` `` is
/// `[{a}, {b, c}, {d}]`. The picture runs from the phrase to the next blank line.
fn architecture_layers(doc: &str) -> Vec<BTreeSet<String>> {
    let phrase = "dependencies flow one way";
    let start = doc
        .find(phrase)
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no \"{phrase}\" invariant"));
    let rest = &doc[start + phrase.len()..];
    let picture = rest.split("\n\n").next().unwrap_or(rest);
    let layers: Vec<BTreeSet<String>> = picture
        .split('←')
        .map(|group| {
            group
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        })
        .collect();
    assert!(
        layers.len() >= 2 && layers.iter().all(|group| !group.is_empty()),
        "docs/ARCHITECTURE.md: the \"{phrase}\" line should read `a` ← `b` / `c` ← …, got {picture:?}"
    );
    layers
}

/// What a crate root lacks: `docs` (it does not start with `//!`), `example` (no fenced
/// example in its `//!` docs; a library's must be a Rust doctest, a binary's may be a usage
/// block) or `forbid` (no `#![forbid(unsafe_code)]`).
fn root_gaps(text: &str, is_lib: bool) -> Vec<&'static str> {
    let mut gaps = Vec::new();
    let first = text.lines().find(|line| !line.trim().is_empty());
    if !first.is_some_and(|line| line.starts_with("//!")) {
        gaps.push("docs");
    }
    let mut in_fence = false;
    let mut has_example = false;
    // The leading `//!` block: the crate's docs.
    let docs = text
        .lines()
        .skip_while(|line| line.trim().is_empty())
        .map_while(|line| line.strip_prefix("//!"));
    for line in docs {
        let Some(info) = line.trim().strip_prefix("```") else {
            continue;
        };
        if in_fence {
            in_fence = false;
            continue;
        }
        in_fence = true;
        has_example |= !is_lib || is_doctest(info);
    }
    if !has_example {
        gaps.push("example");
    }
    if !text
        .lines()
        .any(|line| line.trim() == "#![forbid(unsafe_code)]")
    {
        gaps.push("forbid");
    }
    gaps
}

/// Whether a fence's info string makes rustdoc run (or at least compile) it.
fn is_doctest(info: &str) -> bool {
    info.split(',').map(str::trim).all(|word| {
        matches!(
            word,
            "" | "rust" | "no_run" | "should_panic" | "compile_fail" | "test_harness"
        ) || word.starts_with("edition")
    })
}

fn describe_gap(gap: &str) -> &'static str {
    match gap {
        "docs" => "the crate root does not start with `//!` docs",
        "example" => "the `//!` docs hold no example (a doctest for a library)",
        _ => "no `#![forbid(unsafe_code)]`",
    }
}
