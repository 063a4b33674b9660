"""What every benchmark script does first: Django on a throwaway SQLite database."""

import os
from pathlib import Path


def setup_django(database: Path, **environment: str) -> None:
    """Point Django at `database` (a file in a temporary directory, so a benchmark never
    touches the real one), set `environment` (e.g. LOG_LEVEL="WARNING"), set up Django and
    migrate."""
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef")
    os.environ.setdefault("DEBUG", "off")
    os.environ.update(environment)
    start_django()


def start_django() -> None:
    """Set up Django with the settings the environment names (pilotsite.settings unless
    DJANGO_SETTINGS_MODULE says otherwise) and migrate its database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotsite.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
