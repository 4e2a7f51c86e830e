//! Per-trace pipeline evaluation (Tempo's `Pipeline.evaluate`): spanset filters pick rows
//! from precomputed masks, structural operators walk `parent_index`, aggregates and `by()`
//! read precomputed per-row values.

use super::eval::Col;
use super::value::Value;
use crate::traceql::{
    Aggregate, AggregateOp, ArithOp, FieldExpr, Pipeline, ScalarExpr, ScalarFilter, SpansetExpr,
    SpansetOp, Stage,
};

/// Spans (absolute batch rows, ascending) and the attributes a pipeline gave them.
#[derive(Clone, Debug, Default)]
pub struct Spanset<'v> {
    pub rows: Vec<u32>,
    pub attrs: Vec<(String, Value<'v>)>,
}

/// What a trace's evaluation reads: the precomputed columns of the batch.
pub struct TraceCtx<'c, 'v> {
    /// First row of the trace.
    pub start: usize,
    /// One past its last row.
    pub end: usize,
    /// `parent_index` (relative to the trace's first row); empty if not projected.
    pub parents: &'c [i32],
    /// Per batch row: the span has no parent id (a root). Empty unless the query has
    /// structural operators.
    pub roots: &'c [bool],
    /// Filter masks by expression address.
    pub masks: &'c dyn Fn(&FieldExpr) -> &'c [bool],
    /// Per-row values by expression address.
    pub values: &'c dyn Fn(&FieldExpr) -> &'c Col<'v>,
}

impl<'c, 'v> TraceCtx<'c, 'v> {
    fn parent(&self, row: u32) -> Option<u32> {
        let p = *self.parents.get(row as usize)?;
        (p >= 0 && self.start + (p as usize) < self.end).then(|| (self.start + p as usize) as u32)
    }

    /// Which spans of the trace are in its tree: roots and spans whose parent chain reaches
    /// a root. An orphan and its subtree are not (Tempo gives them no nested-set numbers),
    /// so they take part in no structural relation.
    fn in_tree(&self) -> Vec<bool> {
        let n = self.len();
        // 0 unknown, 1 in, 2 out, 3 on the path being walked (a cycle if met again)
        let mut state = vec![0u8; n];
        let mut path = Vec::new();
        for i in 0..n {
            let mut cur = i;
            let verdict = loop {
                match state[cur] {
                    0 => {}
                    3 => break 2, // a parent cycle: never reaches a root
                    s => break s,
                }
                let row = (self.start + cur) as u32;
                if self.roots.get(row as usize).copied().unwrap_or(false) {
                    state[cur] = 1;
                    break 1;
                }
                state[cur] = 3;
                path.push(cur);
                match self.parent(row) {
                    Some(p) => cur = self.local(p),
                    None => break 2,
                }
            };
            for &x in &path {
                state[x] = verdict;
            }
            path.clear();
        }
        state.into_iter().map(|s| s == 1).collect()
    }

    fn local(&self, row: u32) -> usize {
        row as usize - self.start
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    /// The trace's whole spanset.
    pub fn all(&self) -> Spanset<'v> {
        Spanset { rows: (self.start as u32..self.end as u32).collect(), attrs: Vec::new() }
    }

    pub fn pipeline(&self, p: &Pipeline, input: Vec<Spanset<'v>>) -> Vec<Spanset<'v>> {
        let mut sets = input;
        for stage in &p.stages {
            if sets.is_empty() {
                break;
            }
            sets = self.stage(stage, sets);
        }
        sets
    }

    fn stage(&self, stage: &Stage, input: Vec<Spanset<'v>>) -> Vec<Spanset<'v>> {
        match stage {
            Stage::Spanset(e) => input.iter().flat_map(|ss| self.spanset(e, ss)).collect(),
            Stage::ScalarFilter(f) => {
                input.into_iter().filter_map(|ss| self.scalar_filter(f, ss)).collect()
            }
            Stage::By(e) => {
                let vals = (self.values)(e);
                let key = format!("by({e})");
                let mut out: Vec<Spanset<'v>> = Vec::new();
                for ss in input {
                    let first = out.len();
                    for &r in &ss.rows {
                        let v = vals.get(r as usize);
                        match out[first..]
                            .iter_mut()
                            .find(|g| g.attrs.last().map(|a| a.1) == Some(v))
                        {
                            Some(g) => g.rows.push(r),
                            None => {
                                let mut attrs = ss.attrs.clone();
                                attrs.push((key.clone(), v));
                                out.push(Spanset { rows: vec![r], attrs });
                            }
                        }
                    }
                }
                out
            }
            Stage::Coalesce => {
                let mut rows: Vec<u32> = input.into_iter().flat_map(|s| s.rows).collect();
                rows.sort_unstable();
                rows.dedup();
                if rows.is_empty() {
                    Vec::new()
                } else {
                    vec![Spanset { rows, attrs: Vec::new() }]
                }
            }
            Stage::Select(_) => input,
        }
    }

    fn scalar_filter(&self, f: &ScalarFilter, mut ss: Spanset<'v>) -> Option<Spanset<'v>> {
        let lhs = self.scalar(&f.lhs, &mut ss);
        let rhs = self.scalar(&f.rhs, &mut ss);
        lhs.compare(f.op.binop(), &rhs).then_some(ss)
    }

    /// A scalar over spanset `ss`; aggregates are recorded as the spanset's attributes.
    fn scalar(&self, e: &ScalarExpr, ss: &mut Spanset<'v>) -> Value<'v> {
        match e {
            ScalarExpr::Static(s) => owned_static(s),
            ScalarExpr::Aggregate(a) => {
                let v = self.aggregate(a, ss);
                ss.attrs.push((a.to_string(), v));
                v
            }
            ScalarExpr::Op { op, lhs, rhs } => {
                let (l, r) = (self.scalar(lhs, ss), self.scalar(rhs, ss));
                l.arith(arith(*op), &r)
            }
            // Pipeline-vs-pipeline comparisons are refused by the validator.
            ScalarExpr::Pipeline { .. } => Value::Nil,
        }
    }

    fn aggregate(&self, a: &Aggregate, ss: &Spanset<'v>) -> Value<'v> {
        if a.op == AggregateOp::Count {
            return Value::Int(ss.rows.len() as i64);
        }
        let Some(e) = a.expr.as_deref() else { return Value::Nil };
        let vals = (self.values)(e);
        // Spans without the value are skipped; with none left the spanset has no value.
        let xs: Vec<f64> = ss
            .rows
            .iter()
            .map(|&r| vals.get(r as usize))
            .filter(|v| !v.is_nil())
            .map(|v| v.as_f64())
            .collect();
        if xs.is_empty() {
            return Value::Nil;
        }
        let count = xs.len() as f64;
        let xs = xs.into_iter();
        Value::Float(match a.op {
            AggregateOp::Sum => xs.sum(),
            AggregateOp::Avg => xs.sum::<f64>() / count,
            AggregateOp::Min => xs.fold(f64::INFINITY, f64::min),
            AggregateOp::Max => xs.fold(f64::NEG_INFINITY, f64::max),
            AggregateOp::Count => unreachable!(),
        })
    }

    /// `e` over input spanset `ss`: at most one spanset, except for nested pipelines.
    fn spanset(&self, e: &SpansetExpr, ss: &Spanset<'v>) -> Vec<Spanset<'v>> {
        let one = |rows: Vec<u32>| {
            if rows.is_empty() {
                Vec::new()
            } else {
                vec![Spanset { rows, attrs: ss.attrs.clone() }]
            }
        };
        match e {
            SpansetExpr::Filter(f) => {
                let m = (self.masks)(f);
                one(ss.rows.iter().copied().filter(|&r| m[r as usize]).collect())
            }
            SpansetExpr::Pipeline(p) => self.pipeline(p, vec![ss.clone()]),
            SpansetExpr::Op { op, lhs, rhs } => {
                let l = self.spanset(lhs, ss);
                let r = self.spanset(rhs, ss);
                match op {
                    SpansetOp::And if l.is_empty() || r.is_empty() => Vec::new(),
                    SpansetOp::And | SpansetOp::Union => one(union(&l, &r)),
                    _ => one(self.structural(*op, &flatten(&l), &flatten(&r))),
                }
            }
        }
    }

    /// Rows of a structural operation: from the right-hand side (and the left for the
    /// union forms).
    fn structural(&self, op: SpansetOp, a: &[u32], b: &[u32]) -> Vec<u32> {
        use SpansetOp::*;
        let n = self.len();
        let tree = self.in_tree();
        // The parent within the tree; roots (and spans outside the tree) have none.
        let parent = |x: u32| -> Option<u32> {
            if tree[self.local(x)] {
                self.parent(x)
            } else {
                None
            }
        };
        let mut in_a = vec![false; n];
        for &r in a {
            in_a[self.local(r)] = true;
        }
        let mut in_b = vec![false; n];
        for &r in b {
            in_b[self.local(r)] = true;
        }
        // b has a parent in a / an ancestor in a / a sibling in a; b is the parent /
        // an ancestor of a span in a.
        let has_parent_in = |x: u32, set: &[bool]| parent(x).is_some_and(|p| set[self.local(p)]);
        // Per span: whether an ancestor is in `set`, memoised down the tree (linear even
        // for a trace that is one long chain).
        let below = |set: &[bool]| -> Vec<bool> {
            // 0 unknown, 1 yes, 2 no
            let mut memo = vec![0u8; n];
            let mut path = Vec::new();
            for i in 0..n {
                let mut cur = i;
                let verdict = loop {
                    if memo[cur] != 0 {
                        break memo[cur];
                    }
                    path.push(cur);
                    match parent((self.start + cur) as u32) {
                        Some(p) if set[self.local(p)] => break 1,
                        Some(p) if path.len() <= n => cur = self.local(p),
                        _ => break 2,
                    }
                };
                for &x in &path {
                    memo[x] = verdict;
                }
                path.clear();
            }
            memo.into_iter().map(|m| m == 1).collect()
        };
        let under = |memo: &[bool], x: u32| memo[self.local(x)];
        let mark_parents = |set: &[u32]| {
            let mut m = vec![false; n];
            for &x in set {
                if let Some(p) = parent(x) {
                    m[self.local(p)] = true;
                }
            }
            m
        };
        let mark_ancestors = |set: &[u32]| {
            let mut m = vec![false; n];
            for &x in set {
                let mut cur = parent(x);
                let mut steps = 0;
                while let Some(p) = cur {
                    if m[self.local(p)] || steps > n {
                        break;
                    }
                    m[self.local(p)] = true;
                    steps += 1;
                    cur = parent(p);
                }
            }
            m
        };
        let siblings_in = |set: &[u32]| {
            // Per parent: how many of `set` it has.
            // Slot n: the roots, which are siblings of each other.
            let key = |x: u32| -> Option<usize> {
                match parent(x) {
                    Some(p) => Some(self.local(p)),
                    None if tree[self.local(x)] => Some(n),
                    None => None,
                }
            };
            let mut per_parent = vec![0u32; n + 1];
            for &x in set {
                if let Some(k) = key(x) {
                    per_parent[k] += 1;
                }
            }
            move |x: u32, x_in_set: bool| {
                key(x).is_some_and(|k| per_parent[k] > u32::from(x_in_set))
            }
        };
        let pick = |rows: &[u32], keep: &dyn Fn(u32) -> bool| -> Vec<u32> {
            rows.iter().copied().filter(|&x| keep(x)).collect()
        };
        let rows = match op {
            Child => pick(b, &|x| has_parent_in(x, &in_a)),
            NotChild => pick(b, &|x| !has_parent_in(x, &in_a)),
            Descendant => {
                let m = below(&in_a);
                pick(b, &|x| under(&m, x))
            }
            NotDescendant => {
                let m = below(&in_a);
                pick(b, &|x| !under(&m, x))
            }
            Parent => {
                let m = mark_parents(a);
                pick(b, &|x| m[self.local(x)])
            }
            NotParent => {
                let m = mark_parents(a);
                pick(b, &|x| !m[self.local(x)])
            }
            Ancestor => {
                let m = mark_ancestors(a);
                pick(b, &|x| m[self.local(x)])
            }
            NotAncestor => {
                let m = mark_ancestors(a);
                pick(b, &|x| !m[self.local(x)])
            }
            Sibling => {
                let s = siblings_in(a);
                pick(b, &|x| s(x, in_a[self.local(x)]))
            }
            NotSibling => {
                let s = siblings_in(a);
                pick(b, &|x| !s(x, in_a[self.local(x)]))
            }
            UnionChild => {
                let mut out = pick(b, &|x| has_parent_in(x, &in_a));
                let parents = mark_parents(&out);
                out.extend(pick(a, &|x| parents[self.local(x)]));
                out
            }
            UnionParent => {
                let m = mark_parents(a);
                let mut out = pick(b, &|x| m[self.local(x)]);
                out.extend(pick(a, &|x| has_parent_in(x, &in_b)));
                out
            }
            UnionDescendant => {
                let m = below(&in_a);
                let mut out = pick(b, &|x| under(&m, x));
                let anc = mark_ancestors(&out);
                out.extend(pick(a, &|x| anc[self.local(x)]));
                out
            }
            UnionAncestor => {
                let m = mark_ancestors(a);
                let mut out = pick(b, &|x| m[self.local(x)]);
                let m = below(&in_b);
                out.extend(pick(a, &|x| under(&m, x)));
                out
            }
            UnionSibling => {
                let sa = siblings_in(a);
                let sb = siblings_in(b);
                let mut out = pick(b, &|x| sa(x, in_a[self.local(x)]));
                out.extend(pick(a, &|x| sb(x, in_b[self.local(x)])));
                out
            }
            And | Union => unreachable!("not structural"),
        };
        let mut rows = rows;
        rows.sort_unstable();
        rows.dedup();
        rows
    }
}

fn flatten(sets: &[Spanset<'_>]) -> Vec<u32> {
    let mut rows: Vec<u32> = sets.iter().flat_map(|s| s.rows.iter().copied()).collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

fn union(l: &[Spanset<'_>], r: &[Spanset<'_>]) -> Vec<u32> {
    let mut rows = flatten(l);
    rows.extend(flatten(r));
    rows.sort_unstable();
    rows.dedup();
    rows
}

fn arith(op: ArithOp) -> crate::traceql::BinOp {
    op.binop()
}

fn owned_static(s: &crate::traceql::Static) -> Value<'static> {
    use crate::traceql::Static;
    match s {
        Static::Int(v) => Value::Int(*v),
        Static::Float(v) => Value::Float(*v),
        Static::Bool(v) => Value::Bool(*v),
        Static::Duration(v) => Value::Duration(*v),
        Static::Status(v) => Value::Status(super::value::status_code(*v)),
        Static::Kind(v) => Value::Kind(super::value::kind_code(*v)),
        // A string in a scalar comparison never equals a number; compare as nil.
        Static::String(_) => Value::Nil,
    }
}
