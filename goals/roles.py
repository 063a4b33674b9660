"""The "Managers" role: view-only access to goals and employees.

The 0002 migration creates the group on a new database; this post_migrate handler keeps it
in place after anything that empties tables (a `flush`, transactional tests), idempotently.
"""

from django.contrib.auth.models import Group, Permission

MANAGERS = "Managers"
MANAGER_PERMISSIONS = [
    ("goals", "view_goal"),
    ("goals", "view_keyresult"),
    ("goals", "view_goalsync"),
    ("goals", "view_employeegoalstate"),
    ("integrations", "view_employee"),
]


def ensure_managers_group(using: str = "default", **kwargs: object) -> Group:
    group, _ = Group.objects.using(using).get_or_create(name=MANAGERS)
    for app_label, codename in MANAGER_PERMISSIONS:
        permission = (
            Permission.objects.using(using)
            .filter(content_type__app_label=app_label, codename=codename)
            .first()
        )
        if permission is not None:
            group.permissions.add(permission)
    return group
