"""Overload: senders push as fast as they can into a server whose live traces are capped
(``live_store.max_live_traces_bytes``). Memory stays bounded, every push is either stored or
told to retry, and ``/ready`` and queries keep answering throughout."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.test_tenant_isolation import LOADGEN
from tests.server import TempoServer

MIB = 1 << 20


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


@pytest.mark.skipif(LOADGEN is None, reason="reference load generator otlp_load.py not found")
def test_flood_keeps_memory_bounded_and_the_server_answering(tmp_path: Path) -> None:
    server = TempoServer(
        tmp_path / "tempo",
        overrides={
            "live_store": {"max_live_traces_bytes": 8 * MIB},
            "overrides": {
                "defaults": {
                    "ingestion": {
                        "rate_limit_bytes": 10**12,
                        "burst_size_bytes": 10**12,
                        "max_traces_per_user": 10**8,
                    }
                }
            },
        },
    ).start()
    assert server.proc is not None
    slowest: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            status, _, _ = server.get("/ready")
            code, _, _ = server.get("/api/traces/0123456789abcdef0123456789abcdef")
            slowest.append(time.perf_counter() - t)
            assert status == 200 and code == 404
            time.sleep(0.5)  # light enough for the sender to see the server go idle

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        cmd = [
            sys.executable,
            str(LOADGEN),
            "--pid",
            str(server.proc.pid),
            "--grpc",
            server.otlp_grpc,
            "--batches",
            "240",
            "--spans",
            "1000",
            "--procs",
            "4",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
        run = json.loads(out.stdout.strip().splitlines()[-1])
        stop.set()
        prober.join(10)
        peak = vm_hwm_mb(server.proc.pid)
        stats = server.metrics()
    finally:
        stop.set()
        server.stop()
    # every span was either stored or refused with a retryable status, none lost silently
    assert run["ok_spans"] + run["err_spans"] == run["spans"]
    assert run["ok_spans"] > 0
    assert len(slowest) > 2 and max(slowest) < 2.0, max(slowest)
    # live traces are capped at 8 MiB; the rest is the interpreter, buffers and requests
    assert peak < 400, peak
    assert "tempo_ingester_live_trace_bytes" in stats
    print(
        f"\n[overload] {run['spans_per_s']} spans/s, peak RSS {peak:.0f} MiB, "
        f"slowest probe {max(slowest) * 1000:.0f} ms"
    )
