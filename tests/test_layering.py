"""The layers import one way (docs/ARCHITECTURE.md): every import of the application's own
modules, deferred and TYPE_CHECKING ones included, goes from a layer to a lower one or stays
inside its own top-level folder; the domain and the adapters know nothing of GraphQL or HTTP."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Highest first. A name may import the names of the tiers below its own, and itself; the
# names of one tier are independent of each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("carebill",),  # the launcher: puts the checkout on sys.path, then runs cli
    ("cli",),
    ("app", "demo_data", "provisioning", "migrations"),
    ("web",),  # the HTTP edge: CORS, GraphQL over HTTP, websocket protocols, GraphiQL
    ("resolvers",),
    ("schema",),
    ("adapters",),
    ("models",),
    ("settings",),
)
TIER = {name: tier for tier, names in enumerate(LAYERS) for name in names}
# Libraries of the GraphQL and HTTP surface, out of bounds below schema/.
SURFACE = ("strawberry", "graphql", "starlette", "cross_web")
BELOW_SURFACE = ("adapters", "models", "settings")


def top_level_name(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0].removesuffix(".py")


def sources(root: Path) -> Iterator[Path]:
    for name in TIER:
        folder = root / name
        if folder.is_dir():
            yield from sorted(folder.rglob("*.py"))
        elif (root / f"{name}.py").is_file():
            yield root / f"{name}.py"


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level name) of every absolute import in the file, wherever it stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.partition(".")[0]


def violations(root: Path) -> list[str]:
    found = []
    for path in sources(root):
        importer = top_level_name(path, root)
        where = path.relative_to(root)
        for line, name in imported(path):
            if name in TIER and name != importer and TIER[name] <= TIER[importer]:
                found.append(f"{where}:{line}: {importer} may not import {name}")
            if importer in BELOW_SURFACE and name in SURFACE:
                found.append(f"{where}:{line}: {importer} may not import {name}")
    return found


def test_the_layers_import_one_way() -> None:
    assert violations(ROOT) == []


def test_every_top_level_name_has_a_layer() -> None:
    """A new top-level module or folder of the application gets its place in LAYERS."""
    ours = {
        p.name.removesuffix(".py")
        for p in ROOT.iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").is_file())
        and p.name not in ("tests", "bench", "docs")
    }
    assert ours - set(TIER) == set()


def classes_by_name(root: Path) -> dict[str, set[str]]:
    """Where each class name is defined: the top-level names defining it."""
    found: dict[str, set[str]] = {}
    for path in sources(root):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, set()).add(top_level_name(path, root))
    return found


def test_no_class_name_is_defined_in_two_layers() -> None:
    """A GraphQL type and the row it wraps have different names (`InvoiceType`, `Invoice`)."""
    twice = {name: where for name, where in classes_by_name(ROOT).items() if len(where) > 1}
    assert twice == {}


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself: imports that break the layering, however they are written."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "invoice.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from schema.invoices import Invoice\n"
        "def f() -> None:\n"
        "    import strawberry\n"
    )
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "context.py").write_text("import resolvers.loaders\n")
    (tmp_path / "resolvers").mkdir()
    (tmp_path / "resolvers" / "queries.py").write_text("from schema.context import Info\n")
    (tmp_path / "demo_data.py").write_text("from provisioning import create_practice\n")
    assert violations(tmp_path) == [
        "demo_data.py:1: demo_data may not import provisioning",
        "schema/context.py:1: schema may not import resolvers",
        "models/invoice.py:3: models may not import schema",
        "models/invoice.py:5: models may not import strawberry",
    ]
