"""tempo-fast: a Grafana-Tempo-compatible tracing backend (Python control plane, Rust core)."""

__version__ = "0.1.0"
