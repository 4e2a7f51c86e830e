"""``tempo-fast`` command line, with Tempo's single-dash flags (``--flag`` and ``-flag value``
work too)."""

from __future__ import annotations

import dataclasses
import platform
import sys
from collections.abc import Sequence
from typing import TextIO

from tempo_fast import __version__, app
from tempo_fast.config import Config, ConfigError, check_target, default_yaml, load, load_file
from tempo_fast.pkg import log
from tempo_fast.pkg.flags import Flags, UsageError, parse_flags
from tempo_fast.pkg.metrics import API_VERSION

USAGE = """\
Usage: tempo-fast [flags]
       tempo-fast blocks list|show|lookup|export [flags] [arguments]

A Grafana-Tempo-compatible tracing backend. Without -config.file it runs the embedded
default: local disk under ./data, HTTP API on :3200, OTLP gRPC on localhost:4317 and
OTLP HTTP on localhost:4318.

Flags:
  -config.file string       Tempo-style YAML configuration file.
  -config.expand-env        Expand ${VAR} and ${VAR:-default} in the file before parsing.
  -target string            Component to run; only "all" is supported (default "all").
  -log.level string         debug, info, warn or error (overrides server.log_level).
  -version                  Print the version and exit.
  -h, -help                 Print this help and exit.

Operator commands (`tempo-fast blocks -help` for details) read the configured backend
without a running server: list blocks, show a block's meta, look a trace id up, export a
block to plain Parquet.
"""
SUBCOMMANDS = ("blocks",)
BOOL_FLAGS = {"config.expand-env", "version", "help", "h"}
VALUE_FLAGS = {"config.file", "target", "log.level"}


def parse_args(argv: Sequence[str]) -> Flags:
    """Go ``flag``-style parsing: ``-name``, ``--name``, ``-name=value``, ``-name value``."""
    return parse_flags(argv, BOOL_FLAGS, VALUE_FLAGS)[0]


def version_line() -> str:
    return (
        f"tempo-fast, version {__version__} (revision tempo-fast-{__version__}, "
        f"Tempo API {API_VERSION}, python {platform.python_version()})"
    )


def build_config(flags: Flags) -> Config:
    """The configuration the flags ask for (file or embedded default, then overrides)."""
    path = flags.get("config.file")
    expand = bool(flags.get("config.expand-env", False))
    config = load_file(str(path), expand) if path else load(default_yaml(), source="default")
    if "target" in flags:
        config = dataclasses.replace(config, target=str(flags["target"]))
    if "log.level" in flags:
        level = str(flags["log.level"])
        if level not in log.LEVELS:
            raise ConfigError(f"-log.level: {level!r} is not one of {', '.join(log.LEVELS)}")
        config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, log_level=level)
        )
    check_target(config.target)
    return config


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; returns the process exit code."""
    stdout, stderr = out or sys.stdout, sys.stderr
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        from tempo_fast import operator

        return operator.main(argv, stdout, stderr)
    try:
        flags = parse_args(argv)
    except UsageError as e:
        print(f"tempo-fast: {e}\nRun 'tempo-fast -help' for usage.", file=stderr)
        return 2
    if flags.get("help") or flags.get("h"):
        stdout.write(USAGE)
        return 0
    if flags.get("version"):
        print(version_line(), file=stdout)
        return 0
    try:
        app.run(build_config(flags))
    except (ConfigError, app.StartupError) as e:
        print(f"tempo-fast: error: {e}", file=stderr)
        return 1
    return 0
