"""Cython kernels for tempo-fast: vectorised math over whole columns (never per item in Python)."""

from tempo_fast_kernels.histogram import (
    accumulate,
    bucket_counts,
    cumulative,
    native_index,
    observe,
    observe_native,
)
from tempo_fast_kernels.sketch import SketchSet

__all__ = [
    "SketchSet",
    "accumulate",
    "bucket_counts",
    "cumulative",
    "native_index",
    "observe",
    "observe_native",
]
