"""Start the real tempo-fast binary as a subprocess on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


@dataclass
class TempoServer:
    """One tempo-fast process with its own data directory and ports."""

    data: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    otlp_grpc_port: int = field(default_factory=free_port)
    otlp_http_port: int = field(default_factory=free_port)
    zipkin_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def zipkin(self) -> str:
        return f"http://127.0.0.1:{self.zipkin_port}"

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.otlp_grpc_port}"

    def config(self) -> dict[str, Any]:
        base = {
            "server": {
                "http_listen_address": "127.0.0.1",
                "http_listen_port": self.http_port,
                "grpc_listen_port": self.grpc_port,
            },
            "distributor": {
                "receivers": {
                    "otlp": {
                        "protocols": {
                            "grpc": {"endpoint": self.otlp_grpc},
                            "http": {"endpoint": f"127.0.0.1:{self.otlp_http_port}"},
                        }
                    },
                    "zipkin": {"endpoint": f"127.0.0.1:{self.zipkin_port}"},
                }
            },
            "storage": {
                "trace": {
                    "backend": "local",
                    "local": {"path": str(self.data / "blocks")},
                    "wal": {"path": str(self.data / "wal")},
                }
            },
        }
        return deep_merge(base, self.overrides)

    def start(self, timeout: float = 30.0) -> TempoServer:
        self.data.mkdir(parents=True, exist_ok=True)
        cfg = self.data / "tempo.yaml"
        cfg.write_text(yaml.safe_dump(self.config()))
        self.log_path = self.data / "server.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tempo_fast", f"-config.file={cfg}", *self.extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tempo-fast exited {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.api}/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"tempo-fast not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """kill -9: no shutdown, no flush."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.api + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def post(
        self, path: str, body: bytes, headers: dict[str, str], base: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request((base or self.otlp_http) + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def metrics(self) -> str:
        return self.get("/metrics")[2].decode()
