"""Load a Tempo-style YAML file into :class:`~tempo_fast.config.model.Config`.

Policy: a key Tempo 2.10 does not know is a start-up error naming its dotted path; a key Tempo
knows but tempo-fast does not use is reported in ``Config.ignored`` (the app logs it once).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml

from tempo_fast.config.generator import (
    HostInfoConfig,
    MetricsGeneratorConfig,
    ServiceGraphsConfig,
    SpanMetricsConfig,
)
from tempo_fast.config.model import (
    RECEIVER_SECTIONS,
    TOP_LEVEL,
    CompactorConfig,
    Config,
    DistributorConfig,
    IngesterConfig,
    QueryFrontendConfig,
    ServerConfig,
    StorageConfig,
    _int,
)
from tempo_fast.config.units import parse_duration, parse_size
from tempo_fast.overrides.limits import OverridesError, merge, normalize, unused_overrides
from tempo_fast.overrides.overrides import OverridesConfig

ANY = "<any>"  # free-form section marker in tempo_keys.yaml
SUPPORTED_TARGETS = ("all",)
TEMPO_TARGETS = (
    "all",
    "distributor",
    "ingester",
    "querier",
    "query-frontend",
    "compactor",
    "metrics-generator",
    "scalable-single-binary",
    "all-3.0",
    "block-builder",
    "live-store",
    "backend-scheduler",
    "backend-worker",
)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (as Tempo's strict YAML does)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            name = self.construct_object(key_node, deep=True)
            if name in seen:
                raise ConfigError(
                    f"key {name!r} is set twice (line {key_node.start_mark.line + 1})"
                )
            seen.add(name)
        return super().construct_mapping(node, deep)


@cache
def known_tree() -> Mapping[str, Any]:
    """Every key Tempo 2.10 accepts, with Tempo's defaults."""
    text = resources.files("tempo_fast.config").joinpath("tempo_keys.yaml").read_text("utf-8")
    return yaml.safe_load(text)["tree"]


def default_yaml() -> str:
    """The embedded configuration used when no ``-config.file`` is given."""
    return resources.files("tempo_fast.config").joinpath("default.yaml").read_text("utf-8")


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable without default is ""."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        value = env.get(match.group(1))
        if value is None or (value == "" and match.group(2) is not None):
            return match.group(2) or ""
        return value

    return _ENV_REF.sub(substitute, text)


def check_target(target: str) -> None:
    """Raise :class:`ConfigError` unless tempo-fast can run ``target``."""
    if target in SUPPORTED_TARGETS:
        return
    if target in TEMPO_TARGETS:
        raise ConfigError(
            f"target {target!r} is not supported yet: tempo-fast runs every component in one "
            f"process; use -target=all"
        )
    raise ConfigError(
        f"unknown target {target!r}: supported targets: {', '.join(SUPPORTED_TARGETS)} "
        f"(Tempo's targets are {', '.join(TEMPO_TARGETS)})"
    )


def load_file(path: str, expand: bool = False) -> Config:
    """Read and load the YAML file at ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text") from e
    return load(text, expand=expand, source=path)


def load(text: str, expand: bool = False, source: str = "config") -> Config:
    """Parse YAML ``text`` (after ``${VAR}`` expansion when ``expand``) into a Config."""
    if expand:
        text = expand_env(text)
    try:
        user = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {_one_line(e)}") from e
    if user is None:
        user = {}
    if not isinstance(user, dict):
        raise ConfigError(f"{source} must be a YAML mapping of keys, got {type(user).__name__}")
    unknown = list(_unknown_keys(user, known_tree(), ""))
    if unknown:
        raise ConfigError(
            f"unknown configuration key{'s' if len(unknown) > 1 else ''} (not in Tempo 2.10): "
            + ", ".join(unknown)
        )
    return _build(user)


def _unknown_keys(user: Any, known: Any, path: str) -> Iterator[str]:
    if known == ANY or not isinstance(known, dict):
        return
    if user is None:
        return
    if not isinstance(user, dict):
        raise ConfigError(f"{path}: expected a mapping of keys, got {user!r}")
    for name, value in user.items():
        dotted = f"{path}.{name}" if path else str(name)
        if name not in known:
            yield dotted
        else:
            yield from _unknown_keys(value, known[name], dotted)


def _user_leaves(user: Any, known: Any, path: str) -> Iterator[str]:
    """Dotted paths the user set: leaves, free-form sections and empty sections."""
    if known == ANY or not isinstance(user, dict) or not user:
        yield path
        return
    for name, value in user.items():
        yield from _user_leaves(value, known[name], f"{path}.{name}" if path else name)


def _lookup(user: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = user
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _default(path: str) -> Any:
    found, value = _lookup(known_tree(), path)
    assert found, f"{path} missing from tempo_keys.yaml"
    return value


def _value(user: Mapping[str, Any], path: str, parse: Any) -> Any:
    found, value = _lookup(user, path)
    if not found or value is None:
        value = _default(path)
    try:
        return parse(value)
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") from e


def _section(cls: type, user: Mapping[str, Any]) -> Any:
    return cls(
        **{
            f.name: _value(user, f.metadata["key"], f.metadata["parse"])
            for f in dataclasses.fields(cls)
            if "key" in f.metadata
        }
    )


_OVERRIDES_KEYS = (
    "defaults",
    "per_tenant_override_config",
    "per_tenant_override_period",
    "user_configurable_overrides",
)


def _overrides(user: Mapping[str, Any], max_attribute_bytes: int) -> OverridesConfig:
    """The ``overrides`` section: ``defaults`` in the current layout, or legacy keys inline."""
    found, section = _lookup(user, "overrides")
    section = section if found and section is not None else {}
    if not isinstance(section, dict):
        raise ConfigError(f"overrides: expected a mapping, got {section!r}")
    inline = {k: v for k, v in section.items() if k not in _OVERRIDES_KEYS}
    try:
        if inline and "defaults" in section:
            raise OverridesError(
                f"overrides.{next(iter(inline))}: set limits under overrides.defaults"
            )
        defaults = normalize(section.get("defaults", inline), "overrides.defaults")
        period = parse_duration(section.get("per_tenant_override_period", "10s"))
    except (OverridesError, ValueError) as e:
        raise ConfigError(str(e)) from e
    path = section.get("per_tenant_override_config") or ""
    if not isinstance(path, str):
        raise ConfigError(f"overrides.per_tenant_override_config: {path!r} is not a file path")
    if period <= 0:
        raise ConfigError("overrides.per_tenant_override_period: must be longer than 0s")
    base = {"ingestion": {"max_attribute_bytes": max_attribute_bytes}}
    return OverridesConfig(merge(base, defaults), path, period)


def _live_bytes(user: Mapping[str, Any]) -> int | None:
    """``live_store.max_live_traces_bytes`` when set: the bound on each tenant's live traces."""
    found, value = _lookup(user, "live_store.max_live_traces_bytes")
    if not found or value is None:
        return None
    size = _value(user, "live_store.max_live_traces_bytes", parse_size)
    if size <= 0:
        raise ConfigError("live_store.max_live_traces_bytes: must be larger than 0")
    return size


def _generator(user: Mapping[str, Any]) -> MetricsGeneratorConfig:
    """The ``metrics_generator`` section with its processor sub-sections."""
    sections = {
        f.name: _section(f.metadata["section"], user)
        for f in dataclasses.fields(MetricsGeneratorConfig)
        if "section" in f.metadata
    }
    return MetricsGeneratorConfig(
        **sections,
        **{
            f.name: _value(user, f.metadata["key"], f.metadata["parse"])
            for f in dataclasses.fields(MetricsGeneratorConfig)
            if "key" in f.metadata
        },
    )


def _implemented_keys() -> set[str]:
    keys = set(TOP_LEVEL)
    keys.update(
        (
            "overrides",
            "distributor.max_attribute_bytes",
            "distributor.retry_after_on_resource_exhausted",
            "live_store.max_live_traces_bytes",
        )
    )
    for cls in (
        ServerConfig,
        IngesterConfig,
        StorageConfig,
        QueryFrontendConfig,
        CompactorConfig,
        MetricsGeneratorConfig,
        ServiceGraphsConfig,
        SpanMetricsConfig,
        HostInfoConfig,
    ):
        keys.update(f.metadata["key"] for f in dataclasses.fields(cls) if "key" in f.metadata)
    for path, cls in RECEIVER_SECTIONS.values():
        keys.add(path)
        keys.update(f.metadata["key"] for f in dataclasses.fields(cls))
    return keys


def _build(user: Mapping[str, Any]) -> Config:
    top = {name: _value(user, name, parse) for name, parse in TOP_LEVEL.items()}
    receivers = {
        name: _section(cls, user) if _lookup(user, path)[0] else None
        for name, (path, cls) in RECEIVER_SECTIONS.items()
    }
    storage = _section(StorageConfig, user)
    if storage.backend not in ("local", "s3"):
        raise ConfigError(
            f"storage.trace.backend: {storage.backend!r} is not supported yet; use local or s3"
        )
    if storage.backend == "local" and not storage.local_path:
        raise ConfigError("storage.trace.local.path: required with the local backend")
    if storage.backend == "s3" and not storage.s3_bucket:
        raise ConfigError("storage.trace.s3.bucket: required with the s3 backend")
    if not storage.wal_path:
        raise ConfigError("storage.trace.wal.path: required")
    max_attribute_bytes = _value(user, "distributor.max_attribute_bytes", _int)
    retry_after = _value(user, "distributor.retry_after_on_resource_exhausted", parse_duration)
    overrides = _overrides(user, max_attribute_bytes)
    generator = _generator(user)
    implemented = _implemented_keys()
    ignored = tuple(p for p in _user_leaves(user, known_tree(), "") if p not in implemented)
    rw = "metrics_generator.storage.remote_write"
    ignored += tuple(f"{rw}{k}" for e in generator.remote_write for k in e.ignored)
    ignored += tuple(f"overrides.defaults.{p}" for p in unused_overrides(overrides.defaults))
    return Config(
        target=top["target"] or "all",
        multitenancy_enabled=top["multitenancy_enabled"] or top["auth_enabled"],
        http_api_prefix=top["http_api_prefix"],
        # unset: on (Tempo's default is off; see Config.stream_over_http_enabled)
        stream_over_http_enabled=(
            top["stream_over_http_enabled"]
            if _lookup(user, "stream_over_http_enabled")[1] is not None
            else True
        ),
        server=_section(ServerConfig, user),
        distributor=DistributorConfig(
            **receivers,
            max_attribute_bytes=max_attribute_bytes,
            retry_after_on_resource_exhausted=retry_after,
        ),
        ingester=dataclasses.replace(
            _section(IngesterConfig, user), max_live_traces_bytes=_live_bytes(user)
        ),
        storage=storage,
        query_frontend=_section(QueryFrontendConfig, user),
        compactor=_section(CompactorConfig, user),
        overrides=overrides,
        metrics_generator=generator,
        ignored=ignored,
    )


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
