"""The `carebill` command where a newcomer meets it: `migrate` prints one line (no Alembic
narration), `create-practice` without `--password` and without a terminal says what to do
instead of a traceback, `serve --port` is documented."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import GOOD, carebill, counts, fresh_url  # noqa: F401 - a fixture


async def test_migrate_says_one_thing(fresh_url: str, tmp_path: Path) -> None:  # noqa: F811
    run = await carebill(fresh_url, "migrate", cwd=tmp_path)
    assert (run.code, run.out) == (0, "database is up to date\n")
    assert "alembic" not in run.err.lower()
    assert "INFO" not in run.err


async def test_create_practice_without_a_password_or_a_terminal(
    fresh_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert (await carebill(fresh_url, "migrate", cwd=tmp_path)).code == 0
    options = {k: v for k, v in GOOD.items() if k != "--password"}
    args = [part for option in options.items() for part in option]
    run = await carebill(fresh_url, "create-practice", *args, cwd=tmp_path)  # stdin: /dev/null
    assert run.code == 2
    assert run.err == ("carebill: --password is required when there is no terminal to ask for it\n")
    assert run.out == ""
    assert set((await counts(fresh_url)).values()) == {0}


async def test_serve_documents_its_port(tmp_path: Path) -> None:
    run = await carebill("sqlite+aiosqlite:///unused.db", "serve", "--help", cwd=tmp_path)
    assert run.code == 0
    assert "--port PORT" in run.out
    assert "default 8000" in run.out
