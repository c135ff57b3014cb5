//! Arbitrary text never panics the template scanner, and its pieces keep their promises:
//! in order and in bounds; without backslashes, the text pieces and the references' spans
//! are the template; every reference's text is trimmed, looks like a URI and sits inside its
//! braces; every error points at a `{{`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secret_uri::template::{Piece, scan};

fuzz_target!(|data: &[u8]| {
    let Ok(template) = std::str::from_utf8(data) else {
        return;
    };
    let mut rebuilt = String::new();
    let mut last_end = 0;
    for piece in scan(template) {
        match piece {
            Ok(Piece::Text(text)) => rebuilt.push_str(text),
            Ok(Piece::Reference(reference)) => {
                let span = reference.span.clone();
                assert!(last_end <= span.start && span.end <= template.len());
                assert!(template[span.clone()].starts_with("{{"));
                assert!(template[span.clone()].ends_with("}}"));
                let at = reference.text_offset;
                assert!(span.start + 2 <= at && at + reference.text.len() + 2 <= span.end);
                assert_eq!(&template[at..at + reference.text.len()], reference.text);
                assert_eq!(reference.text.trim(), reference.text);
                assert!(reference.text.contains("://"));
                assert!(reference.line >= 1 && reference.column >= 1);
                if let Err(e) = reference.parse() {
                    assert!(e.offset().is_none_or(|o| o <= reference.text.len()));
                }
                rebuilt.push_str(&template[span.clone()]);
                last_end = span.end;
            }
            Err(error) => {
                assert!(template[error.offset()..].starts_with("{{"));
                assert_eq!(error.code(), "UNTERMINATED_REFERENCE");
                let _ = error.to_string();
            }
        }
    }
    if !template.contains('\\') {
        assert_eq!(rebuilt, template);
    } else {
        assert!(rebuilt.len() <= template.len());
    }
});
