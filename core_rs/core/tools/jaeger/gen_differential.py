#!/usr/bin/env python3
"""Differential test cases: random Jaeger batches (Thrift binary, compact agent
datagrams, protobuf) and what the collector's own translator (tests/oracle) makes
of each, one `mode input-hex collector-hex` line per case, for the ignored Rust test
`differential_against_the_collector`:

    .venv/bin/python tests/gen_differential.py 500 > /tmp/jaeger_cases.txt
    JAEGER_CASES=/tmp/jaeger_cases.txt cargo test --release differential -- --ignored

With `mutate` (`gen_differential.py 500 1 mutate`) the inputs are damaged; the test
then also tallies where one side refuses what the other accepts
(JAEGER_CASES_LENIENT=1 reports instead of failing).
"""

import os
import random
import subprocess
import sys

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.Thrift import TMessageType, TType

import gen_fixtures as g

KEYS = [
    "span.kind", "error", "otel.status_code", "otel.status_description", "http.status_code",
    "http.response.status_code", "http.status_message", "w3c.tracestate", "otel.scope.name",
    "otel.scope.version", "otel.library.name", "otel.library.version", "event", "hostname",
    "host.name", "jaeger.version", "opencensus.exporterversion", "service.name", "a", "b",
]
STRS = ["", "client", "server", "producer", "consumer", "internal", "OK", "ok", "Error",
        "ERROR", "true", "404", "503", "200", "-1", "x", "k=v"]


def value(r, vtype):
    if vtype == g.STRING:
        return r.choice(STRS)
    if vtype == g.DOUBLE:
        return r.choice([0.0, -0.0, 1.5, 404.0])
    if vtype == g.BOOL:
        return r.random() < 0.6
    if vtype == g.LONG:
        return r.choice([0, 200, 399, 400, 404, 500, -7, 2**63 - 1])
    return bytes(r.randrange(256) for _ in range(r.randrange(4)))


def tags(r, n):
    out = []
    for _ in range(n):
        vtype = r.choice([g.STRING, g.STRING, g.STRING, g.DOUBLE, g.BOOL, g.LONG, g.BINARY])
        out.append((r.choice(KEYS), vtype, value(r, vtype)))
    return out


def ids(r):
    return r.choice([0, 1, 7, 2**63, 2**64 - 1, r.getrandbits(64)])


def span(r, traces):
    if r.random() < 0.05:
        return {"trace": 0, "id": 0, "name": ""}
    trace = r.choice(traces)
    s = {
        "trace": trace,
        "id": ids(r),
        "parent": r.choice([0, 0, ids(r)]),
        "name": r.choice(["", "op", "GET /x"]),
        "flags": r.choice([0, 1, 2, 3]),
        "start": r.choice([0, g.START, -5, 2**40]),
        "duration": r.choice([0, 1, 2500, -1]),
    }
    if r.random() < 0.7:
        refs = []
        for _ in range(r.randrange(4)):
            rt = r.choice([g.CHILD_OF, g.FOLLOWS_FROM, g.CHILD_OF, 5])
            refs.append((rt, r.choice(traces + [trace]), r.choice([0, s["parent"], ids(r)])))
        s["refs"] = refs
    if r.random() < 0.9:
        s["tags"] = tags(r, r.randrange(12))
    if r.random() < 0.5:
        s["logs"] = [(r.choice([0, g.START]), tags(r, r.randrange(4))) for _ in range(r.randrange(3))]
    return s


def thrift_case(r):
    traces = [r.getrandbits(128), r.getrandbits(64), 0]
    process = (r.choice(["", "svc", "OTLPResourceNoServiceName"]), tags(r, r.randrange(5)))
    spans = [span(r, traces) for _ in range(r.randrange(6))]
    if r.random() < 0.5:
        data = g.thrift_bytes(TBinaryProtocol.TBinaryProtocol,
                              lambda p: g.write_batch(p, process, spans))
        return "thrift-batch", data

    def agent(p):
        p.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 1)
        p.writeStructBegin("emitBatch_args")
        p.writeFieldBegin("batch", TType.STRUCT, 1)
        g.write_batch(p, process, spans)
        p.writeFieldEnd()
        p.writeFieldStop()
        p.writeStructEnd()
        p.writeMessageEnd()

    return "agent-compact", g.thrift_bytes(TCompactProtocol.TCompactProtocol, agent)


CLS = None


def proto_case(r):
    global CLS
    if CLS is None:
        CLS = g.proto_classes()
    cls = CLS
    ptype = {g.STRING: 0, g.BOOL: 1, g.LONG: 2, g.DOUBLE: 3, g.BINARY: 4}

    def kvs(n):
        return [g.kv(cls, k, ptype[t], v) for k, t, v in tags(r, n)]

    processes = [
        cls["Process"](service_name=r.choice(["", "svc", "b", "OTLPResourceNoServiceName"]),
                       tags=kvs(r.randrange(4)))
        for _ in range(3)
    ]
    req = cls["PostSpansRequest"]()
    if r.random() < 0.8:
        req.batch.process.CopyFrom(r.choice(processes))
    traces = [r.getrandbits(128), r.getrandbits(64)]
    for _ in range(r.randrange(6)):
        if r.random() < 0.05:
            req.batch.spans.add()
            continue
        trace = r.choice(traces)
        s = req.batch.spans.add(
            trace_id=trace.to_bytes(16, "big") if r.random() < 0.8 or trace >= 2**64
            else trace.to_bytes(8, "big"),
            span_id=ids(r).to_bytes(8, "big"), operation_name=r.choice(["", "op"]),
            flags=r.choice([0, 1, 3]))
        if r.random() < 0.9:
            g.set_time(s.start_time, r.choice([0, g.START]))
            s.duration.seconds = r.choice([0, 1])
            s.duration.nanos = r.choice([0, 5000])
        s.tags.extend(kvs(r.randrange(12)))
        for _ in range(r.randrange(4)):
            s.references.add(trace_id=r.choice(traces + [trace]).to_bytes(16, "big"),
                             span_id=ids(r).to_bytes(8, "big"),
                             ref_type=r.choice([0, 1, 0, 5]))
        for _ in range(r.randrange(3)):
            lg = s.logs.add()
            if r.random() < 0.9:
                g.set_time(lg.timestamp, g.START + r.randrange(100))
            lg.fields.extend(kvs(r.randrange(4)))
        if r.random() < 0.4:
            s.process.CopyFrom(r.choice(processes))
    return "proto", req.SerializeToString()


def mutate(r, data):
    """1-3 bit flips or byte overwrites, sometimes a truncation."""
    b = bytearray(data)
    for _ in range(r.randrange(1, 4)):
        if b:
            i = r.randrange(len(b))
            b[i] = b[i] ^ (1 << r.randrange(8)) if r.random() < 0.5 else r.randrange(256)
    if b and r.random() < 0.3:
        del b[r.randrange(len(b)):]
    return bytes(b)


def main():
    """Arguments: case count, seed, and `mutate` for damaged inputs."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    r = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    damaged = len(sys.argv) > 3 and sys.argv[3] == "mutate"
    exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oracle", "oracle")
    for _ in range(n):
        mode, data = (thrift_case if r.random() < 0.5 else proto_case)(r)
        if damaged:
            data = mutate(r, data)
        run = subprocess.run([exe, mode], input=data.hex(), capture_output=True, text=True)
        out = run.stdout.strip() if run.returncode == 0 else "error:_collector_crashed"
        if run.returncode != 0:
            print(run.stderr.splitlines()[:1], file=sys.stderr)
        print(mode, data.hex(), "_".join(out.split()))


if __name__ == "__main__":
    main()
