"""Querier: trace lookup over the ingester (recent data) and complete blocks."""

from tempo_fast.querier.querier import Querier

__all__ = ["Querier"]
