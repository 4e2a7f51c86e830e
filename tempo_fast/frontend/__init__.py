"""Query-frontend: the HTTP API Grafana talks to."""

from tempo_fast.frontend.http_api import HttpApi, Readiness

__all__ = ["HttpApi", "Readiness"]
