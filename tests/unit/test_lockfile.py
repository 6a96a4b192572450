"""The container image installs requirements.lock: every runtime dependency of pyproject.toml
pinned there, and never httpx2 (with it, Authlib leaves httpx: tests/unit/test_environment.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_lockfile_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [
        line.strip()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pinned = {_name(line): line for line in lines}
    assert all("==" in line for line in lines)
    missing = [r for r in project["dependencies"] if _name(r) not in pinned]
    assert missing == []
    assert "httpx2" not in pinned
    assert "pip install -r requirements.lock" in (ROOT / "Dockerfile").read_text()
