"""deploy/docker-compose/single-binary-minio and the Dockerfile, checked without a Docker engine.

No container runs here. Where the ``docker compose`` CLI plugin is installed, ``docker compose
config`` validates the file as Compose itself does (its test is skipped otherwise). The rest
parses the files: the compose wiring (MinIO, the ``tempo-traces`` bucket job, tempo-fast's
mounts, flags, ports, start order, Grafana's datasource), ``tempo.yaml`` through tempo-fast's
own config loader with the compose environment, and the Dockerfile's COPY sources, ports and
command line against the repository and the CLI's flags.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tempo_fast.config import Config, expand_env, load_file

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "docker-compose" / "single-binary-minio"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
BUCKET = "tempo-traces"
CONFIG_IN_CONTAINER = "/etc/tempo.yaml"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))


def _service(name: str) -> dict[str, Any]:
    services = _compose()["services"]
    assert name in services, f"service {name!r} missing from {COMPOSE_FILE.name}"
    return services[name]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as Compose resolves it with nothing set in the shell."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: expand_env(str(v), {}) for k, v in env.items()}


def _published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port, from short-syntax ``"host:container"`` entries."""
    ports: dict[int, int] = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        ports[int(container.split("/")[0])] = int(host.rpartition(":")[2])
    return ports


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a host path or a named volume)."""
    mounts: dict[str, str] = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        mounts[target] = source
    return mounts


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _endpoint_port(endpoint: str) -> int:
    return int(endpoint.rpartition(":")[2])


@pytest.fixture
def tempo_config(monkeypatch: pytest.MonkeyPatch) -> tuple[Config, dict[str, str]]:
    """tempo.yaml loaded as the container loads it: -config.expand-env with its environment."""
    env = _environment(_service("tempo-fast"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_file(str(COMPOSE_DIR / "tempo.yaml"), expand=True), env


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _docker_compose_available(), reason="no `docker compose` CLI plugin on this machine"
)
@pytest.mark.parametrize("profile", [None, "grafana"])
def test_docker_compose_config_validates(profile: str | None) -> None:
    args = ["docker", "compose", "-f", str(COMPOSE_FILE)]
    if profile:
        args += ["--profile", profile]
    result = subprocess.run(
        [*args, "config", "-q"], cwd=COMPOSE_DIR, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_minio_service() -> None:
    minio = _service("minio")
    assert minio["image"].startswith("minio/minio:")
    assert minio["command"][:2] == ["server", "/data"]
    env = _environment(minio)
    assert env["MINIO_ROOT_USER"], "MinIO needs a root user by default"
    assert len(env["MINIO_ROOT_PASSWORD"]) >= 8, "MinIO refuses passwords under 8 characters"
    assert _published(minio)[9000] == 9000
    assert "/data" in _mounts(minio)
    assert "healthcheck" in minio, "tempo-fast and createbuckets wait for MinIO to be healthy"


def test_createbuckets_creates_tempo_traces_with_policy_none() -> None:
    job = _service("createbuckets")
    assert job["image"].startswith("minio/mc:")
    assert job.get("restart") == "no", "a one-shot job"
    assert _depends_on(job) == {"minio": "service_healthy"}
    script = "\n".join([*job.get("entrypoint", []), *job["command"]])
    assert "http://minio:9000" in script
    assert f"mc mb --ignore-existing minio/{BUCKET}" in script  # purge: false
    assert f"mc anonymous set none minio/{BUCKET}" in script  # policy: none
    # the mc alias uses MinIO's own root credentials, expanded by the job's shell
    assert "$${MINIO_ROOT_USER}" in script and "$${MINIO_ROOT_PASSWORD}" in script
    assert _environment(job) == _environment(_service("minio"))


def test_tempo_fast_service_wiring(tempo_config: tuple[Config, dict[str, str]]) -> None:
    config, env = tempo_config
    tempo = _service("tempo-fast")
    assert tempo["build"]["context"] == "../../.."
    assert (COMPOSE_DIR / tempo["build"]["context"] / tempo["build"]["dockerfile"]).resolve() == (
        DOCKERFILE
    )

    mounts = _mounts(tempo)
    assert (COMPOSE_DIR / mounts[CONFIG_IN_CONTAINER]).resolve() == COMPOSE_DIR / "tempo.yaml"
    assert f"-config.file={CONFIG_IN_CONTAINER}" in tempo["command"]
    assert "-config.expand-env=true" in tempo["command"]

    # the WAL (and blocks staged for upload) lives on the named volume
    volume_targets = {t: s for t, s in mounts.items() if s in (_compose().get("volumes") or {})}
    assert any(config.storage.wal_path.startswith(t + "/") for t in volume_targets), (
        config.storage.wal_path,
        volume_targets,
    )

    # published ports are the ones tempo.yaml listens on
    ports = _published(tempo)
    grpc, http = config.distributor.otlp_grpc, config.distributor.otlp_http
    assert grpc is not None and http is not None
    listening = {
        config.server.http_listen_port,
        _endpoint_port(grpc.endpoint),
        _endpoint_port(http.endpoint),
    }
    assert listening == {3200, 4317, 4318}
    assert {p: ports.get(p) for p in listening} == {p: p for p in listening}

    # started after MinIO is up and the bucket exists
    assert _depends_on(tempo) == {
        "minio": "service_healthy",
        "createbuckets": "service_completed_successfully",
    }
    assert "/ready" in " ".join(tempo["healthcheck"]["test"])
    assert env["MINIO_ROOT_USER"] == _environment(_service("minio"))["MINIO_ROOT_USER"]


def test_tempo_yaml_is_the_helm_values_storage(
    tempo_config: tuple[Config, dict[str, str]],
) -> None:
    config, env = tempo_config
    s = config.storage
    assert s.backend == "s3"
    assert s.s3_bucket == BUCKET
    assert s.s3_endpoint == "minio:9000"
    assert s.s3_insecure is True
    assert s.s3_forcepathstyle is True
    assert s.s3_access_key == env["MINIO_ROOT_USER"] == "grafana-tempo"
    assert s.s3_secret_key == env["MINIO_ROOT_PASSWORD"] == "supersecret"
    assert config.target == "all"
    assert config.distributor.otlp_grpc is not None
    assert config.distributor.otlp_grpc.endpoint.startswith("0.0.0.0:")
    assert config.distributor.otlp_http is not None
    assert config.distributor.otlp_http.endpoint.startswith("0.0.0.0:")
    assert config.compactor.block_retention == 336 * 3600
    assert config.ignored == (), "every key in tempo.yaml is one tempo-fast implements"


def test_tempo_yaml_credentials_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIO_ROOT_USER", "someone")
    monkeypatch.setenv("MINIO_ROOT_PASSWORD", "s3cret-s3cret")
    s = load_file(str(COMPOSE_DIR / "tempo.yaml"), expand=True).storage
    assert (s.s3_access_key, s.s3_secret_key) == ("someone", "s3cret-s3cret")


def test_grafana_datasource_points_at_tempo_fast(
    tempo_config: tuple[Config, dict[str, str]],
) -> None:
    config, _ = tempo_config
    grafana = _service("grafana")
    assert grafana.get("profiles") == ["grafana"], "Grafana is optional"
    assert _depends_on(grafana) == {
        "tempo-fast": "service_healthy",
        "prometheus": "service_started",
    }
    provisioning = "/etc/grafana/provisioning/datasources"
    source = COMPOSE_DIR / _mounts(grafana)[provisioning]
    files = sorted(source.glob("*.yaml"))
    assert files, f"no datasource file under {source}"
    datasources = [ds for f in files for ds in yaml.safe_load(f.read_text("utf-8"))["datasources"]]
    [tempo] = [ds for ds in datasources if ds["type"] == "tempo"]
    assert tempo["url"] == f"http://tempo-fast:{config.server.http_listen_port}"
    # search streams over gRPC on the HTTP port (stream_over_http_enabled)
    assert tempo["jsonData"]["streamingEnabled"] == {"search": True, "metrics": False}
    [prom] = [ds for ds in datasources if ds["type"] == "prometheus"]
    assert tempo["jsonData"]["serviceMap"]["datasourceUid"] == prom["uid"]
    assert prom["url"] == "http://prometheus:9090"


def test_generator_remote_writes_to_the_compose_prometheus(
    tempo_config: tuple[Config, dict[str, str]],
) -> None:
    config, _ = tempo_config
    prometheus = _service("prometheus")
    assert "--web.enable-remote-write-receiver" in prometheus["command"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    assert (COMPOSE_DIR / _mounts(prometheus)["/etc/prometheus/prometheus.yml"]).is_file()
    gen = config.metrics_generator
    assert gen is not None
    assert [rw.url for rw in gen.remote_write] == ["http://prometheus:9090/api/v1/write"]
    processors = config.overrides.defaults["metrics_generator"]["processors"]
    assert set(processors) == {"service-graphs", "span-metrics"}


def test_readme_exists() -> None:
    text = (COMPOSE_DIR / "README.md").read_text("utf-8")
    assert "docker compose up" in text and BUCKET in text


# --- Dockerfile ------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text("utf-8").splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    out = []
    for line in lines:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _exec_form(args: str) -> list[str]:
    value = yaml.safe_load(args)  # a JSON array is YAML too
    assert isinstance(value, list), f"use the exec (JSON array) form: {args}"
    return value


def _dockerignore() -> list[str]:
    path = ROOT / ".dockerignore"
    lines = path.read_text("utf-8").splitlines() if path.exists() else []
    return [p.strip().strip("/") for p in lines if p.strip() and not p.startswith("#")]


def _ignored(relpath: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        candidates = [relpath]
        if pattern.startswith("**/"):
            parts = relpath.split("/")
            candidates = ["/".join(parts[i:]) for i in range(len(parts))]
        for candidate in candidates:
            parts = candidate.split("/")
            # a pattern naming a directory excludes everything under it
            if any(
                fnmatch.fnmatchcase("/".join(parts[:n]), bare) for n in range(1, len(parts) + 1)
            ):
                return True
    return False


def _tracked_files() -> list[str]:
    result = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return result.stdout.split()


def test_dockerfile_copies_files_that_exist_and_are_not_dockerignored() -> None:
    copies = [args for word, args in _instructions() if word in ("COPY", "ADD")]
    sources: list[str] = []
    for args in copies:
        words = [w for w in args.split() if not w.startswith("--")]
        if "--from=" in args:
            continue  # from another stage or image, not the build context
        sources += words[:-1]
    assert sources, "the Dockerfile copies nothing from the repository"
    tracked = _tracked_files()
    patterns = _dockerignore()
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: not in the repository"
        rel = source.rstrip("/")
        assert not _ignored(rel, patterns), f"COPY {source}: excluded by .dockerignore"
        under = [f for f in tracked if f == rel or f.startswith(rel + "/")]
        assert under, f"COPY {source}: no tracked file"
        dropped = [f for f in under if _ignored(f, patterns)]
        assert not dropped, f"COPY {source}: .dockerignore drops tracked files {dropped[:5]}"
    # what the maturin build reads: the workspace, the binding crate and the Python sources
    for needed in ("Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "core_rs/"):
        assert needed in sources, f"the builder stage needs {needed}"
    assert {"ext/", "tempo_fast/"} <= set(sources)


def test_dockerfile_builds_on_python_311_slim_and_runs_tempo_fast() -> None:
    instructions = _instructions()
    args = {
        m.group(1): m.group(2)
        for w, a in instructions
        if w == "ARG"
        for m in [re.match(r"(\w+)=(\S+)", a)]
        if m
    }
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    stages = [a for w, a in instructions if w == "FROM"]
    assert len(stages) >= 2 and stages[-1] == "${PYTHON_IMAGE}", "a slim runtime stage last"
    runs = " ".join(a for w, a in instructions if w == "RUN")
    assert "pip wheel --no-deps --wheel-dir /wheels ./ext" in runs
    assert "pip wheel --no-deps --wheel-dir /wheels ." in runs

    entrypoint = _exec_form(next(a for w, a in instructions if w == "ENTRYPOINT"))
    cmd = _exec_form(next(a for w, a in instructions if w == "CMD"))
    assert entrypoint == ["tempo-fast"]
    assert cmd == [f"-config.file={CONFIG_IN_CONTAINER}", "-config.expand-env=true"]
    scripts = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text("utf-8"))["project"]
    assert scripts["scripts"]["tempo-fast"] == "tempo_fast.cli:main"

    from tempo_fast import cli  # imports the server modules, never tempo_fast._core

    assert cli.parse_args(cmd) == {
        "config.file": CONFIG_IN_CONTAINER,
        "config.expand-env": True,
    }
    assert cli.parse_args(_service("tempo-fast")["command"]) == cli.parse_args(cmd)


def test_dockerfile_default_config_and_exposed_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    instructions = _instructions()
    [default_config] = [
        a.split()[0] for w, a in instructions if w == "COPY" and a.endswith(CONFIG_IN_CONTAINER)
    ]
    env = {"TEMPO_DATA": "/var/tempo"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_file(str(ROOT / default_config), expand=True)
    assert config.ignored == ()
    d = config.distributor
    listening = {config.server.http_listen_port}
    for receiver in (d.otlp_grpc, d.otlp_http, d.zipkin, d.jaeger_grpc, d.jaeger_thrift_http):
        if receiver is not None:
            listening.add(_endpoint_port(receiver.endpoint))
    udp = {
        _endpoint_port(r.endpoint)
        for r in (d.jaeger_thrift_compact, d.jaeger_thrift_binary)
        if r is not None
    }
    exposed = " ".join(a for w, a in instructions if w == "EXPOSE").split()
    tcp_exposed = {int(p) for p in exposed if "/" not in p or p.endswith("/tcp")}
    udp_exposed = {int(p.split("/")[0]) for p in exposed if p.endswith("/udp")}
    assert {3200, 4317, 4318} <= tcp_exposed
    assert listening <= tcp_exposed, "every TCP listener of the default config is exposed"
    assert udp <= udp_exposed
    volumes = " ".join(a for w, a in instructions if w == "VOLUME").split()
    assert any(config.storage.wal_path.startswith(v + "/") for v in volumes)
    assert any(config.storage.local_path.startswith(v + "/") for v in volumes)
