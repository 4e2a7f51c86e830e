"""``host:port`` endpoints as the OpenTelemetry Collector writes them (``:4317``, ``[::1]:1``)."""

from __future__ import annotations


class EndpointError(ValueError):
    """The endpoint is not ``host:port`` with a port in 0-65535."""


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """Split ``endpoint`` into (host, port); an empty host means every interface."""
    host, sep, port_text = endpoint.rpartition(":")
    if not sep or not port_text.isdigit():
        raise EndpointError(f"endpoint {endpoint!r} is not host:port (e.g. localhost:4317)")
    port = int(port_text)
    if port > 65535:
        raise EndpointError(f"endpoint {endpoint!r} has port {port}, outside 0-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def grpc_address(host: str, port: int) -> str:
    """The address string grpcio binds (every interface for an empty host)."""
    if not host:
        host = "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
