"""The "Managers" group: may look at goals and employees, change nothing.

Idempotent: re-running adds nothing twice (get_or_create, and `permissions.add` ignores
permissions the group already has)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Managers"
PERMISSIONS = [
    ("goals", "view_goal"),
    ("goals", "view_keyresult"),
    ("goals", "view_goalsync"),
    ("goals", "view_employeegoalstate"),
    ("integrations", "view_employee"),
]


def create_managers_group(apps, schema_editor):
    db = schema_editor.connection.alias
    # On a fresh database permissions are only created after all migrations; make them now.
    for label in {app for app, _ in PERMISSIONS}:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=db)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(db).get_or_create(name=GROUP)
    for app_label, codename in PERMISSIONS:
        group.permissions.add(
            Permission.objects.using(db).get(content_type__app_label=app_label, codename=codename)
        )


def remove_managers_group(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("auth", "Group").objects.using(db).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("goals", "0001_initial"),
        ("integrations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_managers_group, remove_managers_group)]
