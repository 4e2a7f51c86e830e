"""The host-info processor (Tempo's ``host-info``): ``traces_host_info{grafana_host_id,
host_source} 1`` per host seen, the host being the first configured identifier attribute of a
resource that holds a non-empty string (``k8s.node.name``, then ``host.id``)."""

from __future__ import annotations

from tempo_fast._core import SpanBatch, host_ids
from tempo_fast.generator.registry import Family, Limits, SeriesTable
from tempo_fast.generator.settings import HostInfoSettings


class HostInfo:
    """``host-info`` for one tenant."""

    name = "host-info"

    def __init__(self, settings: HostInfoSettings, limits: Limits) -> None:
        self.settings = settings
        self.family = settings.metric_name
        self.table = SeriesTable(
            ("grafana_host_id", "host_source"),
            [Family(self.family, "Hosts seen in the spans' resources.", gauge=True)],
            limits,
        )
        self.outside_slack = 0  # every resource counts, whatever its spans' times

    def tables(self) -> list[SeriesTable]:
        return [self.table]

    def push(self, batch: SpanBatch, now_ns: int) -> int:
        """Mark the batch's hosts seen; returns how many."""
        pairs = host_ids(batch, list(self.settings.host_identifiers))
        if pairs:
            with self.table.lock:
                self.table.set(self.family, pairs, now_ns / 1e9)
        return len(pairs)
