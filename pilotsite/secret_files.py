"""The files that hold pilotsite's keys and data (`.env`, the SQLite database and its
-wal/-shm/-journal companions) are readable by their owner only.

`.env` is created 0600 by `make env-file`; the SQLite files are made 0600 whenever a
database connection is opened (SQLite creates the -wal/-shm files with the database
file's mode, so they follow), which also fixes files left world-readable by an older
version the next time any `manage.py` command or server starts.
"""

import contextlib
import os
import stat
from pathlib import Path

from django.conf import settings

OWNER_ONLY = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def sqlite_files(databases: dict | None = None) -> list[Path]:
    """The SQLite database files of every configured database that exist (none for
    PostgreSQL); in-memory databases have none."""
    files = []
    for db in (databases or settings.DATABASES).values():
        name = str(db.get("NAME") or "")
        if (
            not db.get("ENGINE", "").endswith("sqlite3")
            or not name
            or name.startswith(("file:", ":memory:"))
        ):
            continue
        files += [Path(name + suffix) for suffix in SQLITE_COMPANIONS]
    return [path for path in files if path.exists()]


def secret_files() -> list[Path]:
    """The `.env` pilotsite reads (settings.ENV_FILE, when present) and the SQLite files:
    what an executor must never read."""
    env_file = Path(settings.ENV_FILE) if settings.ENV_FILE else None
    return ([env_file] if env_file and env_file.exists() else []) + sqlite_files()


def restrict(paths: list[Path]) -> list[Path]:
    """chmod 0600 each of `paths` this process owns that others may read; returns those
    changed. A file owned by someone else is left alone (its owner decides)."""
    changed = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            info = path.stat()
            if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
                path.chmod(OWNER_ONLY)
                changed.append(path)
    return changed


def private_sqlite(path: str | Path) -> None:
    """Before SQLite opens the database file `path` outside Django (the request budget's):
    create it 0600 when missing (SQLite would create it with the umask's mode, commonly 0644,
    and its -wal/-shm files follow the database file's mode), and make an existing one and
    its companions 0600 (see `restrict`)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY))
    restrict([Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS])


def readable_by(path: Path, uid: int, groups: tuple[int, ...]) -> bool:
    """Whether the user `uid` (in `groups`) may read `path` by its mode bits (root always may)."""
    info = path.stat()
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IRUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IRGRP)
    return bool(info.st_mode & stat.S_IROTH)


def restrict_on_connect(sender, connection, **kwargs) -> None:
    """connection_created receiver: the SQLite files of the database just opened are 0600."""
    if connection.vendor == "sqlite":
        restrict(sqlite_files({"db": connection.settings_dict}))
