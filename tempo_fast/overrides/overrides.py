"""Per-tenant overrides: ``overrides.defaults`` plus the runtime file
``overrides.per_tenant_override_config``, re-read every ``per_tenant_override_period``.

The runtime file is Tempo's: ``overrides: {<tenant>: <overrides tree>}``, where the tenant
``"*"`` applies to every tenant not listed. A file that cannot be read or parsed keeps the
last good overrides in force; the failure is logged and shows in
``tempo_runtime_config_last_reload_successful``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, Gauge

from tempo_fast.overrides.limits import (
    CORE_LIMITS,
    OverridesError,
    compaction_overrides,
    core_limits,
    merge,
    normalize,
    read_overrides,
)
from tempo_fast.pkg import tenant as tenants
from tempo_fast.pkg.log import get_logger

WILDCARD = "*"
_log = get_logger("overrides")


@dataclass(frozen=True)
class OverridesConfig:
    """The ``overrides`` section: defaults in the current layout, and the runtime file."""

    defaults: Mapping[str, Any] = field(default_factory=dict)
    per_tenant_override_config: str = ""
    per_tenant_override_period: float = 10.0


def parse_runtime(text: str, source: str) -> dict[str, dict[str, Any]]:
    """The per-tenant trees of a runtime overrides file; raises :class:`OverridesError`."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise OverridesError(f"{source} is not valid YAML: {' '.join(str(e).split())}") from e
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise OverridesError(f"{source}: expected a mapping with an 'overrides' key")
    unknown = [str(k) for k in doc if k != "overrides"]
    if unknown:
        raise OverridesError(f"{source}: unknown key(s) {', '.join(unknown)}")
    per_tenant = doc.get("overrides") or {}
    if not isinstance(per_tenant, Mapping):
        raise OverridesError(f"{source}: overrides must map tenant ids to overrides")
    out = {}
    for name, tree in per_tenant.items():
        tenant = str(name)
        if tenant != WILDCARD:
            try:
                tenants.validate(tenant)
            except tenants.TenantError as e:
                raise OverridesError(f"{source}: overrides.{tenant}: {e.reason}") from None
        out[tenant] = normalize(tree, f"{source}: overrides.{tenant}")
    return out


class Overrides:
    """Resolves each tenant's overrides and hands the ingestion limits to the core."""

    def __init__(
        self,
        config: OverridesConfig,
        apply: Callable[[dict[str, int], dict[str, dict[str, int]]], None] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._config = config
        self._apply = apply
        self._per_tenant: dict[str, dict[str, Any]] = {}
        self._hash = ""
        self._reload_ok = Gauge(
            "tempo_runtime_config_last_reload_successful",
            "Whether the last reload of the runtime overrides file succeeded.",
            registry=registry,
        )
        self._defaults_gauge = Gauge(
            "tempo_limits_defaults",
            "Default resource limits.",
            ["limit_name"],
            registry=registry,
        )
        self._overrides_gauge = Gauge(
            "tempo_limits_overrides",
            "Resource limit overrides applied to tenants.",
            ["limit_name", "user"],
            registry=registry,
        )
        self._reload_ok.set(1)
        for name, value in core_limits(config.defaults).items():
            self._defaults_gauge.labels(name).set(value)

    def tree(self, tenant: str) -> dict[str, Any]:
        """The tenant's resolved overrides tree (defaults, then ``*``, then its own)."""
        tree = merge(self._config.defaults, self._per_tenant.get(WILDCARD, {}))
        return merge(tree, self._per_tenant.get(tenant, {}))

    def limits(self, tenant: str) -> dict[str, int]:
        """The ingestion limits of ``tenant`` (the core's keys)."""
        return core_limits(self.tree(tenant))

    def read(self, tenant: str) -> dict[str, float | int]:
        """The tenant's read limits that are set (see ``read_overrides``)."""
        return read_overrides(self.tree(tenant))

    def compaction(self, tenant: str) -> dict[str, Any]:
        """The tenant's compaction overrides that are set (see ``compaction_overrides``)."""
        return compaction_overrides(self.tree(tenant))

    def reload(self) -> bool:
        """Re-read the runtime file; return whether the overrides changed. Never raises."""
        path = self._config.per_tenant_override_config
        if not path:
            return False
        try:
            with open(path, "rb") as f:
                raw = f.read()
            digest = hashlib.sha256(raw).hexdigest()
            if digest == self._hash:
                self._reload_ok.set(1)
                return False
            per_tenant = parse_runtime(raw.decode("utf-8"), path)
        except (OSError, UnicodeDecodeError, OverridesError) as e:
            self._reload_ok.set(0)
            _log.error(
                "reloading the runtime overrides failed; keeping the last good ones",
                file=path,
                err=str(e),
            )
            return False
        self._per_tenant = per_tenant
        self._hash = digest
        self._reload_ok.set(1)
        self._publish()
        _log.info("runtime overrides loaded", file=path, tenants=len(per_tenant))
        return True

    def _publish(self) -> None:
        default = self.limits("")  # defaults plus the wildcard
        per_tenant = {t: self.limits(t) for t in self._per_tenant if t != WILDCARD}
        self._overrides_gauge.clear()
        for tenant, limits in per_tenant.items():
            for name in CORE_LIMITS:
                self._overrides_gauge.labels(name, tenant).set(limits[name])
        if self._apply is not None:
            self._apply(default, per_tenant)

    def start(self) -> None:
        """Load the runtime file (if any) and hand the limits to the core."""
        self.reload()
        self._publish()

    async def watch(self) -> None:
        """Reload the runtime file every ``per_tenant_override_period``."""
        if not self._config.per_tenant_override_config:
            return
        while True:
            await asyncio.sleep(self._config.per_tenant_override_period)
            self.reload()
