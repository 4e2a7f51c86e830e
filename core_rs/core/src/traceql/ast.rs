//! The TraceQL syntax tree, shaped after Tempo's `RootExpr` (`pkg/traceql/ast.go`).
//!
//! Source parentheses are not kept: the tree records grouping only through its shape, so two
//! queries that differ only in redundant parentheses, spacing, `{}` vs `{ true }`, string
//! quoting or duration spelling parse to equal trees.

/// A parsed query: its body and the `with(...)` hints.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub body: QueryBody,
    pub hints: Vec<Hint>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueryBody {
    /// A spanset pipeline: `{ … } | by(…) | count() > 2 | …`. Its stages hold only
    /// parenthesis-free spanset expressions, except that a pipeline of one stage may hold a
    /// spanset operation over parenthesised pipelines (`({a} | count() > 1) && ({b})`).
    Pipeline(Pipeline),
    /// A comparison between parenthesised scalar pipelines: `({a} | count()) > ({b} | count())`.
    ScalarFilter(ScalarFilter),
    /// A metrics query: `{…} | rate() by (…)`, or arithmetic between parenthesised ones,
    /// plus second stages (`| topk(5)`, `> 10`).
    Metrics(MetricsQuery),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    Spanset(SpansetExpr),
    ScalarFilter(ScalarFilter),
    By(FieldExpr),
    Coalesce,
    Select(Vec<Field>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum SpansetExpr {
    /// `{ expr }`; `{}` is `{ true }`.
    Filter(FieldExpr),
    Op {
        op: SpansetOp,
        lhs: Box<SpansetExpr>,
        rhs: Box<SpansetExpr>,
    },
    /// A parenthesised pipeline used as an operand: `({ a } | count() > 1)`.
    Pipeline(Pipeline),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpansetOp {
    And,
    Union,
    Child,
    Parent,
    Descendant,
    Ancestor,
    Sibling,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    NotSibling,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
}

impl SpansetOp {
    pub fn as_str(self) -> &'static str {
        match self {
            SpansetOp::And => "&&",
            SpansetOp::Union => "||",
            SpansetOp::Child => ">",
            SpansetOp::Parent => "<",
            SpansetOp::Descendant => ">>",
            SpansetOp::Ancestor => "<<",
            SpansetOp::Sibling => "~",
            SpansetOp::NotChild => "!>",
            SpansetOp::NotParent => "!<",
            SpansetOp::NotDescendant => "!>>",
            SpansetOp::NotAncestor => "!<<",
            SpansetOp::NotSibling => "!~",
            SpansetOp::UnionChild => "&>",
            SpansetOp::UnionParent => "&<",
            SpansetOp::UnionDescendant => "&>>",
            SpansetOp::UnionAncestor => "&<<",
            SpansetOp::UnionSibling => "&~",
        }
    }
    /// `&&` and `||` bind looser than the structural operators.
    pub fn precedence(self) -> u8 {
        match self {
            SpansetOp::And | SpansetOp::Union => PREC_LOGIC,
            _ => PREC_CMP,
        }
    }
}

/// Precedence levels (Tempo's `%left` order in expr.y, lowest first).
pub const PREC_LOGIC: u8 = 1;
pub const PREC_CMP: u8 = 2;
pub const PREC_ADD: u8 = 3;
pub const PREC_MUL: u8 = 5;
pub const PREC_POW: u8 = 6;

/// `lhs op rhs` between scalar expressions (aggregates, numbers) or scalar pipelines.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarFilter {
    pub op: CmpOp,
    pub lhs: ScalarExpr,
    pub rhs: ScalarExpr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Neq => "!=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
        }
    }
    pub fn binop(self) -> BinOp {
        match self {
            CmpOp::Eq => BinOp::Eq,
            CmpOp::Neq => BinOp::Neq,
            CmpOp::Lt => BinOp::Lt,
            CmpOp::Lte => BinOp::Lte,
            CmpOp::Gt => BinOp::Gt,
            CmpOp::Gte => BinOp::Gte,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ScalarExpr {
    Aggregate(Aggregate),
    Static(Static),
    Op {
        op: ArithOp,
        lhs: Box<ScalarExpr>,
        rhs: Box<ScalarExpr>,
    },
    /// `(pipeline | aggregate)`.
    Pipeline {
        pipeline: Pipeline,
        aggregate: Aggregate,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl ArithOp {
    pub fn binop(self) -> BinOp {
        match self {
            ArithOp::Add => BinOp::Add,
            ArithOp::Sub => BinOp::Sub,
            ArithOp::Mul => BinOp::Mul,
            ArithOp::Div => BinOp::Div,
            ArithOp::Mod => BinOp::Mod,
            ArithOp::Pow => BinOp::Pow,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub op: AggregateOp,
    /// `None` only for `count()`.
    pub expr: Option<Box<FieldExpr>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateOp {
    Count,
    Avg,
    Min,
    Max,
    Sum,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Count => "count",
            AggregateOp::Avg => "avg",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Sum => "sum",
        }
    }
}

/// An expression inside `{ }`, `by()` or an aggregate.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldExpr {
    Static(Static),
    Attribute(Attribute),
    Intrinsic(Intrinsic),
    Binary { op: BinOp, lhs: Box<FieldExpr>, rhs: Box<FieldExpr> },
    Unary { op: UnaryOp, expr: Box<FieldExpr> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Re,
    NotRe,
    And,
    Or,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "=",
            BinOp::Neq => "!=",
            BinOp::Lt => "<",
            BinOp::Lte => "<=",
            BinOp::Gt => ">",
            BinOp::Gte => ">=",
            BinOp::Re => "=~",
            BinOp::NotRe => "!~",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::And | BinOp::Or => PREC_LOGIC,
            BinOp::Eq
            | BinOp::Neq
            | BinOp::Lt
            | BinOp::Lte
            | BinOp::Gt
            | BinOp::Gte
            | BinOp::Re
            | BinOp::NotRe => PREC_CMP,
            BinOp::Add | BinOp::Sub => PREC_ADD,
            BinOp::Mul | BinOp::Div | BinOp::Mod => PREC_MUL,
            BinOp::Pow => PREC_POW,
        }
    }
    pub fn right_assoc(self) -> bool {
        self == BinOp::Pow
    }
    /// Operators whose result is a boolean.
    pub fn is_boolean(self) -> bool {
        !matches!(self, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `x != nil` (Tempo's OpExists)
    Exists,
    /// `x = nil` (Tempo's OpNotExists)
    NotExists,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Static {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    Status(Status),
    Kind(Kind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Error,
    Unset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeScope {
    /// `.x`: span or resource.
    None,
    Span,
    Resource,
    Event,
    Link,
    Instrumentation,
}

/// A named attribute: `.x`, `span.x`, `resource.x`, `parent.x`, `parent.span.x`, …
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    pub scope: AttributeScope,
    pub parent: bool,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// `duration`, `span:duration`
    Duration,
    /// `name`, `span:name`
    Name,
    /// `status`, `span:status`
    Status,
    /// `statusMessage`, `span:statusMessage`
    StatusMessage,
    /// `kind`, `span:kind`
    Kind,
    /// `parent`
    Parent,
    /// `span:childCount`
    ChildCount,
    /// `span:id`
    SpanId,
    /// `span:parentID`
    ParentId,
    /// `rootName`, `trace:rootName`
    TraceRootSpan,
    /// `rootServiceName`, `trace:rootService`
    TraceRootService,
    /// `traceDuration`, `trace:duration`
    TraceDuration,
    /// `trace:id`
    TraceId,
    NestedSetLeft,
    NestedSetRight,
    NestedSetParent,
    /// `event:name`
    EventName,
    /// `event:timeSinceStart`
    EventTimeSinceStart,
    /// `link:traceID`
    LinkTraceId,
    /// `link:spanID`
    LinkSpanId,
    /// `instrumentation:name`
    InstrumentationName,
    /// `instrumentation:version`
    InstrumentationVersion,
}

impl Intrinsic {
    /// The canonical spelling (the scoped form where one exists, as Tempo's docs prefer).
    pub fn as_str(self) -> &'static str {
        match self {
            Intrinsic::Duration => "span:duration",
            Intrinsic::Name => "span:name",
            Intrinsic::Status => "span:status",
            Intrinsic::StatusMessage => "span:statusMessage",
            Intrinsic::Kind => "span:kind",
            Intrinsic::Parent => "parent",
            Intrinsic::ChildCount => "span:childCount",
            Intrinsic::SpanId => "span:id",
            Intrinsic::ParentId => "span:parentID",
            Intrinsic::TraceRootSpan => "trace:rootName",
            Intrinsic::TraceRootService => "trace:rootService",
            Intrinsic::TraceDuration => "trace:duration",
            Intrinsic::TraceId => "trace:id",
            Intrinsic::NestedSetLeft => "nestedSetLeft",
            Intrinsic::NestedSetRight => "nestedSetRight",
            Intrinsic::NestedSetParent => "nestedSetParent",
            Intrinsic::EventName => "event:name",
            Intrinsic::EventTimeSinceStart => "event:timeSinceStart",
            Intrinsic::LinkTraceId => "link:traceID",
            Intrinsic::LinkSpanId => "link:spanID",
            Intrinsic::InstrumentationName => "instrumentation:name",
            Intrinsic::InstrumentationVersion => "instrumentation:version",
        }
    }
}

/// Either kind of field a `select()`, `by()` of a metrics query or `*_over_time()` names.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Attribute(Attribute),
    Intrinsic(Intrinsic),
}

#[derive(Clone, Debug, PartialEq)]
pub enum MetricsExpr {
    /// `pipeline | first_stage second_stages…`
    Pipeline { pipeline: Pipeline, first: MetricsFirstStage, second: Vec<SecondStage> },
    /// `(…) + (…)`: only `+ - * /`.
    Math { op: ArithOp, lhs: Box<MetricsExpr>, rhs: Box<MetricsExpr> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetricsQuery {
    pub expr: MetricsExpr,
    /// Second stages applied to a math expression (always empty for a single pipeline: they are
    /// folded into it).
    pub second: Vec<SecondStage>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MetricsFirstStage {
    Rate {
        by: Vec<Field>,
    },
    CountOverTime {
        by: Vec<Field>,
    },
    MinOverTime {
        field: Field,
        by: Vec<Field>,
    },
    MaxOverTime {
        field: Field,
        by: Vec<Field>,
    },
    AvgOverTime {
        field: Field,
        by: Vec<Field>,
    },
    SumOverTime {
        field: Field,
        by: Vec<Field>,
    },
    QuantileOverTime {
        field: Field,
        quantiles: Vec<f64>,
        by: Vec<Field>,
    },
    HistogramOverTime {
        field: Field,
        by: Vec<Field>,
    },
    /// `compare({filter}, topN = 10, start = 0, end = 0)`.
    Compare {
        filter: Box<SpansetExpr>,
        top_n: i64,
        start: i64,
        end: i64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum SecondStage {
    TopK(i64),
    BottomK(i64),
    /// `> 10`: the value is in float units; a duration is converted to seconds as Tempo does.
    Filter {
        op: CmpOp,
        value: f64,
    },
}

/// One `with(key = value)` hint.
#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    pub name: String,
    pub value: Static,
}

impl Query {
    /// True for a metrics query (`| rate()`, `| count_over_time()`, …), which `/api/search`
    /// refuses.
    pub fn is_metrics(&self) -> bool {
        matches!(self.body, QueryBody::Metrics(_))
    }
}
