"""A hostile executor: tries every way pilotsite's keys or data could reach it and writes
what it got to a report (JSON), so a test can show it gets nothing.

Usage: python3 hostile_executor.py PROJECT_DIR REPORT_FILE

Standard library only, and readable from anywhere: it runs as another OS user or inside a
sandbox, with whatever Python that user may execute. The report maps each attempt to
"LEAK", "read, nothing secret" or "denied (...)", and lists the leaks. Paths are given to it
on purpose: an attacker is assumed to know where pilotsite is installed.
"""

import json
import os
import sys
from pathlib import Path

SECRET_NAMES = (
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "ASANA_ACCESS_TOKEN",
    "DATABASE_URL",
    "REDIS_URL",
)
# What pilotsite's key material looks like in an environment block or a file.
MARKERS = [name.encode() + b"=" for name in SECRET_NAMES] + [b"SQLite format 3"]
PROJECT_FILES = (".env", "db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm")


def main(project: Path, report_file: Path) -> None:
    attempts: dict[str, str] = {}

    def attempt(source: str, read, any_content_leaks: bool = False) -> None:
        try:
            data = read()
        except OSError as exc:
            attempts[source] = f"denied ({exc.strerror})"
            return
        secret = bool(data) if any_content_leaks else any(m in data for m in MARKERS)
        attempts[source] = "LEAK" if secret else "read, nothing secret"

    # 1. Its own environment.
    for name in SECRET_NAMES:
        attempts[f"env {name}"] = "LEAK" if name in os.environ else "absent"

    # 2. The project's files, by their known paths.
    for name in PROJECT_FILES:
        path = project / name
        if path.exists() or name in (".env", "db.sqlite3"):
            attempt(str(path), path.read_bytes, any_content_leaks=True)

    # 3. Its ancestors: their environment and the files in their working directories.
    pid = os.getppid()
    while pid > 1:
        proc = Path(f"/proc/{pid}")
        attempt(f"{proc}/environ", (proc / "environ").read_bytes)
        try:
            names = os.listdir(proc / "cwd")
        except OSError as exc:
            attempts[f"{proc}/cwd"] = f"denied ({exc.strerror})"
        else:
            for name in names:
                path = proc / "cwd" / name
                if path.is_file():
                    attempt(f"{proc}/cwd/{name}", path.read_bytes, name in PROJECT_FILES)
        try:
            pid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break

    # 4. Every other process it can see.
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and f"{entry}/environ" not in attempts:
            try:
                data = (entry / "environ").read_bytes()
            except OSError:
                continue
            if any(m in data for m in MARKERS):
                attempts[f"{entry}/environ"] = "LEAK"

    # 5. Where it was started.
    cwd = Path.cwd().resolve()
    if cwd == project or project in cwd.parents:
        attempts[f"cwd {cwd}"] = "LEAK"
    report = {
        "cwd": str(cwd),
        "uid": os.getuid(),
        "attempts": attempts,
        "leaks": sorted(k for k, v in attempts.items() if v == "LEAK"),
    }
    report_file.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))
