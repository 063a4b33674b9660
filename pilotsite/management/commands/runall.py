"""Run the whole application in the foreground: web server, django-q2 cluster and pollers.

Each part is a child process; a signal stops them all, and if one exits the others are
stopped too, so a half-running application is never left behind.
"""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start gunicorn, the django-q2 cluster and the pollers; stop them together."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--bind", default="127.0.0.1")

    def handle(self, *args, port: int, bind: str, **options):
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
                        self.stderr.write(f"{name} exited with status {child.returncode}; stopping")
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
