//! Columnar evaluation of spanset-filter expressions over a [`BatchView`]: one pass per
//! operator over all rows, with typed fast paths for a column compared to a literal.
//!
//! Event- and link-scoped fields are per item: an expression using them is evaluated once
//! per item position (`k`-th event of every span) and a span matches if any position does.

use std::collections::HashMap;

use arrow_array::Array;
use regex::Regex;

use super::fields::{BatchView, DedicatedArray, ItemIndex};
use super::value::Value;
use crate::schema;
use crate::traceql::{AttributeScope, BinOp, FieldExpr, Intrinsic, Static, UnaryOp};

/// Compiled regexes of a query, by pattern.
pub type Regexes = HashMap<String, Regex>;

/// One value per row, or one value for all rows.
pub enum Col<'s> {
    Const(Value<'s>),
    Vals(Vec<Value<'s>>),
}

impl<'s> Col<'s> {
    #[inline]
    pub fn get(&self, i: usize) -> Value<'s> {
        match self {
            Col::Const(v) => *v,
            Col::Vals(v) => v[i],
        }
    }
}

/// Which item-scoped fields an expression reads.
#[derive(Default, Clone, Copy)]
pub struct ItemUse {
    pub events: bool,
    pub links: bool,
}

pub fn item_use(e: &FieldExpr) -> ItemUse {
    let mut u = ItemUse::default();
    visit(e, &mut |x| match x {
        FieldExpr::Attribute(a) => match a.scope {
            AttributeScope::Event => u.events = true,
            AttributeScope::Link => u.links = true,
            _ => {}
        },
        FieldExpr::Intrinsic(Intrinsic::EventName | Intrinsic::EventTimeSinceStart) => {
            u.events = true
        }
        FieldExpr::Intrinsic(Intrinsic::LinkSpanId | Intrinsic::LinkTraceId) => u.links = true,
        _ => {}
    });
    u
}

/// Calls `f` on every node of `e`.
pub fn visit(e: &FieldExpr, f: &mut impl FnMut(&FieldExpr)) {
    f(e);
    match e {
        FieldExpr::Binary { lhs, rhs, .. } => {
            visit(lhs, f);
            visit(rhs, f);
        }
        FieldExpr::Unary { expr, .. } => visit(expr, f),
        _ => {}
    }
}

/// Evaluates expressions over one batch.
pub struct Eval<'v, 'a> {
    pub view: &'v BatchView<'a>,
    regexes: &'v Regexes,
    item: ItemIndex,
}

impl<'v, 'a> Eval<'v, 'a> {
    pub fn new(view: &'v BatchView<'a>, regexes: &'v Regexes) -> Self {
        Eval { view, regexes, item: ItemIndex::default() }
    }

    /// Which rows satisfy filter `e` (any event / link position for item-scoped fields).
    pub fn filter(&self, e: &'v FieldExpr) -> Vec<bool> {
        let u = item_use(e);
        if !u.events && !u.links {
            return self.mask(e);
        }
        let ev_max =
            if u.events { self.view.events().map_or(0, |x| x.max_len()).max(1) } else { 1 };
        let ln_max = if u.links { self.view.links().map_or(0, |x| x.max_len()).max(1) } else { 1 };
        let mut out = vec![false; self.view.rows];
        for k in 0..ev_max {
            for l in 0..ln_max {
                let ev = Eval {
                    view: self.view,
                    regexes: self.regexes,
                    item: ItemIndex { event: u.events.then_some(k), link: u.links.then_some(l) },
                };
                for (o, m) in out.iter_mut().zip(ev.mask(e)) {
                    *o |= m;
                }
            }
        }
        out
    }

    /// Per-row values of `e` at the current item position.
    pub fn values(&self, e: &'v FieldExpr) -> Col<'v> {
        let n = self.view.rows;
        match e {
            FieldExpr::Static(s) => Col::Const(static_value(s)),
            FieldExpr::Attribute(a) => {
                Col::Vals((0..n).map(|i| self.view.attr(a, i, self.item)).collect())
            }
            FieldExpr::Intrinsic(i) => {
                Col::Vals((0..n).map(|r| self.view.intrinsic(*i, r, self.item)).collect())
            }
            FieldExpr::Binary { op, lhs, rhs } if !op.is_boolean() => {
                let (l, r) = (self.values(lhs), self.values(rhs));
                if let (Col::Const(a), Col::Const(b)) = (&l, &r) {
                    return Col::Const(a.arith(*op, b));
                }
                Col::Vals((0..n).map(|i| l.get(i).arith(*op, &r.get(i))).collect())
            }
            FieldExpr::Unary { op: UnaryOp::Neg, expr } => {
                let v = self.values(expr);
                let neg = |v: Value<'v>| match v {
                    Value::Int(x) => Value::Int(x.wrapping_neg()),
                    Value::Float(x) => Value::Float(-x),
                    Value::Duration(x) => Value::Duration(x.wrapping_neg()),
                    _ => Value::Nil,
                };
                match v {
                    Col::Const(c) => Col::Const(neg(c)),
                    Col::Vals(vs) => Col::Vals(vs.into_iter().map(neg).collect()),
                }
            }
            _ => Col::Vals(self.mask(e).into_iter().map(Value::Bool).collect()),
        }
    }

    /// Which rows make boolean expression `e` true.
    pub fn mask(&self, e: &'v FieldExpr) -> Vec<bool> {
        let n = self.view.rows;
        match e {
            FieldExpr::Static(Static::Bool(b)) => vec![*b; n],
            FieldExpr::Binary { op: BinOp::And, lhs, rhs } => {
                let mut m = self.mask(lhs);
                if m.iter().any(|&x| x) {
                    for (a, b) in m.iter_mut().zip(self.mask(rhs)) {
                        *a &= b;
                    }
                }
                m
            }
            FieldExpr::Binary { op: BinOp::Or, lhs, rhs } => {
                let mut m = self.mask(lhs);
                if !m.iter().all(|&x| x) {
                    for (a, b) in m.iter_mut().zip(self.mask(rhs)) {
                        *a |= b;
                    }
                }
                m
            }
            FieldExpr::Binary { op: op @ (BinOp::Re | BinOp::NotRe), lhs, rhs } => {
                let (l, r) = (self.values(lhs), self.values(rhs));
                let matches = |s: &str, p: &str| -> bool {
                    let m = match self.regexes.get(p) {
                        Some(re) => re.is_match(s),
                        None => crate::traceql::compile_regex(p)
                            .map(|re| re.is_match(s))
                            .unwrap_or(false),
                    };
                    m == (*op == BinOp::Re)
                };
                (0..n)
                    .map(|i| match (l.get(i), r.get(i)) {
                        (Value::Str(s), Value::Str(p)) => matches(s, p),
                        // an array: when any string element matches (or, for !~, does not)
                        (a @ Value::Array(_), Value::Str(p)) => {
                            a.elements().any(|e| matches!(e, Value::Str(s) if matches(s, p)))
                        }
                        _ => false,
                    })
                    .collect()
            }
            FieldExpr::Binary { op, lhs, rhs } if op.is_boolean() => {
                if let Some(m) = self.fast_compare(*op, lhs, rhs) {
                    return m;
                }
                let (l, r) = (self.values(lhs), self.values(rhs));
                (0..n).map(|i| l.get(i).compare(*op, &r.get(i))).collect()
            }
            FieldExpr::Unary { op: UnaryOp::Not, expr } => {
                if is_boolean_expr(expr) {
                    self.mask(expr).into_iter().map(|b| !b).collect()
                } else {
                    let v = self.values(expr);
                    (0..n).map(|i| matches!(v.get(i), Value::Bool(false))).collect()
                }
            }
            FieldExpr::Unary { op: op @ (UnaryOp::Exists | UnaryOp::NotExists), expr } => {
                let v = self.values(expr);
                let want_nil = *op == UnaryOp::NotExists;
                (0..n).map(|i| v.get(i).is_nil() == want_nil).collect()
            }
            _ => {
                let v = self.values(e);
                (0..n).map(|i| v.get(i).truthy()).collect()
            }
        }
    }

    /// A column compared with a literal, straight over the typed array.
    fn fast_compare(&self, op: BinOp, lhs: &'v FieldExpr, rhs: &'v FieldExpr) -> Option<Vec<bool>> {
        let (field, lit, op) = match (lhs, rhs) {
            (f, FieldExpr::Static(s)) => (f, s, op),
            (FieldExpr::Static(s), f) => (f, s, flip(op)?),
            _ => return None,
        };
        let lit = static_value(lit);
        let v = self.view;
        match field {
            FieldExpr::Intrinsic(Intrinsic::Duration) => {
                let col = v.u64s(schema::DURATION)?;
                let lit_v = match lit {
                    Value::Duration(x) | Value::Int(x) => x as f64,
                    Value::Float(x) => x,
                    _ => return Some(vec![false; v.rows]),
                };
                Some(col.values().iter().map(|&d| cmp_f64(op, d as f64, lit_v)).collect())
            }
            FieldExpr::Intrinsic(Intrinsic::Name) => {
                let col = v.strs(schema::NAME)?;
                let Value::Str(s) = lit else { return Some(vec![false; v.rows]) };
                Some((0..v.rows).map(|i| cmp_str(op, col.value(i), s)).collect())
            }
            FieldExpr::Intrinsic(i @ (Intrinsic::Status | Intrinsic::Kind)) => {
                let col = v.i32s(if *i == Intrinsic::Status {
                    schema::STATUS_CODE
                } else {
                    schema::KIND
                })?;
                let code = match (i, lit) {
                    (Intrinsic::Status, Value::Status(c)) | (Intrinsic::Kind, Value::Kind(c)) => c,
                    _ => return Some(vec![false; v.rows]),
                };
                let want = match op {
                    BinOp::Eq => true,
                    BinOp::Neq => false,
                    _ => return None,
                };
                Some(col.values().iter().map(|&c| (c == code) == want).collect())
            }
            FieldExpr::Attribute(a)
                if matches!(a.scope, AttributeScope::Span | AttributeScope::Resource) =>
            {
                // The resource's `service.name` has its own string column; other attributes
                // may have a dedicated one.
                let ded = if a.scope == AttributeScope::Resource && a.name == "service.name" {
                    DedicatedArray::Str(v.strs(schema::RESOURCE_SERVICE_NAME)?)
                } else {
                    v.dedicated(a.scope, &a.name)?
                };
                // Rows without a dedicated value may hold the attribute (of another type)
                // in the list: look those up.
                let slow = |i: usize| v.attr(a, i, self.item).compare(op, &lit);
                Some(match ded {
                    DedicatedArray::Int(col) => {
                        let lit_v = match lit {
                            Value::Int(x) | Value::Duration(x) => x as f64,
                            Value::Float(x) => x,
                            _ => f64::NAN,
                        };
                        (0..v.rows)
                            .map(|i| {
                                if col.is_valid(i) {
                                    !lit_v.is_nan() && cmp_f64(op, col.value(i) as f64, lit_v)
                                } else {
                                    slow(i)
                                }
                            })
                            .collect()
                    }
                    DedicatedArray::Str(col) => (0..v.rows)
                        .map(|i| {
                            if col.is_valid(i) {
                                matches!(lit, Value::Str(s) if cmp_str(op, col.value(i), s))
                            } else {
                                slow(i)
                            }
                        })
                        .collect(),
                })
            }
            _ => None,
        }
    }
}

fn is_boolean_expr(e: &FieldExpr) -> bool {
    match e {
        FieldExpr::Binary { op, .. } => op.is_boolean(),
        FieldExpr::Unary { op, .. } => !matches!(op, UnaryOp::Neg),
        FieldExpr::Static(Static::Bool(_)) => true,
        _ => false,
    }
}

fn flip(op: BinOp) -> Option<BinOp> {
    Some(match op {
        BinOp::Eq | BinOp::Neq => op,
        BinOp::Lt => BinOp::Gt,
        BinOp::Lte => BinOp::Gte,
        BinOp::Gt => BinOp::Lt,
        BinOp::Gte => BinOp::Lte,
        _ => return None,
    })
}

#[inline]
fn cmp_f64(op: BinOp, a: f64, b: f64) -> bool {
    match op {
        BinOp::Eq => a == b,
        BinOp::Neq => a != b,
        BinOp::Lt => a < b,
        BinOp::Lte => a <= b,
        BinOp::Gt => a > b,
        BinOp::Gte => a >= b,
        _ => false,
    }
}

#[inline]
fn cmp_str(op: BinOp, a: &str, b: &str) -> bool {
    match op {
        BinOp::Eq => a == b,
        BinOp::Neq => a != b,
        BinOp::Lt => a < b,
        BinOp::Lte => a <= b,
        BinOp::Gt => a > b,
        BinOp::Gte => a >= b,
        _ => false,
    }
}

/// A literal as a value (statics live in the query, which outlives every evaluation).
pub fn static_value<'s>(s: &'s Static) -> Value<'s> {
    Value::from_static(s)
}
