"""`manage.py check` warns when a multi-process deployment (the Redis broker) runs on SQLite."""

import subprocess
import sys

from integrations.tests import procs


def check(tmp_path, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, procs.MANAGE, "check"],
        env=procs.clean_env(
            SECRET_KEY="check-secret-key-not-for-production-0123456789abcdef",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    return result.stdout + result.stderr


def test_the_redis_broker_on_sqlite_is_warned_about(tmp_path):
    out = check(
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )

    assert "pilotsite.W020" in out and "Use PostgreSQL" in out


def test_sqlite_with_the_orm_broker_is_not_warned_about(tmp_path):
    out = check(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")

    assert "pilotsite.W020" not in out and "no issues" in out


def test_the_redis_broker_on_postgresql_is_not_warned_about(tmp_path):
    # `check` does not connect to the database: the URL only has to name PostgreSQL.
    out = check(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/pilot_unused",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )

    assert "pilotsite.W020" not in out
