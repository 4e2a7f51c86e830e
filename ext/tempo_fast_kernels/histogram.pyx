# cython: language_level=3
"""Histogram bucketing over whole columns of float64 values.

Prometheus ``le`` semantics: a value goes into the first bucket whose upper bound is
>= the value; values above every bound (and +Inf) go into the last, implicit +Inf bucket.
NaN values are skipped (neither counted nor summed).

Columns are the batch layout of the generator: ``index`` (u32 per value) names a distinct
key of the batch, ``key_series`` (i64 per key) maps that key to a series row (< 0: the key
was not admitted, its values are skipped).

Native (exponential) histograms, :func:`observe_native`: Prometheus' bucketing for a schema,
with client_golang's bound tables (copied, so keys match Go's to the last bit).
"""

from libc.math cimport frexp, isinf, isnan
from libc.stdint cimport int64_t, uint32_t, uint64_t

from tempo_fast_kernels._checks cimport check_index, check_refs


cdef inline Py_ssize_t bucket_of(const double* b, Py_ssize_t nb, double v) noexcept nogil:
    """First j with ``b[j] >= v``, ``nb`` when none (``v`` is not NaN); branch-free search."""
    if nb == 0:
        return 0
    cdef Py_ssize_t base = 0, n = nb, half
    while n > 1:
        half = n >> 1
        base += half * (b[base + half] < v)
        n -= half
    return base + (b[base] < v)


cdef int check_bounds(const double[:] bounds) except -1:
    cdef Py_ssize_t i, nb = bounds.shape[0]
    for i in range(1, nb):
        if not bounds[i - 1] < bounds[i]:
            raise ValueError("bounds must be strictly increasing and not NaN")
    if nb == 1 and isnan(bounds[0]):
        raise ValueError("bounds must be strictly increasing and not NaN")
    return 0


cdef int check_totals(
    const double[:] sums, const uint64_t[:] counts, Py_ssize_t rows
) except -1:
    """``sums`` and ``counts`` have one entry per histogram row."""
    if sums.shape[0] != rows or counts.shape[0] != rows:
        raise ValueError(
            f"sums ({sums.shape[0]}) and counts ({counts.shape[0]}) must have one entry per "
            f"row of buckets ({rows})"
        )
    return 0


cdef inline int check_series(const int64_t[:] key_series, Py_ssize_t rows) except -1:
    """Every admitted key names an existing row."""
    check_refs(key_series, rows, "key_series", "series")
    return 0


def bucket_counts(const double[:] values, const double[:] bounds, uint64_t[:] counts) -> float:
    """Add every value of ``values`` to ``counts`` (in place) and return their sum.

    ``bounds`` are the finite upper bounds, sorted ascending; ``counts`` has one slot per
    bound plus one for +Inf and is *not* cumulative. NaN values are skipped.
    """
    cdef Py_ssize_t nb = bounds.shape[0]
    if counts.shape[0] != nb + 1:
        raise ValueError(
            f"counts has {counts.shape[0]} slots, expected len(bounds) + 1 = {nb + 1}"
        )
    check_bounds(bounds)
    cdef Py_ssize_t i, n = values.shape[0]
    cdef double v
    cdef double total = 0.0
    with nogil:
        for i in range(n):
            v = values[i]
            if isnan(v):
                continue
            total += v
            counts[bucket_of(&bounds[0], nb, v)] += 1
    return total


def observe(
    const uint32_t[:] index,
    const int64_t[:] key_series,
    const double[:] values,
    const double[:] bounds,
    uint64_t[:, ::1] buckets,
    double[:] sums,
    uint64_t[:] counts,
) -> None:
    """Observe ``values`` into per-series histograms, in place.

    For each value i: ``s = key_series[index[i]]``; skipped when ``s < 0`` or the value is
    NaN; else ``buckets[s, j] += 1`` for the first ``j`` with ``bounds[j] >= v``
    (``len(bounds)``, the +Inf bucket, when none), ``sums[s] += v``, ``counts[s] += 1``.
    ``buckets`` has ``len(bounds) + 1`` columns and is *not* cumulative; ``sums`` and
    ``counts`` have one entry per row of ``buckets``. Everything is checked before any
    write: a bad shape or an out-of-range id raises ValueError and changes nothing.
    """
    cdef Py_ssize_t nb = bounds.shape[0]
    cdef Py_ssize_t rows = buckets.shape[0]
    if buckets.shape[1] != nb + 1:
        raise ValueError(
            f"buckets has {buckets.shape[1]} columns, expected len(bounds) + 1 = {nb + 1}"
        )
    check_totals(sums, counts, rows)
    check_bounds(bounds)
    check_index(index, values.shape[0], key_series.shape[0])
    check_series(key_series, rows)

    cdef Py_ssize_t i, n = values.shape[0]
    cdef int64_t s
    cdef double v
    cdef const double* b = &bounds[0] if nb > 0 else NULL
    with nogil:
        for i in range(n):
            s = key_series[index[i]]
            v = values[i]
            if s < 0 or isnan(v):
                continue
            buckets[s, bucket_of(b, nb, v)] += 1
            sums[s] += v
            counts[s] += 1


def accumulate(
    const uint32_t[:] index,
    const int64_t[:] key_series,
    const double[:] values,
    double[:] acc,
) -> None:
    """``acc[s] += values[i]`` (``+= 1.0`` when ``values`` is None) for each item i, with
    ``s = key_series[index[i]]``; ``s < 0`` and NaN values are skipped. Checked before any
    write, as :func:`observe`."""
    cdef Py_ssize_t n = index.shape[0] if values is None else values.shape[0]
    check_index(index, n, key_series.shape[0])
    check_series(key_series, acc.shape[0])
    cdef Py_ssize_t i
    cdef int64_t s
    cdef double v
    with nogil:
        if values is None:
            for i in range(n):
                s = key_series[index[i]]
                if s >= 0:
                    acc[s] += 1.0
        else:
            for i in range(n):
                s = key_series[index[i]]
                v = values[i]
                if s >= 0 and not isnan(v):
                    acc[s] += v


def cumulative(const uint64_t[:, ::1] buckets, const int64_t[:] rows, uint64_t[:, ::1] out) -> None:
    """``out[k, :]`` = running sum of ``buckets[rows[k], :]``: the cumulative ``le`` counts of
    the chosen series, for exposition and remote write."""
    cdef Py_ssize_t nr = rows.shape[0], width = buckets.shape[1], n_rows = buckets.shape[0]
    if out.shape[0] != nr or out.shape[1] != width:
        raise ValueError(
            f"out has shape ({out.shape[0]}, {out.shape[1]}), expected ({nr}, {width})"
        )
    cdef Py_ssize_t k, j
    cdef int64_t r
    for k in range(nr):
        r = rows[k]
        if r < 0 or r >= n_rows:
            raise ValueError(f"rows[{k}] = {r} is not a row of buckets ({n_rows} rows)")
    cdef uint64_t run
    with nogil:
        for k in range(nr):
            r = rows[k]
            run = 0
            for j in range(width):
                run += buckets[r, j]
                out[k, j] = run


# client_golang's nativeHistogramBounds for schemas 1..3: where each bucket of a power of two
# [0.5, 1) starts, as Go's float64 literals (not recomputed: the last bit decides boundaries).
cdef double[15] _NATIVE_BOUNDS = [
    0.5, 0.7071067811865475,
    0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144,
    0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
    0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
    0.0,
]
MIN_NATIVE_SCHEMA = -4
MAX_NATIVE_SCHEMA = 3


cdef inline int64_t native_key(double v, int schema) noexcept nogil:
    """The native-histogram bucket index of ``v`` > 0 (finite): the ``k`` whose bucket
    (base^(k-1), base^k], base = 2^(2^-schema), holds ``v``; client_golang's computation
    (frexp, then a search of the bound table for schema > 0)."""
    cdef int exp
    cdef double frac = frexp(v, &exp)
    cdef int64_t key
    cdef int n, i
    cdef const double* b
    if schema > 0:
        n = 1 << schema
        b = &_NATIVE_BOUNDS[n - 2]
        i = 0
        while i < n and b[i] < frac:
            i += 1
        return i + (<int64_t>exp - 1) * n
    key = exp
    if frac == 0.5:
        key -= 1
    return (key + ((1 << -schema) - 1)) >> -schema


def native_index(double v, int schema) -> int:
    """The bucket index :func:`observe_native` files ``v`` (> 0, finite) under."""
    if not MIN_NATIVE_SCHEMA <= schema <= MAX_NATIVE_SCHEMA:
        raise ValueError(f"schema {schema} outside {MIN_NATIVE_SCHEMA}..{MAX_NATIVE_SCHEMA}")
    if not (v > 0 and v < float("inf")):
        raise ValueError(f"{v} is not a positive finite value")
    return native_key(v, schema)


def observe_native(
    const uint32_t[:] index,
    const int64_t[:] key_series,
    const double[:] values,
    int schema,
    double zero_threshold,
    int64_t offset,
    uint64_t[:, ::1] buckets,
    uint64_t[:] zero_counts,
    double[:] sums,
    uint64_t[:] counts,
) -> None:
    """Observe ``values`` into per-series native histograms of ``schema``, in place.

    For each value i: ``s = key_series[index[i]]``; skipped when ``s < 0`` or the value is
    NaN. A value ``<= zero_threshold`` (0, and negative values: latencies are not negative)
    counts in ``zero_counts[s]``; any other value in ``buckets[s, k - offset]`` where ``k``
    is its bucket index (Prometheus: bucket ``k`` holds (base^(k-1), base^k], base =
    2^(2^-schema); client_golang's float bounds). ``buckets`` is a dense window of bucket
    indices ``offset .. offset + width - 1``: a value whose index falls outside is *clamped*
    into the first or last column (so values below / above the window are counted, but in
    the edge bucket; +Inf lands in the last column). ``sums[s] += v`` and ``counts[s] += 1``
    unless ``sums`` and ``counts`` are None (a classic histogram of the same values already
    keeps them). ``schema`` is -4..3. Everything is checked before any write: a bad shape or
    an out-of-range id raises ValueError and changes nothing. The GIL is released.
    """
    if not MIN_NATIVE_SCHEMA <= schema <= MAX_NATIVE_SCHEMA:
        raise ValueError(f"schema {schema} outside {MIN_NATIVE_SCHEMA}..{MAX_NATIVE_SCHEMA}")
    if not zero_threshold >= 0:
        raise ValueError(f"zero_threshold {zero_threshold} must be >= 0")
    cdef Py_ssize_t rows = buckets.shape[0], width = buckets.shape[1]
    if width < 1:
        raise ValueError("buckets needs at least one column")
    if zero_counts.shape[0] != rows:
        raise ValueError(
            f"zero_counts ({zero_counts.shape[0]}) must have one entry per row of buckets ({rows})"
        )
    cdef bint totals = sums is not None
    if totals != (counts is not None):
        raise ValueError("sums and counts are both given or both None")
    if totals:
        check_totals(sums, counts, rows)
    check_index(index, values.shape[0], key_series.shape[0])
    check_series(key_series, rows)

    cdef Py_ssize_t i, n = values.shape[0]
    cdef int64_t s, k, last = width - 1
    cdef double v
    with nogil:
        for i in range(n):
            s = key_series[index[i]]
            v = values[i]
            if s < 0 or isnan(v):
                continue
            if v <= zero_threshold:
                zero_counts[s] += 1
            else:
                if isinf(v):  # +Inf: the top of the window
                    k = last
                else:
                    k = native_key(v, schema) - offset
                    if k < 0:
                        k = 0
                    elif k > last:
                        k = last
                buckets[s, k] += 1
            if totals:
                sums[s] += v
                counts[s] += 1
