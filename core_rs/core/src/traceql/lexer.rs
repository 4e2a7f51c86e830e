//! The TraceQL lexer: Tempo's token rules (Go `text/scanner` plus `pkg/traceql/lexer.go`).
//!
//! Differences from a conventional lexer that Tempo's grammar depends on:
//! - an attribute (`.a`, `span.a`, `resource.a`, `parent.span.a`, `event.a`, `link.a`,
//!   `instrumentation.a`) is one token whose name runs until whitespace or one of
//!   `{ } ( ) = ~ ! < > & | ^ ,`, so `.a+1` is the attribute `a+1`; `"…"` parts are quoted;
//! - a number directly followed by duration characters is a duration (`1h30m`, `1.5s`, `10us`);
//! - `.5` is a float, not an attribute.

use super::ast::{Attribute, AttributeScope};
use super::ParseError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kw {
    True,
    False,
    Nil,
    StatusOk,
    StatusError,
    StatusUnset,
    KindUnspecified,
    KindInternal,
    KindServer,
    KindClient,
    KindProducer,
    KindConsumer,
    Duration,
    ChildCount,
    Name,
    Status,
    StatusMessage,
    Kind,
    RootName,
    RootServiceName,
    RootService,
    TraceDuration,
    NestedSetLeft,
    NestedSetRight,
    NestedSetParent,
    Parent,
    Id,
    TraceId,
    SpanId,
    ParentId,
    TimeSinceStart,
    Version,
    Count,
    Avg,
    Max,
    Min,
    Sum,
    By,
    Coalesce,
    Select,
    Rate,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    AvgOverTime,
    SumOverTime,
    QuantileOverTime,
    HistogramOverTime,
    Compare,
    TopK,
    BottomK,
    With,
}

const KEYWORDS: &[(&str, Kw, &str)] = &[
    ("true", Kw::True, "TRUE"),
    ("false", Kw::False, "FALSE"),
    ("nil", Kw::Nil, "NIL"),
    ("ok", Kw::StatusOk, "STATUS_OK"),
    ("error", Kw::StatusError, "STATUS_ERROR"),
    ("unset", Kw::StatusUnset, "STATUS_UNSET"),
    ("unspecified", Kw::KindUnspecified, "KIND_UNSPECIFIED"),
    ("internal", Kw::KindInternal, "KIND_INTERNAL"),
    ("server", Kw::KindServer, "KIND_SERVER"),
    ("client", Kw::KindClient, "KIND_CLIENT"),
    ("producer", Kw::KindProducer, "KIND_PRODUCER"),
    ("consumer", Kw::KindConsumer, "KIND_CONSUMER"),
    ("duration", Kw::Duration, "IDURATION"),
    ("childCount", Kw::ChildCount, "CHILDCOUNT"),
    ("name", Kw::Name, "NAME"),
    ("status", Kw::Status, "STATUS"),
    ("statusMessage", Kw::StatusMessage, "STATUS_MESSAGE"),
    ("kind", Kw::Kind, "KIND"),
    ("rootName", Kw::RootName, "ROOTNAME"),
    ("rootServiceName", Kw::RootServiceName, "ROOTSERVICENAME"),
    ("rootService", Kw::RootService, "ROOTSERVICE"),
    ("traceDuration", Kw::TraceDuration, "TRACEDURATION"),
    ("nestedSetLeft", Kw::NestedSetLeft, "NESTEDSETLEFT"),
    ("nestedSetRight", Kw::NestedSetRight, "NESTEDSETRIGHT"),
    ("nestedSetParent", Kw::NestedSetParent, "NESTEDSETPARENT"),
    ("parent", Kw::Parent, "PARENT"),
    ("id", Kw::Id, "ID"),
    ("traceID", Kw::TraceId, "TRACE_ID"),
    ("spanID", Kw::SpanId, "SPAN_ID"),
    ("parentID", Kw::ParentId, "PARENT_ID"),
    ("timeSinceStart", Kw::TimeSinceStart, "TIMESINCESTART"),
    ("version", Kw::Version, "VERSION"),
    ("count", Kw::Count, "COUNT"),
    ("avg", Kw::Avg, "AVG"),
    ("max", Kw::Max, "MAX"),
    ("min", Kw::Min, "MIN"),
    ("sum", Kw::Sum, "SUM"),
    ("by", Kw::By, "BY"),
    ("coalesce", Kw::Coalesce, "COALESCE"),
    ("select", Kw::Select, "SELECT"),
    ("rate", Kw::Rate, "RATE"),
    ("count_over_time", Kw::CountOverTime, "COUNT_OVER_TIME"),
    ("min_over_time", Kw::MinOverTime, "MIN_OVER_TIME"),
    ("max_over_time", Kw::MaxOverTime, "MAX_OVER_TIME"),
    ("avg_over_time", Kw::AvgOverTime, "AVG_OVER_TIME"),
    ("sum_over_time", Kw::SumOverTime, "SUM_OVER_TIME"),
    ("quantile_over_time", Kw::QuantileOverTime, "QUANTILE_OVER_TIME"),
    ("histogram_over_time", Kw::HistogramOverTime, "HISTOGRAM_OVER_TIME"),
    ("compare", Kw::Compare, "COMPARE"),
    ("topk", Kw::TopK, "TOPK"),
    ("bottomk", Kw::BottomK, "BOTTOMK"),
    ("with", Kw::With, "WITH"),
];

/// Scope of a `scope:` intrinsic prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColonScope {
    Trace,
    Span,
    Event,
    Link,
    Instrumentation,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    /// Nanoseconds.
    Duration(i64),
    Attr(Attribute),
    ScopeColon(ColonScope),
    Kw(Kw),
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Eq,
    Neq,
    Re,
    Nre,
    Gt,
    Gte,
    Lt,
    Lte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    And,
    Or,
    Not,
    Pipe,
    Desc,
    Ance,
    Tilde,
    NotChild,
    NotParent,
    NotDesc,
    NotAnce,
    UnionChild,
    UnionParent,
    UnionDesc,
    UnionAnce,
    UnionSibl,
    Eof,
}

impl Tok {
    /// The token's name as Tempo's goyacc grammar spells it (used in error messages).
    pub fn yacc_name(&self) -> &'static str {
        match self {
            Tok::Ident(_) => "IDENTIFIER",
            Tok::Str(_) => "STRING",
            Tok::Int(_) => "INTEGER",
            Tok::Float(_) => "FLOAT",
            Tok::Duration(_) => "DURATION",
            Tok::Attr(a) => match (a.parent, a.scope) {
                (true, _) => "PARENT_DOT",
                (false, AttributeScope::None) => "DOT",
                (false, AttributeScope::Span) => "SPAN_DOT",
                (false, AttributeScope::Resource) => "RESOURCE_DOT",
                (false, AttributeScope::Event) => "EVENT_DOT",
                (false, AttributeScope::Link) => "LINK_DOT",
                (false, AttributeScope::Instrumentation) => "INSTRUMENTATION_DOT",
            },
            Tok::ScopeColon(s) => match s {
                ColonScope::Trace => "TRACE_COLON",
                ColonScope::Span => "SPAN_COLON",
                ColonScope::Event => "EVENT_COLON",
                ColonScope::Link => "LINK_COLON",
                ColonScope::Instrumentation => "INSTRUMENTATION_COLON",
            },
            Tok::Kw(k) => KEYWORDS.iter().find(|(_, kw, _)| kw == k).map(|t| t.2).unwrap_or("?"),
            Tok::LBrace => "OPEN_BRACE",
            Tok::RBrace => "CLOSE_BRACE",
            Tok::LParen => "OPEN_PARENS",
            Tok::RParen => "CLOSE_PARENS",
            Tok::Comma => "COMMA",
            Tok::Eq => "EQ",
            Tok::Neq => "NEQ",
            Tok::Re => "RE",
            Tok::Nre => "NRE",
            Tok::Gt => "GT",
            Tok::Gte => "GTE",
            Tok::Lt => "LT",
            Tok::Lte => "LTE",
            Tok::Add => "ADD",
            Tok::Sub => "SUB",
            Tok::Mul => "MUL",
            Tok::Div => "DIV",
            Tok::Mod => "MOD",
            Tok::Pow => "POW",
            Tok::And => "AND",
            Tok::Or => "OR",
            Tok::Not => "NOT",
            Tok::Pipe => "PIPE",
            Tok::Desc => "DESC",
            Tok::Ance => "ANCE",
            Tok::Tilde => "SIBL",
            Tok::NotChild => "NOT_CHILD",
            Tok::NotParent => "NOT_PARENT",
            Tok::NotDesc => "NOT_DESC",
            Tok::NotAnce => "NOT_ANCE",
            Tok::UnionChild => "UNION_CHILD",
            Tok::UnionParent => "UNION_PARENT",
            Tok::UnionDesc => "UNION_DESC",
            Tok::UnionAnce => "UNION_ANCE",
            Tok::UnionSibl => "UNION_SIBL",
            Tok::Eof => "$end",
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// Runes that end an unquoted attribute name (besides whitespace and end of input).
pub fn is_attribute_rune(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(c, '{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ',')
}

fn is_duration_rune(c: char) -> bool {
    matches!(c, 'n' | 's' | 'u' | 'm' | 'h' | 'µ' | 'd' | 'w' | 'y')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

pub fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer { src, pos: 0 };
    let mut out = Vec::new();
    loop {
        let t = lx.next_token()?;
        let eof = t.tok == Tok::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError::syntax(self.src, pos, msg)
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Token { tok: Tok::Eof, pos: start });
        };
        let tok = if c.is_ascii_digit()
            || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()))
        {
            self.number()?
        } else if c == '"' {
            self.bump();
            Tok::Str(self.interpreted_string(start)?)
        } else if c == '`' {
            self.bump();
            let rest = &self.src[self.pos..];
            match rest.find('`') {
                Some(end) => {
                    let s: String = rest[..end].chars().filter(|&c| c != '\r').collect();
                    self.pos += end + 1;
                    Tok::Str(s)
                }
                None => return Err(self.err(start, "literal not terminated")),
            }
        } else if c == '.' {
            self.bump();
            Tok::Attr(self.attribute(AttributeScope::None, false)?)
        } else if c.is_alphabetic() || c == '_' {
            self.word()?
        } else {
            self.operator(start)?
        };
        Ok(Token { tok, pos: start })
    }

    fn word(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                self.bump();
            } else {
                break;
            }
        }
        let w = &self.src[start..self.pos];
        let next = self.peek();
        if next == Some('.') {
            let scope = match w {
                "span" => Some((AttributeScope::Span, false)),
                "resource" => Some((AttributeScope::Resource, false)),
                "event" => Some((AttributeScope::Event, false)),
                "link" => Some((AttributeScope::Link, false)),
                "instrumentation" => Some((AttributeScope::Instrumentation, false)),
                "parent" => Some((AttributeScope::None, true)),
                _ => None,
            };
            if let Some((scope, parent)) = scope {
                self.bump();
                if parent {
                    // `parent.span.x` / `parent.resource.x`
                    let rest = &self.src[self.pos..];
                    for (prefix, s) in
                        [("span.", AttributeScope::Span), ("resource.", AttributeScope::Resource)]
                    {
                        if rest.starts_with(prefix) {
                            self.pos += prefix.len();
                            return Ok(Tok::Attr(self.attribute(s, true)?));
                        }
                    }
                }
                return Ok(Tok::Attr(self.attribute(scope, parent)?));
            }
        }
        if next == Some(':') {
            let scope = match w {
                "trace" => Some(ColonScope::Trace),
                "span" => Some(ColonScope::Span),
                "event" => Some(ColonScope::Event),
                "link" => Some(ColonScope::Link),
                "instrumentation" => Some(ColonScope::Instrumentation),
                _ => None,
            };
            if let Some(s) = scope {
                self.bump();
                return Ok(Tok::ScopeColon(s));
            }
        }
        if let Some((_, kw, _)) = KEYWORDS.iter().find(|(k, _, _)| *k == w) {
            return Ok(Tok::Kw(*kw));
        }
        Ok(Tok::Ident(w.to_string()))
    }

    /// Reads an attribute name right after its scope prefix (no whitespace skipped).
    fn attribute(&mut self, scope: AttributeScope, parent: bool) -> Result<Attribute, ParseError> {
        let start = self.pos;
        let mut name = String::new();
        let mut any = false;
        while let Some(c) = self.peek() {
            if c == '"' {
                let qpos = self.pos;
                self.bump();
                loop {
                    match self.bump() {
                        None => return Err(self.err(qpos, "unexpected EOF, expecting \"")),
                        Some('"') => break,
                        Some('\\') => match self.peek() {
                            Some(e @ ('\\' | '"')) => {
                                self.bump();
                                name.push(e);
                            }
                            _ => return Err(self.err(self.pos, "invalid escape sequence")),
                        },
                        Some(c) => name.push(c),
                    }
                }
                any = true;
            } else if is_attribute_rune(c) {
                self.bump();
                name.push(c);
                any = true;
            } else {
                break;
            }
        }
        if !any {
            let t = Tok::Attr(Attribute { scope, parent, name: String::new() });
            return Err(self.err(
                start,
                format!(
                    "syntax error: unexpected END_ATTRIBUTE after {}, expecting IDENTIFIER",
                    t.yacc_name()
                ),
            ));
        }
        Ok(Attribute { scope, parent, name })
    }

    fn number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let mut is_float = false;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') {
            is_float = true;
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = matches!(self.peek_at(1), Some('+' | '-'));
            let d = self.peek_at(if sign { 2 } else { 1 });
            if d.is_some_and(|d| d.is_ascii_digit()) {
                is_float = true;
                self.bump();
                if sign {
                    self.bump();
                }
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
        }
        let text = &self.src[start..self.pos];
        // A duration when more duration characters follow before whitespace (Tempo's
        // tryScanDuration): `1h30m`, `1.5s`, `100ms`, `10us`, `10µs`, `1d`.
        let rest = &self.src[self.pos..];
        let ext: usize = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_digit() || is_duration_rune(c) || c == '.'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        if ext > 0 {
            let cand = &self.src[start..self.pos + ext];
            if let Some(d) = parse_duration(cand) {
                self.pos += ext;
                return Ok(Tok::Duration(d));
            }
        }
        if is_float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Tok::Float(f)),
                _ => Err(self.err(
                    start,
                    format!("strconv.ParseFloat: parsing \"{text}\": value out of range"),
                )),
            }
        } else {
            text.parse::<i64>().map(Tok::Int).map_err(|_| {
                self.err(start, format!("strconv.Atoi: parsing \"{text}\": value out of range"))
            })
        }
    }

    fn interpreted_string(&mut self, start: usize) -> Result<String, ParseError> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.err(start, "literal not terminated"));
            };
            match c {
                '"' => break,
                '\n' => return Err(self.err(start, "literal not terminated")),
                '\\' => {
                    let epos = self.pos - 1;
                    let bad = |s: &Self| s.err(epos, "invalid syntax");
                    let e = self.bump().ok_or_else(|| bad(self))?;
                    let simple = match e {
                        'a' => Some(7u8),
                        'b' => Some(8),
                        'f' => Some(12),
                        'n' => Some(b'\n'),
                        'r' => Some(b'\r'),
                        't' => Some(b'\t'),
                        'v' => Some(11),
                        '\\' => Some(b'\\'),
                        '"' => Some(b'"'),
                        _ => None,
                    };
                    if let Some(b) = simple {
                        buf.push(b);
                        continue;
                    }
                    let hex = |s: &mut Self, n: usize| -> Option<u32> {
                        let mut v = 0u32;
                        for _ in 0..n {
                            v = v * 16 + s.bump()?.to_digit(16)?;
                        }
                        Some(v)
                    };
                    match e {
                        'x' => buf.push(hex(self, 2).ok_or_else(|| bad(self))? as u8),
                        'u' | 'U' => {
                            let v =
                                hex(self, if e == 'u' { 4 } else { 8 }).ok_or_else(|| bad(self))?;
                            let ch = char::from_u32(v).ok_or_else(|| bad(self))?;
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        '0'..='7' => {
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                let d = self
                                    .bump()
                                    .and_then(|d| d.to_digit(8))
                                    .ok_or_else(|| bad(self))?;
                                v = v * 8 + d;
                            }
                            if v > 255 {
                                return Err(bad(self));
                            }
                            buf.push(v as u8);
                        }
                        _ => return Err(bad(self)),
                    }
                }
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        String::from_utf8(buf).map_err(|_| self.err(start, "string literal is not valid UTF-8"))
    }

    fn operator(&mut self, start: usize) -> Result<Tok, ParseError> {
        let rest = &self.src[self.pos..];
        const OPS: &[(&str, Tok)] = &[
            ("!>>", Tok::NotDesc),
            ("!<<", Tok::NotAnce),
            ("&>>", Tok::UnionDesc),
            ("&<<", Tok::UnionAnce),
            ("!=", Tok::Neq),
            ("!~", Tok::Nre),
            ("!>", Tok::NotChild),
            ("!<", Tok::NotParent),
            ("=~", Tok::Re),
            (">=", Tok::Gte),
            ("<=", Tok::Lte),
            (">>", Tok::Desc),
            ("<<", Tok::Ance),
            ("&&", Tok::And),
            ("||", Tok::Or),
            ("&>", Tok::UnionChild),
            ("&<", Tok::UnionParent),
            ("&~", Tok::UnionSibl),
            ("{", Tok::LBrace),
            ("}", Tok::RBrace),
            ("(", Tok::LParen),
            (")", Tok::RParen),
            (",", Tok::Comma),
            ("=", Tok::Eq),
            (">", Tok::Gt),
            ("<", Tok::Lt),
            ("+", Tok::Add),
            ("-", Tok::Sub),
            ("*", Tok::Mul),
            ("/", Tok::Div),
            ("%", Tok::Mod),
            ("^", Tok::Pow),
            ("!", Tok::Not),
            ("|", Tok::Pipe),
            ("~", Tok::Tilde),
        ];
        for (s, t) in OPS {
            if rest.starts_with(s) {
                self.pos += s.len();
                return Ok(t.clone());
            }
        }
        let c = self.peek().unwrap_or(' ');
        Err(self.err(start, format!("syntax error: unexpected IDENTIFIER \"{c}\"")))
    }
}

/// Parses a duration as Tempo does: Prometheus style first (`1d`, `1w`, `1y`, `1h30m`), then
/// Go's `time.ParseDuration` (`1.5s`, `10us`, `10µs`, `1ns`). Nanoseconds; `None` when invalid.
pub fn parse_duration(s: &str) -> Option<i64> {
    parse_prom_duration(s).or_else(|| parse_go_duration(s))
}

fn parse_prom_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    const UNITS: &[(&str, i64)] = &[
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut next_unit = 0;
    let mut total_ms: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // Longest unit match among the units not yet used, in order.
        let mut found = None;
        for (i, (u, mult)) in UNITS.iter().enumerate().skip(next_unit) {
            if rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")) {
                found = Some((i, u.len(), *mult));
                break;
            }
        }
        let (i, ulen, mult) = found?;
        next_unit = i + 1;
        rest = &rest[ulen..];
        total_ms = total_ms.checked_add(n.checked_mul(mult)?)?;
    }
    total_ms.checked_mul(1_000_000)
}

fn parse_go_duration(s: &str) -> Option<i64> {
    let mut rest = s;
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut total_i: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        let mut num_len = int_len;
        let mut frac_len = 0;
        if rest[num_len..].starts_with('.') {
            num_len += 1;
            frac_len = rest[num_len..].bytes().take_while(|b| b.is_ascii_digit()).count();
            num_len += frac_len;
        }
        if int_len == 0 && frac_len == 0 {
            return None;
        }
        let num = &rest[..num_len];
        rest = &rest[num_len..];
        let unit_len = rest
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult: i64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        if frac_len == 0 {
            let n: i128 = num.trim_end_matches('.').parse().ok()?;
            total_i = total_i.checked_add(n.checked_mul(mult as i128)?)?;
        } else {
            let f: f64 = num.parse().ok()?;
            total += f * mult as f64;
        }
    }
    let t = total_i + total.round() as i128;
    i64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceql_durations() {
        assert_eq!(parse_duration("1h2m3s"), Some(3_723_000_000_000));
        assert_eq!(parse_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("10us"), Some(10_000));
        assert_eq!(parse_duration("10µs"), Some(10_000));
        assert_eq!(parse_duration("7ns"), Some(7));
        assert_eq!(parse_duration("1d"), Some(86_400_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1s1h"), Some(3_601_000_000_000));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn traceql_lex_attribute_runes() {
        let toks = lex("{ .a+1 = span.\"foo bar\"x }").unwrap();
        assert_eq!(
            toks[1].tok,
            Tok::Attr(Attribute { scope: AttributeScope::None, parent: false, name: "a+1".into() })
        );
        assert_eq!(
            toks[3].tok,
            Tok::Attr(Attribute {
                scope: AttributeScope::Span,
                parent: false,
                name: "foo barx".into()
            })
        );
        let toks = lex("parent.span.a .5 1.5s").unwrap();
        assert_eq!(
            toks[0].tok,
            Tok::Attr(Attribute { scope: AttributeScope::Span, parent: true, name: "a".into() })
        );
        assert_eq!(toks[1].tok, Tok::Float(0.5));
        assert_eq!(toks[2].tok, Tok::Duration(1_500_000_000));
    }
}
