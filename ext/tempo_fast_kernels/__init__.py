"""Cython kernels for tempo-fast: vectorised math over whole columns (never per item in Python)."""

from tempo_fast_kernels.histogram import bucket_counts

__all__ = ["bucket_counts"]
