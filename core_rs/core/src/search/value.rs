//! TraceQL values (Tempo's `Static`) and the operator semantics of `ast_execute.go`:
//! operands of different types compare false (`!=` included) unless both are numeric,
//! numbers compare and combine as floats, strings order lexicographically.

use std::fmt::Write;

use crate::otlp::view::AnyValue;

use crate::traceql::{BinOp, Kind, Static, Status};

/// One value of a span's field; strings borrow from the batch (or the evaluation context).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Nil,
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    /// OTLP status code (0 unset, 1 ok, 2 error).
    Status(i32),
    /// OTLP span kind (0 unspecified … 5 consumer).
    Kind(i32),
    /// An array attribute: its encoded `ArrayValue` message. Compared element by element:
    /// a comparison (or regex) holds when it holds for any element, as Tempo's TraceQL does.
    Array(&'a [u8]),
}

impl<'a> Value<'a> {
    pub fn from_static(s: &'a Static) -> Value<'a> {
        match s {
            Static::String(v) => Value::Str(v),
            Static::Int(v) => Value::Int(*v),
            Static::Float(v) => Value::Float(*v),
            Static::Bool(v) => Value::Bool(*v),
            Static::Duration(v) => Value::Duration(*v),
            Static::Status(v) => Value::Status(status_code(*v)),
            Static::Kind(v) => Value::Kind(kind_code(*v)),
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// An array's elements as scalar values (strings, numbers, bools; any other element
    /// reads as nil); nothing for a scalar.
    pub fn elements(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let raw: &'a [u8] = match *self {
            Value::Array(raw) => raw,
            _ => &[],
        };
        crate::otlp::view::repeated(raw, 1).map_while(Result::ok).map(|item| {
            match AnyValue::parse_shallow(item) {
                Ok(AnyValue::Str(s)) => Value::Str(s),
                Ok(AnyValue::Int(i)) => Value::Int(i),
                Ok(AnyValue::Double(d)) => Value::Float(d),
                Ok(AnyValue::Bool(b)) => Value::Bool(b),
                _ => Value::Nil,
            }
        })
    }

    fn numeric(&self) -> Option<f64> {
        match *self {
            Value::Int(v) | Value::Duration(v) => Some(v as f64),
            Value::Float(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> f64 {
        self.numeric().unwrap_or(0.0)
    }

    pub fn truthy(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// Tempo's `Static.Equals`: same type and value; numbers compare as floats.
    fn equals(&self, o: &Value<'_>) -> bool {
        match (self, o) {
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Status(a), Value::Status(b)) => a == b,
            (Value::Kind(a), Value::Kind(b)) => a == b,
            (Value::Nil, Value::Nil) => true,
            _ => match (self.numeric(), o.numeric()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }

    /// `self op rhs` for a comparison or logical operator (regexes go through
    /// [`regex_match`]). Mismatched types are false, as in Tempo.
    pub fn compare(&self, op: BinOp, rhs: &Value<'_>) -> bool {
        match (self, rhs) {
            (Value::Array(a), Value::Array(b)) => {
                return match op {
                    BinOp::Eq => a == b,
                    BinOp::Neq => a != b,
                    _ => false,
                };
            }
            (Value::Array(_), _) => return self.elements().any(|e| e.compare(op, rhs)),
            (_, Value::Array(_)) => return rhs.elements().any(|e| self.compare(op, &e)),
            _ => {}
        }
        if !self.matching_operand(rhs) {
            return false;
        }
        match op {
            BinOp::Eq => self.equals(rhs),
            BinOp::Neq => !self.equals(rhs),
            BinOp::Lt | BinOp::Lte | BinOp::Gt | BinOp::Gte => {
                let ord = match (self, rhs) {
                    (Value::Str(a), Value::Str(b)) => a.cmp(b),
                    _ => match (self.numeric(), rhs.numeric()) {
                        (Some(a), Some(b)) => match a.partial_cmp(&b) {
                            Some(o) => o,
                            None => return false,
                        },
                        _ => return false,
                    },
                };
                match op {
                    BinOp::Lt => ord.is_lt(),
                    BinOp::Lte => ord.is_le(),
                    BinOp::Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                }
            }
            BinOp::And => self.truthy() && rhs.truthy(),
            BinOp::Or => self.truthy() || rhs.truthy(),
            _ => false,
        }
    }

    fn matching_operand(&self, o: &Value<'_>) -> bool {
        if self.numeric().is_some() && o.numeric().is_some() {
            return true;
        }
        std::mem::discriminant(self) == std::mem::discriminant(o) && !self.is_nil()
    }

    /// `self op rhs` for arithmetic: a float, or nil when either side is not numeric.
    pub fn arith(&self, op: BinOp, rhs: &Value<'_>) -> Value<'static> {
        let (Some(a), Some(b)) = (self.numeric(), rhs.numeric()) else {
            return Value::Nil;
        };
        Value::Float(match op {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Mod => a % b,
            BinOp::Pow => a.powf(b),
            _ => return Value::Nil,
        })
    }
}

pub fn status_code(s: Status) -> i32 {
    match s {
        Status::Unset => 0,
        Status::Ok => 1,
        Status::Error => 2,
    }
}

pub fn kind_code(k: Kind) -> i32 {
    match k {
        Kind::Unspecified => 0,
        Kind::Internal => 1,
        Kind::Server => 2,
        Kind::Client => 3,
        Kind::Producer => 4,
        Kind::Consumer => 5,
    }
}

pub fn status_name(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

pub fn kind_name(code: i32) -> &'static str {
    match code {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

/// A duration as Go's `time.Duration.String()` prints it (`1h2m3.5s`, `150ms`, `0s`).
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if u < 1_000_000_000 {
        // Sub-second: one unit with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        write_frac(&mut out, u, div);
        out.push_str(unit);
        return out;
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s_ns = u % 60_000_000_000;
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    write_frac(&mut out, s_ns, 1_000_000_000);
    out.push('s');
    out
}

fn write_frac(out: &mut String, v: u64, div: u64) {
    let _ = write!(out, "{}", v / div);
    let frac = v % div;
    if frac > 0 {
        let digits = div.ilog10() as usize;
        let s = format!("{frac:0digits$}");
        out.push('.');
        out.push_str(s.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_types_compare_false_even_for_not_equal() {
        assert!(!Value::Str("200").compare(BinOp::Eq, &Value::Int(200)));
        assert!(!Value::Str("200").compare(BinOp::Neq, &Value::Int(200)));
        assert!(!Value::Nil.compare(BinOp::Neq, &Value::Str("x")));
        assert!(Value::Int(3).compare(BinOp::Lt, &Value::Float(3.5)));
        assert!(Value::Duration(2_000_000).compare(BinOp::Gt, &Value::Duration(1_000_000)));
        assert!(Value::Str("b").compare(BinOp::Gt, &Value::Str("a")));
        assert!(Value::Status(2).compare(BinOp::Eq, &Value::Status(2)));
        assert!(!Value::Status(2).compare(BinOp::Eq, &Value::Kind(2)));
    }

    #[test]
    fn arrays_compare_element_by_element_any_match() {
        use crate::pb::{put_bytes_field, put_message, put_varint_field};
        let mut raw = Vec::new();
        put_message(&mut raw, 1, |v| put_bytes_field(v, 1, b"a"));
        put_message(&mut raw, 1, |v| put_bytes_field(v, 1, b"b"));
        put_message(&mut raw, 1, |v| put_varint_field(v, 3, 7));
        let arr = Value::Array(&raw);
        assert_eq!(
            arr.elements().collect::<Vec<_>>(),
            [Value::Str("a"), Value::Str("b"), Value::Int(7)]
        );
        assert!(arr.compare(BinOp::Eq, &Value::Str("b")));
        assert!(!arr.compare(BinOp::Eq, &Value::Str("c")));
        assert!(arr.compare(BinOp::Neq, &Value::Str("a"))); // "b" differs
        assert!(arr.compare(BinOp::Gt, &Value::Int(5)));
        assert!(Value::Str("b").compare(BinOp::Eq, &arr)); // either side
        assert!(!arr.compare(BinOp::Eq, &Value::Bool(true)));
        assert!(!Value::Array(&[]).compare(BinOp::Neq, &Value::Str("x"))); // no element
        assert!(arr.compare(BinOp::Eq, &arr) && !arr.compare(BinOp::Neq, &arr));
        assert!(!arr.is_nil());
    }

    #[test]
    fn arithmetic_is_float_and_nil_on_non_numbers() {
        assert_eq!(Value::Int(3).arith(BinOp::Div, &Value::Int(2)), Value::Float(1.5));
        assert_eq!(Value::Str("x").arith(BinOp::Add, &Value::Int(2)), Value::Nil);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(150_000_000), "150ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(3_723_000_000_000), "1h2m3s");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(-5), "-5ns");
    }
}
