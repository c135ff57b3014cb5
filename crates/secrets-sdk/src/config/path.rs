//! Field paths: one spelling for every error that names a place in a configuration, whether a
//! deserialization error's (`CONFIG_PARSE`, from `serde_path_to_error`) or a reference's
//! (`CONFIG_SECRETS`, `CONFIG_UNREACHABLE_REFERENCE`, from the walk).
//!
//! Names are joined by `.`, list indexes are `[i]`, the document itself is `.`, and a map key
//! that is not a string, number, boolean or character is `?`. A name is a struct's field or
//! variant, or a map's key; an empty key is `""`.

use std::fmt::Write as _;

/// One step of a path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Segment<'a> {
    /// A struct's field or variant, or a map's key.
    Name(&'a str),
    /// A list's index.
    Index(usize),
    /// A map key that is not a string, number, boolean or character.
    Unknown,
}

/// The path of `segments`, spelled as the module says.
pub(super) fn spell<'a>(segments: impl IntoIterator<Item = Segment<'a>>) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Name(name) => {
                separate(&mut out);
                push_name(&mut out, name);
            }
            Segment::Unknown => {
                separate(&mut out);
                out.push('?');
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

fn separate(out: &mut String) {
    if !out.is_empty() {
        out.push('.');
    }
}

fn push_name(out: &mut String, name: &str) {
    if name.is_empty() {
        out.push_str("\"\"");
    } else {
        out.push_str(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_indexes_and_unknown_keys() {
        let cases = [
            (vec![], "."),
            (vec![Segment::Index(1), Segment::Name("token")], "[1].token"),
            (
                vec![Segment::Name("a"), Segment::Index(0), Segment::Index(2)],
                "a[0][2]",
            ),
            (vec![Segment::Name("m"), Segment::Unknown], "m.?"),
            (vec![Segment::Name("m"), Segment::Name("")], "m.\"\""),
        ];
        for (segments, spelled) in cases {
            assert_eq!(spell(segments.clone()), spelled, "{segments:?}");
        }
    }
}
