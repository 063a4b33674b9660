import atexit
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotsite.settings")
application = get_wsgi_application()

# Each web server process (every gunicorn worker) records that it is alive.
from pilotsite.liveness import Kind, start_beating  # noqa: E402

atexit.register(start_beating(Kind.WEB).stop)
