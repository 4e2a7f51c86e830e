//! Tempo's semantic checks (`ast_validate.go`, `enum_operators.go`), run while the tree is
//! built so each error carries the position of the node it is about. Only the first error is
//! kept, and only reported when the whole query parsed (a syntax error anywhere wins, as in
//! Tempo, which parses fully before validating).

use super::ast::*;
use super::{ErrorKind, ParseError};

/// The type an expression resolves to (Tempo's `StaticType`, `TypeAttribute` for unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Attribute,
    Bool,
    Int,
    Float,
    Duration,
    String,
    Status,
    Kind,
    Nil,
}

impl Ty {
    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Duration)
    }
    fn matches(self, o: Ty) -> bool {
        self == o || self == Ty::Attribute || o == Ty::Attribute || (self.numeric() && o.numeric())
    }
}

fn static_ty(s: &Static) -> Ty {
    match s {
        Static::String(_) => Ty::String,
        Static::Int(_) => Ty::Int,
        Static::Float(_) => Ty::Float,
        Static::Bool(_) => Ty::Bool,
        Static::Duration(_) => Ty::Duration,
        Static::Status(_) => Ty::Status,
        Static::Kind(_) => Ty::Kind,
    }
}

pub fn intrinsic_ty(i: Intrinsic) -> Ty {
    use Intrinsic::*;
    match i {
        Duration | TraceDuration | EventTimeSinceStart => Ty::Duration,
        Name
        | StatusMessage
        | TraceRootSpan
        | TraceRootService
        | TraceId
        | SpanId
        | ParentId
        | EventName
        | LinkTraceId
        | LinkSpanId
        | InstrumentationName
        | InstrumentationVersion => Ty::String,
        Status => Ty::Status,
        Kind => Ty::Kind,
        ChildCount | NestedSetLeft | NestedSetRight | NestedSetParent => Ty::Int,
        Parent => Ty::Nil,
    }
}

pub fn field_ty(e: &FieldExpr) -> Ty {
    match e {
        FieldExpr::Static(s) => static_ty(s),
        FieldExpr::Attribute(_) => Ty::Attribute,
        FieldExpr::Intrinsic(i) => intrinsic_ty(*i),
        FieldExpr::Binary { op, lhs, rhs } => {
            if op.is_boolean() {
                Ty::Bool
            } else {
                match field_ty(lhs) {
                    Ty::Attribute => field_ty(rhs),
                    t => t,
                }
            }
        }
        FieldExpr::Unary { op: UnaryOp::Neg, expr } => field_ty(expr),
        FieldExpr::Unary { .. } => Ty::Bool,
    }
}

fn references_span(e: &FieldExpr) -> bool {
    match e {
        FieldExpr::Static(_) => false,
        FieldExpr::Attribute(_) | FieldExpr::Intrinsic(_) => true,
        FieldExpr::Binary { lhs, rhs, .. } => references_span(lhs) || references_span(rhs),
        FieldExpr::Unary { expr, .. } => references_span(expr),
    }
}

fn aggregate_ty(a: &Aggregate) -> Ty {
    match (a.op, &a.expr) {
        (AggregateOp::Count, _) => Ty::Int,
        (AggregateOp::Avg, _) => Ty::Float,
        (_, Some(e)) => field_ty(e),
        (_, None) => Ty::Int,
    }
}

fn scalar_ty(e: &ScalarExpr) -> Ty {
    match e {
        ScalarExpr::Aggregate(a) => aggregate_ty(a),
        ScalarExpr::Static(s) => static_ty(s),
        ScalarExpr::Op { lhs, rhs, .. } => match scalar_ty(lhs) {
            Ty::Attribute => scalar_ty(rhs),
            t => t,
        },
        ScalarExpr::Pipeline { aggregate, .. } => aggregate_ty(aggregate),
    }
}

/// Tempo's `binaryTypeValid`: may `op` take an operand of type `t`?
fn binary_type_valid(op: BinOp, t: Ty) -> bool {
    use BinOp::*;
    match t {
        Ty::Attribute => true,
        Ty::Bool => matches!(op, And | Or | Eq | Neq),
        Ty::Int | Ty::Float | Ty::Duration => {
            matches!(op, Add | Sub | Mul | Div | Mod | Pow | Eq | Neq | Gt | Gte | Lt | Lte)
        }
        Ty::String => matches!(op, Eq | Neq | Re | NotRe | Gt | Gte | Lt | Lte),
        Ty::Nil | Ty::Status | Ty::Kind => matches!(op, Eq | Neq),
    }
}

/// Compiles a TraceQL regex: Go RE2 syntax (the `regex` crate is RE2-like), fully anchored
/// as Tempo matches them.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// Tempo's `maxGroupBys`: the most `by` fields a metrics function takes.
pub const MAX_GROUP_BYS: usize = 5;

#[derive(Default)]
pub(crate) struct Checker {
    pub first_error: Option<ParseError>,
}

impl Checker {
    fn fail(&mut self, kind: ErrorKind, src: &str, pos: usize, msg: String) {
        if self.first_error.is_none() {
            self.first_error = Some(ParseError::at(kind, src, pos, msg));
        }
    }

    pub fn spanset_filter(&mut self, src: &str, pos: usize, e: &FieldExpr) {
        let t = field_ty(e);
        if t != Ty::Attribute && t != Ty::Bool {
            self.fail(
                ErrorKind::Invalid,
                src,
                pos,
                format!("span filter field expressions must resolve to a boolean: {{ {e} }}"),
            );
        }
    }

    pub fn binary(&mut self, src: &str, pos: usize, e: &FieldExpr) {
        let FieldExpr::Binary { op, lhs, rhs } = e else { return };
        let (lt, rt) = (field_ty(lhs), field_ty(rhs));
        if !lt.matches(rt) {
            let msg = format!("binary operations must operate on the same type: {e}");
            return self.fail(ErrorKind::Invalid, src, pos, msg);
        }
        if !binary_type_valid(*op, lt) || !binary_type_valid(*op, rt) {
            let msg = format!("illegal operation for the given types: {e}");
            return self.fail(ErrorKind::Invalid, src, pos, msg);
        }
        if matches!(op, BinOp::Re | BinOp::NotRe) {
            if let FieldExpr::Static(Static::String(p)) = rhs.as_ref() {
                if compile_regex(p).is_err() {
                    let msg = format!("invalid regex: {rhs}");
                    self.fail(ErrorKind::Invalid, src, pos, msg);
                }
            }
        }
    }

    pub fn unary(&mut self, src: &str, pos: usize, e: &FieldExpr) {
        let FieldExpr::Unary { op, expr } = e else { return };
        let t = field_ty(expr);
        let ok = match op {
            UnaryOp::Neg => t == Ty::Attribute || t.numeric(),
            UnaryOp::Not => t == Ty::Attribute || t == Ty::Bool,
            UnaryOp::Exists | UnaryOp::NotExists => true,
        };
        if !ok {
            let msg = format!("illegal operation for the given type: {e}");
            self.fail(ErrorKind::Invalid, src, pos, msg);
        }
    }

    pub fn aggregate(&mut self, src: &str, pos: usize, a: &Aggregate) {
        let Some(e) = &a.expr else { return };
        let t = field_ty(e);
        if t != Ty::Attribute && !t.numeric() {
            let msg = format!("aggregate field expressions must resolve to a number type: {a}");
            return self.fail(ErrorKind::Invalid, src, pos, msg);
        }
        if !references_span(e) {
            let msg = format!("aggregate field expressions must reference the span: {a}");
            self.fail(ErrorKind::Invalid, src, pos, msg);
        }
    }

    pub fn group(&mut self, src: &str, pos: usize, e: &FieldExpr) {
        if !references_span(e) {
            let msg = format!("grouping field expressions must reference the span: by({e})");
            self.fail(ErrorKind::Invalid, src, pos, msg);
        }
    }

    pub fn scalar_op(&mut self, src: &str, pos: usize, e: &ScalarExpr) {
        let ScalarExpr::Op { op, lhs, rhs } = e else { return };
        let (lt, rt) = (scalar_ty(lhs), scalar_ty(rhs));
        if !lt.matches(rt) {
            let msg = format!("binary operations must operate on the same type: {e}");
            return self.fail(ErrorKind::Invalid, src, pos, msg);
        }
        let op = op.binop();
        if !binary_type_valid(op, lt) || !binary_type_valid(op, rt) {
            let msg = format!("illegal operation for the given types: {e}");
            self.fail(ErrorKind::Invalid, src, pos, msg);
        }
    }

    pub fn scalar_filter(&mut self, src: &str, pos: usize, f: &ScalarFilter) {
        let (lt, rt) = (scalar_ty(&f.lhs), scalar_ty(&f.rhs));
        if !lt.matches(rt) {
            let msg = format!("binary operations must operate on the same type: {f}");
            return self.fail(ErrorKind::Invalid, src, pos, msg);
        }
        let op = f.op.binop();
        if !binary_type_valid(op, lt) || !binary_type_valid(op, rt) {
            let msg = format!("illegal operation for the given types: {f}");
            return self.fail(ErrorKind::Invalid, src, pos, msg);
        }
        // Tempo's message keeps its unformatted `%v`.
        if !matches!(f.lhs, ScalarExpr::Aggregate(_) | ScalarExpr::Pipeline { .. }) {
            let msg = "scalar filter lhs of type (%v) not yet supported".to_string();
            return self.fail(ErrorKind::Unsupported, src, pos, msg);
        }
        if !matches!(f.rhs, ScalarExpr::Static(_)) {
            let msg = "scalar filter rhs of type (%v) not yet supported".to_string();
            self.fail(ErrorKind::Unsupported, src, pos, msg);
        }
    }

    /// Tempo's `MetricsAggregate.validate`: quantiles within [0, 1] and at most
    /// [`MAX_GROUP_BYS`] `by` fields (one fewer for the histogram and quantile functions, which
    /// keep a label for the bucket).
    pub fn metrics(&mut self, src: &str, pos: usize, m: &MetricsFirstStage) {
        use MetricsFirstStage as M;
        let (by, bucketed) = match m {
            M::Rate { by } | M::CountOverTime { by } => (by, false),
            M::MinOverTime { by, .. }
            | M::MaxOverTime { by, .. }
            | M::AvgOverTime { by, .. }
            | M::SumOverTime { by, .. } => (by, false),
            M::HistogramOverTime { by, .. } | M::QuantileOverTime { by, .. } => (by, true),
            M::Compare { .. } => return,
        };
        if by.len() > MAX_GROUP_BYS || (bucketed && by.len() >= MAX_GROUP_BYS) {
            let msg = format!("metrics group by {} values not yet supported", by.len());
            return self.fail(ErrorKind::Unsupported, src, pos, msg);
        }
        if let M::QuantileOverTime { quantiles, .. } = m {
            if let Some(q) = quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
                let msg = format!("quantile must be between 0 and 1: {q}");
                self.fail(ErrorKind::Invalid, src, pos, msg);
            }
        }
    }

    pub fn field(&mut self, src: &str, pos: usize, f: &Field) {
        match f {
            Field::Attribute(a) if a.parent => {
                self.fail(ErrorKind::Unsupported, src, pos, "parent not yet supported".into())
            }
            Field::Intrinsic(Intrinsic::Parent) => self.fail(
                ErrorKind::Unsupported,
                src,
                pos,
                "intrinsic (parent) not yet supported".into(),
            ),
            _ => {}
        }
    }
}
