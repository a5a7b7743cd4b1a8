"""A clean install: the wheel holds the `carebill` launcher and nothing else at the top level,
so installing CareBill puts no generic name (`schema`, `models`, `app`…) into site-packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "*.egg-info",
    "__pycache__",
    "*_cache",
    ".hypothesis",
    "*.db*",
    "node_modules",
)


def foreign_names(wheel: Path) -> set[str]:
    """What the wheel would install at the top level of site-packages besides `carebill…`
    and its own dist-info."""
    with zipfile.ZipFile(wheel) as archive:
        names = {name.split("/", 1)[0].removesuffix(".py") for name in archive.namelist()}
    return {n for n in names if not n.startswith("carebill")}


def test_the_wheel_installs_only_the_carebill_launcher(tmp_path: Path) -> None:
    # A copy of the checkout: building writes build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=SKIPPED)
    out = tmp_path / "dist"
    run = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = out.glob("carebill-*.whl")
    assert foreign_names(wheel) == set()
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = (n for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert "carebill = carebill:main" in archive.read(entry_points).decode()


def test_a_wheel_with_a_generic_name_is_refused(tmp_path: Path) -> None:
    """The check itself: a wheel that would install `schema` fails it."""
    wheel = tmp_path / "carebill-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("carebill/__init__.py", "")
        archive.writestr("schema/__init__.py", "")
        archive.writestr("carebill-0.1.0.dist-info/METADATA", "")
    assert foreign_names(wheel) == {"schema"}
