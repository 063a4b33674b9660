"""Benchmark: the Asana webhook endpoint under gunicorn on loopback, and delivery-to-pickup delay.

1. Throughput: signed deliveries (each a distinct body, so none is a replay) posted by
   `--clients` processes to gunicorn (`--workers` sync workers) on 127.0.0.1; prints the
   deliveries accepted per second and the p50/p99 response time.
2. Pickup delay: with `manage.py qcluster` running and the fake Asana served over HTTP, a task
   tagged `pilot` is announced by a signed `added` delivery; prints the time from sending the
   delivery to the task carrying `pilot-in-progress` (polling is off, so only the webhook path
   can pick it up).

Not a test: run it by hand and copy the figures into the README.

    .venv/bin/python bench/webhook_bench.py [--deliveries 3000] [--clients 8] [--workers 2]
                                            [--trials 20]
"""

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import start_django  # noqa: E402 (after the path is set)

PYTHON = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(database: Path, asana_base_url: str) -> dict[str, str]:
    # A throwaway database of its own, so the benchmark never touches the real one.
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
        "DEBUG": "off",
        "SECURE_SSL_REDIRECT": "off",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "pilotsite.settings",
        "ASANA_API_BASE_URL": asana_base_url,
        # Long enough for the in-progress tag to be seen before the task is reported done.
        "PILOT_EXECUTOR_COMMAND": "sleep 1",
        "PILOT_EXECUTOR": "",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return dict(os.environ)


def _wait_for_http(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/webhooks/asana/probe/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gunicorn did not answer on port {port}")


@contextmanager
def _process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def serve_site(env: dict[str, str], workers: int) -> Iterator[int]:
    """The site under gunicorn (`workers` sync workers) on a free port of 127.0.0.1, already
    answering; yields the port and stops it afterwards."""
    port = _free_port()
    gunicorn = [
        str(Path(PYTHON).parent / "gunicorn"),
        "pilotsite.wsgi",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    with _process(gunicorn, env):
        _wait_for_http(port)
        yield port


def _signed(secret: str, i: int) -> tuple[bytes, str]:
    # A `changed` event on a field the handler ignores: the benchmark measures the endpoint.
    event = {
        "user": None,
        "created_at": datetime.now(UTC).isoformat(),
        "action": "changed",
        "resource": {"gid": str(10**15 + i), "resource_type": "task"},
        "parent": None,
        "change": {"field": "name", "action": "changed"},
    }
    body = json.dumps({"events": [event]}).encode()
    return body, hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _client(job: tuple[int, str, str, list[int]]) -> list[tuple[float, int]]:
    """One load-generating process: posts its share of deliveries, one connection each (gunicorn
    sync workers close the connection after every response)."""
    port, path, secret, numbers = job
    results = []
    for i in numbers:
        body, signature = _signed(secret, i)
        headers = {"Content-Type": "application/json", "X-Hook-Signature": signature}
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", path, body=body, headers=headers)
        status = conn.getresponse()
        status.read()
        conn.close()
        results.append((time.perf_counter() - started, status.status))
    return results


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def throughput(port: int, path: str, secret: str, deliveries: int, clients: int) -> dict[str, Any]:
    warmup = [(port, path, secret, list(range(-50, 0)))]
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        pool.map(_client, warmup)
        jobs = [(port, path, secret, list(range(c, deliveries, clients))) for c in range(clients)]
        started = time.perf_counter()
        results = [r for share in pool.map(_client, jobs) for r in share]
        elapsed = time.perf_counter() - started
    latencies = [seconds for seconds, _ in results]
    statuses: dict[int, int] = {}
    for _, status in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "deliveries": len(results),
        "statuses": statuses,
        "seconds": elapsed,
        "per_second": statuses.get(200, 0) / elapsed,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
    }


def pickup_delays(fake: Any, webhook_gid: str, project: str, trials: int) -> list[float]:
    delays = []
    for i in range(trials):
        task = fake.add_task(
            fake.workspace_gid, f"bench task {i}", tags=["pilot"], projects=[project]
        )
        event = fake.event(task, "added", parent_gid=project)
        started = time.perf_counter()
        status = fake.deliver(webhook_gid, [event])
        if status != 200:
            raise SystemExit(f"delivery answered {status}")
        deadline = started + 30
        while "pilot-in-progress" not in fake.tag_names(task):
            if time.perf_counter() > deadline:
                raise SystemExit(f"task {task} was not picked up within 30 s")
            time.sleep(0.002)
        delays.append(time.perf_counter() - started)
        time.sleep(1.2)  # let the run finish, so trials do not queue behind each other
    return delays


def run(args: argparse.Namespace, tmp: Path) -> None:
    from integrations.asana.fake.api import FakeAsana
    from integrations.asana.fake.server import FakeAsanaServer

    fake = FakeAsana()
    fake.seed()
    project = fake.add_project(fake.workspace_gid, "Bench")
    with FakeAsanaServer(fake) as server:
        env = _environment(tmp / "bench.sqlite3", server.base_url)
        start_django()

        from django_q.models import OrmQ

        from integrations.connect import connect_workspace
        from integrations.models import WebhookDelivery
        from integrations.webhooks.registration import register_webhook

        connection = connect_workspace(fake.token, fake.workspace_gid, polling_enabled=False)
        with serve_site(env, args.workers) as port:
            registration = register_webhook(connection, project, f"http://127.0.0.1:{port}")
            path = registration.target_url.removeprefix(f"http://127.0.0.1:{port}")
            result = throughput(port, path, registration.secret, args.deliveries, args.clients)
            stored = WebhookDelivery.objects.count()
            # Those deliveries only tested the endpoint; the cluster need not work through them.
            OrmQ.objects.all().delete()

            with _process([PYTHON, "manage.py", "qcluster"], env):
                time.sleep(3)  # the cluster's workers start
                delays = pickup_delays(fake, registration.webhook_gid, project, args.trials)

    print(
        f"gunicorn {args.workers} sync workers, {args.clients} client processes, SQLite (WAL)\n"
        f"  deliveries: {result['deliveries']} in {result['seconds']:.2f} s, statuses "
        f"{result['statuses']}; {stored} recorded\n"
        f"  accepted: {result['per_second']:.0f} deliveries/s\n"
        f"  response time: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms\n"
        f"delivery → pilot-in-progress with qcluster ({len(delays)} trials): "
        f"median {statistics.median(delays) * 1000:.0f} ms, "
        f"max {max(delays) * 1000:.0f} ms, min {min(delays) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
