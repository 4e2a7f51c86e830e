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


def test_read_overrides_parse_and_validate() -> None:
    from tempo_fast.frontend.read_limits import max_range, tag_values_bounds
    from tempo_fast.overrides.limits import normalize, read_overrides

    tree = normalize(
        {"max_search_duration": "1h", "max_bytes_per_tag_values_query": 0}, "overrides.t"
    )  # the legacy flat keys
    assert read_overrides(tree) == {"max_search_duration": 3600.0,
                                    "max_bytes_per_tag_values_query": 0}  # fmt: skip
    with pytest.raises(OverridesError, match="read.max_metrics_duration"):
        normalize({"read": {"max_metrics_duration": "soon"}}, "overrides.t")
    with pytest.raises(OverridesError, match="read.max_blocks_per_tag_values_query"):
        normalize({"read": {"max_blocks_per_tag_values_query": -1}}, "overrides.t")
    per_tenant = {"a": {"max_search_duration": 3600.0}, "b": {"max_search_duration": 0.0}}
    lookup = lambda t: per_tenant.get(t, {})  # noqa: E731
    assert max_range(7200.0, ["a"], lookup, "max_search_duration") == 3600.0
    assert max_range(7200.0, ["b"], lookup, "max_search_duration") == 7200.0  # 0: the base
    assert max_range(0.0, ["b"], lookup, "max_search_duration") == 0.0  # no limit at all
    assert max_range(7200.0, ["a", "b"], lookup, "max_search_duration") == 3600.0
    assert tag_values_bounds("c", lookup) == (1_000_000, 0)  # Tempo's defaults
    set_both = {"max_bytes_per_tag_values_query": 0, "max_blocks_per_tag_values_query": 5}
    assert tag_values_bounds("d", lambda _t: set_both) == (0, 5)
