from typing_extensions import Buffer

def bucket_counts(values: Buffer, bounds: Buffer, counts: Buffer) -> float:
    """Add float64 ``values`` into uint64 ``counts`` (len(bounds) + 1 slots, last is +Inf)
    with Prometheus ``le`` semantics; return the sum of the non-NaN values."""

def observe(
    index: Buffer,
    key_series: Buffer,
    values: Buffer,
    bounds: Buffer,
    buckets: Buffer,
    sums: Buffer,
    counts: Buffer,
) -> None:
    """Per value i (u32 ``index``, f64 ``values``): ``s = key_series[index[i]]`` (i64);
    skipped when ``s < 0`` or NaN; else ``buckets[s, first j with bounds[j] >= v]`` (u64,
    C-contiguous, len(bounds) + 1 columns, not cumulative), ``sums[s]`` (f64) and
    ``counts[s]`` (u64) grow. Raises ValueError (changing nothing) on bad shapes or ids."""

def accumulate(index: Buffer, key_series: Buffer, values: Buffer | None, acc: Buffer) -> None:
    """``acc[key_series[index[i]]] += values[i]`` (f64; ``1.0`` when ``values`` is None);
    series < 0 and NaN values skipped."""

def cumulative(buckets: Buffer, rows: Buffer, out: Buffer) -> None:
    """``out[k, :]`` (u64, C-contiguous) = running sum of ``buckets[rows[k], :]``."""
