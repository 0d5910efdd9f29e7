"""The public face and the layers (DESIGN.md): what is exported, and who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import eventgraph

PACKAGE = Path(eventgraph.__file__).resolve().parent

# Each layer may import only from the layers listed for it (DESIGN.md "Layers").
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "events": {"errors", "events"},
    "protocols": {"errors", "events"},
    "chain_cover": {"errors", "events", "protocols"},
    "graph": {"errors", "events", "protocols", "graph", "chain_cover"},
    "state": {"errors", "events", "protocols", "graph", "state", "chain_cover"},
    "stores": {"errors", "events", "protocols", "stores", "chain_cover"},
}


def _layer(module: Path) -> str:
    rel = module.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imported_layers(source: str, parts: tuple[str, ...]) -> set[str]:
    """The top-level eventgraph modules imported by ``source``, a module at ``parts``."""
    package = list(parts[:-1])
    layers: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("eventgraph."):
                    layers.add(node.module.split(".")[1])
                elif node.module == "eventgraph":
                    layers.update(alias.name for alias in node.names)
                continue
            # A relative import: resolve it against the module's package.
            base = package[: len(package) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
            if target:
                layers.add(target[0].removesuffix(".py"))
            else:
                layers.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("eventgraph."):
                    layers.add(alias.name.split(".")[1])
    return layers


def _module_layers(module: Path) -> set[str]:
    parts = module.relative_to(PACKAGE).parts
    return _imported_layers(module.read_text(encoding="utf-8"), parts)


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _layer(p) in ALLOWED)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_only_from_layers_above(module: Path) -> None:
    layer = _layer(module)
    imported = _module_layers(module) - {layer}
    assert imported <= ALLOWED[layer], f"{module.name} imports {imported - ALLOWED[layer]}"


def test_layer_check_can_fail() -> None:
    """The import scanner sees forbidden imports, relative and absolute."""
    assert "stores" in _imported_layers(
        "from ..stores.memory import MemoryStore\n", ("graph", "x.py")
    )
    assert "stores" in _imported_layers("from .. import stores\n", ("state", "x.py"))
    assert "cli" in _imported_layers("import eventgraph.cli\n", ("graph", "x.py"))
    assert _imported_layers("from .walks import backfill\n", ("graph", "x.py")) == {"graph"}


def test_all_names_exist_once() -> None:
    assert len(set(eventgraph.__all__)) == len(eventgraph.__all__)
    for name in eventgraph.__all__:
        assert hasattr(eventgraph, name), name


def test_public_names_are_documented() -> None:
    """Every exported name appears in docs/api.md, and every name listed there is exported."""
    doc = (PACKAGE.parent / "docs" / "api.md").read_text(encoding="utf-8")
    listed = {
        line.split("`")[1]
        for line in doc.splitlines()
        if line.startswith("- `") and line.count("`") >= 2
    }
    assert listed == set(eventgraph.__all__)


def test_errors_share_one_root() -> None:
    for name in eventgraph.__all__:
        obj = getattr(eventgraph, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, eventgraph.EventGraphError), name
            assert isinstance(obj.errcode, str)
            assert obj.errcode.startswith("M_")
            assert 400 <= obj.http_status < 600
