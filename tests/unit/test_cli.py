"""Command-line flags (Tempo style: -flag, --flag, -flag=value, -flag value)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tempo_fast import cli


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_version() -> None:
    for flag in ("-version", "--version"):
        code, out = run(flag)
        assert code == 0
        assert out.startswith("tempo-fast, version 0.1.0 (revision tempo-fast-0.1.0")


def test_help() -> None:
    for flag in ("-h", "-help", "--help"):
        code, out = run(flag)
        assert code == 0
        assert "-config.file" in out and "-config.expand-env" in out


def test_unknown_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("-nope")
    assert code == 2
    assert "flag provided but not defined: -nope" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["-config.file"], ["stray"], ["-version=maybe"], ["-config.file", "a", "b"]]
)
def test_bad_command_lines(argv: list[str]) -> None:
    assert run(*argv)[0] == 2


def test_parse_forms() -> None:
    flags = cli.parse_args(
        ["--config.file", "t.yaml", "-target=all", "-config.expand-env", "-log.level=debug"]
    )
    assert flags == {
        "config.file": "t.yaml",
        "target": "all",
        "config.expand-env": True,
        "log.level": "debug",
    }
    assert cli.parse_args(["-config.expand-env=false"]) == {"config.expand-env": False}


def test_unsupported_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("-target=ingester")[0] == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-target=all" in err


def test_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("server: {http_listen_prot: 1}\n")
    assert run(f"-config.file={path}")[0] == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "server.http_listen_prot" in err


def test_bad_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("-log.level=loud")[0] == 1
    assert "-log.level" in capsys.readouterr().err


def test_build_config_overrides(tmp_path: Path) -> None:
    config = cli.build_config({"log.level": "debug", "target": "all"})
    assert config.server.log_level == "debug"
    assert config.storage.local_path == "./data/blocks"
