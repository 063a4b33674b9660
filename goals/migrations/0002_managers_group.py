"""The "Managers" group on a new database; its name and permissions come from goals.roles,
shared with the post_migrate handler that keeps it in place after a flush."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from goals.roles import MANAGER_PERMISSIONS, MANAGERS, ensure_managers_group


def create_managers_group(apps, schema_editor):
    db = schema_editor.connection.alias
    # On a fresh database permissions are only created after all migrations; make them now.
    for label in {app for app, _ in MANAGER_PERMISSIONS}:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=db)
        app_config.models_module = None
    ensure_managers_group(db, apps=apps)


def remove_managers_group(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("auth", "Group").objects.using(db).filter(name=MANAGERS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("goals", "0001_initial"),
        ("integrations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_managers_group, remove_managers_group)]
