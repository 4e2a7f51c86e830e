"""Small shared building blocks: tenants, trace ids, logging, metrics."""
