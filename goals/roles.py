"""The "Managers" role: view-only access to goals and employees, defined here once.

Both the 0002 migration (a new database) and a post_migrate handler (after anything that
empties tables: a `flush`, transactional tests) call `ensure_managers_group`; it is
idempotent (`get_or_create`, and `permissions.add` skips permissions already held).
"""

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib.auth.models import Group

MANAGERS = "Managers"
# (app label, permission codename) pairs the group holds: viewing, never changing, except
# status drafts (off unless a model is configured), which a manager asks for and approves.
MANAGER_PERMISSIONS = [
    ("goals", "view_goal"),
    ("goals", "view_keyresult"),
    ("goals", "view_goalsync"),
    ("goals", "view_employeegoalstate"),
    # Status drafts: ask for one, and approve or reject it (posting it to Asana).
    ("goals", "add_statusdraft"),
    ("goals", "view_statusdraft"),
    ("integrations", "view_employee"),
]


def ensure_managers_group(
    using: str = "default", apps: Apps = global_apps, **kwargs: object
) -> Group:
    """Create the group if missing and give it MANAGER_PERMISSIONS that exist in `using`.

    `apps` is the registry to take Group and Permission from: a migration passes its
    historical one, post_migrate passes the migrated state's (the live one by default).
    A permission not created yet is skipped; the next migrate's handler adds it.
    """
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = group_model.objects.using(using).get_or_create(name=MANAGERS)
    for app_label, codename in MANAGER_PERMISSIONS:
        permission = (
            permission_model.objects.using(using)
            .filter(content_type__app_label=app_label, codename=codename)
            .first()
        )
        if permission is not None:
            group.permissions.add(permission)
    return group
