"""Benchmark: tasks per minute through django-q2 clusters, and webhook delivery to pickup, per
database and broker.

1. Throughput: `--tasks` tagged tasks are claimed for the cluster and queued at once; one or
   two `manage.py qcluster` processes (`Q_WORKERS` each) run them with a no-op executor and
   report them to the fake Asana (its rate limit lifted: ASANA_REQUESTS_PER_MINUTE 1,000,000).
   Every combination of SQLite / PostgreSQL, ORM / Redis broker, one / two clusters.
2. Pickup: gunicorn and one cluster; a task tagged `pilot` is announced by a signed delivery;
   the time from sending it to the task carrying `pilot-in-progress` (p50 / p99), per broker,
   and when (p50) each request about the task reached the fake Asana on the way (its reads,
   then the tag): where the time goes. Each trial waits for the previous task's run to end.
   `--pickup-only` skips part 1; `--verbose` prints each trial's requests.

Each combination runs in a child process of its own (settings are read at start), against a
fresh database (a temporary SQLite file, or the PostgreSQL database `--pg-database`, dropped
and created) and Redis at `--redis`. Not a test: run it by hand, copy the figures to README.

    .venv/bin/python bench/throughput_bench.py [--tasks 300] [--workers 4] [--trials 30]
        [--pickup-only] [--verbose]
        [--pg postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/0]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def child(config: dict) -> dict:
    """One combination, in this (fresh) process: returns its figures."""
    from bench.webhook_bench import _free_port, _process, _wait_for_http

    env = {
        "DATABASE_URL": config["database_url"],
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
        "DEBUG": "off",
        "SECURE_SSL_REDIRECT": "off",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "pilotsite.settings",
        "PILOT_ENV_FILE": "",
        "ASANA_REQUESTS_PER_MINUTE": "1000000",
        "PILOT_EXECUTOR": config["executor"],
        "PILOT_EXECUTOR_COMMAND": "",
        "Q_WORKERS": str(config["workers"]),
        "Q_CLUSTER_NAME": f"bench-{uuid.uuid4().hex[:12]}",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": config["redis_url"],
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from integrations.asana.fake.api import FakeAsana
    from integrations.asana.fake.server import FakeAsanaServer
    from integrations.connect import connect_workspace
    from integrations.models import ProcessedTask
    from integrations.pipeline import claims, dispatch
    from integrations.pipeline.poll import poll_connection
    from integrations.webhooks.registration import register_webhook

    fake = FakeAsana()
    fake.seed()
    project = fake.add_project(fake.workspace_gid, "Bench")
    fake.add_tag(fake.workspace_gid, "pilot")
    for i in range(config["tasks"]):
        fake.add_task(fake.workspace_gid, f"task {i}", notes="Do it.", tags=["pilot"])
    figures: dict = {}
    with FakeAsanaServer(fake) as server:
        os.environ["ASANA_API_BASE_URL"] = server.base_url
        from django.conf import settings

        settings.ASANA_API_BASE_URL = server.base_url
        child_env = dict(os.environ)
        # Hundreds of claims at once are the point here: the safety rail on claims is lifted.
        connection = connect_workspace(
            fake.token, fake.workspace_gid, polling_enabled=False, breaker_claims_per_hour=100_000
        )
        candidates = poll_connection(connection).candidates
        if config["mode"] == "throughput":
            with ExitStack() as stack:
                for _ in range(config["clusters"]):
                    stack.enter_context(_process([PYTHON, "manage.py", "qcluster"], child_env))
                time.sleep(3)  # the clusters' workers start
                started = time.perf_counter()
                for gid in candidates:
                    processed = claims.claim(
                        connection, gid, source="poll", runner=claims.Runner.QUEUE
                    )
                    assert processed is not None, f"task {gid} could not be claimed"
                    dispatch.enqueue(processed)
                done = ProcessedTask.objects.filter(state=ProcessedTask.State.DONE)
                while done.count() < len(candidates):
                    if time.perf_counter() - started > 600:
                        raise SystemExit(f"only {done.count()} of {len(candidates)} done")
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started
            figures["per_minute"] = len(candidates) / elapsed * 60
        else:
            port = _free_port()
            gunicorn = [
                PYTHON,
                "-m",
                "gunicorn",
                "pilotsite.wsgi",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ]
            with (
                _process(gunicorn, child_env),
                _process([PYTHON, "manage.py", "qcluster"], child_env),
            ):
                _wait_for_http(port)
                registration = register_webhook(connection, project, f"http://127.0.0.1:{port}")
                time.sleep(3)
                delays = []
                # Where the time goes: from sending the delivery to each request about the
                # task until `pilot-in-progress` is added (its reads, then the tag), in order.
                steps: list[list[float]] = []
                for i in range(config["trials"]):
                    task = fake.add_task(
                        fake.workspace_gid, f"pickup {i}", tags=["pilot"], projects=[project]
                    )
                    event = fake.event(task, "added", parent_gid=project)
                    fake.reset_requests()
                    started = time.monotonic()
                    if fake.deliver(registration.webhook_gid, [event]) != 200:
                        raise SystemExit("a delivery was refused")
                    while "pilot-in-progress" not in fake.tag_names(task):
                        if time.monotonic() - started > 30:
                            raise SystemExit(f"task {task} not picked up within 30 s")
                        time.sleep(0.002)
                    delays.append(time.monotonic() - started)
                    with fake._lock:
                        log = [
                            (method, path, t - started)
                            for (method, path, _), t in zip(
                                fake.requests, fake.request_times, strict=True
                            )
                            if path.startswith(f"/tasks/{task}")
                        ]
                    ends = [n for n, (_, path, _) in enumerate(log) if path.endswith("/addTag")]
                    steps.append([t for _, _, t in log[: ends[0] + 1]])
                    if config.get("verbose"):
                        print(
                            "  ".join(f"{m} {p} {t * 1000:.0f}" for m, p, t in log),
                            file=sys.stderr,
                        )
                    # Its run finishes first: trials do not queue behind each other.
                    done = ProcessedTask.objects.filter(
                        task_gid=task, state=ProcessedTask.State.DONE
                    )
                    while not done.exists():
                        if time.monotonic() - started > 60:
                            raise SystemExit(f"task {task} not done within 60 s")
                        time.sleep(0.01)
            figures["p50_ms"] = statistics.median(delays) * 1000
            figures["p99_ms"] = _percentile(delays, 99) * 1000
            width = min(len(s) for s in steps)
            figures["steps_p50_ms"] = [
                statistics.median(s[n] for s in steps) * 1000 for n in range(width)
            ]
    return figures


def _database_url(kind: str, args: argparse.Namespace, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{uuid.uuid4().hex}.sqlite3'}"
    admin = f"{args.pg}/postgres"
    for sql in (
        f"DROP DATABASE IF EXISTS {args.pg_database}",
        f"CREATE DATABASE {args.pg_database}",
    ):
        subprocess.run(["psql", admin, "-q", "-c", sql], check=True)
    return f"{args.pg}/{args.pg_database}"


def run_child(config: dict) -> dict:
    out = subprocess.run(
        [PYTHON, __file__, "--child", json.dumps(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{config}: failed\n{out.stdout}\n{out.stderr}")
    if config.get("verbose"):
        print(out.stderr, file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-database", default="pilot_throughput_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--pickup-only", action="store_true", help="skip the throughput part (pickup only)"
    )
    parser.add_argument("--verbose", action="store_true", help="each trial's Asana requests")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    base = {"executor": "bench.pipeline_bench:noop", "workers": args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.pickup_only:
            throughput(args, base, Path(tmp))
        pickup(args, base, Path(tmp))


def throughput(args: argparse.Namespace, base: dict, tmp: Path) -> None:
    print(
        f"Throughput, no-op executor, {args.tasks} tasks, {args.workers} workers per cluster "
        "(tasks/minute):"
    )
    for database in ("sqlite", "postgres"):
        for broker in ("orm", "redis"):
            for clusters in (1, 2):
                config = base | {
                    "mode": "throughput",
                    "tasks": args.tasks,
                    "clusters": clusters,
                    "database_url": _database_url(database, args, tmp),
                    "redis_url": args.redis if broker == "redis" else "",
                }
                figures = run_child(config)
                print(
                    f"  {database:<8} {broker:<5} broker, {clusters} cluster(s): "
                    f"{figures['per_minute']:,.0f}",
                    flush=True,
                )


def pickup(args: argparse.Namespace, base: dict, tmp: Path) -> None:
    print(f"\nWebhook delivery → pilot-in-progress, PostgreSQL, {args.trials} trials:")
    for broker in ("orm", "redis"):
        config = base | {
            "mode": "pickup",
            "tasks": 0,
            "trials": args.trials,
            "database_url": _database_url("postgres", args, tmp),
            "redis_url": args.redis if broker == "redis" else "",
            "verbose": args.verbose,
        }
        figures = run_child(config)
        print(
            f"  {broker:<5} broker: p50 {figures['p50_ms']:.0f} ms, "
            f"p99 {figures['p99_ms']:.0f} ms; Asana requests at (p50, ms) "
            + ", ".join(f"{t:.0f}" for t in figures["steps_p50_ms"]),
            flush=True,
        )


if __name__ == "__main__":
    main()
