"""The request budget is per token across processes: three real processes sharing a token
stay within ASANA_REQUESTS_PER_MINUTE together, and a 429 pauses every one of them. The store
is the test database's (SQLite file or PostgreSQL), or Redis when REDIS_URL is set."""

import os
import secrets
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from integrations.asana import budget
from integrations.asana.client import AsanaClient
from integrations.asana.errors import AsanaRateLimited
from integrations.tests.procs import child_env

REDIS_URL = "redis://127.0.0.1:6379/15"


def spend(fake, token: str, per_minute: int, processes: int, **extra: str) -> list[int]:
    """Start `processes` budget workers at once; each prints the requests it sent."""
    env = child_env(fake.base_url, ASANA_REQUESTS_PER_MINUTE=str(per_minute), **extra)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "integrations.tests.budget_worker", token],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    counts = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        counts.append(int(out.strip().splitlines()[-1]))
    return counts


def me_requests(fake) -> list[int]:
    return [1 for method, path, _ in fake.requests if (method, path) == ("GET", "/users/me")]


def test_three_processes_together_stay_within_the_budget(fake_asana, db):
    started = time.monotonic()
    counts = spend(fake_asana, fake_asana.token, per_minute=12, processes=3)
    assert time.monotonic() - started < budget.WINDOW  # all of it within one window
    assert sum(counts) == 12
    assert len(me_requests(fake_asana)) == 12


def test_a_429_pauses_every_process_using_the_token(fake_asana, db):
    fake_asana.inject("429", retry_after=30, path=r"^/users/me$")
    with AsanaClient(fake_asana.token, max_retries=0) as client, pytest.raises(AsanaRateLimited):
        client.me()

    counts = spend(fake_asana, fake_asana.token, per_minute=1000, processes=2)

    assert counts == [0, 0]
    assert len(me_requests(fake_asana)) == 1


def test_the_budget_is_kept_under_a_digest_of_the_token_never_the_token(fake_asana, db):
    with AsanaClient(fake_asana.token) as client:
        client.me()
    key = budget.token_key(fake_asana.token)
    assert fake_asana.token not in key and len(key) == 64
    assert budget.store().acquire(key, 1) != (0.0, False)  # the one request counted there


@pytest.fixture
def redis_store(settings):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running at 127.0.0.1:6379")
    settings.REDIS_URL = REDIS_URL
    yield budget.store()


def test_with_redis_three_processes_together_stay_within_the_budget(fake_asana, db, redis_store):
    # A token of its own: Redis is shared by every test run on the machine.
    token = f"1/{secrets.randbelow(10**12)}:{secrets.token_hex(16)}"
    fake_asana.add_token(token, fake_asana.user_gid)
    assert isinstance(redis_store, budget.RedisStore)

    counts = spend(fake_asana, token, per_minute=9, processes=3, REDIS_URL=REDIS_URL)

    assert sum(counts) == 9
    assert len(me_requests(fake_asana)) == 9


def test_with_redis_a_429_pauses_other_processes(fake_asana, db, redis_store):
    token = f"1/{secrets.randbelow(10**12)}:{secrets.token_hex(16)}"
    fake_asana.add_token(token, fake_asana.user_gid)
    fake_asana.inject("429", retry_after=30, path=r"^/users/me$")
    with AsanaClient(token, max_retries=0) as client, pytest.raises(AsanaRateLimited):
        client.me()

    assert spend(fake_asana, token, per_minute=1000, processes=1, REDIS_URL=REDIS_URL) == [0]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_budget_file_and_its_companions_are_readable_by_their_owner_only(tmp_path):
    path = tmp_path / "db.sqlite3.asana-budget"
    old_umask = os.umask(0o022)
    try:
        store = budget.SqliteStore(str(path))
        store.acquire("k" * 64, 10)
        modes = {s: _mode(Path(f"{path}{s}")) for s in ("", "-wal", "-shm")}
        store.close()
    finally:
        os.umask(old_umask)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_an_existing_readable_budget_file_is_made_owner_only(tmp_path):
    path = tmp_path / "db.sqlite3.asana-budget"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    store = budget.SqliteStore(str(path))
    store.acquire("k" * 64, 10)
    store.close()
    assert _mode(path) == 0o600
