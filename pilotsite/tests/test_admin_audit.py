"""Every change a person makes in the admin lands in the audit log, whichever app's model."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

from integrations.models import AuditLog
from pilotsite.admin import AuditedAdmin

pytestmark = pytest.mark.django_db


def test_every_registered_admin_is_audited():
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdmin)
    ]
    assert unaudited == []


def test_creating_a_user_in_the_admin_is_audited_without_the_password(admin_client, admin_user):
    admin_client.post(
        reverse("admin:auth_user_add"),
        {"username": "newbie", "password1": "Sup3r-secret-pw!", "password2": "Sup3r-secret-pw!"},
    )
    entry = AuditLog.objects.get(action="admin.user.add")
    assert (entry.target, entry.actor) == ("newbie", admin_user)
    assert "Sup3r-secret-pw!" not in entry.detail


def test_granting_permissions_to_a_group_is_audited(admin_client):
    group = Group.objects.create(name="Auditors")
    permission = Permission.objects.get(codename="change_asanaconnection")
    admin_client.post(
        reverse("admin:auth_group_change", args=[group.pk]),
        {"name": "Auditors", "permissions": [permission.pk]},
    )
    entry = AuditLog.objects.get(action="admin.group.change")
    assert entry.target == "Auditors" and "Permissions" in entry.detail


def test_deleting_a_user_in_the_admin_is_audited(admin_client):
    user = User.objects.create_user("leaver")
    admin_client.post(reverse("admin:auth_user_delete", args=[user.pk]), {"post": "yes"})
    assert AuditLog.objects.filter(action="admin.user.delete", target="leaver").exists()
