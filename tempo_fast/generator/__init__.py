"""The metrics-generator: span-metrics and service-graphs from ingested spans, exported by
Prometheus remote write and on ``/metrics``."""
