"""The request budget of a token, shared by every process that uses it; and the count of
Asana's answers per connection that the safety rails read (`note_answer`, `answers`).

Asana limits requests per token, not per process (https://developers.asana.com/docs/rate-limits:
150 a minute on free workspaces, 1,500 on paid ones; a 429 carries `Retry-After`). The web
server, the q cluster, `runpollers` and a CLI command may all hold the same token, so the
sliding 60-second window and the "not before" time a 429 sets live in a store they share:

- Redis when `REDIS_URL` is set: the moving window of the `limits` library (one Lua script per
  request, atomic) and a key holding the "not before" time;
- otherwise the database: PostgreSQL (the same database as the site, its own connections and
  an advisory lock per token) or, on SQLite, a file next to the site's database (`BEGIN
  IMMEDIATE` serialises the processes). The budget never shares a connection or a transaction
  with the site, so it is independent of whatever the caller has open.

A token is never stored: the key is a SHA-256 digest of it.

Answers are counted per connection (`answers_key`) in buckets of ANSWER_BUCKET seconds: how
many requests were answered and how many of them were errors (5xx, timeouts, transport
errors; the client decides). Buckets older than ANSWERS_KEPT seconds are dropped.
"""

import hashlib
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.db import connections

from pilotsite.secret_files import private_sqlite

WINDOW = 60.0  # seconds: Asana counts requests per minute
ANSWER_BUCKET = 5  # seconds per bucket of counted answers
ANSWERS_KEPT = 3600 + 2 * ANSWER_BUCKET  # seconds: the longest error window, and a margin


def answers_key(connection_pk: int) -> str:
    """The key of a stored connection's counted answers (unique per deployment: the
    cluster name tells two deployments sharing one Redis apart)."""
    return f"{settings.Q_CLUSTER['name']}:connection:{connection_pk}"


def _bucket(at: float) -> int:
    return int(at // ANSWER_BUCKET)


def _first_bucket(since: float) -> int:
    """The first bucket that starts at or after `since`: answers before it never count."""
    return -int(-since // ANSWER_BUCKET)


def token_key(token: str) -> str:
    """The budget's key for `token`: a hex SHA-256 digest (the token cannot be recovered)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class BudgetStore(Protocol):
    def acquire(
        self, key: str, per_minute: int, *, honour_pause: bool = True
    ) -> tuple[float, bool]:
        """Take one request from `key`'s window. Returns `(0.0, False)` when taken, else the
        seconds to wait and whether the wait is a 429's pause (then nothing was taken)."""
        ...

    def pause(self, key: str, until: float) -> None:
        """No process may send with `key` before `until` (epoch seconds), as a 429 asked."""
        ...

    def note_answer(self, key: str, error: bool) -> None:
        """Count one answer (an error or not) under `key`, now."""
        ...

    def answers(self, key: str, since: float) -> tuple[int, int]:
        """(requests, errors) counted under `key` in the buckets that start at or after
        `since` (epoch seconds)."""
        ...

    def clear(self) -> None:
        """Forget every window, pause and counted answer (tests start from an empty budget)."""
        ...

    def close(self) -> None: ...


class _Pool:
    """Connections used by one thread at a time and kept for the next request."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._idle: list[Any] = []
        self._all: list[Any] = []  # to close even those a thread still holds
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
            with self._lock:
                self._all.append(conn)
        try:
            yield conn
        except BaseException:
            conn.close()  # its state is unknown: never hand it out again
            raise
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            every, self._all, self._idle = self._all, [], []
        for conn in every:
            conn.close()


def _decide(count: int, oldest: float | None, per_minute: int, now: float) -> float:
    """Seconds to wait for a slot in a sliding window holding `count` sends, or 0."""
    if count < per_minute:
        return 0.0
    return max((oldest or now) + WINDOW - now, 0.01)


class SqliteStore:
    """A SQLite file of its own; `BEGIN IMMEDIATE` makes check-and-take atomic across processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = _Pool(self._connect)
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        # Digests of the tokens in use and when each was used: private, like the database.
        private_sqlite(self.path)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        # The window is worth little after a crash; durability is traded for speed.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        if not self._ready:
            conn.executescript(
                "CREATE TABLE IF NOT EXISTS sent (key TEXT NOT NULL, at REAL NOT NULL);"
                "CREATE INDEX IF NOT EXISTS sent_key_at ON sent (key, at);"
                "CREATE TABLE IF NOT EXISTS pause (key TEXT PRIMARY KEY, until REAL NOT NULL);"
                "CREATE TABLE IF NOT EXISTS answers (key TEXT NOT NULL, bucket INTEGER NOT NULL,"
                " requests INTEGER NOT NULL, errors INTEGER NOT NULL, PRIMARY KEY (key, bucket));"
            )
            self._ready = True
        return conn

    def acquire(
        self, key: str, per_minute: int, *, honour_pause: bool = True
    ) -> tuple[float, bool]:
        with self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                if honour_pause:
                    row = conn.execute("SELECT until FROM pause WHERE key = ?", (key,)).fetchone()
                    if row and row[0] > now:
                        return row[0] - now, True
                conn.execute("DELETE FROM sent WHERE key = ? AND at <= ?", (key, now - WINDOW))
                count, oldest = conn.execute(
                    "SELECT COUNT(*), MIN(at) FROM sent WHERE key = ?", (key,)
                ).fetchone()
                wait = _decide(count, oldest, per_minute, now)
                if not wait:
                    conn.execute("INSERT INTO sent (key, at) VALUES (?, ?)", (key, now))
                return wait, False
            finally:
                conn.execute("COMMIT")

    def pause(self, key: str, until: float) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO pause (key, until) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET until = MAX(until, excluded.until)",
                (key, until),
            )

    def note_answer(self, key: str, error: bool) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO answers (key, bucket, requests, errors) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (key, bucket) DO UPDATE SET requests = requests + 1, "
                "errors = errors + excluded.errors",
                (key, _bucket(time.time()), int(error)),
            )

    def answers(self, key: str, since: float) -> tuple[int, int]:
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM answers WHERE bucket < ?", (_bucket(time.time() - ANSWERS_KEPT),)
            )
            requests, errors = conn.execute(
                "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(errors), 0) FROM answers "
                "WHERE key = ? AND bucket >= ?",
                (key, _first_bucket(since)),
            ).fetchone()
        return int(requests), int(errors)

    def clear(self) -> None:
        with self._pool.connection() as conn:
            conn.executescript("DELETE FROM sent; DELETE FROM pause; DELETE FROM answers;")

    def close(self) -> None:
        self._pool.close()


class PostgresStore:
    """Tables in the site's PostgreSQL database, reached on connections of their own; a
    transaction-scoped advisory lock per token makes check-and-take atomic across hosts."""

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = params
        self._pool = _Pool(self._connect)
        self._ready = False

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(**self._params)
        if not self._ready:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('pilotsite_asana_budget'))")
                conn.execute(
                    "CREATE UNLOGGED TABLE IF NOT EXISTS pilotsite_asana_budget_sent "
                    "(key text NOT NULL, at double precision NOT NULL)"
                )
                conn.execute(
                    "CREATE INDEX IF NOT EXISTS pilotsite_asana_budget_sent_key_at "
                    "ON pilotsite_asana_budget_sent (key, at)"
                )
                conn.execute(
                    "CREATE UNLOGGED TABLE IF NOT EXISTS pilotsite_asana_budget_pause "
                    "(key text PRIMARY KEY, until double precision NOT NULL)"
                )
                conn.execute(
                    "CREATE UNLOGGED TABLE IF NOT EXISTS pilotsite_asana_answers "
                    "(key text NOT NULL, bucket bigint NOT NULL, requests integer NOT NULL, "
                    "errors integer NOT NULL, PRIMARY KEY (key, bucket))"
                )
            self._ready = True
        return conn

    def acquire(
        self, key: str, per_minute: int, *, honour_pause: bool = True
    ) -> tuple[float, bool]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
            now = time.time()
            if honour_pause:
                row = conn.execute(
                    "SELECT until FROM pilotsite_asana_budget_pause WHERE key = %s", (key,)
                ).fetchone()
                if row and row[0] > now:
                    return row[0] - now, True
            conn.execute(
                "DELETE FROM pilotsite_asana_budget_sent WHERE key = %s AND at <= %s",
                (key, now - WINDOW),
            )
            count, oldest = conn.execute(
                "SELECT COUNT(*), MIN(at) FROM pilotsite_asana_budget_sent WHERE key = %s", (key,)
            ).fetchone()
            wait = _decide(count, oldest, per_minute, now)
            if not wait:
                conn.execute(
                    "INSERT INTO pilotsite_asana_budget_sent (key, at) VALUES (%s, %s)", (key, now)
                )
            return wait, False

    def pause(self, key: str, until: float) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO pilotsite_asana_budget_pause (key, until) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET until = "
                "GREATEST(pilotsite_asana_budget_pause.until, excluded.until)",
                (key, until),
            )

    def note_answer(self, key: str, error: bool) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO pilotsite_asana_answers AS a (key, bucket, requests, errors) "
                "VALUES (%s, %s, 1, %s) ON CONFLICT (key, bucket) DO UPDATE SET "
                "requests = a.requests + 1, errors = a.errors + excluded.errors",
                (key, _bucket(time.time()), int(error)),
            )

    def answers(self, key: str, since: float) -> tuple[int, int]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "DELETE FROM pilotsite_asana_answers WHERE bucket < %s",
                (_bucket(time.time() - ANSWERS_KEPT),),
            )
            requests, errors = conn.execute(
                "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(errors), 0) "
                "FROM pilotsite_asana_answers WHERE key = %s AND bucket >= %s",
                (key, _first_bucket(since)),
            ).fetchone()
        return int(requests), int(errors)

    def clear(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM pilotsite_asana_budget_sent")
            conn.execute("DELETE FROM pilotsite_asana_budget_pause")
            conn.execute("DELETE FROM pilotsite_asana_answers")

    def close(self) -> None:
        self._pool.close()


class RedisStore:
    """The `limits` library's moving window on Redis, plus a "not before" key per token."""

    def __init__(self, url: str, prefix: str = "pilotsite-asana-budget") -> None:
        import redis
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        self._prefix = prefix
        self._storage = RedisStorage(url, key_prefix=prefix)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._redis = redis.Redis.from_url(url)

    def acquire(
        self, key: str, per_minute: int, *, honour_pause: bool = True
    ) -> tuple[float, bool]:
        from limits import RateLimitItemPerMinute

        if honour_pause:
            until = self._redis.get(f"{self._prefix}:pause:{key}")
            if until is not None and float(until) > time.time():
                return float(until) - time.time(), True
        item = RateLimitItemPerMinute(per_minute)
        if self._limiter.hit(item, key):
            return 0.0, False
        reset = self._limiter.get_window_stats(item, key).reset_time
        return max(reset - time.time(), 0.01), False

    def pause(self, key: str, until: float) -> None:
        wait_ms = int((until - time.time()) * 1000)
        if wait_ms > 0:
            name = f"{self._prefix}:pause:{key}"
            current = self._redis.get(name)
            if current is None or float(current) < until:
                self._redis.set(name, repr(until), px=wait_ms)

    def note_answer(self, key: str, error: bool) -> None:
        name = f"{self._prefix}:answers:{key}:{_bucket(time.time())}"
        with self._redis.pipeline() as pipe:
            pipe.hincrby(name, "requests", 1)
            pipe.hincrby(name, "errors", int(error))
            pipe.expire(name, ANSWERS_KEPT)
            pipe.execute()

    def answers(self, key: str, since: float) -> tuple[int, int]:
        first, last = (
            max(_first_bucket(since), _bucket(time.time() - ANSWERS_KEPT)),
            _bucket(time.time()),
        )
        with self._redis.pipeline() as pipe:
            for bucket in range(first, last + 1):
                pipe.hmget(f"{self._prefix}:answers:{key}:{bucket}", "requests", "errors")
            rows = pipe.execute()
        requests = sum(int(r or 0) for r, _ in rows)
        errors = sum(int(e or 0) for _, e in rows)
        return requests, errors

    def clear(self) -> None:
        for name in self._redis.scan_iter(f"{self._prefix}*"):
            self._redis.delete(name)
        self._storage.reset()

    def close(self) -> None:
        self._redis.close()


_stores: dict[tuple[str, ...], BudgetStore] = {}
_stores_lock = threading.Lock()


def _where() -> tuple[str, ...]:
    if settings.REDIS_URL:
        return ("redis", settings.REDIS_URL)
    db = connections["default"].settings_dict
    if db["ENGINE"].endswith("postgresql"):
        return ("postgres", db["HOST"], str(db["PORT"]), db["NAME"], db["USER"])
    if settings.ASANA_BUDGET_PATH:
        return ("sqlite", settings.ASANA_BUDGET_PATH)
    name = str(db["NAME"])
    if name == ":memory:" or "mode=memory" in name:
        # Nothing to share with: other processes cannot open an in-memory database.
        name = str(Path(tempfile.gettempdir()) / f"pilotsite-{id(_stores)}.sqlite3")
    return ("sqlite", f"{name}.asana-budget")


def store() -> BudgetStore:
    """The budget store this process shares with the others (see the module's docstring)."""
    where = _where()
    with _stores_lock:
        found = _stores.get(where)
        if found is None:
            if where[0] == "redis":
                found = RedisStore(where[1])
            elif where[0] == "postgres":
                db = connections["default"].settings_dict
                params = {
                    "host": db["HOST"] or None,
                    "port": db["PORT"] or None,
                    "dbname": db["NAME"],
                    "user": db["USER"] or None,
                    "password": db["PASSWORD"] or None,
                    "autocommit": True,
                    "application_name": "pilotsite-asana-budget",
                }
                found = PostgresStore({k: v for k, v in params.items() if v is not None})
            else:
                found = SqliteStore(where[1])
            _stores[where] = found
        return found


def close_all() -> None:
    """Close every store's connections (before a test database is dropped, say)."""
    with _stores_lock:
        stores = list(_stores.values())
        _stores.clear()
    for each in stores:
        each.close()
