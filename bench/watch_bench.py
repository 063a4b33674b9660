"""Benchmark: what watching for tagged tasks costs, per watch method, as history grows.

1. Requests per poll with nothing new, for 10, 1,000, 10,000 and 50,000 tasks of history
   (completed tasks that once carried the pilot tag), for each watch method (automatic in a
   paid workspace, where it searches), and what that makes an idle hour cost at the default
   30 s interval and hourly reconciling pass.
2. Time from tagging a task to a poll finding it, for the tag list and search, polling every
   `--interval` seconds with the fake's search index lagging `--index-delay` seconds (Asana
   documents 10 to 60 s). Webhooks first picks tasks up through the webhook path instead
   (bench/throughput_bench.py measures that), and falls back to the tag list's figure when
   its webhook is quiet.

The fake Asana is served over HTTP from a forked process. Not a test: run it by hand and
copy the figures into the README.

    .venv/bin/python bench/watch_bench.py [--sizes 10,1000,10000,50000] [--trials 5]
                                          [--interval 5] [--index-delay 10]
"""

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline_bench import _serve_forked  # noqa: E402
from bench.support import setup_django  # noqa: E402

SIZES = (10, 1_000, 10_000, 50_000)
METHODS = ("auto", "tag_list", "webhooks_first")
HOUR = 3600
DEFAULT_INTERVAL = 30  # a new connection's poll_interval


def build_fake(sizes: tuple[int, ...], trials: int, index_delay: float) -> Any:
    from integrations.asana.fake.api import FakeAsana

    fake = FakeAsana()
    fake.seed()
    ws = fake.workspace_gid
    done = fake.add_tag(ws, "pilot-done")
    for name in ("pilot-in-progress", "pilot-failed"):
        fake.add_tag(ws, name)
    for size in sizes:
        tag = fake.add_tag(ws, f"history-{size}")
        for i in range(size):
            fake.add_task(ws, f"old {i}", tags=[tag, done], completed=True)
    for method in ("tag_list", "auto"):
        fake.add_tag(ws, f"pickup-{method}")
        for i in range(trials):
            fake.add_task(ws, f"pickup {method} {i}", notes="Do it.")
    fake.search_index_delay = index_delay
    return fake


def connection_for(tag: str, method: str, interval: int = DEFAULT_INTERVAL) -> Any:
    from integrations.models import AsanaConnection

    connection = AsanaConnection.objects.get()
    connection.pilot_tag = tag
    connection.tag_gids = {}
    connection.watch_method = method
    connection.poll_interval = interval
    connection.last_poll_at = connection.last_reconcile_at = None
    connection.search_unavailable_at = connection.search_detected_at = None
    connection.save()
    return connection


def idle_costs(sizes: tuple[int, ...]) -> None:
    from integrations.pipeline.poll import poll_connection

    print("Requests per poll with nothing new (after the first, reconciling, poll):")
    print(
        f"  {'history':>8}  {'method':<15} {'requests':>8} {'wall ms':>8} {'CPU ms':>7}"
        f"  {'requests per idle hour':>22}"
    )
    for size in sizes:
        for method in METHODS:
            connection = connection_for(f"history-{size}", method)
            poll_connection(connection)  # tag lookup and the first full pass
            started, cpu = time.perf_counter(), time.process_time()
            result = poll_connection(connection)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert result.ok and not result.candidates, result.message
            print(
                f"  {size:>8,}  {method:<15} {result.requests:>8} {wall * 1000:>8,.0f} "
                f"{cpu * 1000:>7,.0f}  {_per_hour(method, size, result.requests):>22}"
            )


def _per_hour(method: str, size: int, idle: int) -> str:
    """An idle hour at the default interval: the polls, plus the reconciling pass."""
    from django.conf import settings

    polls = HOUR // DEFAULT_INTERVAL
    full_pass = max(1, math.ceil(size / 100))
    if method == "tag_list":
        return f"{polls * full_pass:,}"
    passes = max(1, HOUR // settings.PILOT_RECONCILE_SECONDS)
    if method == "auto":
        return f"{(polls - passes) * idle + passes * full_pass:,}"
    return f"{passes * full_pass:,} (healthy webhook)"


def pickup(
    base_url: str,
    token: str,
    pickup_tasks: dict[str, list[str]],
    trials: int,
    interval: int,
    index_delay: float,
) -> None:
    from integrations.models import AsanaConnection
    from integrations.pipeline.claims import claim
    from integrations.pipeline.poll import poll_if_due

    print(
        f"\nTagging to pickup, polling every {interval} s, search index {index_delay:g} s behind "
        f"({trials} trials each, tagged at a random moment of the interval):"
    )
    asana = httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
    )
    workspace = AsanaConnection.objects.get().workspace_gid
    listed = asana.get(f"/workspaces/{workspace}/tags", params={"limit": 100}).json()["data"]
    tags = {t["name"]: t["gid"] for t in listed}
    for method in ("tag_list", "auto"):
        connection = connection_for(f"pickup-{method}", method, interval)
        poll_if_due(connection)  # the first, reconciling, pass: nothing tagged yet
        tasks = pickup_tasks[method]
        delays = []
        for gid in tasks[:trials]:
            time.sleep(random.uniform(0, interval))
            asana.post(f"/tasks/{gid}/addTag", json={"data": {"tag": tags[f"pickup-{method}"]}})
            tagged_at = time.perf_counter()
            while True:
                connection.refresh_from_db()
                result = poll_if_due(connection)
                if result is not None and gid in result.candidates:
                    delays.append(time.perf_counter() - tagged_at)
                    claim(connection, gid, source="poll")
                    break
                time.sleep(0.05)
        print(
            f"  {method:<9} median {statistics.median(delays):5.1f} s, "
            f"min {min(delays):5.1f} s, max {max(delays):5.1f} s"
        )
    asana.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--index-delay", type=float, default=10.0)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(
            Path(tmp) / "bench.sqlite3", LOG_LEVEL="WARNING", ASANA_REQUESTS_PER_MINUTE="1000000"
        )
        from django.conf import settings

        from integrations.models import AsanaConnection

        started = time.perf_counter()
        fake = build_fake(sizes, args.trials, args.index_delay)
        pickup_tasks = {
            method: [
                r["gid"] for r in fake._records("task") if r["name"].startswith(f"pickup {method}")
            ]
            for method in ("tag_list", "auto")
        }
        print(f"fake built in {time.perf_counter() - started:.1f} s\n")
        with _serve_forked(fake) as (base_url, _):
            settings.ASANA_API_BASE_URL = base_url
            AsanaConnection.objects.create(
                workspace_gid=fake.workspace_gid, access_token=fake.token
            )
            idle_costs(sizes)
            pickup(base_url, fake.token, pickup_tasks, args.trials, args.interval, args.index_delay)


if __name__ == "__main__":
    main()
