"""``tabpipe db current|upgrade|history`` through the real command line."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from support import DATA, run_sql_file
from tabpipe import migrations
from tabpipe.cli import app

runner = CliRunner()


def tabpipe(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_history_lists_every_revision_in_order() -> None:
    code, output = tabpipe("db", "history")
    assert code == 0, output
    lines = output.strip().splitlines()
    assert [line.split()[2] for line in lines] == [r.id for r in migrations.history()]
    assert lines[0].startswith("<base> -> 0001  Baseline")


def test_current_and_upgrade_on_a_store_made_before_migrations(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    url = f"sqlite:///{ws / 'metadata.db'}"
    run_sql_file(url, DATA / "legacy_store_sqlite.sql")
    engine = create_engine(url)

    head = migrations.head()
    code, output = tabpipe("db", "current", "-w", str(ws))
    assert code == 0, output
    assert f"none: the store is made before migrations; the head is {head}" in output
    # `current` changed nothing
    with engine.connect() as conn:
        assert not engine.dialect.has_table(conn, "alembic_version")

    code, output = tabpipe("db", "upgrade", "-w", str(ws))
    assert code == 0, output
    assert f"from an unversioned store to {head}" in output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model_versions")).scalar() == 2
    engine.dispose()

    code, output = tabpipe("db", "current", "-w", str(ws))
    assert (code, output.strip()) == (0, f"{head} (head)")
    code, output = tabpipe("db", "upgrade", "-w", str(ws))
    assert (code, output.strip()) == (0, f"already at the newest revision {head}")


def test_a_store_from_a_newer_release_is_an_error_not_a_crash(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    assert tabpipe("db", "upgrade", "-w", ws)[0] == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'ws' / 'metadata.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'abc9'"))
    engine.dispose()
    code, output = tabpipe("db", "upgrade", "-w", ws)
    assert code == 1
    message = " ".join(output.split())
    assert "'abc9'" in message and "upgrade tabpipe to use it" in message
