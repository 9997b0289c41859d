//! A JSON scanner over text, for the hot paths that read JSON without
//! building values: decoding a stream record straight from its text
//! (`dynamodb::parse_record_text`) and diffing image texts (`patch`).
//!
//! It checks the grammar serde_json checks and hands out slices of the text;
//! it never allocates, except to unescape a string that has escapes (which
//! serde_json does). Every method answers `None` at the first thing it does
//! not accept, and the caller then falls back to serde_json for the answer
//! (or the error message). Nesting deeper than [`MAX_DEPTH`] is refused
//! below serde_json's own limit (128), so the scanner never accepts a text
//! serde_json would refuse.

use std::borrow::Cow;

/// Deepest nesting of objects and arrays the scanner follows.
pub(crate) const MAX_DEPTH: u32 = 100;

/// A position in a JSON text.
pub(crate) struct Scan<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Scan {
            text,
            pos: 0,
            depth: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips the whitespace JSON allows between tokens.
    fn skip_ws(&mut self) {
        let bytes = self.bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Bytes of text not read yet.
    pub(crate) fn rest(&self) -> usize {
        self.text.len() - self.pos
    }

    /// The next byte that is not whitespace, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes().get(self.pos).copied()
    }

    /// Consumes `byte` if it comes next; says whether it did.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `byte`, which must come next.
    pub(crate) fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Opens an object or array (`{` or `[`), counting its depth.
    pub(crate) fn open(&mut self, byte: u8) -> Option<()> {
        self.expect(byte)?;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// After an entry of the object or array opened with `open`: true when
    /// a `,` follows (another entry comes), false when `close` ends it.
    pub(crate) fn next_entry(&mut self, close: u8) -> Option<bool> {
        if self.eat(b',') {
            return Some(true);
        }
        self.expect(close)?;
        self.depth -= 1;
        Some(false)
    }

    /// Right after `open`: true when the object or array is empty (and
    /// consumes its `close`).
    pub(crate) fn empty(&mut self, close: u8) -> bool {
        if self.eat(close) {
            self.depth -= 1;
            true
        } else {
            false
        }
    }

    /// An object: `member` is called with each key, the scanner at its
    /// value, which `member` must read.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.open(b'{')?;
        if self.empty(b'}') {
            return Some(());
        }
        loop {
            let key = self.key()?;
            member(self, key)?;
            if !self.next_entry(b'}')? {
                return Some(());
            }
        }
    }

    /// An array: `element` is called with the scanner at each element,
    /// which `element` must read, and the element's index.
    pub(crate) fn array(
        &mut self,
        mut element: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        self.open(b'[')?;
        if self.empty(b']') {
            return Some(());
        }
        let mut index = 0;
        loop {
            element(self, index)?;
            if !self.next_entry(b']')? {
                return Some(());
            }
            index += 1;
        }
    }

    /// A string, unescaped: borrowed from the text when it has no escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.pos;
        let bytes = self.bytes();
        self.pos = plain_run(bytes, self.pos);
        match *bytes.get(self.pos)? {
            b'"' => {
                self.pos += 1;
                Some(Cow::Borrowed(&self.text[start..self.pos - 1]))
            }
            b'\\' => self.escaped(start),
            _ => None,
        }
    }

    /// The rest of a string with escapes from `start` (just after its
    /// opening quote): serde_json unescapes it, and refuses what it refuses.
    fn escaped(&mut self, start: usize) -> Option<Cow<'a, str>> {
        let bytes = self.bytes();
        loop {
            match *bytes.get(self.pos)? {
                b'"' => break,
                b'\\' => self.pos += 2,
                0..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
        self.pos += 1;
        let quoted = self.text.get(start - 1..self.pos)?;
        serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
    }

    /// A key and its `:`.
    pub(crate) fn key(&mut self) -> Option<Cow<'a, str>> {
        let key = self.string()?;
        self.expect(b':')?;
        Some(key)
    }

    /// A key of ASCII letters written without escapes, and its `:`, as
    /// bytes; `None` for any other key (which may still be valid JSON).
    pub(crate) fn word_key(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let bytes = self.bytes();
        let start = self.pos;
        while bytes.get(self.pos).is_some_and(u8::is_ascii_alphabetic) {
            self.pos += 1;
        }
        let word = &bytes[start..self.pos];
        self.pos += 1;
        (bytes.get(self.pos - 1) == Some(&b'"')).then_some(())?;
        self.expect(b':')?;
        Some(word)
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal("true").map(|()| true),
            b'f' => self.literal("false").map(|()| false),
            _ => None,
        }
    }

    /// Whether a `null` comes next (consumed if so).
    pub(crate) fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal("null").is_some()
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.pos + word.len();
        (self.text.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// Any JSON value, checked and skipped; its text.
    pub(crate) fn value(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let start = self.pos;
        self.skip_value()?;
        Some(&self.text[start..self.pos])
    }

    /// The text of the value that comes next, found by its brackets and
    /// quotes alone, unchecked: only for text already known to be JSON (an
    /// image), where it is several times faster than [`Scan::value`].
    pub(crate) fn value_unchecked(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let bytes = self.bytes();
        let start = self.pos;
        let end = match *bytes.get(start)? {
            b'"' => string_end(bytes, start + 1)?,
            b'{' | b'[' => {
                let mut depth = 0u32;
                let mut pos = start;
                loop {
                    match *bytes.get(pos)? {
                        b'"' => {
                            pos = string_end(bytes, pos + 1)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                break pos + 1;
                            }
                        }
                        _ => {}
                    }
                    pos += 1;
                }
            }
            _ => {
                let mut pos = start;
                while bytes.get(pos).is_some_and(|b| {
                    !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    pos += 1;
                }
                pos
            }
        };
        self.pos = end;
        Some(&self.text[start..end])
    }

    /// When the value that comes next is `expected`'s text, byte for byte,
    /// reads it and gives its text; otherwise reads nothing. Like
    /// [`Scan::value_unchecked`], only for text known to be JSON (and
    /// `expected` a whole JSON value).
    pub(crate) fn same_value(&mut self, expected: &str) -> Option<&'a str> {
        self.skip_ws();
        let start = self.pos;
        let end = start + expected.len();
        let text = self.text.get(start..end)?;
        // A number is also the start of a longer one; anything else ends
        // where its text does.
        let ends = match self.bytes().get(end) {
            None => true,
            Some(b) => matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'),
        };
        (ends && same(text, expected)).then(|| {
            self.pos = end;
            text
        })
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(|scan, _| scan.skip_value()),
            b'[' => self.array(|scan, _| scan.skip_value()),
            b'"' => self.string().map(drop),
            b't' | b'f' => self.boolean().map(drop),
            b'n' => self.null().then_some(()),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A number, by JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        let bytes = self.bytes();
        let digits = |pos: &mut usize| {
            let start = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos > start
        };
        let mut pos = self.pos;
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        match bytes.get(pos)? {
            b'0' => pos += 1,
            b'1'..=b'9' => {
                digits(&mut pos);
            }
            _ => return None,
        }
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            if !digits(&mut pos) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = bytes.get(pos) {
            pos += 1;
            if let Some(b'+' | b'-') = bytes.get(pos) {
                pos += 1;
            }
            if !digits(&mut pos) {
                return None;
            }
        }
        self.pos = pos;
        Some(())
    }
}

/// The end of the run of bytes from `pos` that stand for themselves in a
/// JSON string (not `"`, `\` or a control character), read eight at a
/// time: strings are most of a record's bytes.
pub(crate) fn plain_run(bytes: &[u8], mut pos: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `word` that is zero (or below 0x20). A
    // borrow can flag a byte above a flagged one, never below: the lowest
    // flag is exact.
    let zeros = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let controls = |word: u64| word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let stops = zeros(word ^ (ONES * u64::from(b'"')))
            | zeros(word ^ (ONES * u64::from(b'\\')))
            | controls(word);
        if stops != 0 {
            return pos + (stops.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while bytes
        .get(pos)
        .is_some_and(|&b| b >= 0x20 && b != b'"' && b != b'\\')
    {
        pos += 1;
    }
    pos
}

/// Just past the closing quote of the string whose text starts at `pos`.
fn string_end(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos = plain_run(bytes, pos);
        match *bytes.get(pos)? {
            b'"' => return Some(pos + 1),
            b'\\' => pos += 2,
            _ => pos += 1,
        }
    }
}

/// Whether two texts are the same bytes. On wasm32 they are compared
/// eight bytes at a time ([`same_words`]), several times faster than the C
/// library's byte-by-byte `memcmp` there.
pub(crate) fn same(a: &str, b: &str) -> bool {
    #[cfg(target_arch = "wasm32")]
    return same_words(a.as_bytes(), b.as_bytes());
    #[cfg(not(target_arch = "wasm32"))]
    return a == b;
}

/// The byte order of two texts (`str`'s own order), compared eight bytes at
/// a time and inline: keys are short, and a call to `memcmp` costs more than
/// comparing them.
pub(crate) fn order(a: &str, b: &str) -> std::cmp::Ordering {
    order_words(a.as_bytes(), b.as_bytes())
}

fn order_words(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let common = a.len().min(b.len());
    let mut at = 0;
    // Big-endian words compare as their bytes do, in order.
    while at + 8 <= common {
        let x = u64::from_be_bytes(a[at..at + 8].try_into().expect("eight bytes"));
        let y = u64::from_be_bytes(b[at..at + 8].try_into().expect("eight bytes"));
        if x != y {
            return x.cmp(&y);
        }
        at += 8;
    }
    while at < common {
        if a[at] != b[at] {
            return a[at].cmp(&b[at]);
        }
        at += 1;
    }
    a.len().cmp(&b.len())
}

#[cfg(any(target_arch = "wasm32", test))]
fn same_words(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut chunks_a = a.chunks_exact(8);
    let mut chunks_b = b.chunks_exact(8);
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("eight bytes"));
    (&mut chunks_a)
        .zip(&mut chunks_b)
        .all(|(x, y)| word(x) == word(y))
        && chunks_a.remainder() == chunks_b.remainder()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_reads_only_a_whole_equal_value() {
        for (text, expected, taken) in [
            ("12,", "12", Some("12")),
            ("123,", "12", None),
            ("12.5}", "12", None),
            ("12e3]", "12", None),
            ("  12 ", "12", Some("12")),
            ("12", "12", Some("12")),
            (r#""ab"}"#, r#""ab""#, Some(r#""ab""#)),
            (r#""ab""#, r#""ac""#, None),
            (r#"{"a":[1]},"#, r#"{"a":[1]}"#, Some(r#"{"a":[1]}"#)),
            ("1", "12", None),
        ] {
            let mut scan = Scan::new(text);
            assert_eq!(
                scan.same_value(expected),
                taken,
                "{text:?} against {expected:?}"
            );
            let left = if taken.is_some() {
                text.trim_start().len() - expected.len()
            } else {
                text.len()
            };
            assert_eq!(scan.rest(), left, "{text:?}: only an equal value is read");
        }
    }

    /// What the scanner reads as one whole value, or None.
    fn whole(text: &str) -> Option<&str> {
        let mut scan = Scan::new(text);
        let value = scan.value()?;
        scan.at_end().then_some(value)
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for text in [
            r#"{"a": [1, -2.5e+3, 0, true, false, null, "x\"\u00e9"], "b": {}}"#,
            "[]",
            " [ ] ",
            r#""\ud83d\ude00""#,
            "-0.0E-0",
        ] {
            assert!(whole(text).is_some(), "{text}");
            assert!(serde_json::from_str::<serde_json::Value>(text).is_ok());
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        for text in [
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "+1",
            "[1,]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            "\"\u{1}\"",
            r#""\x""#,
            r#""\ud800""#,
            "tru",
            "nul",
            "[1 2]",
            &deep,
        ] {
            assert!(whole(text).is_none(), "{text}");
        }
    }

    #[test]
    fn plain_runs_end_at_the_first_stop_wherever_it_sits() {
        // Every position of every stop byte, after every kind of byte.
        for stop in [b'"', b'\\', 0, 0x1f, b'\n'] {
            for before in [b'a', 0x7f, 0x80, 0xff, b'!', b'#', b'[', 0x20, b'"', 0x21] {
                for at in 0..20 {
                    let mut text = vec![before; 24];
                    text[at] = stop;
                    let end = plain_run(&text, 0);
                    let expected = text
                        .iter()
                        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                        .unwrap_or(text.len());
                    assert_eq!(end, expected, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn plain_runs_stop_at_quotes_backslashes_and_controls() {
        for (text, end) in [
            ("abcdefghijklmnop\"", 16),
            ("abcdefgh\\", 8),
            ("abc\u{1f}defghijkl", 3),
            ("abcdefghijk\u{0}", 11),
            ("\u{7f}é€😀abcdefghij", "\u{7f}é€😀abcdefghij".len()),
            ("", 0),
        ] {
            assert_eq!(plain_run(text.as_bytes(), 0), end, "{text:?}");
        }
        for (a, b) in [
            ("abcdefghij", "abcdefghij"),
            ("abcdefghij", "abcdefghik"),
            ("abcdefghij", "bbcdefghij"),
            ("abc", "abcd"),
            ("", ""),
            ("abcdefgh", "abcdefgh"),
            ("abcdefgh", "abcdefgha"),
            ("abcdefghé", "abcdefghz"),
            ("a", ""),
        ] {
            assert_eq!(same_words(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
            assert_eq!(same(a, b), a == b);
            for (x, y) in [(a, b), (b, a)] {
                assert_eq!(order_words(x.as_bytes(), y.as_bytes()), x.cmp(y), "{x} {y}");
                assert_eq!(order(x, y), x.cmp(y));
            }
        }
    }

    #[test]
    fn unchecked_values_end_where_checked_ones_do() {
        let text = r#"{"a": [1, {"b": "x\"]}"}, -2.5e3], "c" : "s\\", "d":true , "e":{}}"#;
        let (mut checked, mut unchecked) = (Scan::new(text), Scan::new(text));
        for scan in [&mut checked, &mut unchecked] {
            scan.open(b'{').unwrap();
        }
        loop {
            assert_eq!(checked.key(), unchecked.key());
            let value = checked.value().unwrap();
            assert_eq!(unchecked.value_unchecked(), Some(value));
            let more = checked.next_entry(b'}').unwrap();
            assert_eq!(unchecked.next_entry(b'}'), Some(more));
            if !more {
                break;
            }
        }
        assert!(checked.at_end() && unchecked.at_end());
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let mut scan = Scan::new(r#""plain" "a\/b""#);
        assert!(matches!(scan.string(), Some(Cow::Borrowed("plain"))));
        assert_eq!(scan.string().as_deref(), Some("a/b"));
    }
}
