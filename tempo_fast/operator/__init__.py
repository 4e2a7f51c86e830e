"""Operator subcommands of ``tempo-fast`` (``tempo-fast blocks ...``): they read the backend
the server's configuration names, without a running server."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from tempo_fast.backend import BackendError
from tempo_fast.cli import build_config
from tempo_fast.config import ConfigError
from tempo_fast.operator import blocks
from tempo_fast.operator.store import CommandError, open_store
from tempo_fast.pkg.flags import Flags, UsageError, parse_flags

USAGE = """\
Usage: tempo-fast blocks <command> [flags] [arguments]

Reads the blocks in the backend the configuration names (storage.trace.backend: local
or s3), the server need not be running.

Commands:
  list [-tenant T] [-json]                      Blocks per tenant: id, time range, spans,
                                                traces, size, compaction level and state
                                                (complete, compacted, incomplete).
  show <tenant> <block-id>                      The block's meta.json, pretty-printed.
  lookup <trace-id> [-tenant T] [-json]         Search every block (bloom filter, index,
                                                pages) for a trace: the blocks holding it
                                                and a summary, or with -json the trace as
                                                OTLP JSON. Exit code 1 if not found.
  export <tenant> <block-id> <out.parquet>      The block's spans as plain Parquet (hex ids,
         [-force]                               enum names, timestamps, attribute maps) for
                                                DuckDB or pyarrow.

Flags:
  -config.file string       The server's YAML configuration (default: the embedded one,
                            local disk under ./data).
  -config.expand-env        Expand ${VAR} and ${VAR:-default} in the file before parsing.
  -tenant string            Only this tenant (default: every tenant).
  -json                     Machine-readable output.
  -force                    export: overwrite the output file.
  -h, -help                 Print this help and exit.

Progress is drawn on stderr when it is a terminal, and printed every few seconds otherwise.
"""

_COMMON_BOOL = {"config.expand-env", "help", "h"}
_COMMON_VALUE = {"config.file"}

# name: (positional arguments, extra bool flags, extra value flags)
_SPECS: dict[str, tuple[tuple[str, ...], set[str], set[str]]] = {
    "list": ((), {"json"}, {"tenant"}),
    "show": (("tenant", "block-id"), set(), set()),
    "lookup": (("trace-id",), {"json"}, {"tenant"}),
    "export": (("tenant", "block-id", "out.parquet"), {"force"}, set()),
}


def _run(name: str, ctx: blocks.Ctx, flags: Flags, args: list[str]) -> int:
    tenant = str(flags["tenant"]) if "tenant" in flags else None
    as_json = bool(flags.get("json"))
    commands: dict[str, Callable[[], int]] = {
        "list": lambda: blocks.list_blocks(ctx, tenant, as_json),
        "show": lambda: blocks.show_block(ctx, args[0], args[1]),
        "lookup": lambda: blocks.lookup(ctx, args[0], tenant, as_json),
        "export": lambda: blocks.export(ctx, args[0], args[1], args[2], bool(flags.get("force"))),
    }
    return commands[name]()


def _parse(argv: Sequence[str]) -> tuple[str, Flags, list[str]]:
    if len(argv) < 2 or argv[0] != "blocks":
        raise UsageError("expected `blocks <command>`")
    name = argv[1]
    if name not in _SPECS:
        raise UsageError(f"unknown command `blocks {name}`: one of {', '.join(_SPECS)}")
    want, bools, values = _SPECS[name]
    flags, args = parse_flags(
        argv[2:], _COMMON_BOOL | bools, _COMMON_VALUE | values, positionals=True
    )
    if not (flags.get("help") or flags.get("h")) and len(args) != len(want):
        spelled = " ".join(f"<{w}>" for w in want) or "no arguments"
        raise UsageError(f"`blocks {name}` takes {spelled}, got {len(args)} arguments")
    return name, flags, args


def wants_help(argv: Sequence[str]) -> bool:
    return len(argv) < 2 or argv[1] in ("-h", "-help", "--help", "help")


def main(argv: Sequence[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``tempo-fast blocks ...``; returns the exit code (2: usage, 1: failure)."""
    stdout, stderr = out or sys.stdout, err or sys.stderr
    if wants_help(argv):
        stdout.write(USAGE)
        return 0
    try:
        name, flags, args = _parse(argv)
    except UsageError as e:
        print(f"tempo-fast: {e}\nRun 'tempo-fast blocks -help' for usage.", file=stderr)
        return 2
    if flags.get("help") or flags.get("h"):
        stdout.write(USAGE)
        return 0
    store = None
    try:
        store, where = open_store(build_config(flags))
        return _run(name, blocks.Ctx(store, where, stdout, stderr), flags, args)
    except (ConfigError, CommandError, BackendError) as e:
        print(f"tempo-fast: error: {e}", file=stderr)
        return 1
    except KeyboardInterrupt:
        print("tempo-fast: interrupted", file=stderr)
        return 130
    finally:
        if store is not None:
            store.close()
