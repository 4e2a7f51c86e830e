"""The OpenTelemetry Jaeger thrift exporter (the last release, 1.21) as a test client.

It still installs beside the current SDK but imports seven ``OTEL_EXPORTER_JAEGER_*`` names
the SDK has since dropped from ``opentelemetry.sdk.environment_variables``; they are put back
(with the names as values, exactly as the SDK defined them) before the import. Everything
else — the span translation, the thrift encoding generated from the Jaeger IDL, the UDP agent
and HTTP collector transports — is the exporter's own code.
"""

from __future__ import annotations

import opentelemetry.sdk.environment_variables as env_vars

for _name in (
    "OTEL_EXPORTER_JAEGER_AGENT_HOST",
    "OTEL_EXPORTER_JAEGER_AGENT_PORT",
    "OTEL_EXPORTER_JAEGER_AGENT_SPLIT_OVERSIZED_BATCHES",
    "OTEL_EXPORTER_JAEGER_ENDPOINT",
    "OTEL_EXPORTER_JAEGER_PASSWORD",
    "OTEL_EXPORTER_JAEGER_TIMEOUT",
    "OTEL_EXPORTER_JAEGER_USER",
):
    if not hasattr(env_vars, _name):
        setattr(env_vars, _name, _name)

from opentelemetry.exporter.jaeger.thrift import JaegerExporter  # noqa: E402

__all__ = ["JaegerExporter"]
