"""Configuration: Tempo 2.10 keys and defaults, the unknown/ignored key policy, units."""

from __future__ import annotations

from pathlib import Path

import pytest

from tempo_fast.config import (
    ConfigError,
    check_target,
    default_yaml,
    expand_env,
    known_tree,
    load,
    load_file,
    parse_duration,
    parse_size,
)
from tempo_fast.config.model import DedicatedColumn

MINIMAL = "storage: {trace: {local: {path: /tmp/b}}}\n"


def test_tempo_defaults() -> None:
    c = load(MINIMAL)
    assert c.target == "all"
    assert not c.multitenancy_enabled
    assert c.http_api_prefix == ""
    assert (c.server.http_listen_address, c.server.http_listen_port) == ("", 3200)
    assert (c.server.log_level, c.server.log_format) == ("info", "logfmt")
    assert c.server.http_server_write_timeout == 30
    assert c.ingester.trace_idle_period == 5
    assert c.ingester.trace_live_period == 30
    assert c.ingester.flush_check_period == 10
    assert c.ingester.max_block_duration == 30 * 60
    assert c.ingester.max_block_bytes == 524288000
    assert c.ingester.complete_block_timeout == 15 * 60
    assert c.ingester.flush_all_on_shutdown is False
    assert c.storage.backend == "local"
    assert c.storage.wal_path == "/var/tempo/wal"
    assert (c.storage.wal_fsync, c.storage.wal_fsync_interval) == ("interval", 0.2)
    assert c.storage.blocklist_poll == 300
    assert c.query_frontend.multi_tenant_queries_enabled is True
    # Tempo runs a receiver only when its section is present
    assert c.distributor.otlp_grpc is None and c.distributor.otlp_http is None


def test_wal_fsync_policy() -> None:
    wal = "storage: {trace: {local: {path: /tmp/b}, wal: {%s}}}"
    c = load(wal % "fsync: always, fsync_interval: 1s")
    assert (c.storage.wal_fsync, c.storage.wal_fsync_interval) == ("always", 1.0)
    with pytest.raises(ConfigError, match=r"storage\.trace\.wal\.fsync"):
        load(wal % "fsync: sometimes")


def test_block_keys() -> None:
    c = load(MINIMAL)
    assert c.storage.bloom_filter_false_positive == 0.01
    assert c.storage.bloom_filter_shard_size_bytes == 102400
    # Tempo 2.10's default dedicated columns
    assert DedicatedColumn("resource", "k8s.pod.name", "string") in c.storage.dedicated_columns
    assert DedicatedColumn("span", "http.response.status_code", "int") in (
        c.storage.dedicated_columns
    )
    block = (
        "storage: {trace: {local: {path: /tmp/b}, block: {bloom_filter_false_positive: 0.05, "
        "bloom_filter_shard_size_bytes: 1MiB, parquet_dedicated_columns: [%s]}}}"
    )
    c = load(block % "{name: http.status_code, type: int}, {scope: resource, name: team}")
    assert c.storage.bloom_filter_false_positive == 0.05
    assert c.storage.bloom_filter_shard_size_bytes == 1 << 20
    assert c.storage.dedicated_columns == (
        DedicatedColumn("span", "http.status_code", "int"),
        DedicatedColumn("resource", "team", "string"),
    )
    assert c.ignored == ()
    for bad, match in [
        ("{scope: event, name: x}", "scope 'event'"),
        ("{name: x, type: float}", "type 'float'"),
        ("{name: x}, {name: x}", "span.x is listed twice"),
        ("{type: int}", "name is empty"),
        ("{name: x, colour: red}", "unknown field"),
    ]:
        with pytest.raises(ConfigError, match=match):
            load(block % bad)


def test_tree_holds_tempo_defaults() -> None:
    tree = known_tree()
    block = tree["storage"]["trace"]["block"]
    assert block["bloom_filter_false_positive"] == 0.01
    assert block["bloom_filter_shard_size_bytes"] == 102400
    assert tree["server"]["grpc_listen_port"] == 9095
    assert tree["server"]["grpc_server_max_recv_msg_size"] == 16777216
    assert tree["compactor"]["compaction"]["block_retention"] == "336h0m0s"
    assert tree["overrides"] == "<any>"


def test_receivers_default_to_localhost() -> None:
    c = load(MINIMAL + "distributor: {receivers: {otlp: {protocols: {grpc: , http: }}}}")
    assert c.distributor.otlp_grpc.endpoint == "localhost:4317"
    assert c.distributor.otlp_grpc.max_recv_msg_size_mib == 4
    assert c.distributor.otlp_http.endpoint == "localhost:4318"
    assert c.distributor.otlp_http.max_request_body_size == 20 << 20
    assert c.distributor.otlp_http.traces_url_path == "/v1/traces"


def test_embedded_default() -> None:
    c = load(default_yaml())
    assert c.storage.local_path == "./data/blocks"
    assert c.storage.wal_path == "./data/wal"
    assert c.server.http_listen_port == 3200
    assert c.distributor.otlp_grpc.endpoint.endswith(":4317")
    assert c.distributor.otlp_http.endpoint.endswith(":4318")
    assert c.ignored == ()


def test_values_read() -> None:
    c = load(
        """
storage: {trace: {blocklist_poll: 30s, wal: {path: /w}, local: {path: /b}}}
auth_enabled: true
http_api_prefix: /tempo/
server: {http_listen_port: 3300, log_level: debug, log_format: json}
ingester: {trace_idle_period: 1m30s, max_block_bytes: 100MiB, flush_all_on_shutdown: true}
distributor:
  receivers:
    otlp:
      protocols:
        http: {endpoint: "0.0.0.0:4318", max_request_body_size: 1MB, traces_url_path: v1/t}
"""
    )
    assert c.multitenancy_enabled  # old alias
    assert c.http_api_prefix == "/tempo"
    assert (c.server.http_listen_port, c.server.log_level, c.server.log_format) == (
        3300,
        "debug",
        "json",
    )
    assert c.ingester.trace_idle_period == 90
    assert c.ingester.max_block_bytes == 100 << 20
    assert c.storage.blocklist_poll == 30
    assert c.storage.wal_path == "/w"
    assert c.distributor.otlp_http.max_request_body_size == 1_000_000
    assert c.distributor.otlp_http.traces_url_path == "/v1/t"


def test_unknown_keys_name_full_paths() -> None:
    with pytest.raises(ConfigError) as info:
        load(MINIMAL + "server: {http_listen_prot: 1}\ningester: {lifecycler: {rng: 1}}\nbogus: 1")
    message = str(info.value)
    assert "server.http_listen_prot" in message
    assert "ingester.lifecycler.rng" in message
    assert "bogus" in message
    assert "Tempo 2.10" in message


def test_unknown_receiver_key() -> None:
    with pytest.raises(
        ConfigError, match=r"distributor\.receivers\.otlp\.protocols\.grpc\.endpiont"
    ):
        load(MINIMAL + "distributor: {receivers: {otlp: {protocols: {grpc: {endpiont: x}}}}}")


def test_known_but_unused_keys_are_ignored() -> None:
    c = load(
        MINIMAL
        + """
memberlist: {join_members: [a, b]}
compactor: {compaction: {block_retention: 48h, retention_concurrency: 4}}
overrides: {defaults: {ingestion: {rate_limit_bytes: 1}, read: {unsafe_query_hints: true}}}
distributor: {receivers: {kafka: {brokers: [k]}, otlp: {protocols: {grpc: {tls: {}}}}}}
server: {http_listen_port: 3200, grpc_listen_port: 9096}
"""
    )
    assert c.compactor.block_retention == 48 * 3600
    assert set(c.ignored) == {
        "memberlist.join_members",
        "compactor.compaction.retention_concurrency",
        "overrides.defaults.read.unsafe_query_hints",
        "distributor.receivers.kafka",
        "distributor.receivers.otlp.protocols.grpc.tls",
        "server.grpc_listen_port",
    }
    assert c.overrides.defaults["ingestion"] == {"rate_limit_bytes": 1, "max_attribute_bytes": 2048}


def test_overrides_both_layouts_and_the_runtime_file() -> None:
    new = load(MINIMAL + "overrides: {defaults: {global: {max_bytes_per_trace: 9}}}")
    legacy = load(
        MINIMAL + "overrides: {max_bytes_per_trace: 9, per_tenant_override_config: /o.yaml}"
    )
    assert new.overrides.defaults == legacy.overrides.defaults
    assert legacy.overrides.per_tenant_override_config == "/o.yaml"
    assert legacy.overrides.per_tenant_override_period == 10.0
    c = load(MINIMAL + "distributor: {max_attribute_bytes: 0}")
    assert c.overrides.defaults["ingestion"]["max_attribute_bytes"] == 0
    for bad, match in [
        ("overrides: {defaults: {ingestion: {rate_limit_bytes: lots}}}", "rate_limit_bytes"),
        ("overrides: {defaults: {ingestion: {rate_strategy: fast}}}", "rate_strategy"),
        ("overrides: {defaults: {bogus: 1}}", r"overrides\.defaults\.bogus: unknown"),
        ("overrides: {max_bytes_per_trace: 1, defaults: {}}", "under overrides.defaults"),
        ("overrides: {ingestion_rate_limit_bytes: 1, global: {}}", "mixes the legacy layout"),
        ("overrides: {per_tenant_override_period: 0s}", "longer than 0s"),
    ]:
        with pytest.raises(ConfigError, match=match):
            load(MINIMAL + bad)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("server: {http_listen_port: abc}", "server.http_listen_port: 'abc' is not an integer"),
        ("server: {http_listen_port: 70000}", "outside"),
        ("server: {log_level: loud}", "server.log_level"),
        ("ingester: {trace_idle_period: 5}", "needs a unit"),
        ("ingester: {max_block_bytes: lots}", "ingester.max_block_bytes"),
        ("storage: {trace: {backend: s3}}", "s3.bucket: required"),
        ("storage: {trace: {backend: gcs}}", "not supported yet"),
        ("storage: {trace: {local: {path: ''}}}", "storage.trace.local.path: required"),
        ("http_api_prefix: tempo", "slash"),
        ("server: 5", "server: expected a mapping"),
        ("server: {", "not valid YAML"),
        ("storage: {trace: {blocklist_poll: 0s}}", "longer than 0s"),
    ],
)
def test_invalid_values(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load(text if "storage" in text else MINIMAL + text)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="'server' is set twice"):
        load(MINIMAL + "server: {http_listen_port: 1}\nserver: {http_listen_port: 2}")


def test_top_level_must_be_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load("- a\n- b")


def test_env_expansion() -> None:
    env = {"PORT": "3300", "EMPTY": ""}
    assert expand_env("${PORT} ${MISSING} ${MISSING:-d} ${EMPTY:-e} ${PORT:-x}", env) == (
        "3300  d e 3300"
    )


def test_load_file_with_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_PORT", "3333")
    path = tmp_path / "tempo.yaml"
    path.write_text(MINIMAL + "server: {http_listen_port: ${TF_PORT}, log_level: ${LVL:-warn}}")
    c = load_file(str(path), expand=True)
    assert (c.server.http_listen_port, c.server.log_level) == (3333, "warn")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_file(str(path))  # without -config.expand-env the reference stays literal


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config file /nonexistent"):
        load_file("/nonexistent/tempo.yaml")


def test_targets() -> None:
    check_target("all")
    with pytest.raises(ConfigError, match="not supported yet"):
        check_target("querier")
    with pytest.raises(ConfigError, match="unknown target 'nope'.*supported targets: all"):
        check_target("nope")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("0", 0),
        ("2m0s", 120),
        ("1.5h", 5400),
        ("100us", 1e-4),
        ("10µs", 1e-5),
        ("3ns", 3e-9),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5", "", "1d", "-1s", "5 s", "s", "1h-5m", True, 7])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1024, 1024),
        ("500MB", 500_000_000),
        ("100KiB", 102400),
        ("63KiB1023B", 65535),
        ("1GiB", 1 << 30),
        ("20 MiB", 20 << 20),
        ("42", 42),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "MB", "5XB", -1, True, 1.5, "1 2 3 x"])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_deploy_example_loads_without_ignored_keys() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "tempo-fast.yaml"
    c = load_file(str(example), expand=True)
    assert c.ignored == ()
    assert c.distributor.otlp_grpc.max_recv_msg_size_mib == 16


def test_stream_over_http_enabled_defaults_to_on() -> None:
    assert load(MINIMAL).stream_over_http_enabled is True  # Tempo's default is false
    assert load(MINIMAL + "stream_over_http_enabled:\n").stream_over_http_enabled is True
    off = load(MINIMAL + "stream_over_http_enabled: false\n")
    assert off.stream_over_http_enabled is False
    assert "stream_over_http_enabled" not in off.ignored
    with pytest.raises(ConfigError, match="stream_over_http_enabled"):
        load(MINIMAL + "stream_over_http_enabled: maybe\n")
