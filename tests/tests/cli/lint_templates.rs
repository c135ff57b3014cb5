//! `secrets lint` on templates: `{{ URI }}` references are checked where they stand (a typo
//! of a scheme included), other `{{ … }}` are not references, the shipped templates are clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::cli::{repo_root, secrets};

#[test]
fn the_shipped_templates_are_clean() {
    let run = secrets(["lint", "examples/templates"])
        .dir(repo_root())
        .run();
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    assert_eq!(
        run.stderr,
        "secrets lint: 3 secret URIs in 1 files, 0 invalid\n"
    );
}

#[test]
fn references_in_a_template_are_reported_with_their_place_and_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.env.tmpl"),
        "A={{ file://demo/db.json#password }}\n\
         B={{ fle://demo/x }}\n\
         C=\"{{file://demo/*}}\" D={{ .Values.d }}\n\
         E={{ openbao+kv2://secret/app#k?verison=2\n",
    )
    .unwrap();
    let run = secrets(["lint", "."]).dir(dir.path()).run();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout_lines(),
        [
            "./app.env.tmpl:2:6: UNSUPPORTED_ENGINE unsupported engine at byte 0: unknown \
             provider in scheme `fle`",
            "./app.env.tmpl:3:6: INVALID_WILDCARD invalid wildcard at byte 12: `*` is not \
             allowed in a path segment",
            "./app.env.tmpl:4:3: UNTERMINATED_REFERENCE unterminated reference at line 4, \
             column 3: `{{` has no closing `}}`",
            "./app.env.tmpl:4:6: UNKNOWN_PARAMETER openbao: unknown query parameter `verison` \
             in mount `secret`; this provider serves `version` [UNKNOWN_PARAMETER]",
        ]
    );
    assert_eq!(
        run.stderr,
        "secrets lint: 4 secret URIs in 1 files, 4 invalid\n"
    );
}
