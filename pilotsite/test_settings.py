"""Settings for the test suite: the real settings, read from an environment that gets a
key and plain-HTTP defaults first (tests run without a .env; explicit values still win)."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DEBUG", "off")
os.environ.setdefault("SECURE_SSL_REDIRECT", "off")

from pilotsite.settings import *  # noqa: F403
