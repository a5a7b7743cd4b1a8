"""The Node side of the tests: tests/js holds the npm packages of the test tools and the scripts
that use them, docs/examples/typescript the TypeScript client example (both installed by
scripts/ensure-js.sh with `npm ci`, which `make test` runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "js"
TYPESCRIPT_EXAMPLE = ROOT / "docs" / "examples" / "typescript"


def node(project: Path = JS) -> str:
    """The node executable; the tests fail (never skip) without it or without the packages."""
    executable = shutil.which("node")
    if executable is None:
        raise RuntimeError("node (Node.js 20) is required: apt-get install nodejs npm")
    if not (project / "node_modules" / ".package-lock.json").exists():
        raise RuntimeError(f"{project}/node_modules is missing: run scripts/ensure-js.sh")
    return executable
