import os

# Tests run without a .env: give them a key and the fast, local defaults.
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DEBUG", "off")
os.environ.setdefault("SECURE_SSL_REDIRECT", "off")
