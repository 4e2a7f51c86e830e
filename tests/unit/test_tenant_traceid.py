"""Tenant and trace-id parsing, including hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempo_fast.pkg import tenant, traceid


@pytest.mark.parametrize("good", ["single-tenant", "a", "A0!_.*'()-", "x" * 150, "..."])
def test_valid_tenants(good: str) -> None:
    assert tenant.validate(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        (".", "not allowed"),
        ("..", "not allowed"),
        ("../../etc", "characters"),
        ("x" * 151, "151 characters"),
        ("a b", "characters"),
        ("a/b", "characters"),
        ("tenant\n", "characters"),
        ("ténant", "characters"),
        ("a|b", "characters"),
    ],
)
def test_invalid_tenants(bad: str, why: str) -> None:
    with pytest.raises(tenant.TenantError, match=why):
        tenant.validate(bad)


def test_resolve() -> None:
    assert tenant.resolve(None, False) == "single-tenant"
    assert tenant.resolve("../x", False) == "single-tenant"
    assert tenant.resolve("t1", True) == "t1"
    with pytest.raises(tenant.TenantError) as info:
        tenant.resolve(None, True)
    assert info.value.missing
    with pytest.raises(tenant.TenantError) as info:
        tenant.resolve("", True)
    assert info.value.missing


def test_resolve_query() -> None:
    assert tenant.resolve_query("b|a|b", True, True) == ["a", "b"]
    assert tenant.resolve_query("a|b", False, True) == ["single-tenant"]
    with pytest.raises(tenant.TenantError, match="disabled"):
        tenant.resolve_query("a|b", True, False)
    with pytest.raises(tenant.TenantError):
        tenant.resolve_query("a||b", True, True)


@given(st.text(max_size=200))
def test_validate_never_crashes(text: str) -> None:
    try:
        assert tenant.validate(text) == text
    except tenant.TenantError as e:
        assert e.reason


def test_trace_id_padding() -> None:
    assert traceid.parse("1") == bytes(15) + b"\x01"
    assert traceid.parse("ABCDEF0123456789") == bytes(8) + bytes.fromhex("abcdef0123456789")
    assert traceid.parse("f" * 32) == b"\xff" * 16


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        ("0", "zeros"),
        ("0" * 32, "zeros"),
        ("a" * 33, "33 hex"),
        ("xyz", "not hex"),
        ("../../etc", "not hex"),
        (" 1", "not hex"),
        ("0x1", "not hex"),
        ("١٢", "not hex"),
    ],
)
def test_bad_trace_ids(bad: str, why: str) -> None:
    with pytest.raises(traceid.TraceIDError, match=why):
        traceid.parse(bad)


@given(st.binary(min_size=16, max_size=16).filter(any))
def test_trace_id_round_trip(raw: bytes) -> None:
    assert traceid.parse(raw.hex()) == raw
    assert traceid.parse(raw.hex().lstrip("0")) == raw
