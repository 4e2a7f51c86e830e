"""Reference ``tempopb`` search messages for tests, built with the protobuf runtime from the
field numbers of Tempo's ``pkg/tempopb/tempo.proto`` (KeyValue from opentelemetry-proto's
common.proto, which is wire-identical to ``tempopb.common.v1``).

An independent check of :mod:`tempo_fast.frontend.grpc_streaming`'s hand-written encoding.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from opentelemetry.proto.common.v1 import common_pb2

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
STR, U32, U64, MSG = F.TYPE_STRING, F.TYPE_UINT32, F.TYPE_UINT64, F.TYPE_MESSAGE
KV = "." + common_pb2.KeyValue.DESCRIPTOR.full_name

# message -> [(number, name, type, label, message type)]
MESSAGES: dict[str, list[tuple[int, str, int, int, str]]] = {
    "SearchRequest": [
        (1, "Tags", MSG, REP, ".tempopb.SearchRequest.TagsEntry"),
        (2, "MinDurationMs", U32, OPT, ""),
        (3, "MaxDurationMs", U32, OPT, ""),
        (4, "Limit", U32, OPT, ""),
        (5, "start", U32, OPT, ""),
        (6, "end", U32, OPT, ""),
        (8, "Query", STR, OPT, ""),
        (9, "SpansPerSpanSet", U32, OPT, ""),
    ],
    "SearchResponse": [
        (1, "traces", MSG, REP, ".tempopb.TraceSearchMetadata"),
        (2, "metrics", MSG, OPT, ".tempopb.SearchMetrics"),
    ],
    "TraceSearchMetadata": [
        (1, "traceID", STR, OPT, ""),
        (2, "rootServiceName", STR, OPT, ""),
        (3, "rootTraceName", STR, OPT, ""),
        (4, "startTimeUnixNano", U64, OPT, ""),
        (5, "durationMs", U32, OPT, ""),
        (6, "spanSet", MSG, OPT, ".tempopb.SpanSet"),
        (7, "spanSets", MSG, REP, ".tempopb.SpanSet"),
        (8, "serviceStats", MSG, REP, ".tempopb.TraceSearchMetadata.ServiceStatsEntry"),
    ],
    "ServiceStats": [(1, "spanCount", U32, OPT, ""), (2, "errorCount", U32, OPT, "")],
    "SpanSet": [
        (1, "spans", MSG, REP, ".tempopb.Span"),
        (2, "matched", U32, OPT, ""),
        (3, "attributes", MSG, REP, KV),
    ],
    "Span": [
        (1, "spanID", STR, OPT, ""),
        (2, "name", STR, OPT, ""),
        (3, "startTimeUnixNano", U64, OPT, ""),
        (4, "durationNanos", U64, OPT, ""),
        (5, "attributes", MSG, REP, KV),
    ],
    "SearchMetrics": [
        (1, "inspectedTraces", U32, OPT, ""),
        (2, "inspectedBytes", U64, OPT, ""),
        (3, "totalBlocks", U32, OPT, ""),
        (4, "completedJobs", U32, OPT, ""),
        (5, "totalJobs", U32, OPT, ""),
        (6, "totalBlockBytes", U64, OPT, ""),
        (7, "inspectedSpans", U64, OPT, ""),
    ],
}
MAPS = {  # message -> (entry name, value type, value message)
    "SearchRequest": ("TagsEntry", STR, ""),
    "TraceSearchMetadata": ("ServiceStatsEntry", MSG, ".tempopb.ServiceStats"),
}
FILE = "tempopb/tempo_search_test.proto"


def _add_fields(message: Any, fields: list[tuple[int, str, int, int, str]]) -> None:
    for number, name, type_, label, type_name in fields:
        f = message.field.add(name=name, number=number, type=type_, label=label)
        if type_name:
            f.type_name = type_name


def _classes() -> dict[str, Any]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(FILE)
    except KeyError:
        fdp = descriptor_pb2.FileDescriptorProto(name=FILE, package="tempopb", syntax="proto3")
        fdp.dependency.append(common_pb2.DESCRIPTOR.name)
        for name, fields in MESSAGES.items():
            message = fdp.message_type.add(name=name)
            _add_fields(message, fields)
            if name in MAPS:
                entry_name, value_type, value_message = MAPS[name]
                entry = message.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                _add_fields(entry, [(1, "key", STR, OPT, ""), (2, "value", value_type, OPT, "")])
                if value_message:
                    entry.field[1].type_name = value_message
        pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tempopb.{name}"))
        for name in MESSAGES
    }


CLASSES = _classes()
SearchRequest = CLASSES["SearchRequest"]
SearchResponse = CLASSES["SearchResponse"]


def response_dict(data: bytes) -> dict[str, Any]:
    """A ``SearchResponse`` as proto3 JSON (Tempo's JSON form: 64-bit ints as strings)."""
    return json_format.MessageToDict(SearchResponse.FromString(data))
