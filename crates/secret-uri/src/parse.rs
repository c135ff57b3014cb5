//! The parser.
//!
//! Rules, in order (docs/uri-spec.md): 1 `://` and a non-empty scheme, 2 the scheme,
//! 3 fragment and query, 4 the path. The tenant mount guard is a separate step. The first
//! broken rule decides the error, so the parser checks rules in that order.
//!
//! Two layers: byte scans over the hot, valid case (a table-driven path scan, a one-match
//! scheme lookup), and `nom` grammars for the general case that classify exactly what is
//! wrong (`classify_scheme`, `check_path_in_order`). Both accept the same language; the
//! tests and property tests hold them to it.

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_till, take_while1},
    combinator::opt,
    sequence::preceded,
};

use crate::error::{
    EngineReason, IllegalSegmentReason as Illegal, UriError, VersionReason, snippet,
};
use crate::{Engine, Provider, SecretUri};

type NomError<'a> = nom::error::Error<&'a str>;

/// A query pair as read: name, value, byte offsets of the pair and of its value in the input.
type Pair<'a> = (&'a str, &'a str, usize, usize);

pub(crate) fn parse(input: &str) -> Result<SecretUri, UriError> {
    // Rule 1: `scheme://`.
    let Some((scheme, rest)) = scheme_and_separator(input) else {
        return Err(illegal(
            input.find(':').unwrap_or(input.len()),
            Illegal::MissingSeparator,
        ));
    };
    if scheme.is_empty() {
        return Err(illegal(0, Illegal::EmptyScheme));
    }
    // Rule 2: provider[+engine].
    let (provider, engine) = parse_scheme(scheme)?;
    let base = scheme.len() + 3;

    // Rule 3: fragment and query. Both `#key?query` and `?query#key` are accepted.
    // One pass over the path (recording whether it is obviously valid, for rule 4), then over
    // the rest for the first `?` and a second `#`.
    let bytes = rest.as_bytes();
    let scan = scan_path(bytes);
    let (mut hash, mut qmark) = (None, None);
    for (i, &b) in bytes.iter().enumerate().skip(scan.end) {
        match b {
            b'#' if hash.is_some() => return Err(illegal(base + i, Illegal::MultipleFragments)),
            b'#' => hash = Some(i),
            b'?' if qmark.is_none() => qmark = Some(i),
            _ => {}
        }
    }
    // (text, offset of the text in `rest`)
    let (key, query) = match (hash, qmark) {
        (None, None) => (None, None),
        (Some(h), None) => (Some((&rest[h + 1..], h + 1)), None),
        (None, Some(q)) => (None, Some((&rest[q + 1..], q + 1))),
        (Some(h), Some(q)) if h < q => (
            Some((&rest[h + 1..q], h + 1)),
            Some((&rest[q + 1..], q + 1)),
        ),
        (Some(h), Some(q)) => (
            Some((&rest[h + 1..], h + 1)),
            Some((&rest[q + 1..h], q + 1)),
        ),
    };
    let key = match key {
        Some((k, at)) => {
            if let Some(i) = k.bytes().position(|b| b == b'?') {
                return Err(illegal(base + at + i, Illegal::QuestionMarkInKey));
            }
            check_no_control(k, base + at)?;
            (!k.is_empty()).then_some(k)
        }
        None => None,
    };
    let mut pairs: Vec<Pair<'_>> = Vec::new();
    if let Some((q, at)) = query {
        pairs.reserve(4);
        read_pairs(q, base + at, &mut pairs)?;
    }
    if let Some(&(_, _, at, _)) = pairs.iter().find(|p| p.0 == "mount") {
        return Err(UriError::DoubleMountSource { offset: at });
    }
    let version = match pairs.iter().find(|p| p.0 == "version") {
        Some(&(_, value, _, value_at)) => Some(parse_version(value, value_at)?),
        None => None,
    };

    // Rule 4: the path.
    let (path, mount_len) = if scan.valid {
        let path = &rest[..scan.end];
        let path = path.strip_suffix('/').unwrap_or(path);
        (path, scan.mount_end.min(path.len()))
    } else {
        let path = check_path_in_order(&rest[..scan.end], base)?;
        (path, path.find('/').unwrap_or(path.len()))
    };

    // Canonical form: scheme://segments[#key][?sorted pairs].
    let mut canonical = String::with_capacity(input.len() + pairs.len());
    canonical.push_str(provider.as_str());
    if let Some(engine) = engine {
        canonical.push('+');
        canonical.push_str(engine.as_str());
    }
    canonical.push_str("://");
    let path_start = canonical.len();
    canonical.push_str(path);
    let path_end = canonical.len();
    let mount_end = path_start + mount_len;
    if let Some(key) = key {
        canonical.push('#');
        canonical.push_str(key);
    }
    let key_end = canonical.len();
    if !pairs.is_empty() {
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        canonical.push('?');
        for (i, (name, value, _, _)) in pairs.iter().enumerate() {
            if i > 0 {
                canonical.push('&');
            }
            canonical.push_str(name);
            canonical.push('=');
            canonical.push_str(value);
        }
    }
    Ok(SecretUri {
        canonical,
        provider,
        engine,
        path_start,
        mount_end,
        path_end,
        key_end,
        version,
    })
}

fn illegal(offset: usize, reason: Illegal) -> UriError {
    UriError::IllegalSegment { offset, reason }
}

/// Rule 1: splits `scheme://rest` at the first `://`.
fn scheme_and_separator(input: &str) -> Option<(&str, &str)> {
    let bytes = input.as_bytes();
    let mut from = 0;
    while let Some(i) = position(&bytes[from..], b':') {
        let colon = from + i;
        if bytes[colon + 1..].starts_with(b"//") {
            return Some((&input[..colon], &input[colon + 3..]));
        }
        from = colon + 1;
    }
    None
}

/// `provider` or `provider+engine`, ASCII case-insensitive.
fn parse_scheme(scheme: &str) -> Result<(Provider, Option<Engine>), UriError> {
    // Every valid scheme is at most 13 bytes: lowercase into a stack buffer and match once.
    let mut buf = [0u8; 13];
    if let Some(lower) = buf.get_mut(..scheme.len()) {
        lower.copy_from_slice(scheme.as_bytes());
        lower.make_ascii_lowercase();
        let known = match &*lower {
            b"openbao" => Some((Provider::OpenBao, None)),
            b"openbao+kv2" => Some((Provider::OpenBao, Some(Engine::Kv2))),
            b"hashicorp" => Some((Provider::HashiCorp, None)),
            b"hashicorp+kv2" => Some((Provider::HashiCorp, Some(Engine::Kv2))),
            b"file" => Some((Provider::File, None)),
            b"db" => Some((Provider::Db, None)),
            b"db+cred" => Some((Provider::Db, Some(Engine::Cred))),
            b"db+db" => Some((Provider::Db, Some(Engine::Db))),
            b"bootstrap" => Some((Provider::Bootstrap, None)),
            b"yaml" => Some((Provider::Yaml, None)),
            _ => None,
        };
        if let Some(known) = known {
            return Ok(known);
        }
    }
    classify_scheme(scheme)
}

/// The general path of [`parse_scheme`]: splits with `nom` and says what is unsupported.
fn classify_scheme(scheme: &str) -> Result<(Provider, Option<Engine>), UriError> {
    let unsupported = |offset, reason| UriError::UnsupportedEngine {
        offset,
        reason,
        scheme: snippet(scheme),
    };
    let parts: IResult<&str, (&str, Option<&str>), NomError<'_>> = (
        take_till(|c| c == '+'),
        opt(preceded(tag("+"), take_till(|_| false))),
    )
        .parse(scheme);
    let Ok((_, (name, engine))) = parts else {
        return Err(unsupported(0, EngineReason::UnknownProvider));
    };
    let provider =
        Provider::from_name(name).ok_or_else(|| unsupported(0, EngineReason::UnknownProvider))?;
    let Some(engine) = engine else {
        return Ok((provider, None));
    };
    let at = name.len() + 1;
    if engine.is_empty() {
        return Err(unsupported(at, EngineReason::EmptyEngine));
    }
    provider
        .engines()
        .iter()
        .find(|e| e.as_str().eq_ignore_ascii_case(engine))
        .map(|&e| (provider, Some(e)))
        .ok_or_else(|| unsupported(at, EngineReason::UnknownEngine))
}

fn check_no_control(text: &str, offset: usize) -> Result<(), UriError> {
    // Control characters are C0, DEL and C1; C1 is encoded with a leading 0xC2 byte.
    if text.bytes().all(|b| b >= 0x20 && b != 0x7f && b != 0xc2) {
        return Ok(());
    }
    match text.char_indices().find(|(_, c)| c.is_control()) {
        Some((i, _)) => Err(illegal(offset + i, Illegal::ControlCharacter)),
        None => Ok(()),
    }
}

/// `&`-separated pairs; empty pairs are skipped, `k` alone means `k=`. A repeat is reported as
/// soon as it is read.
fn read_pairs<'a>(
    query: &'a str,
    offset: usize,
    pairs: &mut Vec<Pair<'a>>,
) -> Result<(), UriError> {
    let bytes = query.as_bytes();
    let mut start = 0;
    while start <= bytes.len() {
        let end = position(&bytes[start..], b'&').map_or(bytes.len(), |i| start + i);
        let (raw, here) = (&query[start..end], offset + start);
        start = end + 1;
        if raw.is_empty() {
            continue;
        }
        check_no_control(raw, here)?;
        let (name, value) = match position(raw.as_bytes(), b'=') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            // `k` alone: an empty value that starts where the name ends.
            None => (raw, &raw[raw.len()..]),
        };
        if name.is_empty() {
            return Err(illegal(here, Illegal::EmptyParameterName));
        }
        if pairs.iter().any(|p| p.0 == name) {
            return Err(UriError::AmbiguousQuery {
                offset: here,
                name: snippet(name),
            });
        }
        pairs.push((name, value, here, here + raw.len() - value.len()));
    }
    Ok(())
}

/// A plain byte search: queries are short, so this beats setting up `memchr`.
fn position(bytes: &[u8], needle: u8) -> Option<usize> {
    bytes.iter().position(|&b| b == needle)
}

/// A positive decimal of ASCII digits, no sign, no leading zero, fitting `u64`.
fn parse_version(value: &str, offset: usize) -> Result<u64, UriError> {
    let invalid = |reason| UriError::InvalidVersion { offset, reason };
    if value.is_empty() {
        return Err(invalid(VersionReason::Empty));
    }
    // `u64::from_str` would accept a `+` sign; the grammar does not.
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(VersionReason::NotDigits));
    }
    if value == "0" {
        return Err(invalid(VersionReason::Zero));
    }
    if value.starts_with('0') {
        return Err(invalid(VersionReason::LeadingZero));
    }
    value
        .parse::<u64>()
        .map_err(|_| invalid(VersionReason::Overflow))
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Byte classes of the path scan, as a table: the hot loop of every parse.
const PLAIN: u8 = 0; // [A-Za-z0-9_-]
const DOT: u8 = 1;
const SLASH: u8 = 2;
const END: u8 = 3; // `#` or `?`
const OTHER: u8 = 4;
const CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' => PLAIN,
            b'.' => DOT,
            b'/' => SLASH,
            b'#' | b'?' => END,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// What one pass over the path found.
struct PathScan {
    /// Where the path ends: the first `#` or `?`, or the end of the input.
    end: usize,
    /// The first `/` (the end of the mount), or `usize::MAX`.
    mount_end: usize,
    /// The path is valid; when `false` the in-order checker finds which rule it breaks.
    valid: bool,
}

/// The hot loop: validates a path in the common case while looking for its end.
fn scan_path(bytes: &[u8]) -> PathScan {
    let mut valid = true;
    let mut mount_end = usize::MAX;
    let mut segment_start = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match CLASS[usize::from(b)] {
            PLAIN => {}
            // `..` anywhere.
            DOT => valid &= !(i > 0 && bytes[i - 1] == b'.'),
            SLASH => {
                // An empty segment, or a segment that is exactly `.`.
                valid &= i > segment_start && !(i - segment_start == 1 && bytes[i - 1] == b'.');
                mount_end = mount_end.min(i);
                segment_start = i + 1;
            }
            END => break,
            _ => valid = false,
        }
        i += 1;
    }
    // The path must be non-empty and not end in a `.` segment. A trailing `/` is fine: the
    // `/` itself already checked the segment before it (so `a//` and `/` are invalid).
    valid &= i > 0 && !(i - segment_start == 1 && bytes[i - 1] == b'.');
    PathScan {
        end: i,
        mount_end,
        valid,
    }
}

/// The path rules in their specified order, for paths the fast pass did not accept.
fn check_path_in_order(path: &str, offset: usize) -> Result<&str, UriError> {
    check_no_control(path, offset)?;
    if let Some(i) = find_encoded_slash(path) {
        return Err(illegal(offset + i, Illegal::EncodedSlash));
    }
    if let Some(i) = path.find("..") {
        return Err(illegal(offset + i, Illegal::DotDot));
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Err(illegal(offset, Illegal::NoSegment));
    }
    let mut at = offset;
    for segment in path.split('/') {
        if segment.is_empty() {
            return Err(illegal(at, Illegal::EmptySegment));
        }
        at += segment.len() + 1;
    }
    let mut at = offset;
    for segment in path.split('/') {
        if let Some(i) = segment.find('*') {
            return Err(UriError::InvalidWildcard { offset: at + i });
        }
        if segment == "." {
            return Err(illegal(at, Illegal::DotSegment));
        }
        let scanned: IResult<&str, &str, NomError<'_>> =
            take_while1(is_segment_char).parse(segment);
        match scanned {
            Ok(("", _)) => {}
            Ok((rest, _)) => {
                return Err(illegal(
                    at + segment.len() - rest.len(),
                    Illegal::InvalidCharacter,
                ));
            }
            Err(_) => return Err(illegal(at, Illegal::InvalidCharacter)),
        }
        at += segment.len() + 1;
    }
    Ok(path)
}

fn find_encoded_slash(path: &str) -> Option<usize> {
    path.as_bytes()
        .windows(3)
        .position(|w| w[0] == b'%' && w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The fast path scan and the in-order checker accept exactly the same paths.
        #[test]
        fn fast_scan_agrees_with_the_in_order_checker(path in "[a-c./*%2fF\\n_-]{0,12}") {
            let scan = scan_path(path.as_bytes());
            prop_assert_eq!(scan.end, path.len());
            let checked = check_path_in_order(&path, 0);
            prop_assert_eq!(scan.valid, checked.is_ok(), "{:?}: {:?}", path, checked);
            if let Ok(valid) = checked {
                prop_assert_eq!(scan.mount_end.min(valid.len()), valid.find('/').unwrap_or(valid.len()));
            }
        }
    }
}
