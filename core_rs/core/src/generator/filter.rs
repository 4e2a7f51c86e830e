//! Span-metrics `filter_policies` (Tempo's `pkg/spanfilter`): a span is counted only
//! when it matches every policy's `include` block and none of their `exclude` blocks.
//!
//! A block matches when all of its attribute filters do: resource attributes,
//! span attributes and the intrinsics `name`, `status` and `kind`. An attribute
//! filter compares the first attribute with its key, typed as Tempo does (a string
//! filter against the attribute's string value, "" when it is not a string; an int
//! filter against its int value, 0 otherwise; and so on); an absent key never
//! matches. `regex` blocks match string values with an unanchored regular expression
//! (RE2 syntax, as Go's `regexp`).

use regex::Regex;

use super::attrs::{kind_name, status_name, Found, KeySet, SpanFields};
use crate::otlp::view::AnyValue;
use crate::render::{SPAN_KINDS, STATUS_CODES};

/// A filter's value as configured.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Where an attribute filter looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Resource,
    Span,
    Intrinsic,
}

/// One `{key, value}` of a block, its key already split into scope and name.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterAttr {
    pub scope: Scope,
    pub name: String,
    pub value: FilterValue,
}

/// An `include` or `exclude` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyMatch {
    pub regex: bool,
    pub attributes: Vec<FilterAttr>,
}

/// One entry of `filter_policies`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilterPolicy {
    pub include: Option<PolicyMatch>,
    pub exclude: Option<PolicyMatch>,
}

#[derive(Debug, Clone)]
enum Matcher {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Regex(Regex),
}

impl Matcher {
    fn new(regex: bool, value: &FilterValue, what: &str) -> Result<Matcher, String> {
        Ok(match (regex, value) {
            (true, FilterValue::Str(s)) => Matcher::Regex(
                Regex::new(s).map_err(|e| format!("invalid regexp value for {what}: {e}"))?,
            ),
            (true, other) => return Err(format!("invalid regex value for {what}: {other:?}")),
            (false, FilterValue::Str(s)) => Matcher::Str(s.clone()),
            (false, FilterValue::Int(i)) => Matcher::Int(*i),
            (false, FilterValue::Float(f)) => Matcher::Float(*f),
            (false, FilterValue::Bool(b)) => Matcher::Bool(*b),
        })
    }

    /// Tempo's typed comparison: the attribute's value of the filter's type, or that
    /// type's zero value when the attribute holds another type.
    fn attribute(&self, v: &AnyValue<'_>) -> bool {
        match self {
            Matcher::Str(s) => s == if let AnyValue::Str(a) = v { a } else { "" },
            Matcher::Int(i) => *i == if let AnyValue::Int(a) = v { *a } else { 0 },
            Matcher::Float(f) => *f == if let AnyValue::Double(a) = v { *a } else { 0.0 },
            Matcher::Bool(b) => *b == matches!(v, AnyValue::Bool(true)),
            Matcher::Regex(r) => r.is_match(if let AnyValue::Str(a) = v { a } else { "" }),
        }
    }
}

#[derive(Debug, Clone)]
enum Intrinsic {
    /// The span name, exactly or by regex.
    Name(Matcher),
    /// The status code: a number exactly, or its `STATUS_CODE_*` name by regex.
    Status(Result<i32, Regex>),
    /// The kind: a number exactly, or its `SPAN_KIND_*` name by regex.
    Kind(Result<i32, Regex>),
}

impl Intrinsic {
    fn new(regex: bool, name: &str, value: &FilterValue) -> Result<Intrinsic, String> {
        let enum_value = |names: &[&str], what: &str| -> Result<Result<i32, Regex>, String> {
            match (regex, value) {
                (true, FilterValue::Str(s)) => Regex::new(s)
                    .map(Err)
                    .map_err(|e| format!("invalid intrinsic filter regex: {e}")),
                (false, FilterValue::Str(s)) => names
                    .iter()
                    .position(|n| n == s)
                    .map(|p| Ok(p as i32))
                    .ok_or_else(|| format!("unsupported {what} intrinsic string value: {s}")),
                (_, other) => Err(format!("invalid {what} intrinsic value: {other:?}")),
            }
        };
        match name {
            "name" => match value {
                FilterValue::Str(_) => Ok(Intrinsic::Name(Matcher::new(regex, value, "name")?)),
                other => Err(format!("unsupported name intrinsic value: {other:?}")),
            },
            "status" => Ok(Intrinsic::Status(enum_value(STATUS_CODES, "status")?)),
            "kind" => Ok(Intrinsic::Kind(enum_value(SPAN_KINDS, "kind")?)),
            other => Err(format!(
                "currently unsupported intrinsic: {other}; supported intrinsics: [\"kind\" \"name\" \"status\"]"
            )),
        }
    }

    fn matches(&self, kind: i32, fields: &SpanFields<'_>) -> bool {
        match self {
            Intrinsic::Name(m) => m.attribute(&AnyValue::Str(fields.name)),
            Intrinsic::Status(Ok(code)) => *code == fields.status_code,
            Intrinsic::Status(Err(r)) => r.is_match(&status_name(fields.status_code)),
            Intrinsic::Kind(Ok(k)) => *k == kind,
            Intrinsic::Kind(Err(r)) => r.is_match(&kind_name(kind)),
        }
    }
}

/// A compiled block: attribute filters by their slot in the processor's key sets.
#[derive(Debug, Clone, Default)]
struct Block {
    resource: Vec<(usize, Matcher)>,
    span: Vec<(usize, Matcher)>,
    intrinsic: Vec<Intrinsic>,
}

impl Block {
    fn new(
        p: &PolicyMatch,
        resource_keys: &mut KeySet,
        span_keys: &mut KeySet,
    ) -> Result<Block, String> {
        let mut b = Block::default();
        for a in &p.attributes {
            if a.name.is_empty() {
                return Err(format!("invalid attribute: {a:?}"));
            }
            match a.scope {
                Scope::Resource => b
                    .resource
                    .push((resource_keys.slot(&a.name), Matcher::new(p.regex, &a.value, &a.name)?)),
                Scope::Span => b
                    .span
                    .push((span_keys.slot(&a.name), Matcher::new(p.regex, &a.value, &a.name)?)),
                Scope::Intrinsic => b.intrinsic.push(Intrinsic::new(p.regex, &a.name, &a.value)?),
            }
        }
        Ok(b)
    }

    fn matches(&self, res: &Found<'_>, span: &Found<'_>, kind: i32, f: &SpanFields<'_>) -> bool {
        let attr = |found: &Found<'_>, &(slot, ref m): &(usize, Matcher)| {
            found.value(slot).is_some_and(|v| m.attribute(v))
        };
        self.resource.iter().all(|x| attr(res, x))
            && self.span.iter().all(|x| attr(span, x))
            && self.intrinsic.iter().all(|i| i.matches(kind, f))
    }
}

/// Compiled `filter_policies`; with none, every span passes.
#[derive(Debug, Clone, Default)]
pub struct SpanFilter {
    policies: Vec<(Option<Block>, Option<Block>)>,
}

impl SpanFilter {
    /// Compiles `policies`, adding the attributes they read to the processor's key sets.
    /// Errors name the policy and block, as Tempo's validation does.
    pub fn new(
        policies: &[FilterPolicy],
        resource_keys: &mut KeySet,
        span_keys: &mut KeySet,
    ) -> Result<SpanFilter, String> {
        let mut out = Vec::with_capacity(policies.len());
        for p in policies {
            if p.include.is_none() && p.exclude.is_none() {
                return Err("invalid filter policy; policies must have at least an `include` or \
                            `exclude`"
                    .to_string());
            }
            let mut compile = |m: &Option<PolicyMatch>, what: &str| {
                m.as_ref()
                    .map(|m| Block::new(m, resource_keys, span_keys))
                    .transpose()
                    .map_err(|e| format!("invalid {what} policy: {e}"))
            };
            out.push((compile(&p.include, "include")?, compile(&p.exclude, "exclude")?));
        }
        Ok(SpanFilter { policies: out })
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Whether any policy reads span attributes (the span's attributes must be walked).
    pub fn reads_span_attributes(&self) -> bool {
        self.policies.iter().any(|(i, e)| i.iter().chain(e.iter()).any(|b| !b.span.is_empty()))
    }

    /// Whether the span is counted: it matches every include block and no exclude block.
    pub fn keep(&self, res: &Found<'_>, span: &Found<'_>, kind: i32, f: &SpanFields<'_>) -> bool {
        self.policies.iter().all(|(include, exclude)| {
            include.as_ref().is_none_or(|b| b.matches(res, span, kind, f))
                && !exclude.as_ref().is_some_and(|b| b.matches(res, span, kind, f))
        })
    }
}
