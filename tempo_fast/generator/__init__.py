"""The metrics generator: span metrics and service graphs, exported by /metrics and remote write."""
