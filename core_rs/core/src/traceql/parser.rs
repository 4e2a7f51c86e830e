//! Recursive-descent / precedence-climbing parser reproducing Tempo's goyacc grammar.
//!
//! Outside braces one precedence climber handles every operator (Tempo gives spanset,
//! comparison and arithmetic operators one shared precedence table) over loosely typed terms;
//! combining two terms checks what Tempo's grammar allows for that pair, so `>` between
//! spansets is the child operator and between scalars a comparison, and a pipeline in
//! parentheses may only meet other parenthesised pipelines.

use super::ast::*;
use super::lexer::{lex, ColonScope, Kw, Tok, Token};
use super::validate::Checker;
use super::ParseError;

type Res<T> = Result<T, ParseError>;

pub fn parse(src: &str) -> Res<Query> {
    let toks = lex(src)?;
    let mut p = Parser { src, toks, i: 0, depth: 0, operators: 0, check: Checker::default() };
    let q = p.query()?;
    if let Some(e) = p.check.first_error.take() {
        return Err(e);
    }
    Ok(q)
}

/// Parses without reporting validation errors (tests of the printer use ill-typed trees).
#[cfg(test)]
pub(crate) fn parse_unvalidated(src: &str) -> Res<Query> {
    let toks = lex(src)?;
    let mut p = Parser { src, toks, i: 0, depth: 0, operators: 0, check: Checker::default() };
    p.query()
}

/// How a literal number was written, which decides where Tempo's grammar accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lit {
    /// A lone aggregate, unparenthesised: may end a scalar pipeline.
    Agg,
    /// A lone number token.
    Bare,
    /// `-` and a number token.
    Neg,
    Other,
}

#[derive(Debug)]
enum Term {
    Spanset {
        e: SpansetExpr,
        wrapped: bool,
    },
    Scalar {
        e: ScalarExpr,
        piped: bool,
        lit: Lit,
    },
    /// A non-numeric literal outside braces (only valid right of a scalar-pipeline comparison).
    Static(Static),
    Filter {
        f: ScalarFilter,
        root: bool,
    },
    Stage(Stage),
    Metrics {
        m: MetricsExpr,
        outer: Vec<SecondStage>,
    },
}

enum PipeOut {
    Pipeline(Pipeline),
    /// A spanset operation over parenthesised pipelines (cannot be piped further).
    Spanset(SpansetExpr),
    ScalarPipe(Pipeline, Aggregate),
    Scalar(ScalarExpr, bool),
    RootFilter(ScalarFilter),
    Metrics(MetricsExpr, Vec<SecondStage>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    Paren,
}

pub(crate) fn is_pure(e: &SpansetExpr) -> bool {
    match e {
        SpansetExpr::Filter(_) => true,
        SpansetExpr::Op { lhs, rhs, .. } => is_pure(lhs) && is_pure(rhs),
        SpansetExpr::Pipeline(_) => false,
    }
}

/// How deeply expressions may nest (parentheses, unary operators, right-associative `^`
/// chains) before the query is refused rather than risking the stack.
pub const MAX_NESTING: usize = 100;

/// How many binary operators a query may hold: left-associative chains are parsed in a loop
/// but still build trees as deep as they are long, which printing, validating and dropping
/// walk recursively.
pub const MAX_OPERATORS: usize = 2_000;

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    operators: usize,
    check: Checker,
}

enum TopOp {
    Logic(SpansetOp),
    /// `>` or `<`: structural between spansets, comparison between scalars.
    Angle(SpansetOp, CmpOp),
    Structural(SpansetOp),
    Cmp(CmpOp),
    Arith(ArithOp),
    Regex,
}

fn top_op(t: &Tok) -> Option<(TopOp, u8, bool)> {
    use TopOp::*;
    Some(match t {
        Tok::And => (Logic(SpansetOp::And), PREC_LOGIC, false),
        Tok::Or => (Logic(SpansetOp::Union), PREC_LOGIC, false),
        Tok::Gt => (Angle(SpansetOp::Child, CmpOp::Gt), PREC_CMP, false),
        Tok::Lt => (Angle(SpansetOp::Parent, CmpOp::Lt), PREC_CMP, false),
        Tok::Desc => (Structural(SpansetOp::Descendant), PREC_CMP, false),
        Tok::Ance => (Structural(SpansetOp::Ancestor), PREC_CMP, false),
        Tok::Tilde => (Structural(SpansetOp::Sibling), PREC_CMP, false),
        Tok::NotChild => (Structural(SpansetOp::NotChild), PREC_CMP, false),
        Tok::NotParent => (Structural(SpansetOp::NotParent), PREC_CMP, false),
        Tok::NotDesc => (Structural(SpansetOp::NotDescendant), PREC_CMP, false),
        Tok::NotAnce => (Structural(SpansetOp::NotAncestor), PREC_CMP, false),
        Tok::Nre => (Structural(SpansetOp::NotSibling), PREC_CMP, false),
        Tok::UnionChild => (Structural(SpansetOp::UnionChild), PREC_CMP, false),
        Tok::UnionParent => (Structural(SpansetOp::UnionParent), PREC_CMP, false),
        Tok::UnionDesc => (Structural(SpansetOp::UnionDescendant), PREC_CMP, false),
        Tok::UnionAnce => (Structural(SpansetOp::UnionAncestor), PREC_CMP, false),
        Tok::UnionSibl => (Structural(SpansetOp::UnionSibling), PREC_CMP, false),
        Tok::Eq => (Cmp(CmpOp::Eq), PREC_CMP, false),
        Tok::Neq => (Cmp(CmpOp::Neq), PREC_CMP, false),
        Tok::Gte => (Cmp(CmpOp::Gte), PREC_CMP, false),
        Tok::Lte => (Cmp(CmpOp::Lte), PREC_CMP, false),
        Tok::Re => (Regex, PREC_CMP, false),
        Tok::Add => (Arith(ArithOp::Add), PREC_ADD, false),
        Tok::Sub => (Arith(ArithOp::Sub), PREC_ADD, false),
        Tok::Mul => (Arith(ArithOp::Mul), PREC_MUL, false),
        Tok::Div => (Arith(ArithOp::Div), PREC_MUL, false),
        Tok::Mod => (Arith(ArithOp::Mod), PREC_MUL, false),
        Tok::Pow => (Arith(ArithOp::Pow), PREC_POW, true),
        _ => return None,
    })
}

fn field_op(t: &Tok) -> Option<BinOp> {
    Some(match t {
        Tok::Add => BinOp::Add,
        Tok::Sub => BinOp::Sub,
        Tok::Mul => BinOp::Mul,
        Tok::Div => BinOp::Div,
        Tok::Mod => BinOp::Mod,
        Tok::Pow => BinOp::Pow,
        Tok::Eq => BinOp::Eq,
        Tok::Neq => BinOp::Neq,
        Tok::Lt => BinOp::Lt,
        Tok::Lte => BinOp::Lte,
        Tok::Gt => BinOp::Gt,
        Tok::Gte => BinOp::Gte,
        Tok::Re => BinOp::Re,
        Tok::Nre => BinOp::NotRe,
        Tok::And => BinOp::And,
        Tok::Or => BinOp::Or,
        _ => return None,
    })
}

fn cmp_op(t: &Tok) -> Option<CmpOp> {
    Some(match t {
        Tok::Eq => CmpOp::Eq,
        Tok::Neq => CmpOp::Neq,
        Tok::Lt => CmpOp::Lt,
        Tok::Lte => CmpOp::Lte,
        Tok::Gt => CmpOp::Gt,
        Tok::Gte => CmpOp::Gte,
        _ => return None,
    })
}

fn is_metrics_kw(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Kw(
            Kw::Rate
                | Kw::CountOverTime
                | Kw::MinOverTime
                | Kw::MaxOverTime
                | Kw::AvgOverTime
                | Kw::SumOverTime
                | Kw::QuantileOverTime
                | Kw::HistogramOverTime
                | Kw::Compare
        )
    )
}

/// Literal tokens that are a `static` in Tempo's grammar (numbers excluded).
fn static_of(t: &Tok) -> Option<Static> {
    Some(match t {
        Tok::Str(s) => Static::String(s.clone()),
        Tok::Int(i) => Static::Int(*i),
        Tok::Float(f) => Static::Float(*f),
        Tok::Duration(d) => Static::Duration(*d),
        Tok::Kw(Kw::True) => Static::Bool(true),
        Tok::Kw(Kw::False) => Static::Bool(false),
        Tok::Kw(Kw::StatusOk) => Static::Status(Status::Ok),
        Tok::Kw(Kw::StatusError) => Static::Status(Status::Error),
        Tok::Kw(Kw::StatusUnset) => Static::Status(Status::Unset),
        Tok::Kw(Kw::KindUnspecified) => Static::Kind(Kind::Unspecified),
        Tok::Kw(Kw::KindInternal) => Static::Kind(Kind::Internal),
        Tok::Kw(Kw::KindServer) => Static::Kind(Kind::Server),
        Tok::Kw(Kw::KindClient) => Static::Kind(Kind::Client),
        Tok::Kw(Kw::KindProducer) => Static::Kind(Kind::Producer),
        Tok::Kw(Kw::KindConsumer) => Static::Kind(Kind::Consumer),
        Tok::Ident(s) if s == "minInt" => Static::Int(i64::MIN),
        Tok::Ident(s) if s == "maxInt" => Static::Int(i64::MAX),
        _ => return None,
    })
}

fn bare_intrinsic(k: Kw) -> Option<Intrinsic> {
    Some(match k {
        Kw::Duration => Intrinsic::Duration,
        Kw::Name => Intrinsic::Name,
        Kw::Status => Intrinsic::Status,
        Kw::StatusMessage => Intrinsic::StatusMessage,
        Kw::Kind => Intrinsic::Kind,
        Kw::Parent => Intrinsic::Parent,
        Kw::RootName => Intrinsic::TraceRootSpan,
        Kw::RootServiceName => Intrinsic::TraceRootService,
        Kw::TraceDuration => Intrinsic::TraceDuration,
        Kw::NestedSetLeft => Intrinsic::NestedSetLeft,
        Kw::NestedSetRight => Intrinsic::NestedSetRight,
        Kw::NestedSetParent => Intrinsic::NestedSetParent,
        _ => return None,
    })
}

fn scoped_intrinsic(scope: ColonScope, k: Kw) -> Option<Intrinsic> {
    use ColonScope as S;
    Some(match (scope, k) {
        (S::Trace, Kw::Duration) => Intrinsic::TraceDuration,
        (S::Trace, Kw::RootName) => Intrinsic::TraceRootSpan,
        (S::Trace, Kw::RootService) => Intrinsic::TraceRootService,
        (S::Trace, Kw::Id) => Intrinsic::TraceId,
        (S::Span, Kw::Duration) => Intrinsic::Duration,
        (S::Span, Kw::Name) => Intrinsic::Name,
        (S::Span, Kw::Kind) => Intrinsic::Kind,
        (S::Span, Kw::Status) => Intrinsic::Status,
        (S::Span, Kw::StatusMessage) => Intrinsic::StatusMessage,
        (S::Span, Kw::Id) => Intrinsic::SpanId,
        (S::Span, Kw::ParentId) => Intrinsic::ParentId,
        (S::Span, Kw::ChildCount) => Intrinsic::ChildCount,
        (S::Event, Kw::Name) => Intrinsic::EventName,
        (S::Event, Kw::TimeSinceStart) => Intrinsic::EventTimeSinceStart,
        (S::Link, Kw::TraceId) => Intrinsic::LinkTraceId,
        (S::Link, Kw::SpanId) => Intrinsic::LinkSpanId,
        (S::Instrumentation, Kw::Name) => Intrinsic::InstrumentationName,
        (S::Instrumentation, Kw::Version) => Intrinsic::InstrumentationVersion,
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }
    fn pos(&self) -> usize {
        self.toks[self.i].pos
    }
    fn advance(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    /// `syntax error: unexpected X` at token index `ti`.
    fn unexpected_at(&self, ti: usize) -> ParseError {
        let t = &self.toks[ti];
        let what = match &t.tok {
            Tok::Ident(s) => format!("IDENTIFIER {s:?}"),
            other => other.yacc_name().to_string(),
        };
        ParseError::syntax(self.src, t.pos, format!("syntax error: unexpected {what}"))
    }
    fn unexpected(&self) -> ParseError {
        self.unexpected_at(self.i)
    }
    fn expect(&mut self, t: Tok) -> Res<usize> {
        if *self.peek() == t {
            Ok(self.advance().pos)
        } else {
            let mut e = self.unexpected();
            e.message.push_str(&format!(", expecting {}", t.yacc_name()));
            Err(e)
        }
    }

    // ------------------------------------------------------------------ root

    fn query(&mut self) -> Res<Query> {
        let body = match self.pipeline(Ctx::Root)? {
            PipeOut::Pipeline(p) => QueryBody::Pipeline(p),
            PipeOut::Spanset(SpansetExpr::Pipeline(p)) => QueryBody::Pipeline(p),
            PipeOut::Spanset(e) => {
                QueryBody::Pipeline(Pipeline { stages: vec![Stage::Spanset(e)] })
            }
            PipeOut::RootFilter(f) => QueryBody::ScalarFilter(f),
            PipeOut::Metrics(m, outer) => QueryBody::Metrics(normalize_metrics(m, outer)),
            PipeOut::ScalarPipe(..) | PipeOut::Scalar(..) => return Err(self.unexpected()),
        };
        let mut hints = Vec::new();
        while *self.peek() == Tok::Kw(Kw::With) {
            self.advance();
            self.expect(Tok::LParen)?;
            loop {
                let name = match self.peek() {
                    Tok::Ident(s) => s.clone(),
                    _ => return Err(self.unexpected()),
                };
                self.advance();
                self.expect(Tok::Eq)?;
                let value = static_of(self.peek()).ok_or_else(|| self.unexpected())?;
                self.advance();
                hints.push(Hint { name, value });
                if *self.peek() == Tok::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
            self.expect(Tok::RParen)?;
        }
        if *self.peek() != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(Query { body, hints })
    }

    fn pipeline(&mut self, ctx: Ctx) -> Res<PipeOut> {
        let first_ti = self.i;
        let first = self.top_expr(0)?;
        let mut stages = Vec::new();
        match first {
            Term::Spanset { e, .. } if is_pure(&e) => stages.push(Stage::Spanset(e)),
            Term::Spanset { e, .. } => {
                if *self.peek() == Tok::Pipe {
                    return Err(self.unexpected());
                }
                return Ok(PipeOut::Spanset(e));
            }
            Term::Filter { f, root: false } => stages.push(Stage::ScalarFilter(f)),
            Term::Filter { f, root: true } => {
                if *self.peek() == Tok::Pipe {
                    return Err(self.unexpected());
                }
                return Ok(PipeOut::RootFilter(f));
            }
            Term::Stage(Stage::Coalesce) => return Err(self.unexpected_at(first_ti)),
            Term::Stage(s) => stages.push(s),
            Term::Scalar { e, piped, .. } => {
                if ctx == Ctx::Paren && *self.peek() == Tok::RParen {
                    return Ok(PipeOut::Scalar(e, piped));
                }
                return Err(self.unexpected());
            }
            Term::Static(_) => return Err(self.unexpected_at(first_ti)),
            Term::Metrics { m, outer } => {
                let outer = self.second_stages(outer)?;
                return Ok(PipeOut::Metrics(m, outer));
            }
        }
        while *self.peek() == Tok::Pipe {
            self.advance();
            if is_metrics_kw(self.peek()) {
                let first = self.metrics_first_stage()?;
                let second = self.second_stages(Vec::new())?;
                let pipeline = Pipeline { stages };
                return Ok(PipeOut::Metrics(
                    MetricsExpr::Pipeline { pipeline, first, second },
                    vec![],
                ));
            }
            let ti = self.i;
            match self.top_expr(0)? {
                Term::Spanset { e, .. } if is_pure(&e) => stages.push(Stage::Spanset(e)),
                Term::Filter { f, root: false } => stages.push(Stage::ScalarFilter(f)),
                Term::Stage(s) => stages.push(s),
                Term::Scalar { e: ScalarExpr::Aggregate(a), piped: false, lit: Lit::Agg } => {
                    return Ok(PipeOut::ScalarPipe(Pipeline { stages }, a));
                }
                _ => return Err(self.unexpected_at(ti)),
            }
        }
        Ok(PipeOut::Pipeline(Pipeline { stages }))
    }

    // ------------------------------------------------------------------ top-level operators

    fn nest(&mut self) -> Res<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let msg = format!("syntax error: expression nested more than {MAX_NESTING} deep");
            return Err(ParseError::syntax(self.src, self.pos(), msg));
        }
        Ok(())
    }

    fn count_operator(&mut self) -> Res<()> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            let msg = format!("syntax error: more than {MAX_OPERATORS} operators");
            return Err(ParseError::syntax(self.src, self.pos(), msg));
        }
        Ok(())
    }

    fn top_expr(&mut self, min_prec: u8) -> Res<Term> {
        self.nest()?;
        let t = self.top_expr_inner(min_prec);
        self.depth -= 1;
        t
    }

    fn top_expr_inner(&mut self, min_prec: u8) -> Res<Term> {
        let mut lhs = self.top_primary()?;
        while let Some((op, prec, right)) = top_op(self.peek()) {
            if prec < min_prec {
                break;
            }
            let op_ti = self.i;
            self.count_operator()?;
            self.advance();
            let rhs = self.top_expr(if right { prec } else { prec + 1 })?;
            lhs = self.combine(op, op_ti, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn combine(&mut self, op: TopOp, op_ti: usize, lhs: Term, rhs: Term) -> Res<Term> {
        match op {
            TopOp::Logic(sop) | TopOp::Structural(sop) | TopOp::Angle(sop, _)
                if matches!(lhs, Term::Spanset { .. }) =>
            {
                let (Term::Spanset { e: l, wrapped: lw }, Term::Spanset { e: r, wrapped: rw }) =
                    (lhs, rhs)
                else {
                    return Err(self.unexpected_at(op_ti));
                };
                let pure = is_pure(&l) && is_pure(&r);
                let ok = |e: &SpansetExpr, wrapped: bool| {
                    wrapped || (!is_pure(e) && matches!(e, SpansetExpr::Op { .. }))
                };
                let both_ok = ok(&l, lw) && ok(&r, rw);
                if !pure && !both_ok {
                    return Err(self.unexpected_at(op_ti));
                }
                Ok(Term::Spanset {
                    e: SpansetExpr::Op { op: sop, lhs: Box::new(l), rhs: Box::new(r) },
                    wrapped: false,
                })
            }
            TopOp::Angle(_, cop) | TopOp::Cmp(cop) => self.compare(cop, op_ti, lhs, rhs),
            TopOp::Arith(aop) => match (lhs, rhs) {
                (Term::Scalar { e: l, piped: lp, .. }, Term::Scalar { e: r, piped: rp, .. })
                    if lp == rp =>
                {
                    let e = ScalarExpr::Op { op: aop, lhs: Box::new(l), rhs: Box::new(r) };
                    self.check.scalar_op(self.src, self.toks[op_ti].pos, &e);
                    Ok(Term::Scalar { e, piped: lp, lit: Lit::Other })
                }
                (Term::Metrics { m: l, outer: lo }, Term::Metrics { m: r, outer: ro })
                    if lo.is_empty()
                        && ro.is_empty()
                        && aop != ArithOp::Mod
                        && aop != ArithOp::Pow =>
                {
                    Ok(Term::Metrics {
                        m: MetricsExpr::Math { op: aop, lhs: Box::new(l), rhs: Box::new(r) },
                        outer: vec![],
                    })
                }
                _ => Err(self.unexpected_at(op_ti)),
            },
            _ => Err(self.unexpected_at(op_ti)),
        }
    }

    fn compare(&mut self, op: CmpOp, op_ti: usize, lhs: Term, rhs: Term) -> Res<Term> {
        let pos = self.toks[op_ti].pos;
        match (lhs, rhs) {
            (Term::Scalar { e: l, piped: false, .. }, Term::Scalar { e: r, piped: false, .. }) => {
                let f = ScalarFilter { op, lhs: l, rhs: r };
                self.check.scalar_filter(self.src, pos, &f);
                Ok(Term::Filter { f, root: false })
            }
            (Term::Scalar { e: l, piped: true, .. }, Term::Scalar { e: r, piped: true, .. }) => {
                let f = ScalarFilter { op, lhs: l, rhs: r };
                self.check.scalar_filter(self.src, pos, &f);
                Ok(Term::Filter { f, root: true })
            }
            (
                Term::Scalar { e: l, piped: true, .. },
                Term::Scalar { e: r @ ScalarExpr::Static(_), piped: false, lit: Lit::Bare },
            ) => {
                let f = ScalarFilter { op, lhs: l, rhs: r };
                self.check.scalar_filter(self.src, pos, &f);
                Ok(Term::Filter { f, root: true })
            }
            (Term::Scalar { e: l, piped: true, .. }, Term::Static(s)) => {
                let f = ScalarFilter { op, lhs: l, rhs: ScalarExpr::Static(s) };
                self.check.scalar_filter(self.src, pos, &f);
                Ok(Term::Filter { f, root: true })
            }
            (
                Term::Metrics { m, mut outer },
                Term::Scalar { e: ScalarExpr::Static(s), lit: Lit::Bare | Lit::Neg, .. },
            ) => {
                let value = match s {
                    Static::Int(i) => i as f64,
                    Static::Float(f) => f,
                    Static::Duration(d) => d as f64 / 1e9,
                    _ => return Err(self.unexpected_at(op_ti + 1)),
                };
                outer.push(SecondStage::Filter { op, value });
                Ok(Term::Metrics { m, outer })
            }
            _ => Err(self.unexpected_at(op_ti)),
        }
    }

    fn top_primary(&mut self) -> Res<Term> {
        let ti = self.i;
        match self.peek().clone() {
            Tok::LBrace => Ok(Term::Spanset { e: self.spanset_filter()?, wrapped: false }),
            Tok::LParen => self.paren(),
            Tok::Kw(Kw::Count | Kw::Avg | Kw::Min | Kw::Max | Kw::Sum) => Ok(Term::Scalar {
                e: ScalarExpr::Aggregate(self.aggregate()?),
                piped: false,
                lit: Lit::Agg,
            }),
            t @ (Tok::Int(_) | Tok::Float(_) | Tok::Duration(_)) => {
                self.advance();
                let s = static_of(&t).expect("number");
                Ok(Term::Scalar { e: ScalarExpr::Static(s), piped: false, lit: Lit::Bare })
            }
            Tok::Sub => {
                self.advance();
                let s = match self.peek() {
                    Tok::Int(i) => Static::Int(-i),
                    Tok::Float(f) => Static::Float(-f),
                    Tok::Duration(d) => Static::Duration(-d),
                    _ => return Err(self.unexpected()),
                };
                self.advance();
                Ok(Term::Scalar { e: ScalarExpr::Static(s), piped: false, lit: Lit::Neg })
            }
            Tok::Kw(Kw::By) => {
                self.advance();
                self.expect(Tok::LParen)?;
                let e = self.field_expr_top()?;
                self.expect(Tok::RParen)?;
                self.check.group(self.src, self.toks[ti].pos, &e);
                Ok(Term::Stage(Stage::By(e)))
            }
            Tok::Kw(Kw::Select) => {
                self.advance();
                self.expect(Tok::LParen)?;
                let fields = self.field_list()?;
                self.expect(Tok::RParen)?;
                Ok(Term::Stage(Stage::Select(fields)))
            }
            Tok::Kw(Kw::Coalesce) => {
                self.advance();
                self.expect(Tok::LParen)?;
                self.expect(Tok::RParen)?;
                Ok(Term::Stage(Stage::Coalesce))
            }
            t => match static_of(&t) {
                Some(s) => {
                    self.advance();
                    Ok(Term::Static(s))
                }
                None => Err(self.unexpected()),
            },
        }
    }

    fn paren(&mut self) -> Res<Term> {
        self.advance();
        let inner = self.pipeline(Ctx::Paren)?;
        let close_ti = self.i;
        self.expect(Tok::RParen)?;
        Ok(match inner {
            PipeOut::Pipeline(mut p) => {
                if p.stages.len() == 1 && matches!(p.stages[0], Stage::Spanset(_)) {
                    let Some(Stage::Spanset(e)) = p.stages.pop() else { unreachable!() };
                    Term::Spanset { e, wrapped: true }
                } else {
                    Term::Spanset { e: SpansetExpr::Pipeline(p), wrapped: true }
                }
            }
            PipeOut::Spanset(e) => Term::Spanset { e, wrapped: true },
            PipeOut::ScalarPipe(pipeline, aggregate) => Term::Scalar {
                e: ScalarExpr::Pipeline { pipeline, aggregate },
                piped: true,
                lit: Lit::Other,
            },
            PipeOut::Scalar(e, piped) => Term::Scalar { e, piped, lit: Lit::Other },
            PipeOut::Metrics(m, outer) if outer.is_empty() => Term::Metrics { m, outer },
            PipeOut::Metrics(..) | PipeOut::RootFilter(_) => {
                return Err(self.unexpected_at(close_ti))
            }
        })
    }

    fn spanset_filter(&mut self) -> Res<SpansetExpr> {
        let open = self.expect(Tok::LBrace)?;
        if *self.peek() == Tok::RBrace {
            self.advance();
            return Ok(SpansetExpr::Filter(FieldExpr::Static(Static::Bool(true))));
        }
        let e = self.field_expr_top()?;
        self.expect(Tok::RBrace)?;
        self.check.spanset_filter(self.src, open, &e);
        Ok(SpansetExpr::Filter(e))
    }

    fn aggregate(&mut self) -> Res<Aggregate> {
        let t = self.advance();
        let op = match t.tok {
            Tok::Kw(Kw::Count) => AggregateOp::Count,
            Tok::Kw(Kw::Avg) => AggregateOp::Avg,
            Tok::Kw(Kw::Min) => AggregateOp::Min,
            Tok::Kw(Kw::Max) => AggregateOp::Max,
            _ => AggregateOp::Sum,
        };
        self.expect(Tok::LParen)?;
        let expr =
            if op == AggregateOp::Count { None } else { Some(Box::new(self.field_expr_top()?)) };
        self.expect(Tok::RParen)?;
        let a = Aggregate { op, expr };
        self.check.aggregate(self.src, t.pos, &a);
        Ok(a)
    }

    // ------------------------------------------------------------------ metrics

    fn by_list(&mut self) -> Res<Vec<Field>> {
        if *self.peek() != Tok::Kw(Kw::By) {
            return Ok(Vec::new());
        }
        self.advance();
        self.expect(Tok::LParen)?;
        let l = self.field_list()?;
        self.expect(Tok::RParen)?;
        Ok(l)
    }

    fn metrics_first_stage(&mut self) -> Res<MetricsFirstStage> {
        let t = self.advance();
        self.expect(Tok::LParen)?;
        let Tok::Kw(kw) = t.tok else { unreachable!() };
        let stage = match kw {
            Kw::Rate | Kw::CountOverTime => {
                self.expect(Tok::RParen)?;
                let by = self.by_list()?;
                if kw == Kw::Rate {
                    MetricsFirstStage::Rate { by }
                } else {
                    MetricsFirstStage::CountOverTime { by }
                }
            }
            Kw::QuantileOverTime => {
                let field = self.field_ref()?;
                let mut quantiles = Vec::new();
                self.expect(Tok::Comma)?;
                loop {
                    match self.peek() {
                        Tok::Int(i) => quantiles.push(*i as f64),
                        Tok::Float(f) => quantiles.push(*f),
                        _ => return Err(self.unexpected()),
                    }
                    self.advance();
                    if *self.peek() == Tok::Comma {
                        self.advance();
                    } else {
                        break;
                    }
                }
                self.expect(Tok::RParen)?;
                let by = self.by_list()?;
                MetricsFirstStage::QuantileOverTime { field, quantiles, by }
            }
            Kw::Compare => {
                let filter = Box::new(self.spanset_filter()?);
                let mut ints = Vec::new();
                while *self.peek() == Tok::Comma && ints.len() < 3 {
                    self.advance();
                    match self.peek() {
                        Tok::Int(i) => ints.push(*i),
                        _ => return Err(self.unexpected()),
                    }
                    self.advance();
                }
                if ints.len() == 2 {
                    return Err(self.expect(Tok::Comma).unwrap_err());
                }
                self.expect(Tok::RParen)?;
                let top_n = ints.first().copied().unwrap_or(10);
                let start = ints.get(1).copied().unwrap_or(0);
                let end = ints.get(2).copied().unwrap_or(0);
                MetricsFirstStage::Compare { filter, top_n, start, end }
            }
            _ => {
                let field = self.field_ref()?;
                self.expect(Tok::RParen)?;
                let by = self.by_list()?;
                match kw {
                    Kw::MinOverTime => MetricsFirstStage::MinOverTime { field, by },
                    Kw::MaxOverTime => MetricsFirstStage::MaxOverTime { field, by },
                    Kw::AvgOverTime => MetricsFirstStage::AvgOverTime { field, by },
                    Kw::SumOverTime => MetricsFirstStage::SumOverTime { field, by },
                    _ => MetricsFirstStage::HistogramOverTime { field, by },
                }
            }
        };
        self.check.metrics(self.src, t.pos, &stage);
        Ok(stage)
    }

    fn second_stages(&mut self, mut out: Vec<SecondStage>) -> Res<Vec<SecondStage>> {
        loop {
            if *self.peek() == Tok::Pipe {
                self.advance();
                let top = match self.peek() {
                    Tok::Kw(Kw::TopK) => true,
                    Tok::Kw(Kw::BottomK) => false,
                    _ => return Err(self.unexpected()),
                };
                self.advance();
                self.expect(Tok::LParen)?;
                let n = match self.peek() {
                    Tok::Int(i) => *i,
                    _ => return Err(self.unexpected()),
                };
                self.advance();
                self.expect(Tok::RParen)?;
                out.push(if top { SecondStage::TopK(n) } else { SecondStage::BottomK(n) });
            } else if let Some(op) = cmp_op(self.peek()) {
                self.advance();
                let neg = if *self.peek() == Tok::Sub {
                    self.advance();
                    -1.0
                } else {
                    1.0
                };
                let v = match self.peek() {
                    Tok::Int(i) => *i as f64,
                    Tok::Float(f) => *f,
                    Tok::Duration(d) => *d as f64 / 1e9,
                    _ => return Err(self.unexpected()),
                };
                self.advance();
                out.push(SecondStage::Filter { op, value: neg * v });
            } else {
                return Ok(out);
            }
        }
    }

    // ------------------------------------------------------------------ field expressions

    fn field_list(&mut self) -> Res<Vec<Field>> {
        let mut out = vec![self.field_ref()?];
        while *self.peek() == Tok::Comma {
            self.advance();
            out.push(self.field_ref()?);
        }
        Ok(out)
    }

    /// An `attribute` in Tempo's grammar: intrinsic, scoped intrinsic or attribute.
    fn field_ref(&mut self) -> Res<Field> {
        let pos = self.pos();
        let f = match self.peek().clone() {
            Tok::Attr(a) => {
                self.advance();
                Field::Attribute(a)
            }
            Tok::Kw(k) if bare_intrinsic(k).is_some() => {
                self.advance();
                Field::Intrinsic(bare_intrinsic(k).expect("checked"))
            }
            Tok::ScopeColon(_) => Field::Intrinsic(self.scoped()?),
            _ => return Err(self.unexpected()),
        };
        self.check.field(self.src, pos, &f);
        Ok(f)
    }

    fn scoped(&mut self) -> Res<Intrinsic> {
        let Tok::ScopeColon(scope) = self.advance().tok else { unreachable!() };
        let r = match self.peek() {
            Tok::Kw(k) => scoped_intrinsic(scope, *k),
            _ => None,
        };
        match r {
            Some(i) => {
                self.advance();
                Ok(i)
            }
            None => Err(self.unexpected()),
        }
    }

    fn field_expr_top(&mut self) -> Res<FieldExpr> {
        self.field_expr(0)
    }

    fn field_expr(&mut self, min_prec: u8) -> Res<FieldExpr> {
        self.nest()?;
        let e = self.field_expr_inner(min_prec);
        self.depth -= 1;
        e
    }

    fn field_expr_inner(&mut self, min_prec: u8) -> Res<FieldExpr> {
        let mut lhs = self.field_primary()?;
        while let Some(op) = field_op(self.peek()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.count_operator()?;
            let op_pos = self.advance().pos;
            if matches!(op, BinOp::Eq | BinOp::Neq) && *self.peek() == Tok::Kw(Kw::Nil) {
                self.advance();
                let uop = if op == BinOp::Eq { UnaryOp::NotExists } else { UnaryOp::Exists };
                lhs = FieldExpr::Unary { op: uop, expr: Box::new(lhs) };
                continue;
            }
            let rhs = self.field_expr(if op.right_assoc() { prec } else { prec + 1 })?;
            lhs = FieldExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
            self.check.binary(self.src, op_pos, &lhs);
        }
        Ok(lhs)
    }

    fn field_primary(&mut self) -> Res<FieldExpr> {
        let pos = self.pos();
        let t = self.peek().clone();
        match t {
            Tok::LParen => {
                self.advance();
                let e = self.field_expr(0)?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Tok::Sub | Tok::Not => {
                self.advance();
                let inner = self.field_expr(PREC_MUL)?;
                let op = if t == Tok::Sub { UnaryOp::Neg } else { UnaryOp::Not };
                let e = FieldExpr::Unary { op, expr: Box::new(inner) };
                self.check.unary(self.src, pos, &e);
                Ok(e)
            }
            Tok::Kw(Kw::Nil) => {
                self.advance();
                let op = match self.peek() {
                    Tok::Eq => UnaryOp::NotExists,
                    Tok::Neq => UnaryOp::Exists,
                    _ => return Err(self.unexpected()),
                };
                self.advance();
                if *self.peek() == Tok::Kw(Kw::Nil) {
                    self.advance();
                    return Ok(FieldExpr::Static(Static::Bool(false)));
                }
                let rhs = self.field_expr(PREC_CMP + 1)?;
                Ok(FieldExpr::Unary { op, expr: Box::new(rhs) })
            }
            Tok::Ident(ref name) if static_of(&t).is_none() => {
                // Tempo's grammar turns an unknown identifier into a lexer error.
                Err(ParseError::syntax(self.src, pos, format!("unknown identifier: {name}")))
            }
            Tok::Attr(a) => {
                self.advance();
                let f = Field::Attribute(a.clone());
                self.check.field(self.src, pos, &f);
                Ok(FieldExpr::Attribute(a))
            }
            Tok::ScopeColon(_) => {
                let i = self.scoped()?;
                Ok(FieldExpr::Intrinsic(i))
            }
            Tok::Kw(k) if bare_intrinsic(k).is_some() => {
                self.advance();
                let i = bare_intrinsic(k).expect("checked");
                self.check.field(self.src, pos, &Field::Intrinsic(i));
                Ok(FieldExpr::Intrinsic(i))
            }
            t => match static_of(&t) {
                Some(s) => {
                    self.advance();
                    Ok(FieldExpr::Static(s))
                }
                None => Err(self.unexpected()),
            },
        }
    }
}

/// Folds second stages applied to a lone parenthesised metrics pipeline into it.
fn normalize_metrics(m: MetricsExpr, outer: Vec<SecondStage>) -> MetricsQuery {
    match m {
        MetricsExpr::Pipeline { pipeline, first, mut second } => {
            second.extend(outer);
            MetricsQuery { expr: MetricsExpr::Pipeline { pipeline, first, second }, second: vec![] }
        }
        m => MetricsQuery { expr: m, second: outer },
    }
}
