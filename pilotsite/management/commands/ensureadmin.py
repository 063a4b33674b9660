"""Make sure someone can sign in the first time, without a password in the repository."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create an 'admin' superuser with a random password when no superuser exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000/admin/")

    def handle(self, *args, username: str, url: str, **options):
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                f"An admin account exists. Sign in at {url} "
                f"(forgot the password? `.venv/bin/python manage.py changepassword {username}`)."
            )
            return
        if users.objects.filter(**{users.USERNAME_FIELD: username}).exists():
            raise CommandError(
                f"A user '{username}' exists but no superuser does: create one with "
                "`.venv/bin/python manage.py createsuperuser` (any other name), then start again."
            )
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the first admin account. Sign in at {url} as '{username}' with password "
                f"{password}\nThis password is shown once and stored nowhere else; change it with "
                f"`.venv/bin/python manage.py changepassword {username}`."
            )
        )
