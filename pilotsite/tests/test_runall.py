"""`manage.py runall` (what `make run` starts) says when it cannot run, and exits non-zero."""

import socket
import subprocess
import sys

from django.conf import settings

from integrations.tests.procs import clean_env


def test_a_busy_port_is_refused_before_anything_starts():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "runall", "--port", str(port)],
            cwd=settings.BASE_DIR,
            env=clean_env(DJANGO_SETTINGS_MODULE="pilotsite.test_settings", PILOT_TEST_CHILD="1"),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "make run PORT=" in result.stderr
    assert "is running at" not in result.stdout
