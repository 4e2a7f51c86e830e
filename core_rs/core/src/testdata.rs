//! Deterministic, realistic OTLP requests for tests and benches (in progress).
