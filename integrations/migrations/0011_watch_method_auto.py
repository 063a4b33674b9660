"""Search is detected rather than chosen: a new watch method, `auto` (search where the
plan has it, else the tag list), becomes the default. A connection on *search* keeps what it
did (search with the tag list as fallback is exactly `auto`). A connection on *tag list*
moves to `auto` unless a person chose the tag list in its settings (the audit log has a
`connection.settings` row setting it); a connection created with `asana connect --watch
tag_list` cannot be told from the default and moves too. Each move is audited."""

from django.db import migrations, models

SETTINGS_ACTION = "connection.settings"
CHOSE_TAG_LIST = "watch_method = 'tag_list'"


def to_auto(apps, schema_editor):
    AsanaConnection = apps.get_model("integrations", "AsanaConnection")
    AuditLog = apps.get_model("integrations", "AuditLog")
    AsanaConnection.objects.filter(watch_method="search").update(watch_method="auto")
    chosen = AuditLog.objects.filter(
        action=SETTINGS_ACTION, detail__contains=CHOSE_TAG_LIST
    ).values("connection_id")
    moved = AsanaConnection.objects.filter(watch_method="tag_list").exclude(pk__in=chosen)
    for connection in moved:
        AuditLog.objects.create(
            action=SETTINGS_ACTION,
            target=f"{connection.workspace_name or 'Workspace'} ({connection.workspace_gid})",
            detail="watch_method = 'auto' (the new default: the tag list was the default, "
            "never chosen)",
            actor_label="system",
            connection=connection,
        )
    moved.update(watch_method="auto")


def from_auto(apps, schema_editor):
    # Automatic behaves as search did (search, falling back to the tag list on a 402).
    AsanaConnection = apps.get_model("integrations", "AsanaConnection")
    AsanaConnection.objects.filter(watch_method="auto").update(watch_method="search")


class Migration(migrations.Migration):
    dependencies = [("integrations", "0010_safety_rails")]

    operations = [
        migrations.AddField(
            model_name="asanaconnection",
            name="search_detected_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(to_auto, from_auto),
        migrations.AlterField(
            model_name="asanaconnection",
            name="watch_method",
            field=models.CharField(
                choices=[
                    ("auto", "search when available"),
                    ("tag_list", "tag list"),
                    ("webhooks_first", "webhooks first"),
                ],
                db_default="auto",
                default="auto",
                error_messages={
                    "invalid_choice": "Unknown watch method %(value)r: use one of auto, "
                    "tag_list, webhooks_first."
                },
                help_text="automatic: search (open tagged tasks only, one request when idle) "
                "where the plan has it, else the tag list; tag list: every task ever tagged, "
                "each poll; webhooks first: poll at the reconciling interval while a webhook "
                "is healthy.",
                max_length=16,
            ),
        ),
    ]
