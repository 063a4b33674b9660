"""Serve a FakeAsana over real HTTP on 127.0.0.1, for tests and local simulation.

    with FakeAsanaServer(fake) as server:
        settings.ASANA_API_BASE_URL = server.base_url   # http://127.0.0.1:<port>/api/1.0

Local simulation: `--seed demo` builds a small workspace and prints the token, the workspace
GID and the commands that act in it as a person would (see `integrations.asana.fake.control`):
    .venv/bin/python -m integrations.asana.fake.server --port 8765 --seed demo
    .venv/bin/python -m integrations.asana.fake.server tag-task "Fix the login redirect loop"
"""

import argparse
import csv
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

import httpx

from integrations.asana.fake import control
from integrations.asana.fake.api import DropConnection, FakeAsana
from integrations.asana.fake.validation import API_PREFIX


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx clients expect
    timeout = 30  # idle keep-alive connections give their thread back
    # One buffered write per response and no Nagle delay: otherwise headers and body go out as
    # two small segments and delayed ACKs add ~40 ms to every request.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: "_Server"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path.startswith(control.CONTROL_PREFIX):
            status, answer = control.handle(self.server.fake, self.command, url.path, body)
            self._send(status, {"Content-Type": "application/json"}, json.dumps(answer).encode())
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            status, headers, payload = self.server.fake.handle(
                self.command, url.path, query, dict(self.headers.items()), body
            )
        except DropConnection:
            self.close_connection = True  # hang up without a status line
            return
        self._send(status, headers, payload)

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests stay quiet; fake.requests records every request


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many clients connect at once in concurrency tests and benchmarks; the default backlog
    # of 5 makes the kernel drop SYNs and the clients wait a second or more to retry.
    request_queue_size = 256
    block_on_close = False

    def __init__(self, address: tuple[str, int], fake: FakeAsana) -> None:
        super().__init__(address, _Handler)
        self.fake = fake


class FakeAsanaServer:
    def __init__(self, fake: FakeAsana, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        self._httpd = _Server((host, port), fake)
        self._thread: threading.Thread | None = None
        self.base_url = f"http://{host}:{self._httpd.server_port}{API_PREFIX}"
        fake.base_url = self.base_url

    def start(self) -> "FakeAsanaServer":
        # A short poll interval keeps shutdown (once per test) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FakeAsanaServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def seed_basic(fake: FakeAsana) -> None:
    """A workspace with a `pilot` tag, a few tagged tasks and a small goal tree."""
    fake.seed()
    ws = fake.workspace_gid
    project = fake.add_project(ws, "Pilot rollout")
    fake.add_task(ws, "Set up the pilot", notes="First task.", tags=["pilot"], projects=[project])
    fake.add_task(ws, "Invite the team", tags=["pilot"], projects=[project])
    fake.add_task(ws, "Already done", tags=["pilot"], completed=True)
    fake.add_task(ws, "Not part of the pilot")
    parent = fake.add_goal(
        ws,
        "Ship the pilot",
        owner_gid=fake.user_gid,
        status="green",
        html_notes="<body>Company goal.</body>",
        due_on="2026-12-31",
        # Asana stores a percentage metric as a fraction: 0.4 is shown as 40%.
        metric={"current_number_value": 0.4, "target_number_value": 1, "unit": "percentage"},
    )
    fake.add_goal(ws, "Onboard ten users", owner_gid=fake.user_gid, parent_gid=parent)
    fake.add_goal(ws, "Write the handbook", parent_gid=parent)


SEEDS = {"basic": seed_basic, "demo": control.seed_demo}
CONTROL_COMMANDS = ("tag-task", "comment", "goal-progress", "state", "employees-csv")
ME = "python -m integrations.asana.fake.server"


def tour(server: "FakeAsanaServer", port: int) -> str:
    """What to do next with a demo fake, with the exact commands."""
    fake = server.fake
    me = f".venv/bin/{ME}"
    there = "" if port == 8765 else f" --port {port}"
    return f"""\
Fake Asana (demo) at {server.base_url}
  token:     {fake.token}
  workspace: {fake.workspace_gid}

1. Add these lines to .env (create it if missing), then run `make run` in another terminal:
     ASANA_API_BASE_URL={server.base_url}
     PILOT_EXECUTOR_COMMAND=echo '{{"summary": "Done by the demo executor"}}'
2. Connect at http://127.0.0.1:8000/admin/?tab=integrations (or the PORT given to `make run`):
     paste the token above and pick the workspace it offers.
3. Employees: {me}{there} employees-csv > employees.csv
     then import it on the integrations tab (Employees: Preview import), or
     .venv/bin/python manage.py employees import employees.csv --workspace {fake.workspace_gid}
4. Tag a task:      {me}{there} tag-task "Fix the login redirect loop"
   Comment on it:   {me}{there} comment "Fix the login redirect loop" "Any news?"
   Move a goal:     {me}{there} goal-progress "Grow subscription revenue" 60000
   See it all:      {me}{there} state
"""


def _control(args: argparse.Namespace) -> int:
    base = f"http://127.0.0.1:{args.port}{control.CONTROL_PREFIX}"
    payload: dict = {}
    if args.command == "tag-task":
        payload = {"task": args.task, "tag": args.tag, "by": args.by}
    elif args.command == "comment":
        payload = {"task": args.task, "text": args.text, "by": args.by}
    elif args.command == "goal-progress":
        payload = {"goal": args.goal, "current": args.current}
    try:
        if args.command in ("state", "employees-csv"):
            response = httpx.get(base + "state", timeout=10)
        else:
            response = httpx.post(base + args.command, json=payload, timeout=10)
    except httpx.TransportError:
        port = "" if args.port == 8765 else f" --port {args.port}"
        print(
            f"No fake Asana answers on port {args.port}: start it with `{ME} --seed demo{port}`.",
            file=sys.stderr,
        )
        return 2
    answer = response.json()
    if response.status_code != 200:
        print(answer["error"], file=sys.stderr)
        return 1
    try:
        if args.command == "employees-csv":
            out = csv.writer(sys.stdout, lineterminator="\n")
            out.writerow(["email", "name", "asana_user_gid"])
            for person in answer["people"]:
                out.writerow([person["email"], person["name"], person["gid"]])
        else:
            print(json.dumps(answer, indent=2))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (`state | head`) stopped early: that is its choice, not an error. Point
        # stdout at devnull so the interpreter's exit flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _control_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=ME, description="Act in a running fake Asana as a person would."
    )
    parser.add_argument("--port", type=int, default=8765, help="the fake's port (8765)")
    commands = parser.add_subparsers(dest="command", required=True)
    tag = commands.add_parser("tag-task", help="add a tag (default pilot) to a task")
    tag.add_argument("task", help="task GID, name, or a unique part of its name")
    tag.add_argument("--tag", default="pilot")
    tag.add_argument(
        "--by", default="", help="as this person (GID, email or name) instead of the seeded user"
    )
    note = commands.add_parser("comment", help="comment on a task")
    note.add_argument("task")
    note.add_argument("text")
    note.add_argument(
        "--by", default="", help="as this person (GID, email or name) instead of the seeded user"
    )
    goal = commands.add_parser("goal-progress", help="set a goal's metric to a value")
    goal.add_argument("goal", help="goal GID, name, or a unique part of its name")
    goal.add_argument("current", type=float, help="in the metric's unit (0.5 is 50%%)")
    commands.add_parser("state", help="print the workspace: people, tasks, goals")
    commands.add_parser("employees-csv", help="print the people as an employees CSV")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in CONTROL_COMMANDS for a in argv):
        return _control(_control_parser().parse_args(argv))
    parser = argparse.ArgumentParser(
        prog=ME,
        description="Run a fake Asana API on 127.0.0.1. Also: "
        + ", ".join(CONTROL_COMMANDS)
        + f" (`{ME} tag-task --help`).",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--seed",
        nargs="?",
        const="basic",
        choices=sorted(SEEDS),
        help="create data and a token: `demo` is the five-minute tour's workspace",
    )
    args = parser.parse_args(argv)
    fake = FakeAsana()
    if args.seed:
        SEEDS[args.seed](fake)
    server = FakeAsanaServer(fake, port=args.port)
    if args.seed == "demo":
        print(tour(server, args.port), flush=True)
    else:
        print(f"ASANA_API_BASE_URL={server.base_url}", flush=True)
    if args.seed == "basic":
        # A token for this throwaway fake, printed so a person can paste it into the admin.
        print(f"token: {fake.token}  workspace: {fake.workspace_gid}  user: {fake.user_gid}")
    server.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
