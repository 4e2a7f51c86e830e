//! One search job over its sources: complete blocks (a row group at a time, only the
//! columns the plan reads, row groups outside the time range skipped from statistics),
//! head chunks and in-memory batches.

use std::sync::Arc;

use arrow_array::RecordBatch;

use super::{
    eval_batch, filter_matches_any, trace_runs, BatchStats, Found, SearchPlan, SearchSink,
};
use crate::block::{BlockError, BlockReader, ChunkReader, StatValue};
use crate::log::{self, Level};
use crate::schema::{self, DedicatedColumn, DedicatedScope, DedicatedType};
use crate::search::value::{kind_code, status_code};
use crate::traceql::{Attribute, AttributeScope, BinOp, FieldExpr, Intrinsic, Static};

/// Where a job's rows come from.
#[derive(Clone)]
pub enum Source {
    Block(Arc<BlockReader>),
    Chunk(Arc<ChunkReader>, Vec<DedicatedColumn>),
    Batch(RecordBatch, Vec<DedicatedColumn>),
}

/// What a job inspected (Tempo's `SearchMetrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    pub inspected_spans: u64,
    pub inspected_traces: u64,
    pub inspected_bytes: u64,
    pub blocks: u64,
    pub block_bytes: u64,
    /// Sources skipped because they could not be read.
    pub errors: u64,
    /// Row groups skipped because an attribute the query needs is absent there.
    pub pruned_row_groups: u64,
}

/// What a scan hands each batch of rows it reads (whole traces, only the plan's columns).
pub trait BatchSink {
    /// True once nothing more is wanted (the scan stops).
    fn full(&self) -> bool;
    fn batch(&mut self, batch: &RecordBatch, dedicated: &[DedicatedColumn]) -> BatchStats;
}

/// Trace search results: [`SearchSink`] over each batch.
struct FoundSink<'p> {
    plan: &'p SearchPlan,
    found: &'p mut Found,
}

impl BatchSink for FoundSink<'_> {
    fn full(&self) -> bool {
        self.plan.options.limit > 0 && self.found.len() >= self.plan.options.limit
    }
    fn batch(&mut self, batch: &RecordBatch, dedicated: &[DedicatedColumn]) -> BatchStats {
        eval_batch(
            self.plan,
            batch,
            dedicated,
            &mut SearchSink { plan: self.plan, found: self.found },
        )
    }
}

/// Runs `plan` over `sources` in order, stopping once `found` holds the plan's limit.
/// A source that cannot be read is logged, counted and skipped.
pub fn search_sources(plan: &SearchPlan, sources: &[Source], found: &mut Found) -> JobStats {
    scan_sources(plan, sources, &mut FoundSink { plan, found })
}

/// Reads `sources` in order for `plan` (its columns, its row group pruning), handing each
/// batch to `sink` until it is full. A source that cannot be read is logged, counted and
/// skipped.
pub fn scan_sources(plan: &SearchPlan, sources: &[Source], sink: &mut dyn BatchSink) -> JobStats {
    let mut stats = JobStats::default();
    for source in sources {
        if sink.full() {
            break;
        }
        let r = match source {
            Source::Block(b) => {
                stats.blocks += 1;
                stats.block_bytes += b.meta().size;
                scan_block(plan, b, sink, &mut stats)
            }
            Source::Chunk(c, dedicated) => scan_chunk(c, dedicated, sink, &mut stats),
            Source::Batch(b, dedicated) => {
                add(&mut stats, sink.batch(b, dedicated));
                stats.inspected_bytes += b.get_array_memory_size() as u64;
                Ok(())
            }
        };
        if let Err(e) = r {
            stats.errors += 1;
            let at = match source {
                Source::Block(b) => b.location(),
                Source::Chunk(c, _) => c.path().display().to_string(),
                Source::Batch(..) => "live traces".to_string(),
            };
            log::log(
                Level::Warn,
                "querier",
                &format!(
                    "msg=\"search skipped a source that cannot be read\" source={} err={}",
                    log::quote(&at),
                    log::quote(&e.to_string())
                ),
            );
        }
    }
    stats
}

fn add(stats: &mut JobStats, b: BatchStats) {
    stats.inspected_spans += b.spans;
    stats.inspected_traces += b.traces;
}

fn scan_block(
    plan: &SearchPlan,
    block: &BlockReader,
    sink: &mut dyn BatchSink,
    stats: &mut JobStats,
) -> Result<(), BlockError> {
    let columns = plan.columns_for(block.dedicated_columns());
    let o = &plan.options;
    // Row groups where the single filter matched / was checked first. The prefilter
    // reads the filter's columns alone and skips a row group where no row matches; it
    // stops when the first row groups of the block all had a match.
    let (mut pre_tried, mut pre_skipped) = (0, 0);
    let required = plan.required_attributes();
    for g in 0..block.row_groups()? {
        if sink.full() {
            break;
        }
        if !in_range(block, g, o)? {
            continue;
        }
        let lists = columns.iter().any(|c| c == schema::ATTRS || c == schema::RESOURCE_ATTRS);
        let prefilter = plan.single_filter.is_some() && (pre_tried < 4 || pre_skipped > 0);
        let nulls = if lists || prefilter || !required.is_empty() {
            block.null_counts(g)?
        } else {
            Default::default()
        };
        // An attribute the filter needs that no span of the row group has: no match, and
        // nothing read but the key bloom filters.
        if !required.is_empty() {
            let rows = block.row_group_summary(g)?.0 as u64;
            let mut skip = false;
            for a in &required {
                if absent(block, g, a, |c| nulls.get(c) == Some(&rows))? {
                    skip = true;
                    break;
                }
            }
            if skip {
                stats.inspected_spans += rows;
                stats.pruned_row_groups += 1;
                continue;
            }
        }
        // The filter's comparisons against the columns' minimum and maximum.
        if let Some(f) = plan.single_filter {
            // SAFETY: filter pointers point into the plan's pipeline (see SearchPlan).
            if !may_match(block, g, unsafe { &*f })? {
                stats.inspected_spans += block.row_group_summary(g)?.0 as u64;
                stats.pruned_row_groups += 1;
                continue;
            }
        }
        let no_nulls = |c: &str| nulls.get(c) == Some(&0);
        if prefilter {
            if let Some(pre) = plan.prefilter_columns(block.dedicated_columns(), no_nulls) {
                pre_tried += 1;
                let (batch, bytes) = block.read_columns(g, &pre)?;
                stats.inspected_bytes += bytes;
                if !filter_matches_any(plan, &batch, block.dedicated_columns()) {
                    pre_skipped += 1;
                    stats.inspected_spans += batch.num_rows() as u64;
                    stats.inspected_traces += trace_runs(&batch).len() as u64;
                    continue;
                }
            }
        }
        let group_columns;
        let columns = if lists {
            group_columns = plan.columns_for_group(block.dedicated_columns(), no_nulls);
            &group_columns
        } else {
            &columns
        };
        let (batch, bytes) = block.read_columns(g, columns)?;
        stats.inspected_bytes += bytes;
        add(stats, sink.batch(&batch, block.dedicated_columns()));
    }
    Ok(())
}

/// The column holding `scope`'s attribute `name` outside its list, and its type: the
/// resource's `service.name` column or a dedicated column of the block.
fn attribute_column(
    block: &BlockReader,
    scope: DedicatedScope,
    name: &str,
) -> Option<(String, DedicatedType)> {
    if scope == DedicatedScope::Resource && name == "service.name" {
        return Some((schema::RESOURCE_SERVICE_NAME.to_string(), DedicatedType::String));
    }
    block
        .dedicated_columns()
        .iter()
        .filter(|d| d.scope == scope)
        .enumerate()
        .find(|(_, d)| d.name == name)
        .map(|(i, d)| (schema::dedicated_column_name(scope, i), d.typ))
}

/// Whether no span of row group `g` has attribute `a` (false when that cannot be told):
/// its dedicated column, if any, is all null (`all_null`) and the key bloom filter of its
/// attribute list rules the name out.
fn absent(
    block: &BlockReader,
    g: usize,
    a: &Attribute,
    all_null: impl Fn(&str) -> bool,
) -> Result<bool, BlockError> {
    let in_scope = |scope: DedicatedScope, list: &str| -> Result<bool, BlockError> {
        if attribute_column(block, scope, &a.name).is_some_and(|(c, _)| !all_null(&c)) {
            return Ok(false);
        }
        Ok(!block.key_may_exist(g, list, &a.name)?)
    };
    Ok(match a.scope {
        AttributeScope::Span => in_scope(DedicatedScope::Span, schema::ATTRS)?,
        AttributeScope::Resource => in_scope(DedicatedScope::Resource, schema::RESOURCE_ATTRS)?,
        AttributeScope::None => {
            in_scope(DedicatedScope::Span, schema::ATTRS)?
                && in_scope(DedicatedScope::Resource, schema::RESOURCE_ATTRS)?
        }
        _ => false,
    })
}

/// Whether some span of row group `g` may satisfy filter `e`, from column statistics:
/// `&&` / `||` of comparisons between a column and a literal. Anything else may match.
fn may_match(block: &BlockReader, g: usize, e: &FieldExpr) -> Result<bool, BlockError> {
    Ok(match e {
        FieldExpr::Binary { op: BinOp::And, lhs, rhs } => {
            may_match(block, g, lhs)? && may_match(block, g, rhs)?
        }
        FieldExpr::Binary { op: BinOp::Or, lhs, rhs } => {
            may_match(block, g, lhs)? || may_match(block, g, rhs)?
        }
        FieldExpr::Binary { op, lhs, rhs } => {
            let (field, lit, op) = match (lhs.as_ref(), rhs.as_ref()) {
                (f, FieldExpr::Static(s)) => (f, s, *op),
                (FieldExpr::Static(s), f) => match flipped(*op) {
                    Some(o) => (f, s, o),
                    None => return Ok(true),
                },
                _ => return Ok(true),
            };
            match stat_target(block, g, field, lit)? {
                Some((column, lit)) => match block.column_range(g, &column)? {
                    Some((lo, hi)) => satisfiable(op, &lo, &hi, &lit),
                    None => true,
                },
                None => true,
            }
        }
        _ => true,
    })
}

/// The column whose statistics bound `field` in row group `g`, and the literal as a
/// statistics value; None when they cannot decide (an attribute that may also sit in its
/// list, a float, …).
fn stat_target(
    block: &BlockReader,
    g: usize,
    field: &FieldExpr,
    lit: &Static,
) -> Result<Option<(String, StatValue)>, BlockError> {
    let int = |v: i64| Some(StatValue::Int(v as i128));
    let out = match (field, lit) {
        (FieldExpr::Intrinsic(Intrinsic::Duration), Static::Duration(d) | Static::Int(d)) => {
            int(*d).map(|v| (schema::DURATION.to_string(), v))
        }
        (FieldExpr::Intrinsic(Intrinsic::Name), Static::String(s)) => {
            Some((schema::NAME.to_string(), StatValue::Bytes(s.as_bytes().to_vec())))
        }
        (FieldExpr::Intrinsic(Intrinsic::Status), Static::Status(c)) => {
            int(status_code(*c) as i64).map(|v| (schema::STATUS_CODE.to_string(), v))
        }
        (FieldExpr::Intrinsic(Intrinsic::Kind), Static::Kind(k)) => {
            int(kind_code(*k) as i64).map(|v| (schema::KIND.to_string(), v))
        }
        (FieldExpr::Attribute(a), lit)
            if !a.parent && matches!(a.scope, AttributeScope::Span | AttributeScope::Resource) =>
        {
            let scope = if a.scope == AttributeScope::Span {
                DedicatedScope::Span
            } else {
                DedicatedScope::Resource
            };
            let column = attribute_column(block, scope, &a.name);
            let value = match (column.as_ref().map(|c| c.1), lit) {
                (Some(DedicatedType::Int), Static::Int(v)) => int(*v),
                (Some(DedicatedType::String), Static::String(s)) => {
                    Some(StatValue::Bytes(s.as_bytes().to_vec()))
                }
                _ => None,
            };
            // A value of another type stays in the attribute list, where statistics do not
            // reach (a double 500.0 equals 500): only when the list has no such key.
            let list =
                if scope == DedicatedScope::Span { schema::ATTRS } else { schema::RESOURCE_ATTRS };
            match (column, value) {
                (Some((c, _)), Some(v)) if !block.key_may_exist(g, list, &a.name)? => Some((c, v)),
                _ => None,
            }
        }
        _ => None,
    };
    Ok(out)
}

fn flipped(op: BinOp) -> Option<BinOp> {
    Some(match op {
        BinOp::Eq | BinOp::Neq => op,
        BinOp::Lt => BinOp::Gt,
        BinOp::Lte => BinOp::Gte,
        BinOp::Gt => BinOp::Lt,
        BinOp::Gte => BinOp::Lte,
        _ => return None,
    })
}

/// Whether a value within `[lo, hi]` may satisfy `value op lit`.
fn satisfiable(op: BinOp, lo: &StatValue, hi: &StatValue, lit: &StatValue) -> bool {
    if std::mem::discriminant(lo) != std::mem::discriminant(lit) {
        return true;
    }
    match op {
        BinOp::Eq => lo <= lit && lit <= hi,
        BinOp::Neq => !(lo == hi && lo == lit),
        BinOp::Lt => lo < lit,
        BinOp::Lte => lo <= lit,
        BinOp::Gt => hi > lit,
        BinOp::Gte => hi >= lit,
        _ => true,
    }
}

/// Whether row group `g` may hold traces overlapping the options' time range (from its
/// statistics; true without them).
fn in_range(block: &BlockReader, g: usize, o: &super::SearchOptions) -> Result<bool, BlockError> {
    let (_, range) = block.row_group_summary(g)?;
    Ok(match range {
        Some((lo, hi)) => {
            !((o.end_ns != 0 && lo > o.end_ns) || (o.start_ns != 0 && hi < o.start_ns))
        }
        None => true,
    })
}

/// Calls `f` with each row group of `block` overlapping the options' time range (skipped
/// from statistics, not read), as one batch of `columns`, and the bytes read, while `f`
/// returns true.
pub fn for_each_row_group(
    block: &BlockReader,
    columns: &[String],
    o: &super::SearchOptions,
    mut f: impl FnMut(&RecordBatch, u64) -> bool,
) -> Result<(), BlockError> {
    for g in 0..block.row_groups()? {
        if !in_range(block, g, o)? {
            continue;
        }
        let (batch, bytes) = block.read_columns(g, columns)?;
        if !f(&batch, bytes) {
            break;
        }
    }
    Ok(())
}

/// A head chunk's rows as one batch (a trace may straddle the chunk's batches).
pub fn chunk_batch(chunk: &ChunkReader) -> Result<Option<RecordBatch>, BlockError> {
    let mut parts = Vec::new();
    for b in chunk.batches()? {
        parts.push(b?);
    }
    crate::block::concat_batches(&chunk.schema(), parts)
}

fn scan_chunk(
    chunk: &ChunkReader,
    dedicated: &[DedicatedColumn],
    sink: &mut dyn BatchSink,
    stats: &mut JobStats,
) -> Result<(), BlockError> {
    if let Some(batch) = chunk_batch(chunk)? {
        stats.inspected_bytes += chunk.size();
        add(stats, sink.batch(&batch, dedicated));
    }
    Ok(())
}
