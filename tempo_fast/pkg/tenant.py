"""Tenant resolution from ``X-Scope-OrgID`` (HTTP header or gRPC metadata), as Tempo does it."""

from __future__ import annotations

import re

SINGLE_TENANT = "single-tenant"
HEADER = "X-Scope-OrgID"
MAX_LENGTH = 150
_VALID = re.compile(r"[A-Za-z0-9!_.*'()-]{1,150}")


class TenantError(ValueError):
    """The request's tenant is missing or malformed. ``missing`` tells the two apart."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


def validate(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant id, else raise :class:`TenantError`."""
    if not tenant:
        raise TenantError("tenant id is empty")
    if len(tenant) > MAX_LENGTH:
        raise TenantError(f"tenant id is {len(tenant)} characters long, at most {MAX_LENGTH}")
    if tenant in (".", ".."):
        raise TenantError(f"tenant id {tenant!r} is not allowed")
    if not _VALID.fullmatch(tenant):
        raise TenantError(f"tenant id {_clip(tenant)!r} has characters outside [A-Za-z0-9!_.*'()-]")
    return tenant


def resolve(header: str | None, multitenancy: bool) -> str:
    """The tenant of a write: ``single-tenant`` unless multi-tenancy is on, then the header."""
    if not multitenancy:
        return SINGLE_TENANT
    if header is None or header == "":
        raise TenantError(f"no org id: the {HEADER} header is required", missing=True)
    return validate(header)


def resolve_query(header: str | None, multitenancy: bool, multi_tenant_queries: bool) -> list[str]:
    """The tenants of a read; with ``multi_tenant_queries`` the header may list ``a|b``."""
    if not multitenancy or header is None or "|" not in header:
        return [resolve(header, multitenancy)]
    if not multi_tenant_queries:
        raise TenantError(
            "multi-tenant queries are disabled (query_frontend.multi_tenant_queries_enabled)"
        )
    return sorted({validate(t) for t in header.split("|")})


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
