# cython: language_level=3
"""Shape and id-range checks shared by the kernels (inlined into each module)."""

from libc.stdint cimport int64_t, uint32_t

ctypedef fused id_t:
    uint32_t
    int64_t


cdef inline int64_t check_refs(const id_t[:] ids, Py_ssize_t n, str name, str what) except -2:
    """Every id of ``ids`` is < ``n`` (negative ids mean "skip"); the largest id, -1 when
    there is none. One pass, without the GIL."""
    cdef Py_ssize_t i
    cdef int64_t m = -1
    with nogil:
        for i in range(ids.shape[0]):
            if <int64_t>ids[i] > m:
                m = ids[i]
    if m >= n:
        raise ValueError(f"{name} refers to {what} {m} but there are only {n}")
    return m


cdef inline int check_index(const uint32_t[:] index, Py_ssize_t n_values,
                            Py_ssize_t n_keys) except -1:
    """``index`` has one entry per value and every entry names a key."""
    if index.shape[0] != n_values:
        raise ValueError(f"index has {index.shape[0]} entries but there are {n_values} values")
    check_refs(index, n_keys, "index", "key")
    return 0
