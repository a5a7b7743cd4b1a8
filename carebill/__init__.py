"""The `carebill` command's launcher: the one package CareBill's distribution installs.

CareBill is an application that runs from its checkout (app.py, cli.py, schema/, resolvers/,
models/, adapters/, migrations/ side by side, as the tests and mypy see them), so installing it
puts no generic top-level name (`schema`, `models`, `app`…) into site-packages, where it could
shadow or be shadowed by another distribution's. `pip install -e .` installs the dependencies
and this launcher, which finds the checkout beside itself, puts it first on `sys.path` and runs
`cli.main()`."""

from __future__ import annotations

import sys
from pathlib import Path

# The checkout: this package's folder is one of its top-level folders.
CHECKOUT = Path(__file__).resolve().parent.parent


def main() -> int:
    if not (CHECKOUT / "app.py").is_file():
        sys.exit(
            f"carebill: no CareBill checkout at {CHECKOUT}; install it from its checkout "
            "with `pip install -e <checkout>`"
        )
    sys.path.insert(0, str(CHECKOUT))
    from cli import main as run

    return run()
