//! A borrowing JSON reader for the Zipkin v2 fast path ([`super::v2_json`]).
//!
//! It accepts exactly what serde_json's `from_slice` accepts where the Zipkin schema reads
//! a value, and does not explain rejections: every method returns `None` for input it does
//! not take, and the caller then asks serde for the verdict and its message. What it takes:
//! - strings: no raw control characters; escapes as JSON defines them. A string that is read
//!   is valid UTF-8 once unescaped, with `\u` surrogates paired; one that is skipped only
//!   needs well-formed escapes (its bytes are not checked), as serde_json skips it;
//! - numbers: JSON's grammar (no leading zeros, digits after `.` and `e`);
//! - whitespace: space, tab, CR and LF.
//!
//! No recursion: skipped values of any depth use a stack of open brackets, bounded by the
//! body's length.

use std::borrow::Cow;

use super::Str;

pub(super) struct Reader<'a> {
    b: &'a [u8],
    /// The whole body, when it is valid UTF-8: strings are then sliced from it without
    /// checking them again.
    text: Option<&'a str>,
    pos: usize,
    /// Open brackets of the value being skipped.
    frames: Vec<u8>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Reader { b, text: simdutf8::basic::from_utf8(b).ok(), pos: 0, frames: Vec::new() }
    }

    /// The next byte that is not whitespace (not consumed); None at the end.
    #[inline]
    pub(super) fn peek(&mut self) -> Option<u8> {
        let mut c = *self.b.get(self.pos)?;
        if c > b' ' {
            return Some(c);
        }
        while matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
            self.pos += 1;
            c = *self.b.get(self.pos)?;
        }
        Some(c)
    }

    /// Consumes the byte [`Reader::peek`] returned.
    #[inline]
    pub(super) fn bump(&mut self) {
        self.pos += 1;
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// `null`.
    #[inline]
    pub(super) fn null(&mut self) -> Option<()> {
        let end = self.pos + 4;
        (self.b.get(self.pos..end)? == b"null").then(|| self.pos = end)
    }

    /// Whether the next value is `null` (consumed if so).
    #[inline]
    pub(super) fn is_null(&mut self) -> Option<bool> {
        Some(self.peek()? == b'n' && self.null().is_some())
    }

    /// The members of an object at the cursor: `member` reads each value, given its key.
    #[inline]
    pub(super) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Str<'a>) -> Option<()>,
    ) -> Option<()> {
        if self.peek()? != b'{' {
            return None;
        }
        self.bump();
        if self.peek()? == b'}' {
            self.bump();
            return Some(());
        }
        loop {
            let key = self.str()?;
            if self.peek()? != b':' {
                return None;
            }
            self.bump();
            member(self, key)?;
            match self.peek()? {
                b',' => self.bump(),
                b'}' => {
                    self.bump();
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The elements of an array at the cursor, at most `max`: `element` reads each, given
    /// its index.
    #[inline]
    pub(super) fn array(
        &mut self,
        max: usize,
        mut element: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        if self.peek()? != b'[' {
            return None;
        }
        self.bump();
        let mut i = 0;
        loop {
            match self.peek()? {
                b']' => {
                    self.bump();
                    return Some(());
                }
                _ if i == 0 => {}
                b',' => {
                    self.bump();
                    if self.peek()? == b']' {
                        return None;
                    }
                }
                _ => return None,
            }
            if i == max {
                return None;
            }
            element(self, i)?;
            i += 1;
        }
    }

    /// A string, borrowed from the body when it has no escapes.
    #[inline(always)]
    pub(super) fn str(&mut self) -> Option<Str<'a>> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.pos + 1;
        let end = self.special(start);
        match *self.b.get(end)? {
            b'"' => {
                self.pos = end + 1;
                self.slice(start, end).map(Cow::Borrowed)
            }
            b'\\' => self.escaped(start, end).map(Cow::Owned),
            _ => None,
        }
    }

    /// A string or null.
    #[inline]
    pub(super) fn opt_str(&mut self) -> Option<Option<Str<'a>>> {
        if self.is_null()? {
            return Some(None);
        }
        self.str().map(Some)
    }

    fn slice(&self, start: usize, end: usize) -> Option<&'a str> {
        match self.text {
            Some(text) => text.get(start..end),
            None => std::str::from_utf8(self.b.get(start..end)?).ok(),
        }
    }

    /// The rest of a string whose first escape is at `at`, unescaped.
    #[cold]
    fn escaped(&mut self, start: usize, mut at: usize) -> Option<String> {
        let mut out = self.b.get(start..at)?.to_vec();
        loop {
            match *self.b.get(at)? {
                b'"' => {
                    self.pos = at + 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => at = self.unescape(at + 1, &mut out)?,
                _ => return None,
            }
            let next = self.special(at);
            out.extend_from_slice(self.b.get(at..next)?);
            at = next;
        }
    }

    /// Appends the escape whose letter is at `at`; the index after it.
    fn unescape(&self, at: usize, out: &mut Vec<u8>) -> Option<usize> {
        let byte = match *self.b.get(at)? {
            b @ (b'"' | b'\\' | b'/') => b,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = self.hex4(at + 1)?;
                let (c, next) = match hi {
                    0xdc00..=0xdfff => return None,
                    0xd800..=0xdbff => {
                        if self.b.get(at + 5..at + 7)? != b"\\u" {
                            return None;
                        }
                        let lo = self.hex4(at + 7)?;
                        if !(0xdc00..=0xdfff).contains(&lo) {
                            return None;
                        }
                        let c = 0x10000 + ((hi as u32 - 0xd800) << 10) + (lo as u32 - 0xdc00);
                        (c, at + 11)
                    }
                    _ => (hi as u32, at + 5),
                };
                let mut buf = [0; 4];
                out.extend_from_slice(char::from_u32(c)?.encode_utf8(&mut buf).as_bytes());
                return Some(next);
            }
            _ => return None,
        };
        out.push(byte);
        Some(at + 1)
    }

    /// Four hex digits at `at`.
    fn hex4(&self, at: usize) -> Option<u16> {
        let mut v = 0;
        for &c in self.b.get(at..at + 4)? {
            v = v << 4 | (c as char).to_digit(16)? as u16;
        }
        Some(v)
    }

    /// The index of the first `"`, `\` or control character at or after `i` (the length
    /// when there is none), eight bytes at a time.
    #[inline]
    fn special(&self, mut i: usize) -> usize {
        const ONES: u64 = u64::MAX / 255;
        while let Some(chunk) = self.b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            let quote = w ^ (ONES * b'"' as u64);
            let backslash = w ^ (ONES * b'\\' as u64);
            // Each term sets a byte's top bit where the byte is the one sought; borrows
            // only spread upwards from a match, so the lowest set bit is exact.
            let found = ((w.wrapping_sub(ONES * 0x20) & !w)
                | (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash))
                & (ONES << 7);
            if found != 0 {
                return i + found.trailing_zeros() as usize / 8;
            }
            i += 8;
        }
        while let Some(&c) = self.b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return i;
            }
            i += 1;
        }
        i
    }

    /// A number: where it starts, and its value when it is an integer that fits a u64
    /// (not negative, no fraction or exponent).
    #[inline]
    fn number(&mut self) -> Option<(usize, Option<u64>)> {
        let (b, start) = (self.b, self.pos);
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        i += negative as usize;
        let mut v = Some(0u64);
        match *b.get(i)? {
            b'0' => {
                i += 1;
                if b.get(i).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
            }
            b'1'..=b'9' => {
                // Eight digits at a time (timestamps have sixteen), then one at a time.
                while let Some(eight) = b.get(i..i + 8).and_then(eight_digits) {
                    v = v.and_then(|v| v.checked_mul(100_000_000)?.checked_add(eight));
                    i += 8;
                }
                while let Some(&d @ b'0'..=b'9') = b.get(i) {
                    v = v.and_then(|v| v.checked_mul(10)?.checked_add((d - b'0') as u64));
                    i += 1;
                }
            }
            _ => return None,
        }
        let mut integer = !negative;
        if b.get(i) == Some(&b'.') {
            i = digits(b, i + 1)?;
            integer = false;
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            i += matches!(b.get(i), Some(b'+' | b'-')) as usize;
            i = digits(b, i)?;
            integer = false;
        }
        self.pos = i;
        Some((start, v.filter(|_| integer)))
    }

    /// A number as serde reads it into an f64.
    #[cold]
    fn float_from(&self, start: usize) -> Option<f64> {
        let f: f64 = std::str::from_utf8(self.b.get(start..self.pos)?).ok()?.parse().ok()?;
        // serde_json rejects numbers out of the f64 range.
        f.is_finite().then_some(f)
    }

    /// A number as an f64 (as serde reads one into `f64`).
    #[inline]
    pub(super) fn f64(&mut self) -> Option<f64> {
        match self.number()? {
            (_, Some(v)) => Some(v as f64),
            (start, None) => self.float_from(start),
        }
    }

    /// A number as a u16 (as serde reads one into `u16`: an integer in range).
    pub(super) fn u16(&mut self) -> Option<u16> {
        self.number()?.1?.try_into().ok()
    }

    /// Skips one value of any type and depth.
    pub(super) fn skip(&mut self) -> Option<()> {
        self.frames.clear();
        loop {
            // A value.
            match self.peek()? {
                b'n' => self.null()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                }
                b'"' => self.skip_str()?,
                open @ (b'[' | b'{') => {
                    self.bump();
                    let close = open + 2; // `]` and `}`
                    if self.peek()? == close {
                        self.bump();
                    } else {
                        self.frames.push(open);
                        if open == b'{' {
                            self.skip_key()?;
                        }
                        continue;
                    }
                }
                _ => return None,
            }
            // What follows it: closing brackets, then a comma or the end.
            loop {
                let Some(&open) = self.frames.last() else {
                    return Some(());
                };
                match self.peek()? {
                    b',' => {
                        self.bump();
                        if open == b'{' {
                            self.skip_key()?;
                        }
                        break;
                    }
                    c if c == open + 2 => {
                        self.bump();
                        self.frames.pop();
                    }
                    _ => return None,
                }
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.b.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A skipped object's key and its colon.
    fn skip_key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.skip_str()?;
        (self.peek()? == b':').then(|| self.bump())
    }

    /// Skips a string at the cursor: escapes must be well formed, the bytes are not checked.
    fn skip_str(&mut self) -> Option<()> {
        let mut i = self.pos + 1;
        loop {
            i = self.special(i);
            match *self.b.get(i)? {
                b'"' => {
                    self.pos = i + 1;
                    return Some(());
                }
                b'\\' => match *self.b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        self.hex4(i + 2)?;
                        i += 6;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }
}

/// The value of eight ASCII digits; None if any byte is not a digit.
#[inline]
fn eight_digits(b: &[u8]) -> Option<u64> {
    let w = u64::from_le_bytes(b.try_into().ok()?);
    // Every byte 0x30..=0x39: high nibble 3, and adding 6 does not carry into it.
    let all_digits = (w & 0xf0f0_f0f0_f0f0_f0f0)
        | ((w.wrapping_add(0x0606_0606_0606_0606) & 0xf0f0_f0f0_f0f0_f0f0) >> 4);
    if all_digits != 0x3333_3333_3333_3333 {
        return None;
    }
    // Pairs, then fours, then all eight (the first digit is the lowest byte).
    let w = w - 0x3030_3030_3030_3030;
    let w = (w.wrapping_mul(10) + (w >> 8)) & 0x00ff_00ff_00ff_00ff;
    let w = (w.wrapping_mul(100) + (w >> 16)) & 0x0000_ffff_0000_ffff;
    Some((w.wrapping_mul(10_000) + (w >> 32)) & 0xffff_ffff)
}

/// The index after one or more digits at `i`.
#[inline]
fn digits(b: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    (i > start).then_some(i)
}
