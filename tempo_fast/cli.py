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
from tempo_fast.pkg.metrics import API_VERSION

USAGE = """\
Usage: tempo-fast [flags]

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
"""
BOOL_FLAGS = {"config.expand-env", "version", "help", "h"}
VALUE_FLAGS = {"config.file", "target", "log.level"}
_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


class UsageError(Exception):
    """A bad command line (exit code 2)."""


def parse_args(argv: Sequence[str]) -> dict[str, str | bool]:
    """Go ``flag``-style parsing: ``-name``, ``--name``, ``-name=value``, ``-name value``."""
    flags: dict[str, str | bool] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            break
        if not arg.startswith("-") or arg in ("-", "---"):
            raise UsageError(f"unexpected argument {arg!r}")
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in BOOL_FLAGS:
            if not has_value:
                flags[name] = True
            elif value.lower() in _TRUE | _FALSE:
                flags[name] = value.lower() in _TRUE
            else:
                raise UsageError(f"invalid boolean value {value!r} for flag -{name}")
        elif name in VALUE_FLAGS:
            if not has_value:
                if not args:
                    raise UsageError(f"flag needs an argument: -{name}")
                value = args.pop(0)
            flags[name] = value
        else:
            raise UsageError(f"flag provided but not defined: -{name}")
    if args:
        raise UsageError(f"unexpected argument {args[0]!r}")
    return flags


def version_line() -> str:
    return (
        f"tempo-fast, version {__version__} (revision tempo-fast-{__version__}, "
        f"Tempo API {API_VERSION}, python {platform.python_version()})"
    )


def build_config(flags: dict[str, str | bool]) -> Config:
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
    try:
        flags = parse_args(sys.argv[1:] if argv is None else argv)
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
