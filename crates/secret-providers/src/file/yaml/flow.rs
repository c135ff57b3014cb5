//! The guard before libyaml: whether a YAML text's flow collections (`[…]`, `{…}`) are nested
//! shallowly enough for libyaml's scanner to read it in bounded time.

/// The most scanning work beyond linear a YAML text may cost (see [`yaml_flow_within_budget`]):
/// its flow depth summed over its bytes. 2^26 is 11 585 nested `[`, about a quarter of a second
/// of libyaml's scanner in a release build.
const FLOW_BUDGET: u128 = 1 << 26;

/// Whether libyaml's scanner reads `text` in bounded time. At every token it revisits the
/// pending simple key of each open flow collection (`[`, `{`), so its time grows with the flow
/// *depth* at each token, not with how many collections there are: 100 000 nested `[` take 18 s
/// (release build), 100 000 sibling `[]` 40 ms. A text is refused before it is parsed when its
/// flow depth summed over its bytes exceeds the budget (2^26: a file of any size may hold any
/// number of shallow flow collections; 11 585 nested in a row are too many).
///
/// The depth is taken from a linear pre-scan that follows libyaml's own rules where it is sure
/// of them: `#` comments, single- and double-quoted scalars (with their escapes, across lines),
/// block scalars (`|`, `>`: their content lines by libyaml's indentation rules), plain scalars
/// (whose `[`, `'` or `#` are text in the block context) and the block indentation that decides
/// which lines continue them. A brace inside any of those is text, not a collection. Wherever the
/// scan could read the text otherwise than libyaml (a tab in an indentation, a multi-line plain
/// scalar with brackets or quotes, explicit `?` keys, a tag holding quotes or brackets, a text
/// in UTF-16, …), it stops following and from there on counts every `[` and `{` outside a
/// comment as one more level, never closed: at worst it refuses what libyaml would read
/// quickly, never the other way round.
#[must_use]
pub fn yaml_flow_within_budget(text: &[u8]) -> bool {
    FlowScan::run(text).cost <= FLOW_BUDGET
}

/// libyaml's scanning work beyond linear, from above: the flow depth at each byte, summed.
#[derive(Debug)]
struct FlowScan<'a> {
    text: &'a [u8],
    pos: usize,
    /// Where the current line starts.
    line: usize,
    /// The flow depth from `since` on (exact while the scan follows libyaml).
    depth: u64,
    since: usize,
    max_depth: u64,
    cost: u128,
    /// libyaml's block indentation (`-1` outside any block collection), and the ones it
    /// returns to.
    indent: i64,
    indents: Vec<i64>,
    /// A plain scalar of the block context that ended its line: lines indented more than this
    /// continue it.
    plain: Option<i64>,
}

/// The scan met text it cannot be sure libyaml reads as it would.
#[derive(Debug)]
struct Lost;

impl<'a> FlowScan<'a> {
    fn run(text: &'a [u8]) -> Self {
        let mut scan = Self {
            text,
            pos: 0,
            line: 0,
            depth: 0,
            since: 0,
            max_depth: 0,
            cost: 0,
            indent: -1,
            indents: Vec::new(),
            plain: None,
        };
        // libyaml reads UTF-16 after its byte-order mark; this scan reads bytes.
        let followed = if text.starts_with(&[0xFF, 0xFE]) || text.starts_with(&[0xFE, 0xFF]) {
            Err(Lost)
        } else {
            if text.starts_with("\u{feff}".as_bytes()) {
                scan.pos = 3;
                scan.line = 3;
            }
            scan.block()
        };
        if followed.is_err() {
            scan.count_from(scan.line.min(scan.pos));
        }
        scan.set_depth(scan.depth);
        scan
    }

    fn set_depth(&mut self, depth: u64) {
        let bytes = self.pos.min(self.text.len()).saturating_sub(self.since);
        self.cost = self
            .cost
            .saturating_add(u128::from(self.depth) * bytes as u128);
        self.since = self.pos.max(self.since);
        self.depth = depth;
        self.max_depth = self.max_depth.max(depth);
    }

    /// From `from` to the end: every `[` and `{` outside a comment is one more level.
    fn count_from(&mut self, from: usize) {
        let text = self.text;
        self.pos = from;
        while self.pos < text.len() {
            match text[self.pos] {
                b'#' if self.after_blank(self.pos) => {
                    // A comment for libyaml wherever this `#` is, unless a quoted scalar that
                    // started before it ends after it on this line: then it holds a quote.
                    let end = self.line_end(self.pos);
                    if !text[self.pos..end].iter().any(|&b| b == b'\'' || b == b'"') {
                        self.pos = end;
                        continue;
                    }
                }
                b'[' | b'{' => self.set_depth(self.depth + 1),
                _ => {}
            }
            self.pos += 1;
        }
    }

    fn at(&self, at: usize) -> Option<u8> {
        self.text.get(at).copied()
    }

    /// The length of libyaml's line break at `at` (`\r\n`, `\r`, `\n`, NEL, LS, PS), or 0.
    fn break_len(&self, at: usize) -> usize {
        match self.text.get(at..).unwrap_or_default() {
            [b'\r', b'\n', ..] | [0xC2, 0x85, ..] => 2,
            [b'\r' | b'\n', ..] => 1,
            [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
            _ => 0,
        }
    }

    fn blank(&self, at: usize) -> bool {
        matches!(self.at(at), Some(b' ' | b'\t'))
    }

    /// A blank, a line break or the end (libyaml's `IS_BLANKZ`).
    fn blankz(&self, at: usize) -> bool {
        at >= self.text.len() || self.blank(at) || self.break_len(at) > 0
    }

    fn after_blank(&self, at: usize) -> bool {
        at == 0
            || matches!(self.text[at - 1], b' ' | b'\t' | b'\n' | b'\r')
            || (at >= 2 && self.text[at - 2..at] == [0xC2, 0x85])
            || (at >= 3 && matches!(self.text[at - 3..at], [0xE2, 0x80, 0xA8 | 0xA9]))
    }

    /// Where the line holding `at` ends (its break, or the end of the text).
    fn line_end(&self, mut at: usize) -> usize {
        while at < self.text.len() && self.break_len(at) == 0 {
            at += 1;
        }
        at
    }

    /// Past the break at `end` (the start of the next line).
    fn next_line(&self, end: usize) -> usize {
        end + self.break_len(end)
    }

    /// libyaml's column of `at` on the current line, in characters.
    fn column(&self, at: usize) -> i64 {
        let chars = self.text[self.line..at]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count();
        i64::try_from(chars).unwrap_or(i64::MAX)
    }

    fn skip_blanks(&self, mut at: usize) -> usize {
        while self.blank(at) {
            at += 1;
        }
        at
    }

    fn roll(&mut self, column: i64) {
        if self.indent < column {
            self.indents.push(self.indent);
            self.indent = column;
        }
    }

    fn unroll(&mut self, column: i64) {
        while self.indent > column {
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    /// Whether `at` starts a document marker (`---` or `...` then a blank or break).
    fn marker(&self, at: usize) -> Option<u8> {
        let three = self.text.get(at..at + 3)?;
        (three == b"---" || three == b"...")
            .then_some(three[0])
            .filter(|_| self.blankz(at + 3))
    }

    /// The block context, line by line.
    fn block(&mut self) -> Result<(), Lost> {
        while self.pos < self.text.len() {
            self.line = self.pos;
            self.block_line()?;
        }
        Ok(())
    }

    fn block_line(&mut self) -> Result<(), Lost> {
        let text = self.text;
        let start = self.pos;
        let p = self.skip_spaces(start);
        let end = self.line_end(p);
        let column = self.column(p);
        if p == end || text[p] == b'#' {
            // An empty line, or a comment (which ends a plain scalar).
            if p != end {
                self.plain = None;
            }
            self.pos = self.next_line(end);
            return Ok(());
        }
        if text[p] == b'\t' || text[p..].starts_with("\u{feff}".as_bytes()) {
            return Err(Lost);
        }
        if column == 0
            && let Some(marker) = self.marker(p)
        {
            self.unroll(-1);
            self.plain = None;
            let after = self.skip_blanks(p + 3);
            if marker == b'.' || after == end || text[after] == b'#' {
                return self.rest(p + 3);
            }
            return self.node(after, false);
        }
        if let Some(plain) = self.plain {
            if column > plain {
                return self.continuation(p, end);
            }
            self.plain = None;
        }
        if column == 0 && text[p] == b'%' {
            // A directive: its line is read as one.
            self.pos = self.next_line(end);
            return Ok(());
        }
        self.unroll(column);
        self.node(p, false)
    }

    fn skip_spaces(&self, mut at: usize) -> usize {
        while self.at(at) == Some(b' ') {
            at += 1;
        }
        at
    }

    /// A line that continues a plain scalar: text, up to a comment.
    fn continuation(&mut self, p: usize, end: usize) -> Result<(), Lost> {
        let text = self.text;
        let mut at = p;
        while at < end {
            match text[at] {
                b'#' if self.blank(at - 1) => {
                    self.plain = None;
                    break;
                }
                b':' if self.blankz(at + 1) => return Err(Lost),
                b'[' | b']' | b'{' | b'}' | b'\'' | b'"' => return Err(Lost),
                _ => at += 1,
            }
        }
        self.pos = self.next_line(end);
        Ok(())
    }

    /// After a complete node: blanks, then a comment or the line's end.
    fn rest(&mut self, at: usize) -> Result<(), Lost> {
        let at = self.skip_blanks(at);
        let end = self.line_end(at);
        if at != end && self.text[at] != b'#' {
            return Err(Lost);
        }
        self.pos = self.next_line(end);
        Ok(())
    }

    /// A node of the block context at `p` (a simple key may start there unless `value`: it is
    /// the value of a key on this line), to the end of its line or of its last line.
    fn node(&mut self, mut p: usize, value: bool) -> Result<(), Lost> {
        let text = self.text;
        // Block sequence entries: `- - item`.
        while !value && self.at(p) == Some(b'-') && self.blankz(p + 1) {
            self.roll(self.column(p));
            p += 1;
            if self.at(p) == Some(b'\t') {
                return Err(Lost);
            }
            p = self.skip_spaces(p);
            if self.at(p) == Some(b'\t') {
                return Err(Lost);
            }
            if p >= text.len() || self.break_len(p) > 0 || text[p] == b'#' {
                return self.rest(p);
            }
        }
        let key = self.column(p);
        // Properties: `&anchor`, `!tag`.
        while let Some(b'&' | b'!') = self.at(p) {
            let mut q = p + 1;
            while !self.blankz(q) {
                q += 1;
            }
            let odd = |b: &u8| match text[p] {
                b'&' => !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-'),
                _ => matches!(b, b'[' | b']' | b'{' | b'}' | b',' | b'\'' | b'"' | b'#'),
            };
            if text[p + 1..q].iter().any(odd) {
                return Err(Lost);
            }
            p = self.skip_blanks(q);
            if p >= text.len() || self.break_len(p) > 0 || text[p] == b'#' {
                return self.rest(p);
            }
        }
        match text[p] {
            b'[' | b'{' => {
                self.flow(p)?;
                self.rest(self.pos)
            }
            b'\'' | b'"' => {
                let line = self.line;
                let after = self.quoted(p);
                let q = self.skip_blanks(after);
                if self.at(q) == Some(b':') && self.blankz(q + 1) {
                    if value || self.line != line {
                        return Err(Lost);
                    }
                    self.roll(key);
                    return self.value(q + 1);
                }
                self.rest(after)
            }
            b'|' | b'>' => self.block_scalar(p),
            b'*' => {
                let mut q = p + 1;
                while self
                    .at(q)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    q += 1;
                }
                self.rest(q)
            }
            b'-' | b'?' | b':' if self.blankz(p + 1) => Err(Lost),
            b',' | b']' | b'}' | b'%' | b'@' | b'`' | b'\t' | b'#' => Err(Lost),
            _ => self.plain(p, value, key),
        }
    }

    /// The value after a key's `:` at `at`.
    fn value(&mut self, at: usize) -> Result<(), Lost> {
        let p = self.skip_blanks(at);
        if p >= self.text.len() || self.break_len(p) > 0 || self.text[p] == b'#' {
            return self.rest(p);
        }
        self.node(p, true)
    }

    /// A plain scalar of the block context: its line's text up to a key's `: ` or a comment.
    fn plain(&mut self, p: usize, value: bool, key: i64) -> Result<(), Lost> {
        let end = self.line_end(p);
        let mut at = p;
        while at < end {
            match self.text[at] {
                b':' if self.blankz(at + 1) => {
                    if value {
                        // A second key on one line: libyaml refuses it.
                        return Err(Lost);
                    }
                    self.roll(key);
                    return self.value(at + 1);
                }
                b'#' if self.blank(at - 1) => {
                    self.plain = None;
                    self.pos = self.next_line(end);
                    return Ok(());
                }
                _ => at += 1,
            }
        }
        self.plain = Some(self.indent);
        self.pos = self.next_line(end);
        Ok(())
    }

    /// A block scalar whose header (`|`, `>`) is at `p`: its content lines are text.
    fn block_scalar(&mut self, p: usize) -> Result<(), Lost> {
        let text = self.text;
        let mut at = p + 1;
        let mut increment = None;
        for _ in 0..2 {
            match self.at(at) {
                Some(b'+' | b'-') => at += 1,
                Some(digit @ b'1'..=b'9') if increment.is_none() => {
                    increment = Some(i64::from(digit - b'0'));
                    at += 1;
                }
                _ => {}
            }
        }
        let q = self.skip_blanks(at);
        let end = self.line_end(q);
        if q != end && (text[q] != b'#' || q == at) {
            return Err(Lost);
        }
        let parent = self.indent;
        let mut line = self.next_line(end);
        let content = match increment {
            Some(m) if parent >= 0 => parent + m,
            Some(m) => m,
            None => {
                // libyaml's: the most leading spaces up to the first non-empty line.
                let mut most = 0;
                let mut r = line;
                loop {
                    let s = self.skip_spaces(r);
                    most = most.max(s - r);
                    if self.at(s) == Some(b'\t') {
                        return Err(Lost);
                    }
                    match self.break_len(s) {
                        0 => break,
                        n => r = s + n,
                    }
                }
                i64::try_from(most)
                    .unwrap_or(i64::MAX)
                    .max(parent + 1)
                    .max(1)
            }
        };
        let content = usize::try_from(content).unwrap_or(usize::MAX);
        while line < text.len() {
            let mut s = line;
            while s - line < content && self.at(s) == Some(b' ') {
                s += 1;
            }
            if s - line == content {
                line = self.next_line(self.line_end(s));
                continue;
            }
            match self.at(s) {
                Some(b'\t') => return Err(Lost),
                _ if self.break_len(s) > 0 => line = self.next_line(s),
                // Less indented: the scalar ended before this line.
                _ => break,
            }
        }
        self.plain = None;
        self.pos = line;
        Ok(())
    }

    /// A quoted scalar from its quote at `p`, across lines: past its closing quote.
    fn quoted(&mut self, p: usize) -> usize {
        let text = self.text;
        let quote = text[p];
        let mut at = p + 1;
        while at < text.len() {
            match text[at] {
                b'\'' if quote == b'\'' => {
                    if self.at(at + 1) == Some(b'\'') {
                        at += 2;
                        continue;
                    }
                    return at + 1;
                }
                b'"' if quote == b'"' => return at + 1,
                b'\\' if quote == b'"' => {
                    at += 1;
                    if self.break_len(at) == 0 {
                        at += 1;
                        continue;
                    }
                }
                _ => {}
            }
            match self.break_len(at) {
                0 => at += 1,
                n => {
                    at += n;
                    self.line = at;
                }
            }
        }
        text.len()
    }

    /// A flow collection from its `[` or `{` at `p`: past the bracket that closes it.
    fn flow(&mut self, p: usize) -> Result<(), Lost> {
        let text = self.text;
        self.pos = p;
        self.set_depth(self.depth + 1);
        self.pos = p + 1;
        loop {
            self.flow_space()?;
            let Some(b) = self.at(self.pos) else {
                return Ok(());
            };
            match b {
                b'#' => self.pos = self.line_end(self.pos),
                b'[' | b'{' => {
                    self.set_depth(self.depth + 1);
                    self.pos += 1;
                }
                b']' | b'}' => {
                    self.set_depth(self.depth - 1);
                    self.pos += 1;
                    if self.depth == 0 {
                        return Ok(());
                    }
                }
                b',' | b'?' | b':' => self.pos += 1,
                b'\'' | b'"' => self.pos = self.quoted(self.pos),
                b'&' | b'*' => {
                    self.pos += 1;
                    while self
                        .at(self.pos)
                        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        self.pos += 1;
                    }
                }
                b'!' => {
                    let start = self.pos;
                    while !self.blankz(self.pos) {
                        self.pos += 1;
                    }
                    if text[start..self.pos].iter().any(|b| {
                        matches!(b, b'[' | b']' | b'{' | b'}' | b',' | b'\'' | b'"' | b'#')
                    }) {
                        return Err(Lost);
                    }
                }
                b'|' | b'>' | b'%' | b'@' | b'`' => return Err(Lost),
                b'-' if self.blankz(self.pos + 1) => return Err(Lost),
                _ => self.flow_plain()?,
            }
        }
    }

    /// Blanks and line breaks between flow tokens.
    fn flow_space(&mut self) -> Result<(), Lost> {
        loop {
            if self.blank(self.pos) {
                self.pos += 1;
                continue;
            }
            match self.break_len(self.pos) {
                0 => return Ok(()),
                n => {
                    self.pos += n;
                    self.line = self.pos;
                    let odd = self.marker(self.pos).is_some()
                        || matches!(self.at(self.pos), Some(b'%'))
                        || self.text[self.pos..].starts_with("\u{feff}".as_bytes());
                    if odd {
                        return Err(Lost);
                    }
                }
            }
        }
    }

    /// A plain scalar of the flow context, across lines: it ends at `,[]{}`, at a `:` before a
    /// blank, or at a comment.
    fn flow_plain(&mut self) -> Result<(), Lost> {
        loop {
            while !self.blankz(self.pos) {
                match self.text[self.pos] {
                    b',' | b'[' | b']' | b'{' | b'}' => return Ok(()),
                    b':' if self.blankz(self.pos + 1) => return Ok(()),
                    b':' if matches!(
                        self.at(self.pos + 1),
                        Some(b',' | b'?' | b'[' | b']' | b'{' | b'}')
                    ) =>
                    {
                        return Err(Lost);
                    }
                    _ => self.pos += 1,
                }
            }
            self.flow_space()?;
            match self.at(self.pos) {
                None | Some(b'#' | b',' | b'[' | b']' | b'{' | b'}') => return Ok(()),
                Some(b':') if self.blankz(self.pos + 1) => return Ok(()),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use zeroize::Zeroizing;

    use crate::{ProviderError, SecretValue};

    fn read(text: &str, key: Option<&str>) -> Result<SecretValue, ProviderError> {
        super::super::decode(&Zeroizing::new(text.as_bytes().to_vec()), key, "config")
    }

    fn code(result: Result<SecretValue, ProviderError>) -> &'static str {
        result.err().map_or("OK", |e| e.code())
    }

    #[test]
    fn deeply_nested_flow_collections_are_refused_before_parsing() {
        // 200 000 nested `[` would keep libyaml scanning for minutes in a debug build.
        let nested = format!("a: {}", "[".repeat(200_000));
        assert!(!yaml_flow_within_budget(nested.as_bytes()));
        assert_eq!(code(read(&nested, None)), "MALFORMED_RESPONSE");
        // 12 000 nested and closed: over the budget; 11 000: within it.
        let closed = |n: usize| format!("a: {}{}", "[".repeat(n), "]".repeat(n));
        assert!(!yaml_flow_within_budget(closed(12_000).as_bytes()));
        assert!(yaml_flow_within_budget(closed(8_000).as_bytes()));
        // An ordinary file with flow lists reads.
        let some: String = (0..500).map(|i| format!("k{i}: [1, 2]\n")).collect();
        assert_eq!(code(read(&some, Some("k7"))), "OK");
    }

    /// Flow collections libyaml reads in linear time, and braces that open none, whatever
    /// their number: none of them is refused.
    #[test]
    fn shallow_collections_and_braces_in_text_are_within_the_budget() {
        let repeat = |line: &str, n: usize| line.repeat(n);
        let cases = [
            // 20 000 flow lists in 240 KB (the old guard counted them all).
            (0..20_000)
                .map(|i| format!("k{i}: [1]\n"))
                .collect::<String>(),
            // A 1 MB file with 200 braces in comments, and its settings.
            format!(
                "{}{}name: svc\nport: 1\n",
                repeat("# see [the docs] and {this}\n", 200),
                repeat(
                    "# plain filler comment line without braces at all\n",
                    20_000
                )
            ),
            repeat(
                "pattern: \"^[a-z]{3}[[[{{{$\" # [\nother: '[{it''s}]'\n",
                20_000,
            ),
            repeat("- {a: [1, \"]]]\"], b: 'x}}', c: [[], {}]}\n", 20_000),
            format!(
                "script: |\n{}json: >-\n  {}\nafter: [x]\n",
                repeat("  if [[ $x ]]; then echo \"{[\"; fi\n", 20_000),
                repeat("{\"a\": [[[", 5_000)
            ),
            format!("[{}]", repeat("[[1, {\"k\": \"v]\"}], 'a''b'],\n", 20_000)),
            repeat(
                "key: it's [not a list] # and {a comment}\n  continued: text\n",
                20_000,
            ),
            repeat(
                "- &anchor value with 'quotes\" and [brackets\nalias: *anchor\n",
                20_000,
            ),
        ];
        for text in cases {
            assert!(text.len() > 200_000, "{}", text.len());
            let scan = FlowScan::run(text.as_bytes());
            assert!(scan.cost <= FLOW_BUDGET, "{} for {:.60?}", scan.cost, text);
        }
        // And the file provider reads them.
        let lists: String = (0..20_000).map(|i| format!("k{i}: [1]\n")).collect();
        assert_eq!(code(read(&lists, Some("k7"))), "OK");
    }

    /// Deep nesting behind what a scan could take for text: every one is refused.
    #[test]
    fn nesting_hidden_behind_quotes_comments_and_scalars_is_still_refused() {
        let n = 100_000;
        let nested = |prefix: &str, unit: &str| format!("{prefix}{}", unit.repeat(n));
        let utf16: Vec<u8> = "\u{feff}a: "
            .encode_utf16()
            .chain("[".repeat(n).encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut cases: Vec<Vec<u8>> = vec![
            utf16,
            [&[0xFE, 0xFF][..], &nested("a: ", "[").into_bytes()].concat(),
        ];
        for text in [
            nested("a: ", "["),
            nested("a: ", "{a: "),
            nested("a:\n", "[\n"),
            nested("x: a['\ny: ", "["),
            nested("- a['q: ", "[") + " '",
            nested("a: ", "[ \"#\" "),
            nested("a: ", "[ '#' "),
            nested("a: ", "[it's, "),
            nested("a: ", "[x #'\n"),
            nested("a: ", "['\"', "),
            nested("a: ", "[\"\\\"\", "),
            nested("a: ", "['it''s', "),
            nested("a: x\n  [y\nb: ", "["),
            nested("a: x\n  'y\nb: ", "["),
            nested("key: |\n  don 't\nb: ", "["),
            nested("key: |\n  \"\nb: ", "["),
            nested("key: >2\n   '\n  [\nb: ", "["),
            nested("a: # c\u{2028}", "["),
            nested("a: # c\u{85}", "["),
            nested("a: # c\r", "["),
            nested("a: !t'x ", "["),
            nested("a: !t[x ", "["),
            nested("a: \"x\n# \" ", "["),
            nested("a:\n\t", "["),
            nested("--- ", "["),
            nested("a: x\n--- ", "["),
            nested("? ", "["),
            nested("a: [x]\n  ", "["),
            nested("a: 'x' ", "["),
            nested("a: b: ", "["),
            nested("a: ", "[&x "),
            nested("a: ", "[*x, "),
        ] {
            cases.push(text.into_bytes());
        }
        for text in cases {
            let started = std::time::Instant::now();
            let scan = FlowScan::run(&text);
            assert!(
                scan.cost > FLOW_BUDGET,
                "{:?} let through",
                String::from_utf8_lossy(&text[..40])
            );
            // The scan itself is linear.
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }
    }

    /// The scan's depth is never below libyaml's, on random flow text libyaml reads.
    #[test]
    fn the_scan_never_sees_less_depth_than_libyaml() {
        // The flow depth of a value read from a flow collection. A one-pair mapping in a list
        // may be an implicit pair (`[a: b]`), which opens no flow level: not counted.
        fn depth(value: &Value) -> u64 {
            match value {
                Value::Array(items) => {
                    let pair = |item: &Value| match item {
                        Value::Object(map) if map.len() == 1 => map.values().map(depth).max(),
                        other => Some(depth(other)),
                    };
                    1 + items.iter().filter_map(pair).max().unwrap_or(0)
                }
                Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        const PIECES: &[&str] = &[
            "[", "[", "[", "]", "]", "{", "}", ", ", ",", " ", "a", "b c", "'", "\"", "#", " #",
            "\n", "\n  ", ": ", ":", "\\", "''", "\\\"", "it's", "*x", "&x ", "-", "\r\n",
            "\u{2028}", "\t",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut read = 0;
        for _ in 0..100_000 {
            let len = 2 + next() % 24;
            // A flow collection under `k` holds no block collection: its depth is its flow depth.
            let mut text = String::from("k: [");
            for _ in 0..len {
                text.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            // Closed as if nothing were quoted, for more texts that read.
            let mut open = vec![b']'];
            for b in text.bytes().skip(4) {
                match b {
                    b'[' => open.push(b']'),
                    b'{' => open.push(b'}'),
                    b']' | b'}' => {
                        open.pop();
                    }
                    _ => {}
                }
            }
            text.extend(open.iter().rev().map(|&b| char::from(b)));
            let Ok(Value::Object(map)) = serde_yaml_ng::from_str::<Value>(&text) else {
                continue;
            };
            read += 1;
            let seen = FlowScan::run(text.as_bytes()).max_depth;
            let real = map.get("k").filter(|k| k.is_array()).map_or(0, depth);
            assert!(seen >= real, "{text:?}: scan {seen}, libyaml {real}");
        }
        assert!(read > 1_000, "only {read} texts read");
    }
}
