use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::columnar::{build_batch, group_traces};
use crate::otlp::scan;
use crate::schema::default_dedicated_columns;
use crate::testdata;

fn batch_of(bodies: Vec<Vec<u8>>) -> RecordBatch {
    let reqs: Vec<_> = bodies.into_iter().map(|b| Arc::new(scan(Arc::from(b)).unwrap())).collect();
    build_batch(&group_traces(&reqs), &default_dedicated_columns()).unwrap()
}

/// Trace (full hex) -> matched spans per spanset, sorted.
fn run(q: &str, batch: &RecordBatch) -> BTreeMap<String, Vec<u32>> {
    let opts = SearchOptions { limit: 0, spans_per_spanset: 1000, ..Default::default() };
    let plan = SearchPlan::compile(q, opts).unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut found = Found::default();
    search_batch(&plan, batch, &default_dedicated_columns(), &mut found);
    found
        .traces
        .iter()
        .map(|t| {
            let mut m: Vec<u32> = t.spansets.iter().map(|s| s.matched).collect();
            m.sort_unstable();
            (fields::hex(&t.trace_id), m)
        })
        .collect()
}

/// Span names of the single spanset of the single trace a query matches.
fn names(q: &str, batch: &RecordBatch) -> Vec<String> {
    let opts = SearchOptions { limit: 0, spans_per_spanset: 1000, ..Default::default() };
    let plan = SearchPlan::compile(q, opts).unwrap();
    let mut found = Found::default();
    search_batch(&plan, batch, &default_dedicated_columns(), &mut found);
    let view = fields::BatchView::new(batch, &[]);
    let names = view.strs(crate::schema::NAME).unwrap();
    let ids = view.column(crate::schema::SPAN_ID).unwrap().as_fixed_size_binary();
    let mut out: Vec<String> = found
        .traces
        .iter()
        .flat_map(|t| t.spansets.iter().flat_map(|s| s.spans.iter()))
        .map(|sp| {
            let row = (0..batch.num_rows()).find(|&r| ids.value(r) == sp.span_id.as_slice());
            names.value(row.unwrap()).to_string()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn realistic() -> RecordBatch {
    batch_of((0..3).map(|s| testdata::request(s, 2_000).0).collect())
}

#[test]
fn typed_fast_paths_agree_with_the_generic_path() {
    let b = realistic();
    for (fast, slow) in [
        ("{ span.http.status_code = 500 }", "{ span.http.status_code + 0 = 500 }"),
        ("{ span.http.status_code >= 404 }", "{ span.http.status_code * 1 >= 404 }"),
        ("{ duration > 100ms }", "{ duration + 0 > 100ms }"),
        ("{ status = error }", "{ !(status != error) }"),
        (r#"{ resource.service.name = "svc-cart" }"#, r#"{ resource.service.name =~ "svc-cart" }"#),
        (r#"{ span.http.method = "GET" }"#, r#"{ .http.method =~ "GET" }"#),
    ] {
        let (a, b2) = (run(fast, &b), run(slow, &b));
        assert!(!a.is_empty(), "{fast} matches something");
        assert_eq!(a, b2, "{fast} vs {slow}");
    }
}

#[test]
fn spanset_operators_and_pipelines() {
    let b = realistic();
    let errors = run("{ status = error }", &b);
    let servers = run("{ kind = server }", &b);
    let both = run("{ status = error } && { kind = server }", &b);
    for t in both.keys() {
        assert!(errors.contains_key(t) && servers.contains_key(t));
    }
    let either = run("{ status = error } || { kind = server }", &b);
    assert_eq!(
        either.len(),
        errors.keys().chain(servers.keys()).collect::<std::collections::BTreeSet<_>>().len()
    );
    // count() over the spanset of a filter.
    let many = run("{ status = error } | count() > 1", &b);
    assert_eq!(
        many,
        errors.iter().filter(|(_, m)| m[0] > 1).map(|(k, v)| (k.clone(), v.clone())).collect()
    );
    // by() splits a trace's spans by value; the groups cover the filter's spans.
    let grouped = run("{ status = error } | by(resource.service.name)", &b);
    for (t, groups) in &grouped {
        assert_eq!(groups.iter().sum::<u32>(), errors[t][0]);
    }
    let coalesced = run("{ status = error } | by(resource.service.name) | coalesce()", &b);
    assert_eq!(coalesced, errors);
}

/// R has children A and C, A has child B; O is an orphan (parent not received) with child O2.
fn tree() -> RecordBatch {
    let t = vec![7u8; 16];
    let id = |i: u8| vec![0, 0, 0, 0, 0, 0, 0, i];
    batch_of(vec![testdata::request_with_ids(&[
        (t.clone(), id(1), vec![]), // span-0: R
        (t.clone(), id(2), id(1)),  // span-1: A
        (t.clone(), id(3), id(2)),  // span-2: B
        (t.clone(), id(4), id(1)),  // span-3: C
        (t.clone(), id(5), id(99)), // span-4: O (orphan)
        (t.clone(), id(6), id(5)),  // span-5: O2
    ])])
}

#[test]
fn structural_operators_leave_orphan_subtrees_out() {
    let b = tree();
    let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(names("{ } > { }", &b), n(&["span-1", "span-2", "span-3"]));
    assert_eq!(names("{ } !> { }", &b), n(&["span-0", "span-4", "span-5"]));
    assert_eq!(names(r#"{ name = "span-0" } >> { }"#, &b), n(&["span-1", "span-2", "span-3"]));
    assert_eq!(names(r#"{ name = "span-2" } << { }"#, &b), n(&["span-0", "span-1"]));
    assert_eq!(names(r#"{ name = "span-2" } < { }"#, &b), n(&["span-1"]));
    assert_eq!(names(r#"{ name = "span-1" } ~ { }"#, &b), n(&["span-3"]));
    assert_eq!(names(r#"{ name = "span-5" } < { }"#, &b), Vec::<String>::new());
    assert_eq!(
        names(r#"{ name = "span-0" } &> { name = "span-3" }"#, &b),
        n(&["span-0", "span-3"])
    );
    // Every span but the root has a parent span in the trace... except the orphan subtree.
    assert_eq!(names("{ } &>> { }", &b), n(&["span-0", "span-1", "span-2", "span-3"]));
}

#[test]
fn aggregates_skip_missing_values() {
    let b = tree();
    // No span has the attribute: the spanset has no sum and is dropped.
    assert!(run("{ } | sum(span.nope) < 1", &b).is_empty());
    assert_eq!(run("{ } | count() = 6", &b).len(), 1);
    assert_eq!(run("{ } | max(duration) = 1000", &b).len(), 1);
}

#[test]
fn results_render_as_tempo_json() {
    let b = realistic();
    let opts = SearchOptions { limit: 2, spans_per_spanset: 2, ..Default::default() };
    let plan = SearchPlan::compile(r#"{ status = error && name =~ "db.*" }"#, opts).unwrap();
    let mut found = Found::default();
    search_batch(&plan, &b, &default_dedicated_columns(), &mut found);
    assert_eq!(found.len(), 2, "stops at the limit");
    let j = found.traces[0].to_json();
    assert!(j["traceID"].as_str().unwrap().len() <= 32);
    assert!(j["startTimeUnixNano"].is_string());
    let span = &j["spanSets"][0]["spans"][0];
    assert!(span["name"].as_str().unwrap().starts_with("db."));
    assert_eq!(span["attributes"][0]["key"], "status");
    assert_eq!(span["attributes"][0]["value"]["stringValue"], "error");
    assert!(span["durationNanos"].is_string());
    assert_eq!(j["spanSet"], j["spanSets"][0]);
}

#[test]
fn plan_reads_only_the_columns_it_needs() {
    let plan = SearchPlan::compile("{ span.http.status_code = 500 }", Default::default()).unwrap();
    let cols = plan.columns_for(&default_dedicated_columns());
    assert!(cols.contains(&"span_dedicated_01".to_string()));
    assert!(!cols.contains(&crate::schema::EVENTS.to_string()));
    assert!(!cols.contains(&crate::schema::RESOURCE_ATTRS.to_string()));
    assert!(SearchPlan::compile("{} | rate()", Default::default()).is_err());
    let err = SearchPlan::compile("{ .a = }", Default::default()).err().unwrap();
    assert!(err.starts_with("invalid TraceQL query: parse error at line 1, col 8"), "{err}");
}

#[test]
fn trace_id_hex_is_trimmed() {
    let mut id = [0u8; 16];
    id[15] = 0xab;
    assert_eq!(result::trace_id_hex(&id), "ab");
    assert_eq!(result::trace_id_hex(&[0u8; 16]), "0");
}

#[test]
fn required_attributes_follow_and_or() {
    let req = |q: &str| {
        let p = SearchPlan::compile(q, Default::default()).unwrap();
        p.required_attributes().into_iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(req(r#"{ .foo =~ "ba.*" }"#), vec![".foo"]);
    assert_eq!(req(r#"{ span.a = 1 && resource.b != "x" }"#), vec!["span.a", "resource.b"]);
    assert_eq!(req(r#"{ span.a = 1 || span.b = 2 }"#), Vec::<String>::new());
    assert_eq!(req(r#"{ (span.a = 1 && span.c = 3) || span.a > 5 }"#), vec!["span.a"]);
    assert!(req(r#"{ !(span.a = 1) }"#).is_empty());
    assert!(req(r#"{ span.a = nil }"#).is_empty());
    assert_eq!(req(r#"{ span.a != nil }"#), vec!["span.a"]);
    assert!(req(r#"{ span.a = 1 } >> { span.b = 2 }"#).is_empty(), "only a single filter");
}

#[test]
fn row_group_statistics_prune_without_changing_answers() {
    use crate::block::{BlockConfig, BlockReader};
    let tmp = tempfile::tempdir().unwrap();
    let cfg = BlockConfig { row_group_rows: 300, page_rows: 100, ..Default::default() };
    let (dir, _, _, _) = crate::block::tests::one_chunk_block(tmp.path(), &cfg, 5);
    let block = Arc::new(BlockReader::open(&dir).unwrap());
    let groups = block.row_groups().unwrap() as u64;
    let dedicated = block.dedicated_columns().to_vec();
    let all: Vec<String> =
        crate::schema::span_schema(&dedicated).fields().iter().map(|f| f.name().clone()).collect();
    let batches: Vec<Source> = (0..groups as usize)
        .map(|g| Source::Batch(block.read_columns(g, &all).unwrap().0, dedicated.clone()))
        .collect();
    for (q, pruned_all) in [
        ("{ span.http.status_code = 599 }", true),
        ("{ span.http.status_code > 100000 || duration > 1000h }", true),
        (r#"{ name = "zzz-no-such-span" }"#, true),
        (r#"{ resource.service.name = "zzz-none" && status = error }"#, true),
        ("{ span.http.status_code = 500 }", false),
        ("{ span.http.status_code != 599 }", false),
        ("{ duration < 1000h }", false),
        (r#"{ span.http.status_code = 599 || name =~ "GET.*" }"#, false),
    ] {
        let plan =
            SearchPlan::compile(q, SearchOptions { limit: 0, ..Default::default() }).unwrap();
        let (mut a, mut b) = (Found::default(), Found::default());
        let sa = search_sources(&plan, &[Source::Block(block.clone())], &mut a);
        search_sources(&plan, &batches, &mut b);
        assert_eq!(a.traces, b.traces, "{q}");
        if pruned_all {
            assert_eq!(sa.pruned_row_groups, groups, "{q}");
        } else {
            assert!(sa.pruned_row_groups < groups, "{q}");
        }
    }
}

#[test]
fn a_long_parent_chain_stays_linear() {
    // 20,000 spans, each the parent of the next: ancestor walks would be quadratic.
    let t = vec![9u8; 16];
    let id = |i: usize| (i as u64 + 1).to_be_bytes().to_vec();
    let spans: Vec<_> =
        (0..20_000).map(|i| (t.clone(), id(i), if i == 0 { vec![] } else { id(i - 1) })).collect();
    let b = batch_of(vec![testdata::request_with_ids(&spans)]);
    let started = std::time::Instant::now();
    assert_eq!(run("{ } >> { }", &b).values().next().unwrap(), &vec![19_999]);
    assert_eq!(run("{ } << { }", &b).values().next().unwrap(), &vec![19_999]);
    assert_eq!(run(r#"{ name = "span-0" } &>> { }"#, &b).values().next().unwrap(), &vec![20_000]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}
