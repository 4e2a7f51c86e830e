//! The canonical string form: single spaces around binary operators, parentheses only where
//! precedence (or Tempo's grammar) needs them, `{}` for the match-all filter, scoped intrinsic
//! names, double-quoted strings and normalised durations. `parse(q.to_string()) == q`.

use super::ast::*;
use super::lexer::is_attribute_rune;
use super::parser::is_pure;
use std::fmt::{self, Display, Formatter, Write};

/// The precedence a unary operator's operand is parsed at (Tempo's `NOT` level sits between
/// `+ -` and `* / %`).
const PREC_UNARY: u8 = 4;

pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `1h30m`, `1.5s`, `100ms`, `10us`, `7ns`, `0s`.
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ns < 0 {
        out.push('-');
    }
    let v = (ns as i128).unsigned_abs();
    let frac = |v: u128, unit: u128, digits: usize| -> String {
        let (i, f) = (v / unit, v % unit);
        if f == 0 {
            i.to_string()
        } else {
            let f = format!("{f:0digits$}");
            format!("{i}.{}", f.trim_end_matches('0'))
        }
    };
    if v < 1_000 {
        let _ = write!(out, "{v}ns");
    } else if v < 1_000_000 {
        let _ = write!(out, "{}us", frac(v, 1_000, 3));
    } else if v < 1_000_000_000 {
        let _ = write!(out, "{}ms", frac(v, 1_000_000, 6));
    } else {
        let s = v / 1_000_000_000;
        let sub = v % 1_000_000_000;
        let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
        if h > 0 {
            let _ = write!(out, "{h}h");
        }
        if m > 0 {
            let _ = write!(out, "{m}m");
        }
        if sec > 0 || sub > 0 {
            let _ = write!(out, "{}s", frac(sec * 1_000_000_000 + sub, 1_000_000_000, 9));
        }
    }
    out
}

/// A float that lexes back as a float (`1.0`, `0.5`, `1e300`).
fn fmt_float(f: f64) -> String {
    format!("{f:?}")
}

/// A number where Tempo's grammar takes an integer or a float alike and keeps a float
/// (quantiles, metrics filter values): integral values print without a fraction.
fn fmt_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        fmt_float(f)
    }
}

impl Display for Static {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Static::String(s) => f.write_str(&quote_string(s)),
            Static::Int(i64::MIN) => f.write_str("minInt"),
            Static::Int(i64::MAX) => f.write_str("maxInt"),
            Static::Int(i) => write!(f, "{i}"),
            Static::Float(x) => f.write_str(&fmt_float(*x)),
            Static::Bool(b) => write!(f, "{b}"),
            Static::Duration(d) => f.write_str(&format_duration(*d)),
            Static::Status(s) => f.write_str(match s {
                Status::Ok => "ok",
                Status::Error => "error",
                Status::Unset => "unset",
            }),
            Static::Kind(k) => f.write_str(match k {
                Kind::Unspecified => "unspecified",
                Kind::Internal => "internal",
                Kind::Server => "server",
                Kind::Client => "client",
                Kind::Producer => "producer",
                Kind::Consumer => "consumer",
            }),
        }
    }
}

impl Display for Attribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.parent {
            f.write_str("parent.")?;
        }
        let prefix = match self.scope {
            AttributeScope::None if self.parent => "",
            AttributeScope::None => ".",
            AttributeScope::Span => "span.",
            AttributeScope::Resource => "resource.",
            AttributeScope::Event => "event.",
            AttributeScope::Link => "link.",
            AttributeScope::Instrumentation => "instrumentation.",
        };
        f.write_str(prefix)?;
        let n = &self.name;
        let unscoped = self.scope == AttributeScope::None;
        let needs_quotes = n.is_empty()
            || n.chars().any(|c| !is_attribute_rune(c) || c == '"')
            || (unscoped && !self.parent && n.starts_with(|c: char| c.is_ascii_digit()))
            || (unscoped && self.parent && (n.starts_with("span.") || n.starts_with("resource.")));
        if needs_quotes {
            f.write_char('"')?;
            for c in n.chars() {
                if c == '"' || c == '\\' {
                    f.write_char('\\')?;
                }
                f.write_char(c)?;
            }
            f.write_char('"')
        } else {
            f.write_str(n)
        }
    }
}

impl Display for Intrinsic {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Field {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Field::Attribute(a) => a.fmt(f),
            Field::Intrinsic(i) => i.fmt(f),
        }
    }
}

/// Writes `body`, in parentheses when `on`.
fn parens(
    f: &mut Formatter<'_>,
    on: bool,
    body: impl FnOnce(&mut Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    if on {
        f.write_char('(')?;
    }
    body(f)?;
    if on {
        f.write_char(')')?;
    }
    Ok(())
}

fn field_prec(e: &FieldExpr) -> u8 {
    match e {
        FieldExpr::Binary { op, .. } => op.precedence(),
        FieldExpr::Unary { op: UnaryOp::Neg | UnaryOp::Not, .. } => PREC_UNARY,
        FieldExpr::Unary { .. } => PREC_CMP,
        _ => u8::MAX,
    }
}

fn write_field(f: &mut Formatter<'_>, e: &FieldExpr, min: u8) -> fmt::Result {
    parens(f, field_prec(e) < min, |f| match e {
        FieldExpr::Static(s) => s.fmt(f),
        FieldExpr::Attribute(a) => a.fmt(f),
        FieldExpr::Intrinsic(i) => i.fmt(f),
        FieldExpr::Binary { op, lhs, rhs } => {
            let p = op.precedence();
            let (lm, rm) = if op.right_assoc() { (p + 1, p) } else { (p, p + 1) };
            write_field(f, lhs, lm)?;
            write!(f, " {} ", op.as_str())?;
            write_field(f, rhs, rm)
        }
        FieldExpr::Unary { op, expr } => match op {
            UnaryOp::Neg | UnaryOp::Not => {
                f.write_str(if *op == UnaryOp::Neg { "-" } else { "!" })?;
                write_field(f, expr, PREC_MUL)
            }
            UnaryOp::Exists | UnaryOp::NotExists => {
                write_field(f, expr, PREC_CMP)?;
                f.write_str(if *op == UnaryOp::Exists { " != nil" } else { " = nil" })
            }
        },
    })
}

impl Display for FieldExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_field(f, self, 0)
    }
}

impl Display for Aggregate {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op.as_str())?;
        if let Some(e) = &self.expr {
            e.fmt(f)?;
        }
        f.write_char(')')
    }
}

fn arith_prec(op: ArithOp) -> (u8, bool) {
    let b = op.binop();
    (b.precedence(), b.right_assoc())
}

fn write_scalar(f: &mut Formatter<'_>, e: &ScalarExpr, min: u8) -> fmt::Result {
    match e {
        ScalarExpr::Aggregate(a) => a.fmt(f),
        ScalarExpr::Static(s) => s.fmt(f),
        ScalarExpr::Pipeline { pipeline, aggregate } => write!(f, "({pipeline} | {aggregate})"),
        ScalarExpr::Op { op, lhs, rhs } => {
            let (p, right) = arith_prec(*op);
            let (lm, rm) = if right { (p + 1, p) } else { (p, p + 1) };
            parens(f, p < min, |f| {
                write_scalar(f, lhs, lm)?;
                write!(f, " {} ", op.binop().as_str())?;
                write_scalar(f, rhs, rm)
            })
        }
    }
}

impl Display for ScalarExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_scalar(f, self, 0)
    }
}

impl Display for ScalarFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_scalar(f, &self.lhs, PREC_CMP + 1)?;
        write!(f, " {} ", self.op.as_str())?;
        write_scalar(f, &self.rhs, PREC_CMP + 1)
    }
}

fn write_spanset(f: &mut Formatter<'_>, e: &SpansetExpr, min: u8) -> fmt::Result {
    match e {
        SpansetExpr::Filter(FieldExpr::Static(Static::Bool(true))) => f.write_str("{}"),
        SpansetExpr::Filter(x) => write!(f, "{{ {x} }}"),
        SpansetExpr::Pipeline(p) => write!(f, "({p})"),
        SpansetExpr::Op { op, lhs, rhs } => {
            let p = op.precedence();
            parens(f, p < min, |f| {
                if is_pure(e) {
                    write_spanset(f, lhs, p)?;
                    write!(f, " {} ", op.as_str())?;
                    return write_spanset(f, rhs, p + 1);
                }
                // Operands of an operation over pipelines must be parenthesised pipelines or
                // such operations themselves.
                let operand = |f: &mut Formatter<'_>, x: &SpansetExpr, m: u8| match x {
                    SpansetExpr::Op { .. } if !is_pure(x) => write_spanset(f, x, m),
                    SpansetExpr::Pipeline(_) => write_spanset(f, x, m),
                    _ => parens(f, true, |f| write_spanset(f, x, 0)),
                };
                operand(f, lhs, p)?;
                write!(f, " {} ", op.as_str())?;
                operand(f, rhs, p + 1)
            })
        }
    }
}

impl Display for SpansetExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_spanset(f, self, 0)
    }
}

fn write_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        x.fmt(f)?;
    }
    Ok(())
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Spanset(e) => e.fmt(f),
            Stage::ScalarFilter(s) => s.fmt(f),
            Stage::By(e) => write!(f, "by({e})"),
            Stage::Coalesce => f.write_str("coalesce()"),
            Stage::Select(fields) => {
                f.write_str("select(")?;
                write_list(f, fields)?;
                f.write_char(')')
            }
        }
    }
}

impl Display for Pipeline {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, s) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            s.fmt(f)?;
        }
        Ok(())
    }
}

fn write_by(f: &mut Formatter<'_>, by: &[Field]) -> fmt::Result {
    if by.is_empty() {
        return Ok(());
    }
    f.write_str(" by (")?;
    write_list(f, by)?;
    f.write_char(')')
}

impl Display for MetricsFirstStage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        use MetricsFirstStage as M;
        match self {
            M::Rate { by } => {
                f.write_str("rate()")?;
                write_by(f, by)
            }
            M::CountOverTime { by } => {
                f.write_str("count_over_time()")?;
                write_by(f, by)
            }
            M::MinOverTime { field, by }
            | M::MaxOverTime { field, by }
            | M::AvgOverTime { field, by }
            | M::SumOverTime { field, by }
            | M::HistogramOverTime { field, by } => {
                let name = match self {
                    M::MinOverTime { .. } => "min_over_time",
                    M::MaxOverTime { .. } => "max_over_time",
                    M::AvgOverTime { .. } => "avg_over_time",
                    M::SumOverTime { .. } => "sum_over_time",
                    _ => "histogram_over_time",
                };
                write!(f, "{name}({field})")?;
                write_by(f, by)
            }
            M::QuantileOverTime { field, quantiles, by } => {
                write!(f, "quantile_over_time({field}")?;
                for q in quantiles {
                    write!(f, ", {}", fmt_number(*q))?;
                }
                f.write_char(')')?;
                write_by(f, by)
            }
            M::Compare { filter, top_n, start, end } => {
                write!(f, "compare({filter}")?;
                if *start != 0 || *end != 0 {
                    write!(f, ", {top_n}, {start}, {end}")?;
                } else if *top_n != 10 {
                    write!(f, ", {top_n}")?;
                }
                f.write_char(')')
            }
        }
    }
}

impl Display for SecondStage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SecondStage::TopK(n) => write!(f, " | topk({n})"),
            SecondStage::BottomK(n) => write!(f, " | bottomk({n})"),
            SecondStage::Filter { op, value } => {
                write!(f, " {} {}", op.as_str(), fmt_number(*value))
            }
        }
    }
}

fn write_metrics(f: &mut Formatter<'_>, m: &MetricsExpr, min: u8, top: bool) -> fmt::Result {
    match m {
        MetricsExpr::Pipeline { pipeline, first, second } => parens(f, !top, |f| {
            write!(f, "{pipeline} | {first}")?;
            second.iter().try_for_each(|s| s.fmt(f))
        }),
        MetricsExpr::Math { op, lhs, rhs } => {
            let (p, _) = arith_prec(*op);
            parens(f, p < min, |f| {
                write_metrics(f, lhs, p, false)?;
                write!(f, " {} ", op.binop().as_str())?;
                write_metrics(f, rhs, p + 1, false)
            })
        }
    }
}

impl Display for MetricsQuery {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_metrics(f, &self.expr, 0, true)?;
        for s in &self.second {
            s.fmt(f)?;
        }
        Ok(())
    }
}

impl Display for QueryBody {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            QueryBody::Pipeline(p) => p.fmt(f),
            QueryBody::ScalarFilter(s) => s.fmt(f),
            QueryBody::Metrics(m) => m.fmt(f),
        }
    }
}

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.body.fmt(f)?;
        if !self.hints.is_empty() {
            f.write_str(" with(")?;
            for (i, h) in self.hints.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}={}", h.name, h.value)?;
            }
            f.write_char(')')?;
        }
        Ok(())
    }
}
