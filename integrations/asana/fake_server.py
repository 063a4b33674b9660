"""Serve a FakeAsana over real HTTP on 127.0.0.1, for tests and local simulation.

    with FakeAsanaServer(fake) as server:
        settings.ASANA_API_BASE_URL = server.base_url   # http://127.0.0.1:<port>/api/1.0

Local simulation (prints the base URL and the token to use):
    .venv/bin/python -m integrations.asana.fake_server --port 8765 --seed
"""

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from integrations.asana.fake import DropConnection, FakeAsana
from integrations.asana.fake_validation import API_PREFIX


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
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            status, headers, payload = self.server.fake.handle(
                self.command, url.path, query, dict(self.headers.items()), body
            )
        except DropConnection:
            self.close_connection = True  # hang up without a status line
            return
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
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}{API_PREFIX}"
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


def seed_demo(fake: FakeAsana) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a fake Asana API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", action="store_true", help="create demo data and a token")
    args = parser.parse_args()
    fake = FakeAsana()
    if args.seed:
        seed_demo(fake)
    server = FakeAsanaServer(fake, port=args.port)
    print(f"ASANA_API_BASE_URL={server.base_url}")
    if args.seed:
        # A token for this throwaway fake, printed so a person can paste it into the admin.
        print(f"token: {fake.token}  workspace: {fake.workspace_gid}  user: {fake.user_gid}")
    server.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
