"""The ledger says which kind of runner holds a claim in a field of its own; rows claimed
before are filled from their claim token's prefix, which is how it was told until now."""

from django.db import migrations, models

KNOWN = ("q", "runpollers", "recovery")


def fill_from_token(apps, schema_editor):
    ProcessedTask = apps.get_model("integrations", "ProcessedTask")
    for kind in KNOWN:
        ProcessedTask.objects.filter(claimed_by__startswith=f"{kind}@").update(runner=kind)
    # Any other token ("worker@…", "webhook@…") was claimed by the process that ran it.
    ProcessedTask.objects.filter(runner="").exclude(claimed_by="").update(runner="worker")


class Migration(migrations.Migration):
    dependencies = [("integrations", "0007_connection_setting_rules")]

    operations = [
        migrations.AddField(
            model_name="processedtask",
            name="runner",
            field=models.CharField(
                blank=True,
                choices=[
                    ("q", "django-q2 cluster"),
                    ("runpollers", "runpollers"),
                    ("recovery", "recovery"),
                    ("worker", "in process"),
                ],
                db_default="",
                default="",
                max_length=16,
            ),
        ),
        migrations.RunPython(fill_from_token, migrations.RunPython.noop),
    ]
