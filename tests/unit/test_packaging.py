"""The wheel: it holds every file of ``broker/`` and the shopper pages of the top-level
``templates/``, and an installed copy finds its pages without the source checkout.

The wheel is built from a copy of what the Dockerfile copies (``pyproject.toml``,
``README.md``, ``broker/``, ``templates/``), so the build leaves nothing in the checkout and
the image gets everything the package needs. The installed copy runs in a fresh interpreter
whose path holds only the unpacked wheel and the project's dependencies, from a directory
outside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What the Dockerfile copies before ``pip install .``.
BUILD_INPUTS = ("pyproject.toml", "README.md", "broker", "templates")

#: Runs in the installed copy: builds the broker and renders pages from its templates.
RENDER = r"""
import json, secrets, sys
from broker.app import create_app
from broker.config import parse_settings

document = {
    "broker": {
        "base_url": "http://127.0.0.1:8000",
        "secret_key": secrets.token_urlsafe(32),
        "database_url": "sqlite:///" + sys.argv[1],
    },
    "stores": {
        "acme": {
            "store_hash": "abc123",
            "access_token": "token",
            "client_id": "app-client",
            "client_secret": secrets.token_hex(32),
            "storefront_url": "https://shop.example.test",
            "connections": {
                "corp": {
                    "type": "oidc",
                    "issuer": "https://idp.example.test",
                    "client_id": "broker",
                    "client_secret": "s" * 24,
                    "display_name": "Corp Login",
                }
            },
        }
    },
}
app = create_app(parse_settings(document, env={}))
client = app.test_client()
pages = {path: client.get(path) for path in ("/acme/login", "/nope/login", "/acme/storefront.js")}
import broker
print(json.dumps({
    "broker": broker.__file__,
    "template_folder": app.template_folder,
    "pages": {path: [r.status_code, r.get_data(as_text=True)] for path, r in pages.items()},
}))
"""


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), "."],
        cwd=source,
        check=True,
        timeout=120,
    )
    (wheel,) = dist.glob("*.whl")
    return wheel


def test_the_wheel_ships_the_templates_and_an_installed_copy_renders_them(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")

    pages = sorted(p.name for p in (ROOT / "templates").iterdir() if p.is_file())
    assert {"base.html", "choose.html", "error.html", "storefront.js"} <= set(pages)
    missing_pages = [p for p in pages if f"broker_templates/{p}" not in names]
    assert not missing_pages, f"templates/ files not in the wheel: {missing_pages}"
    ours = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "broker").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    missing = [p for p in ours if p not in names]
    packages = sorted({p.rpartition("/")[0].replace("/", ".") for p in missing})
    assert not missing, (
        f"not in the wheel: {missing}; add {packages} to [tool.setuptools] packages in "
        "pyproject.toml (and data files to package-data)"
    )

    site = tmp_path / "site"
    dependencies = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    run = subprocess.run(
        # -S: no site-packages and no .pth files, so not the checkout's editable install
        # either; only the unpacked wheel, then the dependencies.
        [sys.executable, "-S", "-c", RENDER, str(tmp_path / "broker.db")],
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(site), *dependencies]), "PYTHONNOUSERSITE": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert Path(result["broker"]).is_relative_to(site)
    assert Path(result["template_folder"]) == site / "broker_templates"

    chooser, error, script = (
        result["pages"][p] for p in ("/acme/login", "/nope/login", "/acme/storefront.js")
    )
    assert chooser[0] == 200
    assert "Sign in with Corp Login" in chooser[1]
    assert "<!doctype html>" in chooser[1], "choose.html extends base.html"
    assert error[0] == 404
    assert 'id="error-ref"' in error[1]
    assert script[0] == 200
    assert '"http://127.0.0.1:8000/acme/link/start"' in script[1]
