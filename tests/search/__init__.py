"""TraceQL search: a plain-Python reference evaluator and property tests against the engine."""
