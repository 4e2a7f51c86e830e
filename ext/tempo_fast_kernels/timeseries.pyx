# cython: language_level=3
"""TraceQL metrics math over span columns: per (series, step) counts, sums, minima, maxima
and log2-bucket counts, and Tempo's ``Log2Quantile`` / ``Log2Bucketize``.

Steps follow Tempo's ``IntervalOf`` (``pkg/traceql/engine_metrics.go``): for a range query
the window is aligned to the step and interval ``i`` is ``(start + i*step, start + (i+1)*step]``;
an instant query (``end - start == step``) has one interval ``[start, end]``. Rows outside
the window are skipped, as are NaN values.
"""

from libc.math cimport ceil, fabs, frexp, isinf, isnan, log, pow
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef enum:
    NEXP = 65

#: log2 exponents kept per (series, step): bucket ``e`` holds values in ``(2^(e-1), 2^e]``.
EXPONENTS = NEXP

cdef double LN2_INV = 1.0 / 0.693147180559945309417232121458176568


cdef inline double go_log2(double x) noexcept nogil:
    """Go's ``math.Log2``: exact for powers of two."""
    cdef int e
    cdef double frac = frexp(x, &e)
    if frac == 0.5:
        return <double>(e - 1)
    return log(frac) * LN2_INV + <double>e


cdef inline Py_ssize_t interval_of(
    int64_t ts, int64_t start, int64_t end, int64_t step, bint instant
) noexcept nogil:
    cdef int64_t offset, i
    if instant:
        if ts >= start and ts <= end and end != start:
            return 0
        return -1
    if not (ts > start and ts <= end and end != start and step != 0):
        return -1
    offset = ts - start
    i = offset // step
    if i * step == offset:
        i -= 1
    return i


cdef inline void aligned(
    int64_t start, int64_t end, int64_t step, int64_t* s0, int64_t* e0
) noexcept nogil:
    """Tempo's ``alignStart`` / ``alignEnd`` into ``s0`` / ``e0`` (unchanged when instant)."""
    cdef int64_t m
    if step == 0 or end - start == step:
        return
    s0[0] = start - start % step
    m = end % step
    e0[0] = end if m == 0 else end + (step - m)


def align(int64_t start, int64_t end, int64_t step) -> tuple[int, int]:
    """Tempo's ``alignStart`` / ``alignEnd`` (unchanged for an instant query)."""
    if step == 0:
        return 0, 0
    cdef int64_t s0 = start, e0 = end
    aligned(start, end, step, &s0, &e0)
    return s0, e0


def interval_count(int64_t start, int64_t end, int64_t step) -> int:
    """Tempo's ``IntervalCount``."""
    if end - start == step:
        return 1
    s, e = align(start, end, step)
    return (e - s) // step


def aggregate(
    const uint32_t[:] index,
    const int64_t[:] ts,
    values,
    int64_t start,
    int64_t end,
    int64_t step,
    double[:, ::1] count,
    double[:, ::1] total,
    double[:, ::1] comp,
    double[:, ::1] minimum,
    double[:, ::1] maximum,
) -> int:
    """Fold rows ``(index[i], ts[i], values[i])`` into the ``(series, step)`` arrays: count,
    compensated sum (``total`` + ``comp``, Neumaier), minimum and maximum (NaN when empty).
    ``values`` may be None (counts only). Returns the rows inside the window."""
    cdef Py_ssize_t n = index.shape[0]
    if ts.shape[0] != n:
        raise ValueError("index and ts differ in length")
    cdef const double[:] vals
    cdef bint has_values = values is not None
    if has_values:
        vals = values
        if vals.shape[0] != n:
            raise ValueError("index and values differ in length")
    cdef Py_ssize_t nseries = count.shape[0], nsteps = count.shape[1]
    cdef bint instant = end - start == step
    cdef int64_t s0 = start, e0 = end
    aligned(start, end, step, &s0, &e0)
    cdef Py_ssize_t i, k, row
    cdef double v, t, cur
    cdef Py_ssize_t kept = 0
    with nogil:
        for i in range(n):
            k = interval_of(ts[i], s0, e0, step, instant)
            row = index[i]
            if k < 0 or k >= nsteps or row >= nseries:
                continue
            if not has_values:
                count[row, k] += 1.0
                kept += 1
                continue
            v = vals[i]
            if isnan(v):
                continue
            kept += 1
            count[row, k] += 1.0
            cur = total[row, k]
            t = cur + v
            if isinf(t):
                comp[row, k] = 0.0
            elif fabs(cur) >= fabs(v):
                comp[row, k] += (cur - t) + v
            else:
                comp[row, k] += (v - t) + cur
            total[row, k] = t
            if isnan(minimum[row, k]) or v < minimum[row, k]:
                minimum[row, k] = v
            if isnan(maximum[row, k]) or v > maximum[row, k]:
                maximum[row, k] = v
    return kept


def log2_buckets(
    const uint32_t[:] index,
    const int64_t[:] ts,
    const double[:] values,
    int64_t start,
    int64_t end,
    int64_t step,
    uint64_t[:, :, ::1] counts,
) -> int:
    """Count rows per ``(series, step, e)`` with ``e = ceil(log2(value))`` (Tempo's
    ``Log2Bucketize``: values below 2 and NaN are skipped). Returns the rows counted."""
    cdef Py_ssize_t n = index.shape[0]
    if ts.shape[0] != n or values.shape[0] != n:
        raise ValueError("columns differ in length")
    if counts.shape[2] != NEXP:
        raise ValueError(f"counts needs {NEXP} exponent slots")
    cdef Py_ssize_t nseries = counts.shape[0], nsteps = counts.shape[1]
    cdef bint instant = end - start == step
    cdef int64_t s0 = start, e0 = end
    aligned(start, end, step, &s0, &e0)
    cdef Py_ssize_t i, k, row, e
    cdef double v
    cdef Py_ssize_t kept = 0
    with nogil:
        for i in range(n):
            v = values[i]
            if isnan(v) or v < 2.0:
                continue
            k = interval_of(ts[i], s0, e0, step, instant)
            row = index[i]
            if k < 0 or k >= nsteps or row >= nseries:
                continue
            e = <Py_ssize_t>ceil(go_log2(v))
            if e < 1:
                e = 1
            elif e >= NEXP:
                e = NEXP - 1
            counts[row, k, e] += 1
            kept += 1
    return kept


def log2_bucketize(uint64_t v) -> float:
    """Tempo's ``Log2Bucketize``: ``2^ceil(log2(v))``, -1 below 2."""
    if v < 2:
        return -1.0
    return pow(2.0, ceil(go_log2(<double>v)))


cdef double quantile_of(
    double p, const double* maxes, const int64_t* counts, Py_ssize_t nb
) noexcept nogil:
    """Tempo's ``Log2Quantile`` over buckets sorted by upper bound."""
    if isnan(p) or p < 0 or p > 1 or nb == 0:
        return 0.0
    cdef int64_t total_count = 0, total = 0, max_samples
    cdef Py_ssize_t i, bucket = 0
    for i in range(nb):
        total_count += counts[i]
    if total_count == 0:
        return 0.0
    max_samples = <int64_t>ceil(p * <double>total_count)
    if max_samples == 0:
        max_samples = 1
    for i in range(nb):
        bucket = i
        if total + counts[i] > max_samples:
            break
        total += counts[i]
        if total == max_samples:
            return maxes[i]
    cdef double interp = <double>(max_samples - total) / <double>counts[bucket]
    cdef double max_v = go_log2(maxes[bucket])
    cdef double min_v
    if bucket > 0:
        min_v = go_log2(maxes[bucket - 1])
    else:
        min_v = max_v - 1
    return pow(2.0, min_v + (max_v - min_v) * interp)


def log2_quantile(double p, const double[:] maxes, const int64_t[:] counts) -> float:
    """Tempo's ``Log2Quantile(p, buckets)`` for buckets ``(maxes[i], counts[i])`` sorted by
    ``maxes`` (exponential interpolation within the bucket the quantile falls in; the
    prior bucket's bound is the lower end, or half the bound for the first)."""
    if maxes.shape[0] != counts.shape[0]:
        raise ValueError("maxes and counts differ in length")
    if maxes.shape[0] == 0:
        return 0.0
    return quantile_of(p, &maxes[0], &counts[0], maxes.shape[0])


def log2_quantiles(
    const uint64_t[:, :, ::1] counts, double scale, const double[:] qs, double[:, :, ::1] out
) -> None:
    """``out[s, t, j]`` = Tempo's ``Log2Quantile(qs[j])`` of the non-empty buckets of
    ``counts[s, t]`` (bucket ``e`` bounded by ``2^e / scale``); 0 for an empty step."""
    cdef Py_ssize_t ns = counts.shape[0], nt = counts.shape[1], nq = qs.shape[0]
    if out.shape[0] != ns or out.shape[1] != nt or out.shape[2] != nq:
        raise ValueError("out must be (series, steps, quantiles)")
    if counts.shape[2] != NEXP:
        raise ValueError(f"counts needs {NEXP} exponent slots")
    cdef double maxes[NEXP]
    cdef int64_t cnts[NEXP]
    cdef Py_ssize_t s, t, e, j, nb
    with nogil:
        for s in range(ns):
            for t in range(nt):
                nb = 0
                for e in range(NEXP):
                    if counts[s, t, e] > 0:
                        maxes[nb] = pow(2.0, <double>e) / scale
                        cnts[nb] = <int64_t>counts[s, t, e]
                        nb += 1
                for j in range(nq):
                    out[s, t, j] = quantile_of(qs[j], maxes, cnts, nb) if nb > 0 else 0.0
