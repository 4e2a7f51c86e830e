//! Span-metrics key extraction: per span of a batch, the label values of Tempo's
//! `traces_spanmetrics_*` series (intrinsics, then configured dimensions looked up in
//! the resource first and the span second), its latency and its size.

use std::hash::{BuildHasher, Hasher};

use super::attrs::{
    kind_name, render_value, sanitize_label_name, scan_attrs, scan_span, status_name, KeySet,
};
use super::filter::{FilterPolicy, SpanFilter};
use super::{within_slack, KeyIndex, Keys};
use crate::model::{Request, TraceId};
use crate::otlp::view::attrs_of;

/// The intrinsic dimensions Tempo supports, by label name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intrinsic {
    Service,
    SpanName,
    SpanKind,
    StatusCode,
    StatusMessage,
}

impl Intrinsic {
    pub const ALL: [Intrinsic; 5] = [
        Intrinsic::Service,
        Intrinsic::SpanName,
        Intrinsic::SpanKind,
        Intrinsic::StatusCode,
        Intrinsic::StatusMessage,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Intrinsic::Service => "service",
            Intrinsic::SpanName => "span_name",
            Intrinsic::SpanKind => "span_kind",
            Intrinsic::StatusCode => "status_code",
            Intrinsic::StatusMessage => "status_message",
        }
    }

    pub fn parse(name: &str) -> Option<Intrinsic> {
        Intrinsic::ALL.into_iter().find(|i| i.label() == name)
    }
}

/// Tempo's label for a configured dimension: sanitised, and prefixed with `__` when
/// it would collide with an intrinsic's name (`SanitizeLabelNameWithCollisions`).
pub fn dimension_label(name: &str) -> String {
    let s = sanitize_label_name(name);
    if Intrinsic::parse(&s).is_some() {
        format!("__{s}")
    } else {
        s
    }
}

/// A `dimension_mappings` entry: label `name` valued by the non-empty values of
/// `source_labels` (each looked up in the resource, then the span) joined by `join`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DimensionMapping {
    pub name: String,
    pub source_labels: Vec<String>,
    pub join: String,
}

/// What span metrics carry beyond intrinsics and dimensions (Tempo's span-metrics config).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanMetricsOptions {
    pub dimension_mappings: Vec<DimensionMapping>,
    pub filter_policies: Vec<FilterPolicy>,
    /// `enable_target_info`: `job` (and `instance`) labels on every series, and the
    /// resources' `traces_target_info` label sets.
    pub target_info: bool,
    /// `enable_instance_label`: the `instance` label (with `target_info`).
    pub instance_label: bool,
    /// `target_info_excluded_dimensions`: resource attributes left out of target info.
    pub target_info_excluded: Vec<String>,
}

impl Default for SpanMetricsOptions {
    fn default() -> SpanMetricsOptions {
        SpanMetricsOptions {
            dimension_mappings: Vec::new(),
            filter_policies: Vec::new(),
            target_info: false,
            instance_label: true,
            target_info_excluded: Vec::new(),
        }
    }
}

/// A `traces_target_info` series' labels: sorted by name, no name twice.
pub type TargetInfo = Vec<(String, String)>;

/// Where a non-intrinsic label's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// An attribute: its slot in `resource_keys` and in `span_keys`.
    Attr(usize, usize),
    /// A dimension mapping, by position.
    Mapping(usize),
    /// `job`: `service.namespace/service.name` (or the name alone; "" without one).
    Job,
    /// `instance`: `service.instance.id`.
    Instance,
}

/// One batch's span-metrics input: distinct keys and per-span columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanMetricsBatch {
    /// Distinct label-value tuples, first-seen order.
    pub keys: Keys,
    /// Per kept span: position in `keys`.
    pub index: Vec<u32>,
    /// Per kept span: latency in seconds (0 when the end precedes the start).
    pub latency: Vec<f64>,
    /// Per kept span: its protobuf message length.
    pub size: Vec<f64>,
    /// Per key: the trace id, latency and end time (unix ms) of its last span.
    pub exemplar_trace_ids: Vec<TraceId>,
    pub exemplar_latency: Vec<f64>,
    pub exemplar_time_ms: Vec<i64>,
    /// Spans dropped because their end is outside now ± slack.
    pub outside_slack: u64,
    /// Spans the filter policies left out.
    pub filtered: u64,
    /// With target info: the label sets of the resources that had a counted span.
    pub target_info: Vec<TargetInfo>,
    /// Kept spans whose end precedes their start.
    pub negative_duration: u64,
}

/// Extracts span-metrics keys; stateless between batches.
#[derive(Debug, Clone)]
pub struct SpanMetricsProcessor {
    intrinsics: Vec<Intrinsic>,
    label_names: Vec<String>,
    /// Per label after the intrinsics: where its value comes from.
    sources: Vec<Source>,
    /// Per dimension mapping: its source attributes' slots, and the separator.
    mappings: Vec<(Vec<(usize, usize)>, String)>,
    filter: SpanFilter,
    /// Target info: the resource slots of `service.namespace` and `service.instance.id`.
    target_info: Option<(usize, usize)>,
    instance_label: bool,
    target_info_excluded: Vec<String>,
    /// `service.name` (slot 0), the dimensions and the attributes the filter reads.
    resource_keys: KeySet,
    span_keys: KeySet,
    no_keys: KeySet,
    slack_ns: u64,
    hasher: ahash::RandomState,
}

impl SpanMetricsProcessor {
    /// `intrinsics`: an ordered subset of the intrinsic label names; `dimensions`:
    /// attribute names as configured. Dimensions whose labels coincide share one label,
    /// valued from the last of them (Tempo: "the last one configured wins").
    pub fn new(
        intrinsics: &[String],
        dimensions: &[String],
        slack_seconds: f64,
    ) -> Result<SpanMetricsProcessor, String> {
        Self::configured(intrinsics, dimensions, &SpanMetricsOptions::default(), slack_seconds)
    }

    /// As [`SpanMetricsProcessor::new`], plus the `options`: dimension mappings (labels
    /// after the dimensions; one coinciding with an earlier label replaces its value), then
    /// `job` and `instance` with target info, and filter policies.
    pub fn configured(
        intrinsics: &[String],
        dimensions: &[String],
        options: &SpanMetricsOptions,
        slack_seconds: f64,
    ) -> Result<SpanMetricsProcessor, String> {
        let mappings = &options.dimension_mappings;
        let mut ints = Vec::new();
        for name in intrinsics {
            let i = Intrinsic::parse(name).ok_or_else(|| {
                format!(
                    "unknown intrinsic dimension {name:?} (expected one of service, span_name, \
                     span_kind, status_code, status_message)"
                )
            })?;
            if ints.contains(&i) {
                return Err(format!("intrinsic dimension {name:?} given twice"));
            }
            ints.push(i);
        }
        let mut label_names: Vec<String> = ints.iter().map(|i| i.label().to_string()).collect();
        let mut resource_keys = KeySet::default();
        resource_keys.slot("service.name");
        let mut span_keys = KeySet::default();
        let mut sources: Vec<Source> = Vec::new();
        let mut add = |label: String, source: Source| match label_names[ints.len()..]
            .iter()
            .position(|l| *l == label)
        {
            Some(p) => sources[p] = source,
            None => {
                label_names.push(label);
                sources.push(source);
            }
        };
        for d in dimensions {
            add(dimension_label(d), Source::Attr(resource_keys.slot(d), span_keys.slot(d)));
        }
        let mut mapping_slots = Vec::with_capacity(mappings.len());
        for (i, m) in mappings.iter().enumerate() {
            if m.name.is_empty() {
                return Err(format!("dimension_mappings[{i}]: name must not be empty"));
            }
            add(dimension_label(&m.name), Source::Mapping(i));
            let slots = m.source_labels.iter().map(|s| (resource_keys.slot(s), span_keys.slot(s)));
            mapping_slots.push((slots.collect(), m.join.clone()));
        }
        let target_info = options.target_info.then(|| {
            add("job".to_string(), Source::Job);
            if options.instance_label {
                add("instance".to_string(), Source::Instance);
            }
            (resource_keys.slot("service.namespace"), resource_keys.slot("service.instance.id"))
        });
        let filter = SpanFilter::new(&options.filter_policies, &mut resource_keys, &mut span_keys)?;
        Ok(SpanMetricsProcessor {
            intrinsics: ints,
            label_names,
            sources,
            mappings: mapping_slots,
            filter,
            target_info,
            instance_label: options.instance_label,
            target_info_excluded: options.target_info_excluded.clone(),
            resource_keys,
            span_keys,
            no_keys: KeySet::default(),
            slack_ns: super::seconds_to_ns(slack_seconds),
            hasher: ahash::RandomState::new(),
        })
    }

    /// Intrinsic label names then dimension labels.
    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }

    /// A resource's `traces_target_info` labels (Tempo's): its attributes but the service
    /// name, namespace and instance id and the excluded ones, sanitised (`__job` and
    /// `__instance` on a clash), then `job` and `instance`. None unless there is at least one
    /// attribute and a job or instance.
    fn target_info_labels(&self, resource: &[u8], job: &str, instance: &str) -> Option<TargetInfo> {
        let mut pairs: TargetInfo = Vec::new();
        for kv in attrs_of(resource, 1) {
            let key = kv.key;
            if key.is_empty()
                || key.as_bytes()[0].is_ascii_digit()
                || matches!(key, "service.name" | "service.namespace" | "service.instance.id")
                || self.target_info_excluded.iter().any(|e| e == key)
            {
                continue;
            }
            let mut label = sanitize_label_name(key);
            if label == "job" || label == "instance" {
                label.insert_str(0, "__");
            }
            let mut value = String::new();
            render_value(&kv.value, &mut value);
            pairs.push((label, value));
        }
        let attributes = pairs.len();
        if !job.is_empty() {
            pairs.push(("job".to_string(), job.to_string()));
        }
        if self.instance_label && !instance.is_empty() {
            pairs.push(("instance".to_string(), instance.to_string()));
        }
        if attributes == 0 || pairs.len() == attributes {
            return None;
        }
        // one value per name, the last one (as a label builder keeps), sorted by name
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, first| later.0 == first.0);
        Some(pairs)
    }

    /// One pass over the request's spans.
    pub fn process(&self, req: &Request, now_ns: u64) -> SpanMetricsBatch {
        let n = req.spans.len();
        let mut b = SpanMetricsBatch {
            keys: Keys::new(self.label_names.len()),
            index: Vec::with_capacity(n),
            latency: Vec::with_capacity(n),
            size: Vec::with_capacity(n),
            ..Default::default()
        };
        let buf: &[u8] = &req.buf;
        let ni = self.intrinsics.len();
        let nl = self.label_names.len();
        let mut index = KeyIndex::with_capacity(n.min(1024));
        let mut res = self.resource_keys.found();
        let mut span_found = self.span_keys.found();
        let mut cur_resource = u32::MAX;
        // Whether every dimension was found on the resource (spans need no attribute walk).
        let mut all_on_resource = false;
        let filter_reads_span = self.filter.reads_span_attributes();
        let mut mapped: Vec<String> = vec![String::new(); self.mappings.len()];
        let (mut job, mut instance) = (String::new(), String::new());
        // the current resource's target info is still to be reported (on its first counted span)
        let mut info_pending = false;
        for span in &req.spans {
            if !within_slack(span.end_unix_nano, now_ns, self.slack_ns) {
                b.outside_slack += 1;
                continue;
            }
            let ri = req.scopes[span.scope as usize].resource;
            if ri != cur_resource {
                cur_resource = ri;
                let msg = req.resources[ri as usize].resource.get(buf);
                scan_attrs(msg, 1, &self.resource_keys, &mut res);
                res.render();
                if let Some((ns, inst)) = self.target_info {
                    job.clear();
                    let svc = res.get(0).unwrap_or("");
                    if !svc.is_empty() {
                        if let Some(ns) = res.get(ns).filter(|v| !v.is_empty()) {
                            job.push_str(ns);
                            job.push('/');
                        }
                        job.push_str(svc);
                    }
                    instance.clear();
                    instance.push_str(res.get(inst).unwrap_or(""));
                    info_pending = true;
                }
                all_on_resource = !filter_reads_span
                    && self.sources.iter().all(|s| match *s {
                        Source::Attr(r, _) => res.has(r),
                        Source::Mapping(_) | Source::Job | Source::Instance => true,
                    })
                    && self
                        .mappings
                        .iter()
                        .all(|(slots, _)| slots.iter().all(|&(r, _)| res.has(r)));
            }
            let keys = if all_on_resource { &self.no_keys } else { &self.span_keys };
            let fields = scan_span(span.msg.get(buf), keys, &mut span_found);
            span_found.render();
            if !self.filter.is_empty() && !self.filter.keep(&res, &span_found, span.kind, &fields) {
                b.filtered += 1;
                continue;
            }
            if info_pending {
                info_pending = false;
                let msg = req.resources[cur_resource as usize].resource.get(buf);
                if let Some(info) = self.target_info_labels(msg, &job, &instance) {
                    b.target_info.push(info);
                }
            }
            for ((slots, join), out) in self.mappings.iter().zip(mapped.iter_mut()) {
                out.clear();
                for &(r, s) in slots {
                    let v = res.get(r).or_else(|| span_found.get(s)).unwrap_or("");
                    if !v.is_empty() {
                        if !out.is_empty() {
                            out.push_str(join);
                        }
                        out.push_str(v);
                    }
                }
            }
            let kind = kind_name(span.kind);
            let status = status_name(fields.status_code);
            let service = res.get(0).unwrap_or("");
            let label = |p: usize| -> &str {
                if p < ni {
                    match self.intrinsics[p] {
                        Intrinsic::Service => service,
                        Intrinsic::SpanName => fields.name,
                        Intrinsic::SpanKind => &kind,
                        Intrinsic::StatusCode => &status,
                        Intrinsic::StatusMessage => fields.status_message,
                    }
                } else {
                    match self.sources[p - ni] {
                        Source::Attr(r, s) => match res.get(r) {
                            Some(v) => v,
                            None => span_found.get(s).unwrap_or(""),
                        },
                        Source::Mapping(m) => &mapped[m],
                        Source::Job => &job,
                        Source::Instance => &instance,
                    }
                }
            };
            let mut h = self.hasher.build_hasher();
            for p in 0..nl {
                h.write(label(p).as_bytes());
                h.write_u8(0xff);
            }
            let h = h.finish();
            let keys = &b.keys;
            let found = index.find(h, |k| (0..nl).all(|p| keys.get(k as usize, p) == label(p)));
            let (start, end) = (span.start_unix_nano, span.end_unix_nano);
            let latency = if start < end {
                (end - start) as f64 / 1e9
            } else {
                if end < start {
                    b.negative_duration += 1;
                }
                0.0
            };
            let time_ms = (end / 1_000_000) as i64;
            let k = match found {
                Some(k) => {
                    let e = k as usize;
                    b.exemplar_trace_ids[e] = span.trace_id;
                    b.exemplar_latency[e] = latency;
                    b.exemplar_time_ms[e] = time_ms;
                    k
                }
                None => {
                    let k = index.insert(h);
                    b.keys.push((0..nl).map(label));
                    b.exemplar_trace_ids.push(span.trace_id);
                    b.exemplar_latency.push(latency);
                    b.exemplar_time_ms.push(time_ms);
                    k
                }
            };
            b.index.push(k);
            b.latency.push(latency);
            b.size.push(span.msg.len as f64);
        }
        b
    }
}
