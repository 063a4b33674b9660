"""Run the whole application in the foreground: web server, django-q2 cluster and pollers.

Each part is a child process; a signal stops them all, and if one exits the others are
stopped too, so a half-running application is never left behind.
"""

import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def port_in_use(bind: str, port: int) -> bool:
    """Whether another process already listens on `bind`:`port` (TCP). Checked before anything
    starts, because gunicorn would only give up after several seconds of retries."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError:
            return True
    return False


class Command(BaseCommand):
    help = "Start gunicorn, the django-q2 cluster and the pollers; stop them together."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--bind", default="127.0.0.1")

    def handle(self, *args, port: int, bind: str, **options):
        if port_in_use(bind, port):
            raise CommandError(
                f"Port {port} on {bind} is already in use: stop what is using it, or start "
                f"pilotsite on another port (make run PORT=8001)."
            )
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        commands = {
            # Threads let the site answer Asana's webhook handshake while another request
            # of its own (POST /webhooks) is still waiting for Asana.
            "web": [
                sys.executable,
                "-m",
                "gunicorn",
                "pilotsite.wsgi",
                "--bind",
                f"{bind}:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            "qcluster": [*manage, "qcluster"],
            "pollers": [*manage, "runpollers"],
        }
        stopping = False
        failed = ""

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        children = {
            name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()
        }
        self.stdout.write(f"pilotsite is running at http://{bind}:{port}/admin/ (Ctrl-C stops it)")
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        failed = f"{name} exited with status {child.returncode}"
                        self.stderr.write(f"{failed}; stopping")
                        stopping = True
                time.sleep(0.5)
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            for child in children.values():
                try:
                    child.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    child.kill()
        if failed:
            raise CommandError(f"{failed}, so pilotsite stopped; its output above says why.")
