"""The command line as an operator meets it: ``--version``, ``--help`` of every command (each
option's default said, no reStructuredText from the docstrings), and a taken port refused
with one clear line before anything starts."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from broker.cli import build_parser

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def broker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
        timeout=60,
    )


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command line, by its command path."""
    todo = [("broker", build_parser())]
    while todo:
        name, parser = todo.pop()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend((f"{name} {sub}", p) for sub, p in action.choices.items())


def test_version_is_the_package_version() -> None:
    result = broker("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"broker {version('storefront-sso-broker')}"


def test_every_help_has_no_markup_and_says_each_default() -> None:
    seen = 0
    for name, parser in parsers():
        text = parser.format_help()
        assert "``" not in text, name
        assert not re.search(r":(class|func|mod|data|meth):", text), name
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings[0]}: no help"
            if action.default not in (None, False, argparse.SUPPRESS) and not action.required:
                seen += 1
                assert f"(default: {action.default})" in " ".join(text.split()), (
                    f"{name} {action.option_strings[0]}"
                )
    assert seen >= 10  # the check looked at real defaults


def test_help_runs_for_the_command_line_itself() -> None:
    result = broker("serve", "--help")
    assert result.returncode == 0
    assert "--port PORT" in result.stdout
    assert "(default: 8000)" in result.stdout


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_serve_on_a_taken_port_says_so_and_starts_nothing(tmp_path: Path, taken_port: int) -> None:
    database = tmp_path / "broker.db"
    config = tmp_path / "broker.toml"
    config.write_text(
        "[broker]\n"
        'base_url = "http://127.0.0.1:8000"\n'
        f'secret_key = "{"s" * 32}"\n'
        f'database_url = "sqlite:///{database}"\n'
        "[app]\n"
        'client_id = "app"\n'
        'client_secret = "secret"\n'
        'encryption_key = "PuZ-nTZdEJtDz_1Lw9ORPpTsXYQ0ERgP5RBWcRWwbeU="\n'
    )
    result = broker("serve", "--config", str(config), "--port", str(taken_port))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"port {taken_port} on 127.0.0.1 is in use: pass --port"]
    assert not database.exists()  # nothing migrated, nothing started


def test_demo_on_a_taken_port_names_the_flag(taken_port: int) -> None:
    result = broker("demo", "--port", str(taken_port), "--sandbox-port", "0", "--idp-port", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"port {taken_port} on 127.0.0.1 is in use: pass --port"]
    assert result.stdout == ""
    other = broker("demo", "--port", "0", "--sandbox-port", str(taken_port), "--idp-port", "0")
    assert other.returncode == 2
    assert other.stderr.splitlines() == [
        f"port {taken_port} on 127.0.0.1 is in use: pass --sandbox-port"
    ]
