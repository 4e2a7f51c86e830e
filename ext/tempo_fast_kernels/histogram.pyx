# cython: language_level=3
"""Histogram bucketing over a whole buffer of float64 values.

Prometheus ``le`` semantics: a value goes into the first bucket whose upper bound is
>= the value; values above every bound (and +Inf) go into the last, implicit +Inf bucket.
NaN values are skipped (neither counted nor summed).
"""

from libc.math cimport isnan
from libc.stdint cimport uint64_t


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
    cdef Py_ssize_t i
    for i in range(1, nb):
        if not bounds[i - 1] < bounds[i]:
            raise ValueError("bounds must be strictly increasing and not NaN")
    if nb == 1 and isnan(bounds[0]):
        raise ValueError("bounds must be strictly increasing and not NaN")

    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t lo, hi, mid
    cdef double v
    cdef double total = 0.0
    with nogil:
        for i in range(n):
            v = values[i]
            if isnan(v):
                continue
            total += v
            # first index whose bound >= v (nb when none: the +Inf bucket)
            lo = 0
            hi = nb
            while lo < hi:
                mid = (lo + hi) >> 1
                if bounds[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            counts[lo] += 1
    return total
