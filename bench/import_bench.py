"""Benchmark: import a 30,000-row employee CSV into SQLite while another thread keeps writing.

Prints the planning time, the writing time and the longest a concurrent writer (a small
audit-log insert every 20 ms, as webhooks and pollers do) had to wait for SQLite's lock: with
one transaction per batch it waits for one batch, never for the whole import. Not a test:
run it by hand and copy the figures into the README.

    .venv/bin/python bench/import_bench.py [--rows 30000] [--batch 1000]
"""

import argparse
import io
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import setup_django  # noqa: E402 (after the path is set)


def _other_writer(stop: threading.Event, waits: list[float]) -> None:
    from django.db import connection

    from integrations import audit

    while not stop.is_set():
        started = time.monotonic()
        audit.record(audit.Action.WEBHOOK_DELIVERY, detail="a concurrent write")
        waits.append(time.monotonic() - started)
        time.sleep(0.02)
    connection.close()


def run(rows: int, batch: int) -> None:
    from integrations.people import csv_import as employee_import
    from integrations.people.csv_import import apply_plan, plan_import

    # Time each batch's transaction (the time SQLite's write lock is held) from outside.
    batch_times: list[float] = []
    write_batch = employee_import._write_batch

    def timed(*args):
        started = time.monotonic()
        try:
            return write_batch(*args)
        finally:
            batch_times.append(time.monotonic() - started)

    employee_import._write_batch = timed

    text = "email,name\n" + "".join(f"person{i}@example.com,Person {i}\n" for i in range(rows))
    started = time.monotonic()
    plan = plan_import(io.BytesIO(text.encode()))
    planned = time.monotonic() - started
    stop = threading.Event()
    waits: list[float] = []
    writer = threading.Thread(target=_other_writer, args=(stop, waits))
    writer.start()
    time.sleep(0.2)
    started = time.monotonic()
    report = apply_plan(plan, batch_rows=batch)
    written = time.monotonic() - started
    time.sleep(0.2)
    stop.set()
    writer.join()
    print(f"rows {rows:,}, batch {batch:,}: {report.summary()}")
    print(f"plan (read + validate, no writes): {planned:.2f} s")
    print(
        f"write: {written:.2f} s in {len(batch_times)} transactions, "
        f"longest {max(batch_times) * 1000:.0f} ms"
    )
    print(
        f"concurrent writer: {len(waits)} writes, longest wait {max(waits) * 1000:.0f} ms, "
        f"median {sorted(waits)[len(waits) // 2] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=None, help="EMPLOYEE_IMPORT_BATCH_ROWS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        from django.conf import settings

        run(args.rows, args.batch or settings.EMPLOYEE_IMPORT_BATCH_ROWS)


if __name__ == "__main__":
    main()
