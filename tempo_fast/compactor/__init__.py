"""The compactor: block compaction, retention and cleanup in the object store."""

from tempo_fast.compactor.compactor import Compactor, CycleStats, staged_block
from tempo_fast.compactor.selector import Job, select

__all__ = ["Compactor", "CycleStats", "Job", "select", "staged_block"]
