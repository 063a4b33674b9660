"""Overhead per request of the shared request budget (integrations/asana/budget.py).

Times `store.acquire()` (what the client does before every request) and
`store.note_answer()` (what a stored connection's client does after every answer, for the
safety rails) for each store against no budget at all, with one thread and with 8 threads
at once:

    .venv/bin/python bench/budget_bench.py [--requests 5000]

SQLite always; PostgreSQL at 127.0.0.1 (database BENCH_POSTGRES, default `postgres`) and
Redis at 127.0.0.1:6379 db 15 when they are running.
"""

import argparse
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")

import django

django.setup()

from integrations.asana import budget  # noqa: E402


def per_request_us(acquire, n: int, threads: int) -> float:
    start = time.perf_counter()
    if threads == 1:
        for _ in range(n):
            acquire()
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _: acquire(), range(n)))
    return (time.perf_counter() - start) / n * 1e6


def stores(tmp: str):
    yield "SQLite file", budget.SqliteStore(str(Path(tmp) / "budget.sqlite3"))
    try:
        postgres = budget.PostgresStore(
            {
                "host": "127.0.0.1",
                "user": "postgres",
                "dbname": os.environ.get("BENCH_POSTGRES", "postgres"),
                "autocommit": True,
            }
        )
        postgres.clear()
        yield "PostgreSQL", postgres
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}")
    try:
        redis = budget.RedisStore(
            "redis://127.0.0.1:6379/15", prefix=f"bench-{secrets.token_hex(4)}"
        )
        redis.clear()
        yield "Redis (limits)", redis
    except Exception as exc:
        print(f"Redis skipped: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    n = parser.parse_args().requests
    print(f"{n} slots taken per row; microseconds per request (lower is better)")
    print(f"{'store':<16} {'1 thread':>10} {'8 threads':>10} {'answer, 1':>10} {'answer, 8':>10}")
    print(
        f"{'no budget':<16} {per_request_us(lambda: None, n, 1):>10.1f} {per_request_us(lambda: None, n, 8):>10.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, store in stores(tmp):
            key = secrets.token_hex(32)
            take = lambda store=store, key=key: store.acquire(key, 10**9)  # noqa: E731
            note = lambda store=store, key=key: store.note_answer(key, False)  # noqa: E731
            one = per_request_us(take, n, 1)
            eight = per_request_us(take, n, 8)
            noted = per_request_us(note, n, 1)
            noted_eight = per_request_us(note, n, 8)
            print(f"{name:<16} {one:>10.1f} {eight:>10.1f} {noted:>10.1f} {noted_eight:>10.1f}")
            store.clear()
            store.close()


if __name__ == "__main__":
    main()
