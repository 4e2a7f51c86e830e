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

MIN_NATIVE_SCHEMA: int
MAX_NATIVE_SCHEMA: int

def native_index(v: float, schema: int) -> int:
    """Prometheus' native-histogram bucket index of ``v`` (> 0, finite) for ``schema``
    (-4..3): bucket k holds (base^(k-1), base^k], base = 2^(2^-schema), with
    client_golang's float bounds."""

def observe_native(
    index: Buffer,
    key_series: Buffer,
    values: Buffer,
    schema: int,
    zero_threshold: float,
    offset: int,
    buckets: Buffer,
    zero_counts: Buffer,
    sums: Buffer | None,
    counts: Buffer | None,
) -> None:
    """Per value i: ``s = key_series[index[i]]``; skipped when ``s < 0`` or NaN; values
    ``<= zero_threshold`` count in ``zero_counts[s]`` (u64), others in ``buckets[s, k -
    offset]`` (u64, C-contiguous) with ``k = native_index(v, schema)`` clamped to the
    window's first/last column (+Inf: last); ``sums[s]``/``counts[s]`` grow unless both are
    None. Raises ValueError (changing nothing) on bad shapes, ids or schema."""
