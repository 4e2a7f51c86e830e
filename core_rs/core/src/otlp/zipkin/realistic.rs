//! Realistic Zipkin v2 JSON for the speed probes: the reference load generator's traces
//! (`bench/otlp_load.py` `make_trace`) as `bench/test_receivers.py` `to_zipkin` writes them
//! (Python's `json.dumps`, so `", "` and `": "` separators). Per span: 8 span attributes, the
//! 6 resource attributes and `otel.scope.name` as tags; 3% errors with two more tags and an
//! `exception` annotation; spans grouped by service, as the batches are.

use crate::testdata::{DBS, METHODS, SERVICES};

const RESOURCES: [&str; 5] = ["orders", "users", "items", "carts", "payments"];
const ACTIONS: [&str; 4] = ["{id}", "list", "search", "create"];

/// xorshift64*: deterministic, good enough for picking.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }

    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes).map(|_| format!("{:02x}", self.next() as u8)).collect()
    }
}

struct GenSpan {
    service: usize,
    json: String,
}

/// A body of at least `spans` spans (whole traces), grouped by service in first-seen order.
pub(crate) fn realistic_v2_json(seed: u64, spans: usize) -> String {
    let mut rng = Rng(seed | 1);
    let t0_us = 1_700_000_000_000_000u64;
    // Per-batch resource attributes of each service.
    let resources: Vec<(u64, u64)> = (0..20).map(|_| (rng.range(0, 9), rng.range(0, 7))).collect();
    let mut all: Vec<GenSpan> = Vec::new();
    while all.len() < spans {
        let trace_id = rng.hex(16);
        let n = rng.range(4, 30) as usize;
        let start = t0_us + rng.range(0, 60_000_000);
        let root_dur = rng.range(5_000, 900_000);
        let mut ids: Vec<String> = Vec::new();
        for i in 0..n {
            let id = rng.hex(8);
            let parent = (i > 0).then(|| ids[rng.next() as usize % ids.len()].clone());
            let service = if i == 0 { 0 } else { rng.next() as usize % SERVICES.len() };
            let route = format!("/api/v1/{}/{}", rng.pick(&RESOURCES), rng.pick(&ACTIONS));
            let name = if i % 3 != 0 {
                format!("{} {route}", rng.pick(&METHODS))
            } else {
                format!("db.query {}", rng.pick(&DBS))
            };
            let kind = if i == 0 { 2 } else { rng.range(1, 3) };
            let duration = if i == 0 { root_dur } else { rng.range(10, root_dur) };
            let error = rng.range(0, 99) < 3;
            let code =
                if error { 500 } else { [200, 200, 200, 201, 404][rng.range(0, 4) as usize] };
            let svc = format!("svc-{}", SERVICES[service]);
            let (pod, node) = resources[service];
            let mut tags = vec![
                ("http.method", rng.pick(&METHODS).to_string()),
                ("http.route", route),
                ("http.status_code", code.to_string()),
                ("net.peer.name", format!("svc-{}", rng.pick(&SERVICES))),
                ("user.id", format!("user-{}", rng.range(0, 99_999))),
                ("db.system", rng.pick(&DBS).to_string()),
                ("retry", if rng.range(0, 9) == 0 { "true" } else { "false" }.to_string()),
                ("payload.bytes", rng.range(0, (1 << 20) - 1).to_string()),
                ("service.name", svc.clone()),
                ("service.namespace", "shop".to_string()),
                ("k8s.pod.name", format!("{svc}-7d9f{pod}")),
                ("host.name", format!("node-{node}")),
                ("telemetry.sdk.language", "python".to_string()),
                ("deployment.environment", "prod".to_string()),
                ("otel.scope.name", "bench".to_string()),
            ];
            if error {
                tags.push(("otel.status_code", "ERROR".to_string()));
                tags.push(("error", "internal error".to_string()));
            }
            let tags: Vec<String> = tags.iter().map(|(k, v)| format!(r#""{k}": "{v}""#)).collect();
            let ts = start + i as u64;
            let mut json = format!(
                r#"{{"traceId": "{trace_id}", "id": "{id}", "name": "{name}", "timestamp": {ts}, "duration": {duration}, "localEndpoint": {{"serviceName": "{svc}"}}, "tags": {{{}}}"#,
                tags.join(", ")
            );
            match kind {
                2 => json.push_str(r#", "kind": "SERVER""#),
                3 => json.push_str(r#", "kind": "CLIENT""#),
                _ => {}
            }
            if let Some(p) = parent {
                json.push_str(&format!(r#", "parentId": "{p}""#));
            }
            if error {
                json.push_str(&format!(
                    r#", "annotations": [{{"timestamp": {}, "value": "exception"}}]"#,
                    start + 5
                ));
            }
            json.push('}');
            all.push(GenSpan { service, json });
            ids.push(id);
        }
    }
    // Grouped by service in first-seen order, as `make_batches` groups a batch.
    let mut order: Vec<usize> = Vec::new();
    for s in &all {
        if !order.contains(&s.service) {
            order.push(s.service);
        }
    }
    let mut out: Vec<&str> = Vec::with_capacity(all.len());
    for svc in order {
        out.extend(all.iter().filter(|s| s.service == svc).map(|s| s.json.as_str()));
    }
    format!("[{}]", out.join(", "))
}
