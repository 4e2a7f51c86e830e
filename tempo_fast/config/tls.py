"""A client ``tls_config`` in Prometheus' syntax (remote write): CA, client certificate,
server name, verification and minimum version; and the ``ssl.SSLContext`` it makes.

Files are read when the context is built, so a config load builds one once to fail early
with the file's name.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass

_USED = {"ca_file", "ca", "cert_file", "cert", "key_file", "key", "server_name",
         "insecure_skip_verify", "min_version"}  # fmt: skip
_KNOWN = {"max_version", "ca_ref", "cert_ref", "key_ref"}  # accepted, logged as ignored
_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}  # fmt: skip


@dataclass(frozen=True)
class TlsSettings:
    ca_file: str = ""
    ca: str = ""  # inline PEM
    cert_file: str = ""
    cert: str = ""
    key_file: str = ""
    key: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False
    min_version: str = ""
    ignored: tuple[str, ...] = ()


def parse_tls(value: object, where: str) -> TlsSettings:
    """A ``tls_config`` mapping, checked (files readable, certificate and key together)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping (ca_file, cert_file, key_file, ...)")
    unknown = sorted(set(map(str, value)) - _USED - _KNOWN)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    strs = {}
    for k in _USED - {"insecure_skip_verify"}:
        v = value.get(k)
        if v is not None and not isinstance(v, str):
            raise ValueError(f"{where}.{k}: {v!r} is not a string")
        strs[k] = v or ""
    skip = value.get("insecure_skip_verify", False)
    if not isinstance(skip, bool):
        raise ValueError(f"{where}.insecure_skip_verify: {skip!r} is not true or false")
    if strs["min_version"] and strs["min_version"] not in _VERSIONS:
        raise ValueError(f"{where}.min_version: one of {', '.join(_VERSIONS)}")
    tls = TlsSettings(
        **strs,
        insecure_skip_verify=skip,
        ignored=tuple(f"{where}.{k}" for k in map(str, value) if k in _KNOWN),
    )
    for inline in ("ca", "cert", "key"):
        if getattr(tls, inline) and getattr(tls, f"{inline}_file"):
            raise ValueError(f"{where}: at most one of {inline} and {inline}_file")
    has_cert, has_key = bool(tls.cert_file or tls.cert), bool(tls.key_file or tls.key)
    if has_cert != has_key:
        raise ValueError(f"{where}: a client certificate needs both cert(_file) and key(_file)")
    try:
        ssl_context(tls)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"{where}: {e}") from e
    return tls


def ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """The client context ``tls`` describes (system trust store unless a CA is given)."""
    ctx = ssl.create_default_context(cafile=tls.ca_file or None, cadata=tls.ca or None)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.min_version:
        ctx.minimum_version = _VERSIONS[tls.min_version]
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    elif tls.cert_file or tls.cert:
        _load_inline_chain(ctx, tls.cert or _read(tls.cert_file), tls.key or _read(tls.key_file))
    return ctx


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _load_inline_chain(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    """``load_cert_chain`` reads files only: inline PEM goes through a private temp file."""
    import os
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(cert.rstrip("\n") + "\n" + key)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
