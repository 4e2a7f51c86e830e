from collections.abc import Iterable

from typing_extensions import Buffer

class SketchSet:
    """DDSketch-style relative-error quantile sketches, one per group id: dense log bins
    (relative accuracy ``alpha``), at most ``max_bins`` per group (lowest collapsed),
    zero/negative values in a zero bin. Thread-safe; ``add`` releases the GIL."""

    def __init__(self, alpha: float = 0.005, max_bins: int = 2048) -> None: ...
    @property
    def alpha(self) -> float: ...
    @property
    def max_bins(self) -> int: ...
    def add(self, index: Buffer, key_group: Buffer, values: Buffer) -> None:
        """Add f64 ``values[i]`` to group ``key_group[index[i]]`` (u32 index, i64 groups;
        groups < 0 and NaN values skipped)."""
    def quantile(self, group: int, q: float) -> float:
        """The ``q``-quantile of a group (rank ``q * (count - 1)``); NaN when empty."""
    def quantiles(self, group: int, qs: Iterable[float]) -> list[float]: ...
    def count(self, group: int) -> int: ...
    def groups(self) -> int:
        """One more than the largest group id added or merged."""
    def clear(self, group: int) -> None:
        """Empty one group and free its bins."""
    def merge(self, other: SketchSet) -> None:
        """Add every value of ``other`` (same ``alpha``; group ids line up)."""
    def nbytes(self) -> int:
        """Memory held by the set, bins included."""
