//! Minimal, zero-copy protobuf wire-format primitives.
//!
//! Readers never allocate: a [`Reader`] walks a byte slice and yields
//! [`Field`]s whose length-delimited payloads borrow from the input.
//! Writers append to a `Vec<u8>`.

use std::fmt;

/// Wire types of the protobuf encoding.
pub const VARINT: u8 = 0;
pub const I64: u8 = 1;
pub const LEN: u8 = 2;
pub const I32: u8 = 5;

/// Why a buffer is not valid protobuf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PbError {
    Truncated,
    VarintTooLong,
    BadWireType(u8),
    ZeroFieldNumber,
    /// A field had an unexpected wire type for its number.
    WrongType {
        field: u32,
        wire: u8,
    },
    InvalidUtf8 {
        field: u32,
    },
    /// Nesting deeper than the decoder allows.
    TooDeep,
}

impl fmt::Display for PbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PbError::Truncated => write!(f, "unexpected end of message"),
            PbError::VarintTooLong => write!(f, "varint longer than 10 bytes"),
            PbError::BadWireType(w) => write!(f, "invalid wire type {w}"),
            PbError::ZeroFieldNumber => write!(f, "field number 0"),
            PbError::WrongType { field, wire } => {
                write!(f, "field {field} has unexpected wire type {wire}")
            }
            PbError::InvalidUtf8 { field } => write!(f, "field {field} is not valid UTF-8"),
            PbError::TooDeep => write!(f, "message nested too deeply"),
        }
    }
}

impl std::error::Error for PbError {}

/// One field's value as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// Length-delimited payload; `offset` is its start within the reader's buffer.
    Bytes {
        data: &'a [u8],
        offset: usize,
    },
}

/// A decoded field: number and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    pub fn wire_type(&self) -> u8 {
        match self.value {
            Value::Varint(_) => VARINT,
            Value::Fixed64(_) => I64,
            Value::Fixed32(_) => I32,
            Value::Bytes { .. } => LEN,
        }
    }

    fn wrong(&self) -> PbError {
        PbError::WrongType { field: self.number, wire: self.wire_type() }
    }

    pub fn as_varint(&self) -> Result<u64, PbError> {
        match self.value {
            Value::Varint(v) => Ok(v),
            _ => Err(self.wrong()),
        }
    }

    pub fn as_fixed64(&self) -> Result<u64, PbError> {
        match self.value {
            Value::Fixed64(v) => Ok(v),
            _ => Err(self.wrong()),
        }
    }

    pub fn as_fixed32(&self) -> Result<u32, PbError> {
        match self.value {
            Value::Fixed32(v) => Ok(v),
            _ => Err(self.wrong()),
        }
    }

    pub fn as_bytes(&self) -> Result<&'a [u8], PbError> {
        match self.value {
            Value::Bytes { data, .. } => Ok(data),
            _ => Err(self.wrong()),
        }
    }

    /// Byte offset of a length-delimited payload within the reader's buffer.
    pub fn payload_offset(&self) -> Result<usize, PbError> {
        match self.value {
            Value::Bytes { offset, .. } => Ok(offset),
            _ => Err(self.wrong()),
        }
    }

    /// A length-delimited field that must be valid UTF-8.
    pub fn as_str(&self) -> Result<&'a str, PbError> {
        let b = self.as_bytes()?;
        simdutf8::basic::from_utf8(b).map_err(|_| PbError::InvalidUtf8 { field: self.number })
    }
}

/// Iterates the fields of one message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` within the outermost buffer (so payload offsets are absolute).
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, base: 0 }
    }

    /// A reader over `buf` whose first byte sits at `base` in the outer buffer.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Reads the next field, `Ok(None)` at the end of the message.
    #[inline(always)]
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>, PbError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = read_varint(self.buf, &mut self.pos)?;
        let wire = (key & 7) as u8;
        let number = (key >> 3) as u32;
        if number == 0 || key >> 3 > u32::MAX as u64 >> 3 {
            return Err(PbError::ZeroFieldNumber);
        }
        let value = match wire {
            VARINT => Value::Varint(read_varint(self.buf, &mut self.pos)?),
            I64 => {
                let end = self.pos.checked_add(8).ok_or(PbError::Truncated)?;
                let b = self.buf.get(self.pos..end).ok_or(PbError::Truncated)?;
                self.pos = end;
                Value::Fixed64(u64::from_le_bytes(b.try_into().unwrap()))
            }
            I32 => {
                let end = self.pos.checked_add(4).ok_or(PbError::Truncated)?;
                let b = self.buf.get(self.pos..end).ok_or(PbError::Truncated)?;
                self.pos = end;
                Value::Fixed32(u32::from_le_bytes(b.try_into().unwrap()))
            }
            LEN => {
                let len = read_varint(self.buf, &mut self.pos)?;
                let len = usize::try_from(len).map_err(|_| PbError::Truncated)?;
                let end = self.pos.checked_add(len).ok_or(PbError::Truncated)?;
                let data = self.buf.get(self.pos..end).ok_or(PbError::Truncated)?;
                let offset = self.base + self.pos;
                self.pos = end;
                Value::Bytes { data, offset }
            }
            w => return Err(PbError::BadWireType(w)),
        };
        Ok(Some(Field { number, value }))
    }
}

/// Decodes a varint at `*pos`, advancing it (one- and two-byte varints, nearly
/// every key and length, take the short path).
#[inline(always)]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, PbError> {
    let p = *pos;
    if let Some(&b0) = buf.get(p) {
        if b0 < 0x80 {
            *pos = p + 1;
            return Ok(b0 as u64);
        }
        if let Some(&b1) = buf.get(p + 1) {
            if b1 < 0x80 {
                *pos = p + 2;
                return Ok((b0 & 0x7f) as u64 | (b1 as u64) << 7);
            }
        }
    }
    read_varint_slow(buf, pos)
}

#[inline(never)]
fn read_varint_slow(buf: &[u8], pos: &mut usize) -> Result<u64, PbError> {
    let mut result: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or(PbError::Truncated)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return Err(PbError::VarintTooLong);
        }
        result |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(result);
        }
        shift += 7;
        if shift > 63 {
            return Err(PbError::VarintTooLong);
        }
    }
}

// ---------------------------------------------------------------- writing

#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
pub fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, ((field as u64) << 3) | wire as u64);
}

pub fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, VARINT);
    put_varint(out, v);
}

pub fn put_fixed64_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_fixed32_field(out: &mut Vec<u8>, field: u32, v: u32) {
    put_key(out, field, I32);
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Writes a nested message: `body` appends the message's fields; the length prefix is patched in.
pub fn put_message<F: FnOnce(&mut Vec<u8>)>(out: &mut Vec<u8>, field: u32, body: F) {
    put_key(out, field, LEN);
    // Reserve one byte for the length (the common case), move the body if it needs more.
    let len_pos = out.len();
    out.push(0);
    let start = out.len();
    body(out);
    let len = out.len() - start;
    let need = varint_len(len as u64);
    if need == 1 {
        out[len_pos] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(need);
        put_varint(&mut prefix, len as u64);
        out.splice(len_pos..len_pos + 1, prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos).unwrap(), v);
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let buf = [0xffu8; 11];
        let mut pos = 0;
        assert_eq!(read_varint(&buf, &mut pos), Err(PbError::VarintTooLong));
    }

    #[test]
    fn nested_message_with_long_body() {
        let mut out = Vec::new();
        put_message(&mut out, 1, |o| put_bytes_field(o, 2, &[7u8; 200]));
        let mut r = Reader::new(&out);
        let f = r.next_field().unwrap().unwrap();
        assert_eq!(f.number, 1);
        let inner = f.as_bytes().unwrap();
        let mut r2 = Reader::with_base(inner, f.payload_offset().unwrap());
        let g = r2.next_field().unwrap().unwrap();
        assert_eq!(g.as_bytes().unwrap(), &[7u8; 200][..]);
        assert!(r.next_field().unwrap().is_none());
    }

    #[test]
    fn truncated_payload_is_an_error() {
        let buf = [0x0a, 0x05, 1, 2];
        assert_eq!(Reader::new(&buf).next_field(), Err(PbError::Truncated));
    }
}
