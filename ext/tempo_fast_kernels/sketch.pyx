# cython: language_level=3
"""DDSketch-style relative-error quantile sketches, one per group id.

Mapping (relative accuracy ``alpha``): ``gamma = (1 + alpha) / (1 - alpha)``, a value ``v``
goes to bin ``ceil(log(v) / log(gamma))`` and bin ``i`` stands for ``2 * gamma**i /
(gamma + 1)``, within ``alpha`` of every value of the bin. Values <= a tiny minimum (zero,
negatives, -Inf) go to a zero bin that stands for 0. Each group keeps its bins dense from
an offset, growing as needed, at most ``max_bins`` of them: beyond that the lowest bins are
collapsed into one (the high quantiles stay accurate). Quantile ranks are DDSketch's:
``rank = q * (count - 1)``, the bin holding the item of 0-based rank ``floor(rank)``
(``numpy.quantile(method="lower")``); each group also keeps its exact min and max, which
answer ranks 0 and ``count - 1`` and bound every estimate. NaN values are skipped; values
above the largest indexable one (+Inf) count in its bin.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.pythread cimport (
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
    WAIT_LOCK,
)
from libc.float cimport DBL_MAX, DBL_MIN
from libc.math cimport INFINITY, NAN, ceil, exp, isnan, log
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memset

from tempo_fast_kernels._checks cimport check_index, check_refs

cdef int MIN_CAP = 32
cdef int64_t MAX_GROUPS = 1 << 31
cdef int NO_MEMORY = -2147483647 - 1  # group_reserve's failure value (never a key)


cdef struct Group:
    uint64_t* bins   # bins[j] counts key base + j; zero outside [lo, hi]
    int cap          # allocated bins
    int base
    int lo           # used key range [lo, hi], valid when bins is not NULL
    int hi
    uint64_t zero    # values <= the minimum indexable value
    uint64_t count   # every value, zero bin included
    double min_v
    double max_v


cdef inline void group_init(Group* g) noexcept nogil:
    memset(g, 0, sizeof(Group))
    g.min_v = INFINITY
    g.max_v = -INFINITY


cdef int group_reserve(Group* g, int k, int max_bins) noexcept nogil:
    """Make key ``k`` addressable: extend the used range to it, collapsing the lowest bins
    when the range would exceed ``max_bins``. Returns the key to count ``k`` in (``k``
    itself unless it fell into the collapsed lowest bin), NO_MEMORY when out of memory."""
    cdef int new_lo, new_hi, need, new_cap, new_base, key, src_lo
    cdef uint64_t* nb
    cdef uint64_t folded
    if g.bins == NULL:
        new_lo = k
        new_hi = k
    else:
        new_lo = k if k < g.lo else g.lo
        new_hi = k if k > g.hi else g.hi
    if new_hi - new_lo + 1 > max_bins:
        new_lo = new_hi - max_bins + 1
    if g.bins != NULL and new_lo >= g.base and new_hi < g.base + g.cap:
        # fits the allocation: fold the bins that fell below new_lo into it
        if new_lo > g.lo:
            folded = 0
            for key in range(g.lo, new_lo):
                folded += g.bins[key - g.base]
                g.bins[key - g.base] = 0
            g.bins[new_lo - g.base] += folded
    else:
        need = new_hi - new_lo + 1
        new_cap = need + need // 2
        if new_cap < MIN_CAP:
            new_cap = MIN_CAP
        if new_cap > max_bins:
            new_cap = max_bins  # >= need: the range was clamped above
        # headroom on the side the range grows towards
        if g.bins == NULL:
            new_base = new_lo - (new_cap - need) // 2
        elif k < g.lo:
            new_base = new_hi - new_cap + 1
        else:
            new_base = new_lo
        nb = <uint64_t*>calloc(new_cap, sizeof(uint64_t))
        if nb == NULL:
            return NO_MEMORY
        if g.bins != NULL:
            folded = 0
            for key in range(g.lo, g.hi + 1):
                if key < new_lo:
                    folded += g.bins[key - g.base]
                else:
                    nb[key - new_base] = g.bins[key - g.base]
            nb[new_lo - new_base] += folded
            free(g.bins)
        g.bins = nb
        g.cap = new_cap
        g.base = new_base
    g.lo = new_lo
    g.hi = new_hi
    return k if k >= new_lo else new_lo


cdef class SketchSet:
    """DDSketch-style relative-error quantile sketches, one per group id (see the module
    docstring). Thread-safe: every method holds an internal lock (taken without the GIL)."""

    cdef Group* _groups
    cdef Py_ssize_t _n
    cdef Py_ssize_t _cap
    cdef double _alpha
    cdef double _gamma
    cdef double _log_gamma
    cdef double _inv_log_gamma
    cdef double _min_value
    cdef double _max_value
    cdef int _max_bins
    cdef PyThread_type_lock _lock

    def __cinit__(self, double alpha=0.005, int max_bins=2048):
        if not (1e-6 <= alpha < 1.0):
            raise ValueError(f"alpha must be in [1e-6, 1), got {alpha}")
        if max_bins < 1:
            raise ValueError(f"max_bins must be >= 1, got {max_bins}")
        self._alpha = alpha
        self._gamma = (1.0 + alpha) / (1.0 - alpha)
        self._log_gamma = log(self._gamma)
        self._inv_log_gamma = 1.0 / self._log_gamma
        self._min_value = DBL_MIN * self._gamma
        self._max_value = DBL_MAX / self._gamma
        self._max_bins = max_bins
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self._groups != NULL:
            for i in range(self._n):
                free(self._groups[i].bins)
            PyMem_Free(self._groups)
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    @property
    def alpha(self) -> float:
        """The relative accuracy."""
        return self._alpha

    @property
    def max_bins(self) -> int:
        """The most bins a group keeps."""
        return self._max_bins

    cdef inline void _acquire(self) noexcept:
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)

    cdef inline void _release(self) noexcept:
        PyThread_release_lock(self._lock)

    cdef int _ensure_groups(self, Py_ssize_t n) except -1:
        """At least ``n`` groups (new ones empty); the caller holds the lock."""
        cdef Py_ssize_t new_cap, i
        cdef Group* g
        if n <= self._n:
            return 0
        if n > self._cap:
            new_cap = max(n, 2 * self._cap, 16)
            g = <Group*>PyMem_Malloc(new_cap * sizeof(Group))
            if g == NULL:
                raise MemoryError()
            if self._groups != NULL:
                for i in range(self._n):
                    g[i] = self._groups[i]
                PyMem_Free(self._groups)
            self._groups = g
            self._cap = new_cap
        for i in range(self._n, n):
            group_init(&self._groups[i])
        self._n = n
        return 0

    cdef inline Group* _group(self, int64_t group) noexcept:
        if group < 0 or group >= self._n:
            return NULL
        return &self._groups[group]

    def add(self, const uint32_t[:] index, const int64_t[:] key_group,
            const double[:] values) -> None:
        """Add ``values[i]`` to group ``key_group[index[i]]``; groups < 0 and NaN values are
        skipped, values above the largest indexable value (+Inf) count in its bin. Checked
        before any write: a bad shape or index raises ValueError and changes nothing."""
        check_index(index, values.shape[0], key_group.shape[0])
        cdef int64_t top = check_refs(key_group, MAX_GROUPS, "key_group", "group id")
        cdef Py_ssize_t i, n = values.shape[0]
        cdef int64_t gid
        cdef double v
        cdef int k
        cdef Group* g
        cdef bint failed = False
        cdef double min_value = self._min_value, max_value = self._max_value
        cdef double inv = self._inv_log_gamma
        cdef int max_bins = self._max_bins
        self._acquire()
        try:
            self._ensure_groups(top + 1)
            with nogil:
                for i in range(n):
                    gid = key_group[index[i]]
                    v = values[i]
                    if gid < 0 or isnan(v):
                        continue
                    g = &self._groups[gid]
                    g.count += 1
                    if v < g.min_v:
                        g.min_v = v
                    if v > g.max_v:
                        g.max_v = v
                    if v <= min_value:
                        g.zero += 1
                        continue
                    if v > max_value:
                        v = max_value
                    k = <int>ceil(log(v) * inv)
                    if g.bins == NULL or k < g.lo or k > g.hi:
                        k = group_reserve(g, k, max_bins)
                        if k == NO_MEMORY:
                            g.count -= 1
                            failed = True
                            break
                    g.bins[k - g.base] += 1
        finally:
            self._release()
        if failed:
            raise MemoryError("SketchSet: cannot grow a group's bins")

    cdef double _quantile(self, Group* g, double q) noexcept nogil:
        if g == NULL or g.count == 0:
            return NAN
        cdef double rank = q * <double>(g.count - 1)
        cdef double n = 0.0, v = 0.0
        # the items of rank 0 and count - 1 are known exactly
        if rank < 1.0:
            return g.min_v
        if rank >= <double>(g.count - 1):
            return g.max_v
        cdef int key = g.hi
        cdef int j
        if rank >= <double>g.zero:
            rank -= <double>g.zero
            for j in range(g.lo, g.hi + 1):
                n += <double>g.bins[j - g.base]
                if n > rank:
                    key = j
                    break
            v = 2.0 * exp(key * self._log_gamma) / (self._gamma + 1.0)
        # the exact quantile lies within [min, max]: clamping only brings the estimate closer
        if v < g.min_v:
            return g.min_v
        if v > g.max_v:
            return g.max_v
        return v

    def quantile(self, int64_t group, double q) -> float:
        """The ``q``-quantile (0 <= q <= 1) of a group, NaN when it is empty (or unknown)."""
        return self.quantiles(group, [q])[0]

    def quantiles(self, int64_t group, qs) -> list:
        """:meth:`quantile` for each of ``qs``, in order."""
        cdef list out = []
        cdef list ql = [float(q) for q in qs]
        cdef double q
        for q in ql:
            if not (0.0 <= q <= 1.0):
                raise ValueError(f"quantile must be in [0, 1], got {q}")
        self._acquire()
        try:
            for q in ql:
                out.append(self._quantile(self._group(group), q))
        finally:
            self._release()
        return out

    def count(self, int64_t group) -> int:
        """How many values a group holds (zero bin included); 0 for an unknown group."""
        cdef Group* g
        self._acquire()
        try:
            g = self._group(group)
            return 0 if g == NULL else g.count
        finally:
            self._release()

    def groups(self) -> int:
        """Number of group ids (one more than the largest id ever added or merged)."""
        return self._n

    def clear(self, int64_t group) -> None:
        """Empty a group (its id stays valid) and free its bins."""
        cdef Group* g
        self._acquire()
        try:
            g = self._group(group)
            if g != NULL:
                free(g.bins)
                group_init(g)
        finally:
            self._release()

    def merge(self, SketchSet other not None) -> None:
        """Add every value of ``other`` (same ``alpha``; group ids line up) into this set."""
        if other._gamma != self._gamma:
            raise ValueError(
                f"cannot merge sketches of different accuracy ({other._alpha} into {self._alpha})"
            )
        cdef SketchSet first = self if <size_t><void*>self < <size_t><void*>other else other
        cdef SketchSet second = other if first is self else self
        cdef Py_ssize_t i
        cdef bint failed = False
        first._acquire()
        if second is not first:
            second._acquire()
        try:
            if other is self:
                with nogil:
                    for i in range(self._n):
                        group_double(&self._groups[i])
            else:
                self._ensure_groups(other._n)
                with nogil:
                    for i in range(other._n):
                        if group_merge(&self._groups[i], &other._groups[i], self._max_bins) < 0:
                            failed = True
                            break
        finally:
            if second is not first:
                second._release()
            first._release()
        if failed:
            raise MemoryError("SketchSet: cannot grow a group's bins")

    def nbytes(self) -> int:
        """Memory held: the object, the group table and every group's bins."""
        cdef Py_ssize_t i, total
        self._acquire()
        try:
            total = type(self).__basicsize__ + self._cap * sizeof(Group)
            for i in range(self._n):
                total += self._groups[i].cap * sizeof(uint64_t)
            return total
        finally:
            self._release()

    def __repr__(self) -> str:
        return f"SketchSet(alpha={self._alpha}, max_bins={self._max_bins}, groups={self._n})"


cdef void group_double(Group* g) noexcept nogil:
    cdef int j
    g.count *= 2
    g.zero *= 2
    if g.bins != NULL:
        for j in range(g.lo, g.hi + 1):
            g.bins[j - g.base] *= 2


cdef int group_merge(Group* g, const Group* o, int max_bins) noexcept nogil:
    """Add group ``o`` into ``g``; -1 on allocation failure (``g``'s counts unchanged)."""
    cdef int j, k
    if o.count == 0:
        return 0
    if o.bins != NULL:
        # reserve both ends first, so at most two reallocations
        if group_reserve(g, o.hi, max_bins) == NO_MEMORY:
            return -1
        if group_reserve(g, o.lo, max_bins) == NO_MEMORY:
            return -1
        for j in range(o.lo, o.hi + 1):
            k = j if j >= g.lo else g.lo
            g.bins[k - g.base] += o.bins[j - o.base]
    g.count += o.count
    g.zero += o.zero
    if o.min_v < g.min_v:
        g.min_v = o.min_v
    if o.max_v > g.max_v:
        g.max_v = o.max_v
    return 0
