"""A real Prometheus (the Debian package's binary) as a separate process on loopback.

It receives remote writes (``--web.enable-remote-write-receiver``) and keeps exemplars
(``--enable-feature=exemplar-storage``); nothing is scraped. Tests query it through its own
HTTP API, as Grafana does. The TSDB lives for the session: tests keep apart by label values.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.server import free_port

CONFIG = "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n"


class PrometheusError(RuntimeError):
    """The query API answered with an error."""


class Prometheus:
    """One ``prometheus`` process; :attr:`write_url` is its remote-write endpoint."""

    def __init__(self, binary: str | None = None, extra_flags: Sequence[str] = ()) -> None:
        """``extra_flags`` are added to the command line (e.g.
        ``--enable-feature=native-histograms``)."""
        found = binary or shutil.which("prometheus")
        if not found:
            raise RuntimeError(
                "prometheus not found on PATH: apt-get install -y prometheus (.ci/run does)"
            )
        self.binary = found
        self.extra_flags = list(extra_flags)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="tf-prometheus-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def log(self) -> str:
        """The process's output so far (for assertion messages)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def start(self, timeout: float = 60.0) -> Prometheus:
        root = Path(self._dir.name)
        config = root / "prometheus.yml"
        config.write_text(CONFIG)
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-remote-write-receiver",
                "--enable-feature=exemplar-storage",
                "--log.level=warn",
                *self.extra_flags,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready on port {self.port} in {timeout}s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._log.close()
        self._dir.cleanup()

    # -- HTTP API --------------------------------------------------------------------------

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a successful answer."""
        query = urllib.parse.urlencode(
            [(k, v) for k, vs in params.items() if vs is not None for v in _listify(vs)]
        )
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as r:
                doc = json.load(r)
        except urllib.error.HTTPError as e:
            doc = json.load(e)
        if doc.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, promql: str, time: float | None = None) -> list[dict[str, Any]]:
        """Instant query; the ``result`` list (vector: ``{"metric", "value": [t, "v"]}``)."""
        return self.api("query", query=promql, time=time)["result"]  # type: ignore[no-any-return]

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        """Range query; the ``result`` matrix (``{"metric", "values": [[t, "v"], ...]}``)."""
        data = self.api("query_range", query=promql, start=start, end=end, step=step)
        return data["result"]  # type: ignore[no-any-return]

    def series(
        self, match: str | list[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        """Label sets of the series matching the selector(s)."""
        return self.api("series", **{"match[]": match}, start=start, end=end)  # type: ignore[no-any-return]

    def query_exemplars(
        self, promql: str, start: float | None = None, end: float | None = None
    ) -> list[dict[str, Any]]:
        """``[{"seriesLabels", "exemplars": [{"labels", "value", "timestamp"}]}]``; the
        window defaults to the last hour."""
        now = time_now()
        return self.api(  # type: ignore[no-any-return]
            "query_exemplars",
            query=promql,
            start=start if start is not None else now - 3600,
            end=end if end is not None else now + 60,
        )

    def scalar(self, promql: str, time: float | None = None) -> float | None:
        """The single value of an instant query, or None when it has no result."""
        result = self.query(promql, time)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{promql}: {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1])

    def wait_for(self, promql: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns something (remote-written samples are
        queryable at once; this absorbs the head's append latency)."""
        deadline = time_now() + timeout
        while True:
            result = self.query(promql)
            if result or time_now() > deadline:
                return result
            time.sleep(0.1)


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def time_now() -> float:
    return time.time()
