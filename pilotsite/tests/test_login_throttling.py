"""The admin sign-in is throttled against password guessing (django-axes)."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

LOGIN = reverse("admin:login")


def sign_in(client: Client, password: str):
    return client.post(LOGIN, {"username": "admin", "password": password, "next": "/admin/"})


@pytest.fixture
def limit(settings) -> int:
    return settings.AXES_FAILURE_LIMIT


def test_wrong_passwords_up_to_the_limit_lock_the_sign_in_with_a_clear_message(admin_user, limit):
    client = Client()
    for _ in range(limit - 1):
        assert sign_in(client, "guess").status_code == 200  # the form again, with its error
    locked = sign_in(client, "guess")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Sign-in locked" in page and "“admin”" in page
    assert "manage.py axes_reset_username admin" in page
    # Even the right password is refused while locked.
    assert sign_in(client, "password").status_code == 429


def test_the_lock_is_per_username_and_address(admin_user, django_user_model, limit):
    django_user_model.objects.create_superuser("other", "o@example.com", "password")
    client = Client()
    for _ in range(limit):
        sign_in(client, "guess")
    other = client.post(LOGIN, {"username": "other", "password": "password", "next": "/admin/"})
    assert other.status_code == 302
    elsewhere = Client(REMOTE_ADDR="10.0.0.9")
    assert sign_in(elsewhere, "password").status_code == 302


def test_axes_reset_unlocks(admin_user, limit):
    client = Client()
    for _ in range(limit):
        sign_in(client, "guess")
    call_command("axes_reset", verbosity=0)
    assert sign_in(client, "password").status_code == 302


def test_a_success_forgets_earlier_failures(admin_user, limit):
    client = Client()
    for _ in range(limit - 1):
        sign_in(client, "guess")
    assert sign_in(client, "password").status_code == 302
    client.logout()
    assert sign_in(client, "guess").status_code == 200
