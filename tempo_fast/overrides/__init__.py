"""Per-tenant overrides (Tempo's ``overrides`` section and runtime file)."""

from tempo_fast.overrides.limits import OverridesError, core_limits, merge, normalize
from tempo_fast.overrides.overrides import Overrides, OverridesConfig, parse_runtime

__all__ = [
    "Overrides",
    "OverridesConfig",
    "OverridesError",
    "core_limits",
    "merge",
    "normalize",
    "parse_runtime",
]
