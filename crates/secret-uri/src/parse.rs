//! The parser.
//!
//! Rules, in order (docs/uri-spec.md): 1 `://` and a non-empty scheme, 2 the scheme,
//! 3 fragment and query, 4 the path. The tenant mount guard is a separate step. The first
//! broken rule decides the error, so the parser checks rules in that order.
//!
//! Two layers. The fast route accepts the common, valid case in one pass over the input and
//! decides nothing about invalid input: a known scheme matched in place, a table-driven path
//! scan, one scan of the fragment and query holding the pairs on the stack, and the canonical
//! string built with its exact capacity from runs of the input. On anything unusual it gives
//! up, and the in-order layer (byte scans, and `nom` grammars that classify exactly what is
//! wrong: `classify_scheme`, `check_path_in_order`) decides. Both accept the same language and
//! build the same canonical string; the tests and property tests hold them to it.

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
    let Some(scheme) = known_scheme(input.as_bytes()) else {
        return parse_in_order(input);
    };
    // A known scheme is all the text before the first `://` (no scheme holds a `:`): rules 1
    // and 2 hold, with the provider and engine the in-order layer would find.
    let base = scheme.name.len() + 3;
    let scan = scan_path(&input.as_bytes()[base..]);
    if scan.valid
        && let Some(uri) = parse_fast(input, &scheme, &scan)
    {
        return Ok(uri);
    }
    parse_rest(input, scheme.provider, scheme.engine, base, &scan)
}

/// Every rule in its specified order: the reference the fast route is held to.
#[cold]
fn parse_in_order(input: &str) -> Result<SecretUri, UriError> {
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
    let scan = scan_path(rest.as_bytes());
    parse_rest(input, provider, engine, scheme.len() + 3, &scan)
}

/// Rules 3 and 4 in order, then the canonical form. `base` is where the path starts (just
/// past `://`) and `scan` the path scan from there.
#[cold]
fn parse_rest(
    input: &str,
    provider: Provider,
    engine: Option<Engine>,
    base: usize,
    scan: &PathScan,
) -> Result<SecretUri, UriError> {
    let rest = &input[base..];
    // Rule 3: fragment and query. Both `#key?query` and `?query#key` are accepted.
    // The path scan found where the path ends (and whether it is obviously valid, for
    // rule 4); the rest is searched for the first `?` and a second `#`.
    let bytes = rest.as_bytes();
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
    let mut pairs: Vec<Pair<'_>> = Vec::with_capacity(if query.is_some() { 4 } else { 0 });
    if let Some((q, at)) = query {
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

/// A scheme the fast route recognized at the start of the input.
struct KnownScheme {
    provider: Provider,
    engine: Option<Engine>,
    /// The canonical (lowercase) scheme; as long as the scheme written in the input.
    name: &'static str,
    /// The input already spells it in lowercase, so its bytes are canonical as they stand.
    lowercase: bool,
}

/// Matches `scheme://` for every known scheme, ASCII case-insensitively, in place.
fn known_scheme(input: &[u8]) -> Option<KnownScheme> {
    use Engine::{Cred, Db as DbEngine, Kv2};
    use Provider::{Bootstrap, Db, File, HashiCorp, OpenBao, Yaml};
    let known = |provider, engine, name, lowercase| KnownScheme {
        provider,
        engine,
        name,
        lowercase,
    };
    // One candidate or two per first letter; each is a fixed-length compare.
    match *input.first()? | 0x20 {
        b'o' => match input.get(7) {
            Some(b'+') => folded(input, b"openbao+kv2://")
                .map(|lc| known(OpenBao, Some(Kv2), "openbao+kv2", lc)),
            _ => folded(input, b"openbao://").map(|lc| known(OpenBao, None, "openbao", lc)),
        },
        b'h' => match input.get(9) {
            Some(b'+') => folded(input, b"hashicorp+kv2://")
                .map(|lc| known(HashiCorp, Some(Kv2), "hashicorp+kv2", lc)),
            _ => folded(input, b"hashicorp://").map(|lc| known(HashiCorp, None, "hashicorp", lc)),
        },
        b'f' => folded(input, b"file://").map(|lc| known(File, None, "file", lc)),
        b'd' => match input.get(2..4) {
            Some(b"+c" | b"+C") => {
                folded(input, b"db+cred://").map(|lc| known(Db, Some(Cred), "db+cred", lc))
            }
            Some(b"+d" | b"+D") => {
                folded(input, b"db+db://").map(|lc| known(Db, Some(DbEngine), "db+db", lc))
            }
            _ => folded(input, b"db://").map(|lc| known(Db, None, "db", lc)),
        },
        b'b' => folded(input, b"bootstrap://").map(|lc| known(Bootstrap, None, "bootstrap", lc)),
        b'y' => folded(input, b"yaml://").map(|lc| known(Yaml, None, "yaml", lc)),
        _ => None,
    }
}

/// `Some(lowercase)` when `input` starts with `pattern` up to the ASCII case of its letters;
/// `lowercase` says the input matched it exactly. Two overlapping word compares: `N` and
/// `pattern` are constants once inlined, and so are the words and masks made from `pattern`.
#[inline(always)]
fn folded<const N: usize>(input: &[u8], pattern: &[u8; N]) -> Option<bool> {
    const { assert!(N >= 4) };
    let head = input.first_chunk::<N>()?;
    let width = if N >= 8 { 8 } else { 4 };
    let (mut folded, mut exact) = (0, 0);
    for at in [0, N - width] {
        let (word, want) = (word(&head[at..], width), word(&pattern[at..], width));
        // Only letters fold: `0x20` would also map control bytes onto `+`, `2` and `/`.
        let mut fold = [0u8; 8];
        for (f, p) in fold.iter_mut().zip(&pattern[at..at + width]) {
            *f = if p.is_ascii_lowercase() { 0x20 } else { 0 };
        }
        folded |= (word | u64::from_le_bytes(fold)) ^ want;
        exact |= word ^ want;
    }
    (folded == 0).then_some(exact == 0)
}

/// The first `width` (at most 8) bytes as a little-endian word.
#[inline(always)]
fn word(bytes: &[u8], width: usize) -> u64 {
    let mut word = [0u8; 8];
    word[..width].copy_from_slice(&bytes[..width]);
    u64::from_le_bytes(word)
}

/// At most this many query pairs take the fast route (they are held on the stack).
const FAST_PAIRS: usize = 8;

/// Byte classes of the fragment and query scan.
const T_TEXT: u8 = 0;
const T_EQ: u8 = 1;
const T_AMP: u8 = 2;
const T_HASH: u8 = 3;
const T_QMARK: u8 = 4;
/// C0, DEL, and `0xC2` (the lead byte of C1 controls, and of other characters the in-order
/// layer tells apart): the fast route leaves all of them to it.
const T_CONTROL: u8 = 5;
const TAIL: [u8; 256] = {
    let mut table = [T_TEXT; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'=' => T_EQ,
            b'&' => T_AMP,
            b'#' => T_HASH,
            b'?' => T_QMARK,
            0..0x20 | 0x7f | 0xc2 => T_CONTROL,
            _ => T_TEXT,
        };
        b += 1;
    }
    table
};

/// The fast route after the scheme and a valid path: the fragment and query, then the
/// canonical string. `None` when anything would need the in-order layer (an error, or input
/// it is not worth a special case: more than [`FAST_PAIRS`] pairs, a 20-digit version).
fn parse_fast(input: &str, scheme: &KnownScheme, scan: &PathScan) -> Option<SecretUri> {
    let bytes = input.as_bytes();
    let len = bytes.len();
    let base = scheme.name.len() + 3;
    let path_end = base + scan.end;
    // One trailing `/` is dropped (the scan accepted the path, so it is not the only byte).
    let path_len = scan.end - usize::from(bytes[path_end - 1] == b'/');
    // The input is its own canonical form (the common case): so far, a lowercase scheme and
    // no trailing `/`.
    let mut canonical_as_written = scheme.lowercase && path_len == scan.end;

    // `#key` before the query: up to the first `?`.
    let mut at = path_end;
    let mut key = (at, at);
    let hash_first = bytes.get(at) == Some(&b'#');
    if hash_first {
        let end = key_end(bytes, at + 1)?;
        key = (at + 1, end);
        at = end;
        // An empty key and its `#` vanish.
        canonical_as_written &= end > key.0;
    }
    // The query, up to a `#`: pairs as (start, end of name, end), in the input.
    let mut pairs = [(0usize, 0usize, 0usize); FAST_PAIRS];
    let mut count = 0;
    if at < len {
        // `bytes[at]` is `?`: both the path scan and the key stop only there, at `#`, or at the end.
        let mut start = at + 1;
        let mut eq = usize::MAX;
        let mut i = start;
        loop {
            let class = bytes.get(i).map_or(T_HASH, |&b| TAIL[usize::from(b)]);
            match class {
                T_TEXT | T_QMARK => {}
                T_EQ => eq = eq.min(i),
                T_AMP | T_HASH => {
                    // A pair without `=` changes: an empty one vanishes, a bare name gets one.
                    canonical_as_written &= eq < i;
                    if i > start {
                        let name_end = eq.min(i);
                        let name = &bytes[start..name_end];
                        if name.is_empty()
                            || count == FAST_PAIRS
                            || pairs[..count].iter().any(|p| &bytes[p.0..p.1] == name)
                        {
                            return None;
                        }
                        pairs[count] = (start, name_end, i);
                        count += 1;
                    }
                    if class == T_HASH {
                        break;
                    }
                    start = i + 1;
                    eq = usize::MAX;
                }
                _ => return None,
            }
            i += 1;
        }
        // `?query#key`: the key runs to the end and holds no `?`.
        if i < len {
            if hash_first || key_end(bytes, i + 1)? != len {
                return None;
            }
            key = (i + 1, len);
            // The key moves in front of the query.
            canonical_as_written = false;
        }
    }
    let pairs = &mut pairs[..count];
    let mut version = None;
    for &(start, name_end, end) in pairs.iter() {
        match &bytes[start..name_end] {
            b"mount" => return None,
            b"version" => version = Some(fast_version(&bytes[(name_end + 1).min(end)..end])?),
            _ => {}
        }
    }
    // Sort by name (an insertion sort: a handful of pairs, usually already in order).
    for i in 1..pairs.len() {
        let mut j = i;
        while j > 0 && bytes[pairs[j - 1].0..pairs[j - 1].1] > bytes[pairs[j].0..pairs[j].1] {
            pairs.swap(j - 1, j);
            canonical_as_written = false;
            j -= 1;
        }
    }

    // The canonical string, allocated once with its exact length.
    let key_len = key.1 - key.0;
    let mut canonical_len = base + path_len + if key_len > 0 { 1 + key_len } else { 0 };
    for &(start, name_end, end) in pairs.iter() {
        // `&` or `?`, the pair, and the `=` of a bare name.
        canonical_len += 1 + (end - start) + usize::from(name_end == end);
    }
    let canonical = if canonical_as_written {
        input.to_owned()
    } else {
        build_canonical(input, scheme, path_len, key, pairs, canonical_len)
    };
    let path_start = base;
    let path_end = path_start + path_len;
    Some(SecretUri {
        canonical,
        provider: scheme.provider,
        engine: scheme.engine,
        path_start,
        mount_end: path_start + scan.mount_end.min(path_len),
        path_end,
        key_end: if key_len > 0 {
            path_end + 1 + key_len
        } else {
            path_end
        },
        version,
    })
}

/// The canonical string of a URI the fast route accepted that is not canonical as written,
/// allocated once with its exact length (`len`): runs of the input, in canonical order.
#[cold]
fn build_canonical(
    input: &str,
    scheme: &KnownScheme,
    path_len: usize,
    key: (usize, usize),
    pairs: &[(usize, usize, usize)],
    len: usize,
) -> String {
    let bytes = input.as_bytes();
    let base = scheme.name.len() + 3;
    let mut out = Runs::new(input, len);
    if scheme.lowercase {
        out.copy(0, base + path_len);
    } else {
        out.push(scheme.name);
        out.copy(scheme.name.len(), base + path_len);
    }
    if key.1 > key.0 {
        // With the `#` in front of it.
        out.copy(key.0 - 1, key.1);
    }
    let mut previous_end = None;
    for &(start, name_end, end) in pairs.iter() {
        // The input's `?` or `&` in front of the pair when it stands right there, so that a
        // query already in canonical order is a single copy.
        match previous_end {
            None if bytes[start - 1] == b'?' => out.copy(start - 1, start),
            Some(previous) if previous + 1 == start => out.copy(previous, start),
            None => out.push("?"),
            Some(_) => out.push("&"),
        }
        out.copy(start, end);
        if name_end == end {
            out.push("=");
        }
        previous_end = Some(end);
    }
    out.finish()
}

/// Where a key starting at `from` ends: the first `?` or the end. `None` for a `#` or a
/// control character in it.
fn key_end(bytes: &[u8], from: usize) -> Option<usize> {
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match TAIL[usize::from(b)] {
            T_TEXT | T_EQ | T_AMP => {}
            T_QMARK => return Some(i),
            _ => return None,
        }
    }
    Some(bytes.len())
}

/// A valid version of at most 19 digits (always fits `u64`); anything else is left to
/// [`parse_version`].
fn fast_version(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || value[0] == b'0' {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        (digit < 10).then(|| n * 10 + u64::from(digit))
    })
}

/// The canonical string under construction: runs of the input that follow each other there
/// are copied as one.
struct Runs<'a> {
    input: &'a str,
    out: String,
    from: usize,
    to: usize,
}

impl<'a> Runs<'a> {
    fn new(input: &'a str, capacity: usize) -> Self {
        Self {
            input,
            out: String::with_capacity(capacity),
            from: 0,
            to: 0,
        }
    }

    /// Appends `input[from..to]`.
    fn copy(&mut self, from: usize, to: usize) {
        if from != self.to {
            self.flush();
            self.from = from;
        }
        self.to = to;
    }

    /// Appends text that is not a run of the input.
    fn push(&mut self, text: &str) {
        self.flush();
        self.out.push_str(text);
    }

    fn flush(&mut self) {
        self.out.push_str(&self.input[self.from..self.to]);
        self.from = self.to;
    }

    fn finish(mut self) -> String {
        self.flush();
        self.out
    }
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
    // One past the last `.` (`usize::MAX`: none yet), so that no byte is read twice.
    let mut after_dot = usize::MAX;
    let mut i = 0;
    let end = loop {
        let Some(&b) = bytes.get(i) else {
            break i;
        };
        let class = CLASS[usize::from(b)];
        i += 1;
        // Plain bytes are the bulk of every path: one test each.
        if class == PLAIN {
            continue;
        }
        let at = i - 1;
        if class == SLASH {
            // An empty segment, or a segment that is exactly `.`.
            valid &= at != segment_start && !(at == segment_start + 1 && after_dot == at);
            mount_end = mount_end.min(at);
            segment_start = i;
        } else if class == DOT {
            // `..` anywhere.
            valid &= after_dot != at;
            after_dot = i;
        } else if class == END {
            break at;
        } else {
            valid = false;
        }
    };
    // The path must be non-empty and not end in a `.` segment. A trailing `/` is fine: the
    // `/` itself already checked the segment before it (so `a//` and `/` are invalid).
    valid &= end > 0 && !(end == segment_start + 1 && after_dot == end);
    PathScan {
        end,
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
    // Byte searches: both needles are ASCII, and a `str` pattern would set up a searcher.
    if let Some(i) = path.as_bytes().windows(2).position(|w| w == b"..") {
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
        if let Some(i) = position(segment.as_bytes(), b'*') {
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

    /// The fast route alone: `None` where `parse` falls back to the in-order layer.
    fn fast(input: &str) -> Option<SecretUri> {
        let scheme = known_scheme(input.as_bytes())?;
        let scan = scan_path(&input.as_bytes()[scheme.name.len() + 3..]);
        scan.valid
            .then(|| parse_fast(input, &scheme, &scan))
            .flatten()
    }

    #[test]
    fn the_fast_route_takes_the_common_shapes() {
        for input in [
            "openbao+kv2://secret/app/api",
            "OPENBAO+KV2://secret/app/api#token",
            "openbao+kv2://secret/app/api/",
            "openbao+kv2://secret/app/api/#k",
            "openbao+kv2://secret/app/api#token?version=3",
            "openbao+kv2://secret/app/api?version=3#token",
            "openbao+kv2://secret/app/api?z=1&a=2&m=3",
            "openbao+kv2://secret/app/api?version=1&x=y",
            "hashicorp+kv2://secret/team-a/svc_b/key.v1#x",
            "Db+Cred://db/readonly",
            "db+db://db/x",
            "db://db/readwrite",
            "file://a/b?&x&&y=1#",
            "file://dc-infra/config.json#pass word é",
            "bootstrap://local/token",
            "yaml://config/app.yaml#db",
        ] {
            let reference = parse_in_order(input);
            assert_eq!(fast(input).ok_or(input), reference.map_err(|_| input));
        }
    }

    #[test]
    fn the_fast_route_leaves_errors_and_rare_shapes_to_the_in_order_layer() {
        for input in [
            "openbao+kv2://secret/app/api#a#b",
            "openbao+kv2://secret/app/api?x=1&x=2",
            "openbao+kv2://secret/app/api?mount=other",
            "openbao+kv2://secret/app/api?version=007",
            "openbao+kv2://secret/app/api?version=18446744073709551615",
            "openbao+kv2://secret/app/api?version",
            "openbao+kv2://secret/app/api?=1",
            "openbao+kv2://secret/app/api?a#b?c",
            "openbao+kv2://secret/app/api#k\n",
            "openbao+kv2://secret/app/api#\u{a0}",
            "openbao+kv2://secret/app/api?a&b&c&d&e&f&g&h&i",
            "openbao+kv1://secret/app/api",
            "openbao+kv2:/secret/app/api",
        ] {
            assert_eq!(fast(input), None, "{input:?}");
        }
    }

    fn scheme() -> impl Strategy<Value = String> {
        let valid = prop::sample::select(vec![
            "openbao",
            "openbao+kv2",
            "hashicorp",
            "hashicorp+kv2",
            "db",
            "db+cred",
            "db+db",
            "bootstrap",
            "file",
            "yaml",
        ]);
        let near_misses = prop::sample::select(vec![
            "openbao+kv1",
            "openbao+",
            "db+",
            "db+c",
            "fil",
            "vault",
            "",
        ]);
        let schemes = prop_oneof![6 => valid, 1 => near_misses];
        (schemes, any::<u16>()).prop_map(|(s, mask)| {
            s.chars()
                .enumerate()
                .map(|(i, c)| {
                    if (mask >> (i % 16)) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        })
    }

    /// A URI from the grammar's parts, valid unless its scheme is a near miss or a part
    /// happens to break a rule (`..`, a repeated name, `mount`, a bad version).
    fn structured() -> impl Strategy<Value = String> {
        let segment = "[A-Za-z0-9_-][A-Za-z0-9._-]{0,5}";
        let name = prop_oneof![
            12 => "[a-z][a-z0-9]{0,3}",
            3 => Just("version".to_owned()),
            1 => Just("mount".to_owned()),
        ];
        let value = prop::option::of(prop_oneof![
            8 => "[0-9a-c?=é]{0,3}",
            4 => "[1-9][0-9]{0,18}",
            1 => Just("007".to_owned()),
            1 => Just("18446744073709551615".to_owned()),
        ]);
        (
            scheme(),
            prop::collection::vec(segment, 1..5),
            any::<bool>(),
            prop::option::of("[a-z0-9 =&é\u{a0}]{0,5}"),
            prop::collection::vec((name, value, prop::bool::weighted(0.1)), 0..7),
            any::<bool>(),
        )
            .prop_map(|(scheme, segments, slash, key, pairs, rfc_order)| {
                let mut uri = format!("{scheme}://{}", segments.join("/"));
                if slash {
                    uri.push('/');
                }
                let key = key.map(|k| format!("#{k}")).unwrap_or_default();
                let mut query = String::new();
                for (i, (name, value, empty_before)) in pairs.iter().enumerate() {
                    query.push(if i == 0 { '?' } else { '&' });
                    if *empty_before {
                        query.push('&');
                    }
                    query.push_str(name);
                    if let Some(value) = value {
                        query.push('=');
                        query.push_str(value);
                    }
                }
                if rfc_order {
                    format!("{uri}{query}{key}")
                } else {
                    format!("{uri}{key}{query}")
                }
            })
    }

    /// Mostly URI-shaped text: valid URIs, each also with one character put in or taken out
    /// somewhere, and noise. Every branch of both layers.
    fn uri_like() -> impl Strategy<Value = String> {
        let edit = prop::sample::select(vec![
            "#", "?", "&", "=", "/", ".", "*", "%2F", "\n", "\u{85}", "\u{a0}", " ", ":", "",
        ]);
        prop_oneof![
            structured(),
            (
                structured(),
                any::<prop::sample::Index>(),
                edit,
                any::<bool>()
            )
                .prop_map(|(uri, at, edit, remove)| {
                    let at = at.index(uri.chars().count() + 1);
                    let (at, next) = uri
                        .char_indices()
                        .map(|(i, c)| (i, i + c.len_utf8()))
                        .nth(at)
                        .unwrap_or((uri.len(), uri.len()));
                    let rest = if remove { &uri[next..] } else { &uri[at..] };
                    format!("{}{edit}{rest}", &uri[..at])
                }),
            (
                scheme(),
                prop::sample::select(vec!["://", ":/", ":", ":///", "//"]),
                "([a-cA_.-]|/|%2F|\\*|\n){0,14}",
                "(#|\\?|&|=|version=|mount=|[019]|[a-c]|\n|\u{85}|\u{a0}|é|/){0,16}",
            )
                .prop_map(|(scheme, separator, path, tail)| {
                    format!("{scheme}{separator}{path}{tail}")
                }),
        ]
    }

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20000))]

        /// `parse` (the fast route, then the in-order layer where it gives up) gives exactly
        /// what the rules in order give: the same URI in every field, or the same error.
        #[test]
        fn the_fast_route_agrees_with_the_rules_in_order(input in uri_like()) {
            let reference = parse_in_order(&input);
            prop_assert_eq!(parse(&input), reference.clone(), "{:?}", input);
            if let Some(uri) = fast(&input) {
                prop_assert_eq!(Ok(uri), reference, "{:?}", input);
            }
        }
    }
}
