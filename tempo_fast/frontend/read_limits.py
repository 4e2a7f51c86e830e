"""Per-tenant read limits (Tempo's ``overrides.*.read``) over the frontend's own settings.

``max_search_duration`` and ``max_metrics_duration`` replace the frontend's maximum range for
the tenant when set and non-zero; a query over several tenants (``a|b``) gets the strictest of
theirs. ``max_bytes_per_tag_values_query`` (Tempo's default 1,000,000; 0: no limit) and
``max_blocks_per_tag_values_query`` (0: no limit) bound tag-values work per tenant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

#: tenant -> its read overrides that are set (``Overrides.read``)
ReadOverrides = Callable[[str], Mapping[str, float | int]]
TAG_VALUES_MAX_BYTES = 1_000_000  # Tempo's max_bytes_per_tag_values_query default


def none(_tenant: str) -> Mapping[str, float | int]:
    """No per-tenant overrides."""
    return {}


def max_range(base: float, tenants: list[str], overrides: ReadOverrides, key: str) -> float:
    """The longest range a query over ``tenants`` may cover (0: no limit): each tenant's
    ``key`` override, or ``base`` where it is unset or 0, and the smallest of those that limit."""
    limits = [float(overrides(t).get(key) or base) for t in tenants] or [base]
    bounded = [x for x in limits if x > 0]
    return min(bounded) if bounded else 0.0


def tag_values_bounds(tenant: str, overrides: ReadOverrides) -> tuple[int, int]:
    """``(max bytes, max blocks)`` of a tag-values query for ``tenant`` (0: no limit)."""
    o = overrides(tenant)
    max_bytes = o.get("max_bytes_per_tag_values_query")
    return (
        TAG_VALUES_MAX_BYTES if max_bytes is None else int(max_bytes),
        int(o.get("max_blocks_per_tag_values_query") or 0),
    )
