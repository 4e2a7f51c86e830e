//! TraceQL front end: lexer, parser, validator and canonical printer, following Grafana
//! Tempo 2.x (`pkg/traceql/expr.y`, `lexer.go`, `ast_validate.go`).
//!
//! [`parse`] accepts what Tempo's grammar accepts, with its operator precedence (`&&` and `||`
//! share one level and associate left, like Tempo's `%left AND OR`), and rejects the rest with
//! a [`ParseError`] whose message has Tempo's `parse error at line L, col C: …` shape. After a
//! successful parse the tree is validated as Tempo's `validate()` does (operand types,
//! regexes, aggregates that must reference the span, …); those errors carry the position of
//! the offending node. `Display` on [`Query`] prints a canonical form that parses back to an
//! equal tree.

pub mod ast;
mod display;
pub mod lexer;
pub(crate) mod parser;
mod validate;

#[cfg(test)]
mod corpus_tests;

pub use ast::*;
pub use validate::compile_regex;

use std::fmt;

/// Prefix of the body of Tempo's HTTP 400 for a query its frontend refuses (the query
/// validator middleware answers `invalid TraceQL query: ` followed by the parse or
/// validation error). See [`ParseError::http_message`].
pub const INVALID_QUERY_PREFIX: &str = "invalid TraceQL query: ";

/// The HTTP 400 body for a metrics query sent to `/api/search`.
///
/// Provisional wording: the stored copies of Tempo's source that were searched did not show
/// where (or whether) its search path refuses a metrics pipeline, so only the
/// `invalid TraceQL query: ` prefix is Tempo's; check the rest against a live Tempo.
pub const METRICS_QUERY_ON_SEARCH: &str =
    "invalid TraceQL query: metrics queries are not supported by /api/search, use /api/metrics/query_range";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The lexer or grammar refused the query.
    Syntax,
    /// The query parsed but fails Tempo's validation (types, regexes, …).
    Invalid,
    /// The query parsed but uses something Tempo reports as "not yet supported".
    Unsupported,
}

/// A rejected query. Every kind maps to HTTP 400.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Byte offset into the query.
    pub offset: usize,
    /// Tempo's message, without the position prefix.
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(
        kind: ErrorKind,
        src: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> Self {
        let offset = offset.min(src.len());
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = src[line_start..offset].chars().count() + 1;
        ParseError { kind, line, col, offset, message: message.into() }
    }
    pub(crate) fn syntax(src: &str, offset: usize, message: impl Into<String>) -> Self {
        Self::at(ErrorKind::Syntax, src, offset, message)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parse error at line {}, col {}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The HTTP 400 body Tempo's frontend sends for this error.
    pub fn http_message(&self) -> String {
        format!("{INVALID_QUERY_PREFIX}{self}")
    }
}

/// Parses a query for `/api/search`: as [`parse`], and metrics queries are refused; the error
/// is the HTTP 400 body.
pub fn parse_for_search(q: &str) -> Result<Query, String> {
    let query = parse(q).map_err(|e| e.http_message())?;
    if query.is_metrics() {
        return Err(METRICS_QUERY_ON_SEARCH.to_string());
    }
    Ok(query)
}

/// Parses and validates a TraceQL query.
pub fn parse(q: &str) -> Result<Query, ParseError> {
    parser::parse(q)
}
