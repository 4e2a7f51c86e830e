"""Go ``flag``-style command lines: ``-name``, ``--name``, ``-name=value``, ``-name value``."""

from __future__ import annotations

from collections.abc import Collection, Sequence

_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}

Flags = dict[str, str | bool]


class UsageError(Exception):
    """A bad command line (exit code 2)."""


def parse_flags(
    argv: Sequence[str],
    bool_flags: Collection[str],
    value_flags: Collection[str],
    *,
    positionals: bool = False,
) -> tuple[Flags, list[str]]:
    """The flags of ``argv`` and, when ``positionals`` is set, its other arguments (flags
    and arguments may be mixed; everything after ``--`` is an argument). Without
    ``positionals`` an argument is a :class:`UsageError`."""
    flags: Flags = {}
    rest: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            break
        if not arg.startswith("-") or arg in ("-", "---"):
            if not positionals:
                raise UsageError(f"unexpected argument {arg!r}")
            rest.append(arg)
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in bool_flags:
            if not has_value:
                flags[name] = True
            elif value.lower() in _TRUE | _FALSE:
                flags[name] = value.lower() in _TRUE
            else:
                raise UsageError(f"invalid boolean value {value!r} for flag -{name}")
        elif name in value_flags:
            if not has_value:
                if not args:
                    raise UsageError(f"flag needs an argument: -{name}")
                value = args.pop(0)
            flags[name] = value
        else:
            raise UsageError(f"flag provided but not defined: -{name}")
    if args and not positionals:
        raise UsageError(f"unexpected argument {args[0]!r}")
    return flags, rest + args
