from typing_extensions import Buffer

def bucket_counts(values: Buffer, bounds: Buffer, counts: Buffer) -> float:
    """Add float64 ``values`` into uint64 ``counts`` (len(bounds) + 1 slots, last is +Inf)
    with Prometheus ``le`` semantics; return the sum of the non-NaN values."""
