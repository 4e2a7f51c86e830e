"""A tenant's generator settings: global config refined by its overrides."""

from __future__ import annotations

import pytest

from tempo_fast.config.loader import default_yaml, load
from tempo_fast.generator.settings import (
    DEFAULT_MAX_ACTIVE_SERIES,
    HostInfoSettings,
    SettingsError,
    resolve,
)
from tempo_fast.overrides.limits import normalize, unused_overrides


def config(extra: str = ""):  # noqa: ANN201 - a MetricsGeneratorConfig
    cfg = load(default_yaml() + extra).metrics_generator
    assert cfg is not None
    return cfg


def test_no_processor_means_disabled() -> None:
    assert not resolve(config(), {}).enabled


def test_processors_enable_and_global_settings_apply() -> None:
    cfg = config(
        """
metrics_generator:
  registry: {collection_interval: 5s}
  processor:
    span_metrics: {dimensions: [http.method], histogram_buckets: [0.1, 1]}
    service_graphs: {wait: 3s, dimensions: [env]}
"""
    )
    s = resolve(cfg, {"metrics_generator": {"processors": ["span-metrics", "service-graphs"]}})
    assert s.span_metrics is not None and s.service_graphs is not None
    assert s.span_metrics.dimensions == ("http.method",)
    assert s.span_metrics.buckets == (0.1, 1.0)
    assert s.span_metrics.intrinsics == ("service", "span_name", "span_kind", "status_code")
    assert s.service_graphs.wait == 3.0 and s.service_graphs.dimensions == ("env",)
    assert s.collection_interval == 5.0
    assert s.max_active_series == DEFAULT_MAX_ACTIVE_SERIES


def test_tenant_overrides_refine_the_processors() -> None:
    tree = {
        "metrics_generator": {
            "processors": {"span-metrics-latency": {}},
            "max_active_series": 10,
            "collection_interval": "2s",
            "processor": {
                "span_metrics": {
                    "dimensions": ["a.b"],
                    "intrinsic_dimensions": {"status_message": True, "span_kind": False},
                }
            },
        }
    }
    s = resolve(config(), tree)
    assert s.service_graphs is None and s.span_metrics is not None
    assert (s.span_metrics.count, s.span_metrics.latency, s.span_metrics.size) == (
        False,
        True,
        False,
    )
    assert s.span_metrics.intrinsics == ("service", "span_name", "status_code", "status_message")
    assert s.span_metrics.dimensions == ("a.b",)
    assert s.max_active_series == 10 and s.collection_interval == 2.0


def test_legacy_flat_key_is_an_alias() -> None:
    tree = normalize({"metrics_generator_processors": ["service-graphs"]}, "overrides.defaults")
    assert resolve(config(), tree).service_graphs is not None
    assert unused_overrides(tree) == []


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"processors": ["span-metric"]}, "unknown processor(s) span-metric"),
        (
            {"processors": ["span-metrics"], "processor": {"span_metrics": {
                "histogram_buckets": [1, 0.5]}}},
            "histogram_buckets: entry 1",
        ),
        ({"processors": ["span-metrics"], "max_active_series": -1}, "max_active_series"),
    ],
)  # fmt: skip
def test_bad_overrides_name_the_key(tree: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(config(), {"metrics_generator": tree})


def test_remote_write_entries_are_parsed_and_checked(tmp_path) -> None:  # noqa: ANN001
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    cfg = config(
        f"""
metrics_generator:
  storage:
    remote_write:
      - url: http://prom:9090/api/v1/write
        name: main
        remote_timeout: 5s
        headers: {{X-Test: a}}
        basic_auth: {{username: u, password_file: {secret}}}
        queue_config: {{capacity: 10}}
"""
    )
    (rw,) = cfg.remote_write
    assert (rw.url, rw.name, rw.timeout) == ("http://prom:9090/api/v1/write", "main", 5.0)
    assert rw.headers == {"X-Test": "a"} and rw.basic_auth == ("u", "s3cret")
    assert rw.ignored == ("[0].queue_config",)
    from tempo_fast.config.loader import ConfigError

    with pytest.raises(ConfigError, match="remote_write: \\[0\\].url"):
        config("metrics_generator: {storage: {remote_write: [{url: prom:9090}]}}")
    with pytest.raises(ConfigError, match="unknown field\\(s\\) urll"):
        config("metrics_generator: {storage: {remote_write: [{urll: http://a}]}}")


def test_generate_native_histograms() -> None:
    procs = ["span-metrics", "service-graphs"]
    s = resolve(config(), {"metrics_generator": {"processors": procs}})
    assert s.span_metrics is not None and s.span_metrics.histograms == "classic"
    for mode in ("classic", "native", "both"):
        tree = {"metrics_generator": {"processors": procs, "generate_native_histograms": mode}}
        s = resolve(config(), tree)
        assert s.span_metrics is not None and s.service_graphs is not None
        assert s.span_metrics.histograms == s.service_graphs.histograms == mode
        assert unused_overrides(normalize(tree, "t")) == []
    with pytest.raises(SettingsError, match="generate_native_histograms"):
        resolve(config(), {"metrics_generator": {"processors": procs,
                                                 "generate_native_histograms": "yes"}})  # fmt: skip


def test_filter_policies_and_dimension_mappings_parse() -> None:
    cfg = config(
        """
metrics_generator:
  processor:
    span_metrics:
      dimension_mappings:
        - {name: endpoint, source_labels: [http.method, http.route], join: " "}
      filter_policies:
        - include:
            match_type: strict
            attributes: [{key: kind, value: SPAN_KIND_SERVER}, {key: resource.env, value: prod}]
          exclude:
            match_type: regex
            attributes:
              - {key: span:name, value: "^health"}
              - {key: span.http.status_code, value: "5.."}
"""
    )
    s = resolve(cfg, {"metrics_generator": {"processors": ["span-metrics"]}})
    assert s.span_metrics is not None
    assert s.span_metrics.dimension_mappings == (("endpoint", ("http.method", "http.route"), " "),)
    assert s.span_metrics.filter_policies == (
        (
            (False, (("intrinsic", "kind", "SPAN_KIND_SERVER"), ("resource", "env", "prod"))),
            (True, (("intrinsic", "name", "^health"), ("span", "http.status_code", "5.."))),
        ),
    )
    # a tenant's own policies replace the global ones
    tree = {"metrics_generator": {"processors": ["span-metrics"], "processor": {"span_metrics": {
        "filter_policies": [{"exclude": {"match_type": "strict", "attributes": [
            {"key": "span.retry", "value": True}]}}]}}}}  # fmt: skip
    s = resolve(cfg, tree)
    assert s.span_metrics is not None
    assert s.span_metrics.filter_policies == ((None, (False, (("span", "retry", True),))),)
    assert unused_overrides(tree) == []


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ([{}], "at least an `include` or `exclude`"),
        ([{"include_any": {}}], "unknown field(s) include_any"),
        ([{"include": {"match_type": "exact", "attributes": []}}], "invalid match type: exact"),
        ([{"include": {"match_type": "regex", "attributes": [{"key": "span.a", "value": "("}]}}],
         "invalid include policy: invalid regexp"),
        ([{"exclude": {"match_type": "strict", "attributes": [{"key": "duration", "value": 1}]}}],
         "currently unsupported intrinsic: duration"),
        ([{"exclude": {"match_type": "strict", "attributes": [{"key": ".foo", "value": 1}]}}],
         "currently unsupported intrinsic: none"),
        ([{"exclude": {"match_type": "strict", "attributes": [{"key": "foo", "value": 1}]}}],
         "not valid intrinsic or scoped attribute: foo"),
        ([{"include": {"match_type": "strict", "attributes": [
            {"key": "kind", "value": "SERVER"}]}}], "unsupported kind intrinsic string value"),
        ([{"include": {"match_type": "strict", "attributes": [
            {"key": "span.x", "value": None}]}}], "must be a string, number or bool"),
    ],
)  # fmt: skip
def test_bad_filter_policies_name_the_problem(policies: list, message: str) -> None:
    tree = {"processors": ["span-metrics"], "processor": {"span_metrics": {
        "filter_policies": policies}}}  # fmt: skip
    with pytest.raises(SettingsError, match="filter_policies: .*" + _escaped(message)):
        resolve(config(), {"metrics_generator": tree})


def test_bad_global_filter_policy_fails_the_load() -> None:
    with pytest.raises(Exception, match="invalid regexp"):
        config(
            """
metrics_generator:
  processor:
    span_metrics:
      filter_policies: [{include: {match_type: regex, attributes: [{key: name, value: "a("}]}}]
"""
        )


def _escaped(text: str) -> str:
    return "".join("\\" + c if c in "()[]`.*^$" else c for c in text)


def test_target_info_settings() -> None:
    cfg = config(
        "metrics_generator: {processor: {span_metrics: {enable_target_info: true, "
        "target_info_excluded_dimensions: [k8s.pod.uid]}}}"
    )
    s = resolve(cfg, {"metrics_generator": {"processors": ["span-metrics"]}})
    assert s.span_metrics is not None
    assert s.span_metrics.enable_target_info and s.span_metrics.enable_instance_label
    assert s.span_metrics.target_info_excluded_dimensions == ("k8s.pod.uid",)
    tree = {"metrics_generator": {"processors": ["span-metrics"], "processor": {"span_metrics": {
        "enable_target_info": False, "enable_instance_label": False}}}}  # fmt: skip
    s = resolve(cfg, tree)
    assert s.span_metrics is not None and not s.span_metrics.enable_target_info
    assert unused_overrides(tree) == []


def test_host_info_settings() -> None:
    s = resolve(config(), {"metrics_generator": {"processors": ["host-info"]}})
    assert s.enabled and s.host_info is not None and s.span_metrics is None
    assert s.host_info.host_identifiers == ("k8s.node.name", "host.id")
    assert s.host_info.metric_name == "traces_host_info"
    tree = {"processors": ["host-info"], "processor": {"host_info": {
        "host_identifiers": ["node"], "metric_name": "my_hosts"}}}  # fmt: skip
    s = resolve(config(), {"metrics_generator": tree})
    assert s.host_info == HostInfoSettings(("node",), "my_hosts")
    bad = {"processors": ["host-info"], "processor": {"host_info": {"metric_name": "1x"}}}
    with pytest.raises(SettingsError, match="metric_name"):
        resolve(config(), {"metrics_generator": bad})
