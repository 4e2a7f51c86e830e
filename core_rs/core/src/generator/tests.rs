use std::sync::Arc;

use super::attrs::{render_value, sanitize_label_name};
use super::*;
use crate::model::Request;
use crate::otlp::scan;
use crate::otlp::view::{attrs_of, AnyValue, SpanView};
use crate::pb::{put_bytes_field, put_fixed64_field, put_message, put_varint_field};
use crate::testdata::{self, kv_bool, kv_double, kv_int, kv_str};

const NOW: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

#[derive(Clone, Copy)]
enum V {
    S(&'static str),
    I(i64),
    B(bool),
    D(f64),
}

fn put_attr(o: &mut Vec<u8>, field: u32, k: &str, v: V) {
    match v {
        V::S(s) => kv_str(o, field, k, s),
        V::I(i) => kv_int(o, field, k, i),
        V::B(b) => kv_bool(o, field, k, b),
        V::D(d) => kv_double(o, field, k, d),
    }
}

#[derive(Clone)]
struct S {
    trace: u8,
    id: u8,
    parent: u8,
    kind: u64,
    name: &'static str,
    start: u64,
    end: u64,
    status: u64,
    message: &'static str,
    attrs: Vec<(&'static str, V)>,
}

fn span(trace: u8, id: u8, parent: u8, kind: u64) -> S {
    S {
        trace,
        id,
        parent,
        kind,
        name: "op",
        start: NOW - 2 * SEC,
        end: NOW - SEC,
        status: 0,
        message: "",
        attrs: Vec::new(),
    }
}

impl S {
    fn attr(mut self, k: &'static str, v: V) -> S {
        self.attrs.push((k, v));
        self
    }
    fn times(mut self, start: u64, end: u64) -> S {
        self.start = start;
        self.end = end;
        self
    }
    fn error(mut self) -> S {
        self.status = 2;
        self
    }
    fn named(mut self, name: &'static str) -> S {
        self.name = name;
        self
    }
}

fn tid(t: u8) -> [u8; 16] {
    [t; 16]
}

type Attrs = Vec<(&'static str, V)>;

/// A request of resources (attributes, spans), scanned.
fn request(resources: &[(Attrs, Vec<S>)]) -> Request {
    let mut out = Vec::new();
    for (rattrs, spans) in resources {
        put_message(&mut out, 1, |rs| {
            put_message(rs, 1, |r| {
                for &(k, v) in rattrs {
                    put_attr(r, 1, k, v);
                }
            });
            put_message(rs, 2, |ss| {
                for s in spans {
                    put_message(ss, 2, |o| {
                        put_bytes_field(o, 1, &tid(s.trace));
                        put_bytes_field(o, 2, &[s.id; 8]);
                        if s.parent != 0 {
                            put_bytes_field(o, 4, &[s.parent; 8]);
                        }
                        put_bytes_field(o, 5, s.name.as_bytes());
                        put_varint_field(o, 6, s.kind);
                        put_fixed64_field(o, 7, s.start);
                        put_fixed64_field(o, 8, s.end);
                        for &(k, v) in &s.attrs {
                            put_attr(o, 9, k, v);
                        }
                        if s.status != 0 || !s.message.is_empty() {
                            put_message(o, 15, |st| {
                                put_bytes_field(st, 2, s.message.as_bytes());
                                put_varint_field(st, 3, s.status);
                            });
                        }
                    });
                }
            });
        });
    }
    scan(Arc::from(out)).unwrap()
}

fn svc(name: &'static str) -> Attrs {
    vec![("service.name", V::S(name))]
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn default_intrinsics() -> Vec<String> {
    strs(&["service", "span_name", "span_kind", "status_code"])
}

/// (key, count) per key of a batch.
fn counts(keys: &Keys, index: &[u32]) -> Vec<(Vec<String>, usize)> {
    let mut c = vec![0; keys.len()];
    for &i in index {
        c[i as usize] += 1;
    }
    keys.to_vecs().into_iter().zip(c).collect()
}

// ------------------------------------------------------------------ helpers

#[test]
fn stringification_and_sanitising_follow_tempo() {
    let r = |v: AnyValue<'_>| {
        let mut s = String::new();
        render_value(&v, &mut s);
        s
    };
    assert_eq!(r(AnyValue::Str("a b")), "a b");
    assert_eq!(r(AnyValue::Int(-42)), "-42");
    assert_eq!(r(AnyValue::Bool(true)), "true");
    assert_eq!(r(AnyValue::Double(0.5)), "0.5");
    assert_eq!(r(AnyValue::Double(1e21)), "1000000000000000000000");
    assert_eq!(r(AnyValue::Double(2.0)), "2");
    assert_eq!(r(AnyValue::Double(f64::INFINITY)), "+Inf");
    assert_eq!(r(AnyValue::Bytes(b"x")), "");
    let mut arr = Vec::new();
    put_message(&mut arr, 1, |x| put_bytes_field(x, 1, b"a"));
    put_message(&mut arr, 1, |x| put_varint_field(x, 3, 7));
    assert_eq!(r(AnyValue::Array(&arr)), "[a7]");
    let mut kvl = Vec::new();
    kv_str(&mut kvl, 1, "team", "core");
    kv_int(&mut kvl, 1, "n", 3);
    assert_eq!(r(AnyValue::KvList(&kvl)), "{team:coren:3}");
    assert_eq!(sanitize_label_name("http.method"), "http_method");
    assert_eq!(sanitize_label_name("k8s-pod/ñame"), "k8s_pod__ame");
    assert_eq!(sanitize_label_name("0abc"), "0abc");
    assert_eq!(hex_id(&[0xab, 0x01]), "ab01");
}

// ------------------------------------------------------------------ span metrics

#[test]
fn span_metrics_keys_columns_and_exemplars() {
    let req = request(&[
        (
            svc("api"),
            vec![
                span(1, 1, 0, 2).named("GET /").times(NOW - 3 * SEC, NOW - SEC),
                span(1, 2, 1, 3).named("SELECT").error(),
                span(2, 3, 0, 2).named("GET /").times(NOW - 2 * SEC, NOW - SEC / 2),
            ],
        ),
        (svc("db"), vec![span(1, 4, 2, 2).named("SELECT")]),
    ]);
    let p = SpanMetricsProcessor::new(&default_intrinsics(), &[], 30.0).unwrap();
    assert_eq!(p.label_names(), strs(&["service", "span_name", "span_kind", "status_code"]));
    let b = p.process(&req, NOW);
    assert_eq!(
        b.keys.to_vecs(),
        vec![
            strs(&["api", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"]),
            strs(&["api", "SELECT", "SPAN_KIND_CLIENT", "STATUS_CODE_ERROR"]),
            strs(&["db", "SELECT", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"]),
        ]
    );
    assert_eq!(b.index, vec![0, 1, 0, 2]);
    assert_eq!(b.latency, vec![2.0, 1.0, 1.5, 1.0]);
    let sizes: Vec<f64> = req.spans.iter().map(|s| s.msg.len as f64).collect();
    assert_eq!(b.size, sizes);
    // the key's last span is its exemplar
    assert_eq!(b.exemplar_trace_ids[0], tid(2));
    assert_eq!(b.exemplar_latency[0], 1.5);
    assert_eq!(b.exemplar_time_ms[0], ((NOW - SEC / 2) / 1_000_000) as i64);
    assert_eq!((b.outside_slack, b.negative_duration), (0, 0));
}

#[test]
fn span_metrics_dimensions_resource_first_then_span() {
    let mut res = svc("api");
    res.push(("deployment.environment", V::S("prod")));
    res.push(("k8s.replicas", V::I(3)));
    let req = request(&[(
        res,
        vec![
            span(1, 1, 0, 2)
                .attr("deployment.environment", V::S("span-wins-not"))
                .attr("http.method", V::S("GET"))
                .attr("retry", V::B(true))
                .attr("ratio", V::D(0.25)),
            span(1, 2, 1, 1).attr("http.method", V::I(200)),
            span(1, 3, 1, 1),
        ],
    )]);
    let dims = strs(&[
        "deployment.environment",
        "http.method",
        "retry",
        "ratio",
        "k8s.replicas",
        "missing",
        "service",
    ]);
    let p = SpanMetricsProcessor::new(&strs(&["service"]), &dims, 30.0).unwrap();
    assert_eq!(
        p.label_names(),
        strs(&[
            "service",
            "deployment_environment",
            "http_method",
            "retry",
            "ratio",
            "k8s_replicas",
            "missing",
            "__service",
        ])
    );
    let b = p.process(&req, NOW);
    assert_eq!(
        b.keys.to_vecs(),
        vec![
            strs(&["api", "prod", "GET", "true", "0.25", "3", "", ""]),
            strs(&["api", "prod", "200", "", "", "3", "", ""]),
            strs(&["api", "prod", "", "", "", "3", "", ""]),
        ]
    );
}

#[test]
fn span_metrics_colliding_dimension_labels_share_one_the_last_wins() {
    let req = request(&[(
        svc("api"),
        vec![span(1, 1, 0, 2)
            .attr("deployment.environment", V::S("a"))
            .attr("deployment_environment", V::S("b"))],
    )]);
    let dims = strs(&["deployment.environment", "deployment_environment"]);
    let p = SpanMetricsProcessor::new(&[], &dims, 0.0).unwrap();
    assert_eq!(p.label_names(), strs(&["deployment_environment"]));
    assert_eq!(p.process(&req, NOW).keys.to_vecs(), vec![strs(&["b"])]);
}

#[test]
fn span_metrics_status_message_unknown_kind_and_missing_service() {
    let mut s = span(1, 1, 0, 9).error();
    s.message = "boom";
    let req = request(&[(vec![("other", V::S("x"))], vec![s])]);
    let ints = strs(&["status_message", "span_kind", "service", "status_code"]);
    let p = SpanMetricsProcessor::new(&ints, &[], 0.0).unwrap();
    assert_eq!(
        p.process(&req, NOW).keys.to_vecs(),
        vec![strs(&["boom", "9", "", "STATUS_CODE_ERROR"])]
    );
    assert!(SpanMetricsProcessor::new(&strs(&["nope"]), &[], 0.0).is_err());
    assert!(SpanMetricsProcessor::new(&strs(&["service", "service"]), &[], 0.0).is_err());
}

fn policy(regex: bool, attrs: &[(Scope, &str, FilterValue)]) -> PolicyMatch {
    PolicyMatch {
        regex,
        attributes: attrs
            .iter()
            .map(|(scope, name, value)| FilterAttr {
                scope: *scope,
                name: name.to_string(),
                value: value.clone(),
            })
            .collect(),
    }
}

/// The span names a processor with `policies` counts from `req`.
fn kept_names(req: &Request, policies: &[FilterPolicy]) -> (Vec<String>, u64) {
    let opts = SpanMetricsOptions { filter_policies: policies.to_vec(), ..Default::default() };
    let p = SpanMetricsProcessor::configured(&strs(&["span_name"]), &[], &opts, 0.0).unwrap();
    let b = p.process(req, NOW);
    let keys = b.keys.to_vecs();
    (b.index.iter().map(|&i| keys[i as usize][0].clone()).collect(), b.filtered)
}

#[test]
fn filter_policies_include_and_exclude_as_tempo() {
    use FilterValue::{Bool, Float, Int, Str};
    let mut prod = svc("api");
    prod.push(("env", V::S("prod")));
    let req = request(&[
        (
            prod,
            vec![
                span(1, 1, 0, 2).named("a").attr("http.status_code", V::I(200)),
                span(1, 2, 1, 3).named("b").attr("http.status_code", V::I(500)).error(),
                span(1, 3, 1, 1).named("c").attr("retry", V::B(true)).attr("ratio", V::D(0.5)),
                span(1, 4, 1, 2).named("health").attr("http.status_code", V::S("200")),
            ],
        ),
        (svc("batch"), vec![span(2, 1, 0, 2).named("d")]),
    ]);
    let include = |m| FilterPolicy { include: Some(m), exclude: None };
    let exclude = |m| FilterPolicy { include: None, exclude: Some(m) };
    let names = |v: &[&str]| strs(v);
    // resource attribute, strict
    let r = kept_names(
        &req,
        &[include(policy(false, &[(Scope::Resource, "env", Str("prod".into()))]))],
    );
    assert_eq!(r, (names(&["a", "b", "c", "health"]), 1));
    // typed: an int filter matches int attributes only; a string one the string "200"
    let r =
        kept_names(&req, &[include(policy(false, &[(Scope::Span, "http.status_code", Int(200))]))]);
    assert_eq!(r.0, names(&["a"]));
    let r = kept_names(
        &req,
        &[include(policy(false, &[(Scope::Span, "http.status_code", Str("200".into()))]))],
    );
    assert_eq!(r.0, names(&["health"]));
    let two =
        policy(false, &[(Scope::Span, "retry", Bool(true)), (Scope::Span, "ratio", Float(0.5))]);
    assert_eq!(kept_names(&req, &[include(two)]).0, names(&["c"]));
    // intrinsics: kind and status by enum name, name by regex (unanchored)
    let r = kept_names(
        &req,
        &[include(policy(false, &[(Scope::Intrinsic, "kind", Str("SPAN_KIND_SERVER".into()))]))],
    );
    assert_eq!(r.0, names(&["a", "health", "d"]));
    let r = kept_names(
        &req,
        &[exclude(policy(false, &[(Scope::Intrinsic, "status", Str("STATUS_CODE_ERROR".into()))]))],
    );
    assert_eq!(r.0, names(&["a", "c", "health", "d"]));
    let r = kept_names(
        &req,
        &[exclude(policy(true, &[(Scope::Intrinsic, "name", Str("ealt".into()))]))],
    );
    assert_eq!(r, (names(&["a", "b", "c", "d"]), 1));
    let r = kept_names(
        &req,
        &[include(policy(true, &[(Scope::Intrinsic, "kind", Str("CLIENT|INTERNAL".into()))]))],
    );
    assert_eq!(r.0, names(&["b", "c"]));
    // a regex on a non-string attribute sees ""; an absent attribute never matches
    let r = kept_names(
        &req,
        &[include(policy(true, &[(Scope::Span, "http.status_code", Str("^$".into()))]))],
    );
    assert_eq!(r.0, names(&["a", "b"]));
    // every policy must pass: include prod servers, exclude the health check
    let both = [FilterPolicy {
        include: Some(policy(
            false,
            &[
                (Scope::Resource, "env", Str("prod".into())),
                (Scope::Intrinsic, "kind", Str("SPAN_KIND_SERVER".into())),
            ],
        )),
        exclude: Some(policy(false, &[(Scope::Intrinsic, "name", Str("health".into()))])),
    }];
    assert_eq!(kept_names(&req, &both), (names(&["a"]), 4));
}

#[test]
fn filter_policies_refuse_what_tempo_refuses() {
    use FilterValue::{Int, Str};
    let new = |p: FilterPolicy| {
        let opts = SpanMetricsOptions { filter_policies: vec![p], ..Default::default() };
        SpanMetricsProcessor::configured(&default_intrinsics(), &[], &opts, 0.0).map(|_| ())
    };
    let err = new(FilterPolicy::default()).unwrap_err();
    assert!(err.contains("at least an `include` or `exclude`"), "{err}");
    let bad = |m| FilterPolicy { include: Some(m), exclude: None };
    for (m, want) in [
        (
            policy(true, &[(Scope::Span, "x", Str("(".into()))]),
            "invalid include policy: invalid regexp",
        ),
        (
            policy(false, &[(Scope::Intrinsic, "duration", Int(1))]),
            "currently unsupported intrinsic: duration",
        ),
        (
            policy(false, &[(Scope::Intrinsic, "kind", Str("SERVER".into()))]),
            "unsupported kind intrinsic string value",
        ),
        (policy(false, &[(Scope::Intrinsic, "status", Int(2))]), "invalid status intrinsic value"),
        (policy(true, &[(Scope::Resource, "x", Int(2))]), "invalid regex value"),
    ] {
        let err = new(bad(m)).unwrap_err();
        assert!(err.contains(want), "{err} lacks {want}");
    }
}

#[test]
fn dimension_mappings_join_non_empty_values() {
    let mut res = svc("api");
    res.push(("k8s.namespace", V::S("shop")));
    let req = request(&[(
        res,
        vec![
            span(1, 1, 0, 2).attr("http.method", V::S("GET")).attr("http.route", V::S("/cart")),
            span(1, 2, 1, 2).attr("http.route", V::S("/pay")),
            span(1, 3, 1, 2).attr("http.method", V::I(7)),
        ],
    )]);
    let mappings = [
        DimensionMapping {
            name: "endpoint".into(),
            source_labels: strs(&["http.method", "http.route"]),
            join: " ".into(),
        },
        DimensionMapping {
            name: "where".into(),
            source_labels: strs(&["k8s.namespace", "missing", "service.name"]),
            join: "/".into(),
        },
        // coincides with the dimension's label: replaces its value
        DimensionMapping {
            name: "http.method".into(),
            source_labels: strs(&["http.route"]),
            join: String::new(),
        },
        DimensionMapping {
            name: "span_name".into(),
            source_labels: strs(&["http.route"]),
            join: String::new(),
        },
    ];
    let dims = strs(&["http.method"]);
    let opts = SpanMetricsOptions { dimension_mappings: mappings.to_vec(), ..Default::default() };
    let p = SpanMetricsProcessor::configured(&strs(&["span_name"]), &dims, &opts, 0.0).unwrap();
    assert_eq!(
        p.label_names(),
        strs(&["span_name", "http_method", "endpoint", "where", "__span_name"])
    );
    assert_eq!(
        p.process(&req, NOW).keys.to_vecs(),
        vec![
            strs(&["op", "/cart", "GET /cart", "shop/api", "/cart"]),
            strs(&["op", "/pay", "/pay", "shop/api", "/pay"]),
            strs(&["op", "", "7", "shop/api", ""]),
        ]
    );
}

#[test]
fn target_info_labels_and_job_instance_columns() {
    let shop = vec![
        ("service.name", V::S("cart")),
        ("service.namespace", V::S("shop")),
        ("service.instance.id", V::S("cart-0")),
        ("k8s.pod.name", V::S("cart-7f9")),
        ("job", V::S("from-attr")),
        ("host.cpus", V::I(4)),
        ("0bad", V::S("x")),
        ("secret", V::S("s")),
    ];
    let bare = vec![("service.name", V::S("batch")), ("region", V::S("eu"))];
    let only_name = svc("lonely"); // no other attribute: no target_info
    let filtered = vec![("service.name", V::S("skipped")), ("region", V::S("us"))];
    let req = request(&[
        (shop, vec![span(1, 1, 0, 2), span(1, 2, 1, 2)]),
        (bare, vec![span(2, 1, 0, 2)]),
        (only_name, vec![span(3, 1, 0, 2)]),
        (filtered, vec![span(4, 1, 0, 3)]),
    ]);
    let opts = SpanMetricsOptions {
        target_info: true,
        target_info_excluded: strs(&["secret"]),
        filter_policies: vec![FilterPolicy {
            include: Some(PolicyMatch {
                regex: false,
                attributes: vec![FilterAttr {
                    scope: Scope::Intrinsic,
                    name: "kind".into(),
                    value: FilterValue::Str("SPAN_KIND_SERVER".into()),
                }],
            }),
            exclude: None,
        }],
        ..Default::default()
    };
    let p = SpanMetricsProcessor::configured(&strs(&["service"]), &[], &opts, 0.0).unwrap();
    assert_eq!(p.label_names(), strs(&["service", "job", "instance"]));
    let b = p.process(&req, NOW);
    assert_eq!(
        b.keys.to_vecs(),
        vec![
            strs(&["cart", "shop/cart", "cart-0"]),
            strs(&["batch", "batch", ""]),
            strs(&["lonely", "lonely", ""]),
        ]
    );
    let pairs = |v: &[(&str, &str)]| -> TargetInfo {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    assert_eq!(
        b.target_info,
        vec![
            pairs(&[
                ("__job", "from-attr"),
                ("host_cpus", "4"),
                ("instance", "cart-0"),
                ("job", "shop/cart"),
                ("k8s_pod_name", "cart-7f9"),
            ]),
            pairs(&[("job", "batch"), ("region", "eu")]),
        ]
    );
    let no_instance =
        SpanMetricsOptions { target_info: true, instance_label: false, ..Default::default() };
    let p = SpanMetricsProcessor::configured(&[], &[], &no_instance, 0.0).unwrap();
    assert_eq!(p.label_names(), strs(&["job"]));
    assert!(p.process(&req, NOW).target_info[0].iter().all(|(k, _)| k != "instance"));
}

#[test]
fn host_ids_take_the_first_identifier_with_a_string() {
    let req = request(&[
        (vec![("host.id", V::S("h-1")), ("k8s.node.name", V::S("node-a"))], vec![span(1, 1, 0, 2)]),
        (vec![("host.id", V::S("h-2")), ("k8s.node.name", V::S(""))], vec![span(2, 1, 0, 2)]),
        (vec![("k8s.node.name", V::I(3))], vec![span(3, 1, 0, 2)]),
        (vec![("k8s.node.name", V::S("node-a"))], vec![span(4, 1, 0, 2)]),
    ]);
    let ids = strs(&["k8s.node.name", "host.id"]);
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    };
    assert_eq!(
        hostinfo::host_ids(&req, &ids),
        pairs(&[("node-a", "k8s.node.name"), ("h-2", "host.id")])
    );
}

#[test]
fn span_metrics_slack_and_negative_durations() {
    let req = request(&[(
        svc("api"),
        vec![
            span(1, 1, 0, 2).times(NOW - 100 * SEC, NOW - 40 * SEC), // too old
            span(1, 2, 0, 2).times(NOW, NOW + 31 * SEC),             // too far ahead
            span(1, 3, 0, 2).times(NOW - SEC, NOW - 2 * SEC),        // negative
            span(1, 4, 0, 2).times(NOW - SEC, NOW - SEC),            // zero
            span(1, 5, 0, 2).times(NOW - 31 * SEC, NOW - 30 * SEC),  // on the edge: kept
        ],
    )]);
    let p = SpanMetricsProcessor::new(&default_intrinsics(), &[], 30.0).unwrap();
    let b = p.process(&req, NOW);
    assert_eq!((b.outside_slack, b.negative_duration), (2, 1));
    assert_eq!(b.latency, vec![0.0, 0.0, 1.0]);
    assert_eq!(b.index, vec![0, 0, 0]);
    let off = SpanMetricsProcessor::new(&default_intrinsics(), &[], 0.0).unwrap();
    let b = off.process(&req, NOW);
    assert_eq!((b.outside_slack, b.index.len()), (0, 5));
}

/// Keys and counts equal those of a naive implementation (owned strings, the
/// validating view) on the reference-shaped data set.
#[test]
fn span_metrics_match_a_naive_reference_on_generated_data() {
    let (body, n) = testdata::request(11, 3000);
    let req = scan(Arc::from(body)).unwrap();
    let dims = strs(&["http.method", "deployment.environment", "http.status_code", "retry"]);
    let p = SpanMetricsProcessor::new(&default_intrinsics(), &dims, 0.0).unwrap();
    let b = p.process(&req, 0);
    assert_eq!(b.index.len(), n);
    let mut naive: Vec<(Vec<String>, usize)> = Vec::new();
    for s in &req.spans {
        let v = SpanView::parse(s.msg.get(&req.buf)).unwrap();
        let res = req.resource_of(s).resource.get(&req.buf);
        let find = |key: &str, msg: &[u8], field: u32| {
            attrs_of(msg, field).find(|kv| kv.key == key).map(|kv| {
                let mut out = String::new();
                render_value(&kv.value, &mut out);
                out
            })
        };
        let mut key = vec![
            find("service.name", res, 1).unwrap_or_default(),
            v.name.to_string(),
            attrs::kind_name(v.kind).into_owned(),
            attrs::status_name(v.status_code).into_owned(),
        ];
        for d in &dims {
            key.push(find(d, res, 1).or_else(|| find(d, v.msg, 9)).unwrap_or_default());
        }
        match naive.iter_mut().find(|(k, _)| *k == key) {
            Some((_, c)) => *c += 1,
            None => naive.push((key, 1)),
        }
    }
    assert_eq!(counts(&b.keys, &b.index), naive);
}

// ------------------------------------------------------------------ service graphs

fn store(f: impl FnOnce(&mut ServiceGraphConfig)) -> ServiceGraphStore {
    let mut cfg = ServiceGraphConfig::default();
    f(&mut cfg);
    ServiceGraphStore::new(cfg)
}

fn edge_keys(b: &EdgeBatch) -> Vec<(Vec<String>, usize)> {
    counts(&b.keys, &b.index)
}

#[test]
fn edges_pair_across_two_batches() {
    let st = store(|_| {});
    assert_eq!(st.label_names(), strs(&["client", "server", "connection_type"]));
    let a = request(&[(svc("frontend"), vec![span(1, 1, 0, 3).times(NOW - 3 * SEC, NOW - SEC)])]);
    let b = st.push(&a, NOW);
    assert!(b.keys.is_empty() && b.index.is_empty());
    assert_eq!(st.len(), 1);
    let c = request(&[(svc("cart"), vec![span(1, 2, 1, 2).times(NOW - 2 * SEC, NOW - SEC)])]);
    let b = st.push(&c, NOW + SEC);
    assert_eq!(edge_keys(&b), vec![(strs(&["frontend", "cart", ""]), 1)]);
    assert_eq!(b.client_seconds, vec![2.0]);
    assert_eq!(b.server_seconds, vec![1.0]);
    assert_eq!(b.failed, vec![0]);
    assert!(b.messaging_seconds[0].is_nan());
    assert_eq!(b.exemplar_trace_ids, vec![tid(1)]);
    assert_eq!(st.len(), 0);
    assert_eq!((b.dropped_spans, b.expired_edges, b.outside_slack), (0, 0, 0));
}

#[test]
fn edges_do_not_depend_on_arrival_order() {
    let client = || (svc("frontend"), vec![span(1, 1, 0, 3).times(NOW - 3 * SEC, NOW - SEC)]);
    let server = || {
        (
            svc("cart"),
            vec![span(1, 2, 1, 2).times(NOW - 2 * SEC, NOW - SEC).error().attr("env", V::S("x"))],
        )
    };
    let run = |first: Request, second: Request| {
        let st = store(|c| c.dimensions = strs(&["env"]));
        assert!(st.push(&first, NOW).index.is_empty());
        let b = st.push(&second, NOW);
        assert_eq!(st.len(), 0);
        b
    };
    let ab = run(request(&[client()]), request(&[server()]));
    let ba = run(request(&[server()]), request(&[client()]));
    assert_eq!(edge_keys(&ab), vec![(strs(&["frontend", "cart", "", "x"]), 1)]);
    assert_eq!(ab.keys.to_vecs(), ba.keys.to_vecs());
    assert_eq!((ab.client_seconds, ab.server_seconds), (ba.client_seconds, ba.server_seconds));
    assert_eq!(ab.failed, vec![1]);
    assert_eq!(ba.failed, vec![1]);
    // and both halves in one batch
    let st = store(|c| c.dimensions = strs(&["env"]));
    let b = st.push(&request(&[server(), client()]), NOW);
    assert_eq!(edge_keys(&b), vec![(strs(&["frontend", "cart", "", "x"]), 1)]);
}

#[test]
fn expiry_makes_virtual_nodes_both_ways() {
    let st = store(|c| c.enable_virtual_node_label = true);
    assert_eq!(st.label_names(), strs(&["client", "server", "connection_type", "virtual_node"]));
    let req = request(&[(
        svc("gateway"),
        vec![
            // root server span without a client: called by "user"
            span(1, 1, 0, 2),
            // root server span with a peer attribute: called by that peer
            span(2, 1, 0, 2).attr("peer.service", V::S("mobile")),
            // non-root server span without its client: dropped on expiry
            span(3, 2, 1, 2),
            // client span with a peer attribute: calls that peer
            span(4, 5, 1, 3).attr("peer.service", V::S("stripe")),
            // client span without one: dropped on expiry
            span(5, 6, 1, 3),
        ],
    )]);
    assert!(st.push(&req, NOW).index.is_empty());
    assert_eq!(st.len(), 5);
    let early = st.expire(NOW + 9 * SEC);
    assert!(early.index.is_empty() && early.expired_edges == 0);
    let b = st.expire(NOW + 10 * SEC);
    assert_eq!(b.expired_edges, 5);
    assert_eq!(
        edge_keys(&b),
        vec![
            (strs(&["user", "gateway", "virtual_node", "client"]), 1),
            (strs(&["mobile", "gateway", "virtual_node", "client"]), 1),
            (strs(&["gateway", "stripe", "virtual_node", "server"]), 1),
        ]
    );
    assert_eq!(b.exemplar_trace_ids, vec![tid(1), tid(2), tid(4)]);
    assert_eq!(st.len(), 0);
    let late = st.expire(NOW + 100 * SEC);
    assert!(late.index.is_empty() && late.keys.is_empty() && late.expired_edges == 0);
}

#[test]
fn database_edges_name_the_server() {
    let st = store(|_| {});
    let req = request(&[(
        svc("api"),
        vec![
            span(1, 1, 0, 3).attr("db.name", V::S("orders")).attr("peer.service", V::S("pg-main")),
            span(1, 2, 0, 3).attr("db.system", V::S("redis")).attr("server.address", V::S("cache")),
            span(1, 3, 0, 3)
                .attr("db.namespace", V::S("users"))
                .attr("network.peer.address", V::S("10.0.0.1"))
                .attr("network.peer.port", V::I(5432)),
            span(1, 4, 0, 3).attr("db.namespace", V::S("inventory")),
            span(1, 5, 0, 3)
                .attr("db.system", V::S("mysql"))
                .attr("network.peer.address", V::S("h")),
            // not a database span (db attributes are the configured names only)
            span(1, 6, 0, 3).attr("db.statement", V::S("SELECT 1")),
        ],
    )]);
    let b = st.push(&req, NOW);
    assert_eq!(
        edge_keys(&b),
        vec![
            (strs(&["api", "pg-main", "database"]), 1),
            (strs(&["api", "cache", "database"]), 1),
            (strs(&["api", "10.0.0.1:5432", "database"]), 1),
            (strs(&["api", "inventory", "database"]), 1),
            (strs(&["api", "h", "database"]), 1),
        ]
    );
    // the client duration is both sides'
    assert_eq!(b.server_seconds, b.client_seconds);
    assert_eq!(st.len(), 1);
    // database name attributes are configurable
    let only = store(|c| c.database_name_attributes = strs(&["db.system"]));
    let b = only.push(&req, NOW);
    assert_eq!(b.keys.len(), 2);
}

#[test]
fn messaging_edges() {
    let producer = span(1, 1, 0, 4).times(NOW - 4 * SEC, NOW - 3 * SEC);
    let consumer = span(1, 2, 1, 5).times(NOW - SEC, NOW - SEC / 2);
    let req = request(&[(svc("orders"), vec![producer]), (svc("billing"), vec![consumer])]);
    let on = store(|c| c.enable_messaging_system_latency_histogram = true);
    let b = on.push(&req, NOW);
    assert_eq!(edge_keys(&b), vec![(strs(&["orders", "billing", "messaging_system"]), 1)]);
    assert_eq!(b.messaging_seconds, vec![2.0]);
    assert_eq!((b.client_seconds[0], b.server_seconds[0]), (1.0, 0.5));
    let off = store(|_| {});
    assert!(off.push(&req, NOW).messaging_seconds[0].is_nan());
    // a consumer starting before the producer ended: not observed (as Tempo)
    let skew = request(&[(
        svc("orders"),
        vec![
            span(2, 1, 0, 4).times(NOW - 4 * SEC, NOW - SEC),
            span(2, 2, 1, 5).times(NOW - 2 * SEC, NOW - SEC),
        ],
    )]);
    assert!(on.push(&skew, NOW).messaging_seconds[0].is_nan());
}

#[test]
fn failed_when_either_side_errors() {
    let st = store(|_| {});
    let req = request(&[(
        svc("a"),
        vec![
            span(1, 1, 0, 3).error(),
            span(1, 2, 1, 2),
            span(2, 1, 0, 3),
            span(2, 2, 1, 2).error(),
            span(3, 1, 0, 3),
            span(3, 2, 1, 2),
        ],
    )]);
    let b = st.push(&req, NOW);
    assert_eq!(b.failed, vec![1, 1, 0]);
    assert_eq!(edge_keys(&b), vec![(strs(&["a", "a", ""]), 3)]);
}

#[test]
fn max_items_drops_spans_that_would_wait() {
    let st = store(|c| c.max_items = 2);
    let req = request(&[(
        svc("a"),
        vec![
            span(1, 1, 0, 3),
            span(2, 1, 0, 3),
            span(3, 1, 0, 3),                            // dropped
            span(4, 1, 0, 3).attr("db.name", V::S("x")), // completes at once: kept
            span(1, 2, 1, 2),                            // completes a waiting edge
            span(5, 1, 0, 3),                            // room again
        ],
    )]);
    let b = st.push(&req, NOW);
    assert_eq!(b.dropped_spans, 1);
    assert_eq!(b.index.len(), 2);
    assert_eq!(st.len(), 2);
    let b = st.push(&request(&[(svc("b"), vec![span(3, 2, 1, 2)])]), NOW);
    assert_eq!((b.dropped_spans, b.index.len()), (1, 0));
}

#[test]
fn dimensions_with_client_server_prefix_and_missing_service() {
    let st = store(|c| {
        c.dimensions = strs(&["service.namespace", "http.method"]);
        c.enable_client_server_prefix = true;
        c.enable_virtual_node_label = true;
    });
    assert_eq!(
        st.label_names(),
        strs(&[
            "client",
            "server",
            "connection_type",
            "virtual_node",
            "client_service_namespace",
            "server_service_namespace",
            "client_http_method",
            "server_http_method",
        ])
    );
    let mut shop = svc("web");
    shop.push(("service.namespace", V::S("shop")));
    let req = request(&[
        (shop, vec![span(1, 1, 0, 3).attr("http.method", V::S("GET"))]),
        (svc("cart"), vec![span(1, 2, 1, 2).attr("http.method", V::S("POST"))]),
        // no service.name: ignored
        (vec![], vec![span(2, 1, 0, 3), span(2, 2, 1, 2)]),
    ]);
    let b = st.push(&req, NOW);
    assert_eq!(edge_keys(&b), vec![(strs(&["web", "cart", "", "", "shop", "", "GET", "POST"]), 1)]);
    assert_eq!(st.len(), 0);
}

#[test]
fn edges_outside_slack_are_counted_not_stored() {
    let st = store(|_| {});
    let req = request(&[(svc("a"), vec![span(1, 1, 0, 3).times(NOW - 90 * SEC, NOW - 60 * SEC)])]);
    let b = st.push(&req, NOW);
    assert_eq!(b.outside_slack, 1);
    assert_eq!(st.len(), 0);
}

#[test]
fn many_expiries_keep_the_store_bounded_and_consistent() {
    let st = store(|c| {
        c.dimensions = strs(&["u"]);
        c.slack_seconds = 0.0;
    });
    let names = ["a", "b", "c", "d"];
    for round in 0..40u64 {
        let mut spans = Vec::new();
        for t in 1..=250u8 {
            let s = span(t, (round % 200) as u8 + 1, 0, 3)
                .attr("peer.service", V::S(names[t as usize % 4]));
            spans.push(s);
        }
        let now = NOW + round * SEC;
        let req = request(&[(svc("x"), spans)]);
        st.push(&req, now);
        let b = st.expire(now);
        if round >= 10 {
            assert_eq!(b.expired_edges, 250);
            assert_eq!(b.keys.len(), 4);
        }
    }
    assert_eq!(st.len(), 2500);
    let b = st.expire(NOW + 1000 * SEC);
    assert_eq!(b.index.len(), 2500);
    assert_eq!(st.len(), 0);
    assert_eq!(st.footprint(), (0, 7 + 5));
}

#[test]
fn generated_data_pairs_every_child_edge() {
    // Every CLIENT span with a SERVER child in the same request pairs in one push.
    let (body, _) = testdata::request(5, 2000);
    let req = scan(Arc::from(body)).unwrap();
    let st = store(|c| c.slack_seconds = 0.0);
    let b = st.push(&req, 0);
    let mut expected = 0;
    for s in &req.spans {
        if s.kind == 2 && s.parent_span_id != [0; 8] {
            let parent = req
                .spans
                .iter()
                .find(|p| p.trace_id == s.trace_id && p.span_id == s.parent_span_id);
            if parent.is_some_and(|p| p.kind == 3) {
                expected += 1;
            }
        }
    }
    // db client spans (db.system on every generated span) complete on their own
    assert!(b.index.len() >= expected, "{} < {expected}", b.index.len());
    assert_eq!(b.keys.width(), 3);
}

#[test]
fn interned_strings_are_compacted_without_losing_waiting_edges() {
    let st = store(|c| {
        c.dimensions = strs(&["d"]);
        c.slack_seconds = 0.0;
        c.max_items = 100_000;
    });
    let unique: Vec<&'static str> =
        (0..5000).map(|i| &*Box::leak(format!("peer-{i}").into_boxed_str())).collect();
    let spans: Vec<S> = unique
        .iter()
        .enumerate()
        .map(|(i, p)| {
            span(1 + (i % 200) as u8, 1, 0, 3)
                .attr("peer.service", V::S(p))
                .named("x")
                .times(NOW + i as u64, NOW + i as u64)
        })
        .collect();
    // span ids must differ per trace: spread over (trace, id)
    let spans: Vec<S> = spans
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.id = 1 + (i / 200) as u8;
            s.trace = 1 + (i % 200) as u8;
            s
        })
        .collect();
    let n = spans.len();
    st.push(&request(&[(svc("x"), spans)]), NOW);
    let keep = span(250, 1, 0, 3).attr("peer.service", V::S("keep")).attr("d", V::S("dv"));
    st.push(&request(&[(svc("y"), vec![keep])]), NOW + 5 * SEC);
    let (_, before) = st.footprint();
    assert!(before > n);
    let b = st.expire(NOW + 10 * SEC);
    assert_eq!(b.index.len(), n);
    let (_, after) = st.footprint();
    assert!(after < 20, "{after}");
    let b = st.expire(NOW + 15 * SEC);
    assert_eq!(edge_keys(&b), vec![(strs(&["y", "keep", "virtual_node", "dv"]), 1)]);
}

#[test]
fn key_ids_are_stable_across_batches_and_bounded() {
    let mut a = Keys::new(2);
    a.push(["x", "1"].into_iter());
    a.push(["y", "2"].into_iter());
    let mut b = Keys::new(2);
    b.push(["y", "2"].into_iter());
    b.push(["x", "12"].into_iter());
    b.push(["x1", "2"].into_iter()); // same text run together: a different key
    let mut ids = KeyIds::new(5);
    assert_eq!(ids.assign(&a), (vec![0, 1], vec![0, 1]));
    assert_eq!(ids.assign(&b), (vec![1, 2, 3], vec![1, 2]));
    assert_eq!((ids.generation(), ids.len()), (0, 4));
    // past the bound: cleared, a new generation, every key new again
    assert_eq!(ids.assign(&a), (vec![0, 1], vec![0, 1]));
    assert_eq!(ids.generation(), 1);
}
