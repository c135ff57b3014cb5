//! The parser. `nom` tokenizes; the rule order of the spec decides which error wins.
//!
//! Rules, in order (docs/uri-spec.md): 1 `://` and a non-empty scheme, 2 the scheme,
//! 3 fragment and query, 4 the path. The tenant mount guard is a separate step.

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_till, take_until, take_while1},
    character::complete::digit1,
    combinator::{all_consuming, opt},
    sequence::{preceded, terminated},
};

use crate::error::{EngineReason, IllegalSegmentReason as Illegal, UriError, VersionReason, snippet};
use crate::{Engine, Provider, SecretUri};

type NomError<'a> = nom::error::Error<&'a str>;

/// A query pair as read: name, value, byte offset of the pair in the input.
type Pair<'a> = (&'a str, &'a str, usize);

pub(crate) fn parse(input: &str) -> Result<SecretUri, UriError> {
    // Rule 1: `scheme://`.
    let Ok((rest, scheme)) = scheme_and_separator(input) else {
        return Err(illegal(input.find(':').unwrap_or(input.len()), Illegal::MissingSeparator));
    };
    if scheme.is_empty() {
        return Err(illegal(0, Illegal::EmptyScheme));
    }
    // Rule 2: provider[+engine].
    let (provider, engine) = parse_scheme(scheme)?;
    let base = scheme.len() + 3;

    // Rule 3: fragment and query. Both `#key?query` and `?query#key` are accepted.
    let hash = rest.find('#');
    if let Some(h) = hash {
        if let Some(h2) = rest[h + 1..].find('#') {
            return Err(illegal(base + h + 1 + h2, Illegal::MultipleFragments));
        }
    }
    let qmark = rest.find('?');
    // (text, offset of the text in `rest`)
    let (path, key, query) = match (hash, qmark) {
        (None, None) => (rest, None, None),
        (Some(h), None) => (&rest[..h], Some((&rest[h + 1..], h + 1)), None),
        (None, Some(q)) => (&rest[..q], None, Some((&rest[q + 1..], q + 1))),
        (Some(h), Some(q)) if h < q => (
            &rest[..h],
            Some((&rest[h + 1..q], h + 1)),
            Some((&rest[q + 1..], q + 1)),
        ),
        (Some(h), Some(q)) => (
            &rest[..q],
            Some((&rest[h + 1..], h + 1)),
            Some((&rest[q + 1..h], q + 1)),
        ),
    };
    let key = match key {
        Some((k, at)) => {
            if let Some(i) = k.find('?') {
                return Err(illegal(base + at + i, Illegal::QuestionMarkInKey));
            }
            check_no_control(k, base + at)?;
            (!k.is_empty()).then_some(k)
        }
        None => None,
    };
    let mut pairs: Vec<Pair<'_>> = Vec::new();
    if let Some((q, at)) = query {
        read_pairs(q, base + at, &mut pairs)?;
    }
    if let Some(&(_, _, at)) = pairs.iter().find(|p| p.0 == "mount") {
        return Err(UriError::DoubleMountSource { offset: at });
    }
    let version = match pairs.iter().find(|p| p.0 == "version") {
        Some(&(name, value, at)) => Some(parse_version(value, at + name.len() + 1)?),
        None => None,
    };

    // Rule 4: the path.
    let path = check_path(path, base)?;

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
    let mount_end = path_start + path.find('/').unwrap_or(path.len());
    if let Some(key) = key {
        canonical.push('#');
        canonical.push_str(key);
    }
    let key_end = canonical.len();
    if !pairs.is_empty() {
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        canonical.push('?');
        for (i, (name, value, _)) in pairs.iter().enumerate() {
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

fn scheme_and_separator(input: &str) -> IResult<&str, &str, NomError<'_>> {
    terminated(take_until("://"), tag("://")).parse(input)
}

/// `provider` or `provider+engine`, ASCII case-insensitive.
fn parse_scheme(scheme: &str) -> Result<(Provider, Option<Engine>), UriError> {
    let unsupported = |offset, reason| UriError::UnsupportedEngine {
        offset,
        reason,
        scheme: snippet(scheme),
    };
    let parts: IResult<&str, (&str, Option<&str>), NomError<'_>> =
        (take_till(|c| c == '+'), opt(preceded(tag("+"), take_till(|_| false)))).parse(scheme);
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
    match text.char_indices().find(|(_, c)| c.is_control()) {
        Some((i, _)) => Err(illegal(offset + i, Illegal::ControlCharacter)),
        None => Ok(()),
    }
}

/// `&`-separated pairs; empty pairs are skipped, `k` alone means `k=`. A repeat is reported as
/// soon as it is read.
fn read_pairs<'a>(query: &'a str, offset: usize, pairs: &mut Vec<Pair<'a>>) -> Result<(), UriError> {
    let mut at = offset;
    for raw in query.split('&') {
        let here = at;
        at += raw.len() + 1;
        if raw.is_empty() {
            continue;
        }
        check_no_control(raw, here)?;
        let (name, value) = raw.split_once('=').unwrap_or((raw, ""));
        if name.is_empty() {
            return Err(illegal(here, Illegal::EmptyParameterName));
        }
        if pairs.iter().any(|p| p.0 == name) {
            return Err(UriError::AmbiguousQuery {
                offset: here,
                name: snippet(name),
            });
        }
        pairs.push((name, value, here));
    }
    Ok(())
}

/// A positive decimal of ASCII digits, no sign, no leading zero, fitting `u64`.
fn parse_version(value: &str, offset: usize) -> Result<u64, UriError> {
    let invalid = |reason| UriError::InvalidVersion { offset, reason };
    if value.is_empty() {
        return Err(invalid(VersionReason::Empty));
    }
    let digits: IResult<&str, &str, NomError<'_>> = all_consuming(digit1).parse(value);
    if digits.is_err() {
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

/// Validates the path and returns it without its one optional trailing `/`.
fn check_path(path: &str, offset: usize) -> Result<&str, UriError> {
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
        let scanned: IResult<&str, &str, NomError<'_>> = take_while1(is_segment_char).parse(segment);
        match scanned {
            Ok(("", _)) => {}
            Ok((rest, _)) => {
                return Err(illegal(at + segment.len() - rest.len(), Illegal::InvalidCharacter));
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
