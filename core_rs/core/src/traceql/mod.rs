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
mod parser;
mod validate;

#[cfg(test)]
mod corpus_tests;

pub use ast::*;
pub use validate::compile_regex;

use std::fmt;

/// What Tempo answers (HTTP 400) when a metrics query is sent to `/api/search`.
pub const METRICS_QUERY_ON_SEARCH: &str =
    "invalid TraceQL query: metrics pipelines are not supported by search, use /api/metrics/query_range";

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

/// Parses and validates a TraceQL query.
pub fn parse(q: &str) -> Result<Query, ParseError> {
    parser::parse(q)
}
