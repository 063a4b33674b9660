from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command


@pytest.mark.django_db
def test_ensureadmin_creates_a_superuser_with_a_random_password_printed_once():
    out = StringIO()
    call_command("ensureadmin", url="http://127.0.0.1:9000/admin/", stdout=out)
    text = out.getvalue()
    password = text.split("with password ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert "http://127.0.0.1:9000/admin/" in text


@pytest.mark.django_db
def test_ensureadmin_leaves_an_existing_admin_alone(admin_user):
    out = StringIO()
    call_command("ensureadmin", stdout=out)
    assert "An admin account exists" in out.getvalue()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    admin_user.refresh_from_db()
    assert admin_user.check_password("password")


@pytest.mark.django_db
def test_ensureadmin_refuses_to_clobber_an_ordinary_user_named_admin(django_user_model):
    django_user_model.objects.create_user("admin", password="their-own-password")
    with pytest.raises(CommandError, match="exists but no superuser does"):
        call_command("ensureadmin", stdout=StringIO())
    assert not django_user_model.objects.filter(is_superuser=True).exists()


@pytest.mark.django_db
def test_admin_index_opens_on_integrations_for_an_admin(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert 'id="tab-integrations"' in page


@pytest.mark.django_db
def test_a_manager_lands_on_the_goals_tab_and_is_not_shown_integrations(client, manager_user):
    client.force_login(manager_user)
    page = client.get("/admin/").content.decode()
    assert 'id="tab-goals"' in page
    assert "?tab=integrations" not in page
    denied = client.get("/admin/?tab=integrations").content.decode()
    assert "You do not have permission to view integrations" in denied
