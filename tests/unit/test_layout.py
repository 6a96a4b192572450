"""The import structure docs/design.md asks for ("Rules of the house"), read from the source.

Every ``import`` counts, at module level or inside a function (an import moved into a function
still ties the two modules together).
"""

from __future__ import annotations

import ast
from pathlib import Path

import broker

ROOT = Path(broker.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path
    for path in ROOT.rglob("*.py")
    if "migrations" not in path.parts  # Alembic's scripts, run by Alembic
}


def imports_of(name: str) -> set[str]:
    """The broker modules ``name`` imports (``from broker.web import csrf`` -> broker.web.csrf;
    ``from broker.storage import Link`` -> the package broker.storage)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import"
            base = node.module or ""
            # ``from pkg import module`` needs the module; a name defined in pkg needs pkg.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_import_graph_has_no_cycle() -> None:
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_module_imports_the_app() -> None:
    assert sorted(name for name, targets in GRAPH.items() if "broker.app" in targets) == [
        "broker.cli",  # the command line starts it
        "broker.sandbox.demo",  # so does the demo
    ]


def test_upstream_knows_no_flask_storage_or_bigcommerce() -> None:
    for name, path in MODULES.items():
        if not name.startswith("broker.upstream"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        forbidden = {
            i
            for i in imported
            if i.split(".")[0] in ("flask", "werkzeug")
            or i.startswith(("broker.storage", "broker.bigcommerce", "broker.web"))
        }
        assert forbidden == set(), name


def test_the_web_layer_reads_the_runtime_through_its_leaf_accessor() -> None:
    context = GRAPH["broker.web.context"]
    assert context == {"broker.runtime"}
    assert "broker.web" not in {t.rsplit(".", 1)[0] for t in GRAPH["broker.runtime"]}


def test_blueprints_never_import_each_other() -> None:
    blueprints = {
        name for name, path in MODULES.items() if "Blueprint(" in path.read_text(encoding="utf-8")
    }
    assert {"broker.web.sso", "broker.web.saml", "broker.web.link"} <= blueprints
    crossing = {name: sorted(GRAPH[name] & blueprints) for name in blueprints}
    assert {name: found for name, found in crossing.items() if found} == {}
