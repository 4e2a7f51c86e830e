"""Overrides resolution: layouts, inheritance, the wildcard tenant, runtime reloads."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tempo_fast.overrides import (
    Overrides,
    OverridesConfig,
    OverridesError,
    core_limits,
    parse_runtime,
)

DEFAULTS = {"ingestion": {"rate_limit_bytes": 100, "max_attribute_bytes": 2048}}


def test_runtime_file_layouts_and_validation() -> None:
    trees = parse_runtime(
        """
overrides:
  a: {ingestion: {max_traces_per_user: 5}}
  b: {ingestion_burst_size_bytes: 7, metrics_generator_processors: [span-metrics]}
  "*": {global: {max_bytes_per_trace: 9}}
""",
        "o.yaml",
    )
    assert trees["b"] == {
        "ingestion": {"burst_size_bytes": 7},
        "metrics_generator": {"processors": ["span-metrics"]},
    }
    for text, match in [
        ("overrides: {../x: {}}", "not allowed|characters outside"),
        ("overrides: {a: {ingestion: {max_traces_per_user: -1}}}", "non-negative"),
        ("tenants: {}", "unknown key"),
        ("overrides: [1]", "map tenant ids"),
        ("overrides: {a: {nope: 1}}", r"overrides\.a\.nope: unknown override"),
        (": :", "not valid YAML"),
    ]:
        with pytest.raises(OverridesError, match=match):
            parse_runtime(text, "o.yaml")


def test_tenants_inherit_defaults_then_the_wildcard(tmp_path: Path) -> None:
    runtime = tmp_path / "o.yaml"
    runtime.write_text(
        "overrides: {a: {ingestion: {burst_size_bytes: 5}},"
        " '*': {ingestion: {rate_limit_bytes: 7}}}"
    )
    applied = []
    o = Overrides(
        OverridesConfig(DEFAULTS, str(runtime), 1.0),
        lambda d, t: applied.append((d, t)),
        CollectorRegistry(),
    )
    o.start()
    assert o.limits("a")["burst_size_bytes"] == 5
    assert o.limits("a")["rate_limit_bytes"] == 7  # wildcard over the defaults
    assert o.limits("zzz")["rate_limit_bytes"] == 7
    assert o.limits("zzz")["max_traces_per_user"] == 10_000  # Tempo's default
    one_ingester = core_limits({"ingestion": {"max_global_traces_per_user": 50}})
    assert one_ingester["max_traces_per_user"] == 50
    defaults, tenants = applied[-1]
    assert defaults["rate_limit_bytes"] == 7 and set(tenants) == {"a"}
    # an unchanged file is not re-applied; a broken one keeps the last good overrides
    count = len(applied)
    assert not o.reload()
    runtime.write_text("overrides: {a: {ingestion: {burst_size_bytes: many}}}")
    assert not o.reload()
    assert o.limits("a")["burst_size_bytes"] == 5 and len(applied) == count
    runtime.write_text("overrides: {a: {ingestion: {burst_size_bytes: 6}}}")
    assert o.reload()
    assert o.limits("a")["burst_size_bytes"] == 6
    assert o.limits("a")["rate_limit_bytes"] == 100  # the wildcard is gone
