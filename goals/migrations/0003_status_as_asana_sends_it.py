"""Goal and key result statuses are stored as Asana sends them (`green`, `yellow`, `red`,
`achieved`, `partial`, `missed`, `dropped`, or "" for null) instead of pilotsite's own four
states, which folded closed goals into open ones and showed unrated goals as on track.

Every row kept Asana's raw value in `asana_status`, so the new `status` is that value and the
column goes. Going back maps the raw value to the old states again.
"""

from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Substr

OLD_STATES = {
    "green": "on_track",
    "yellow": "at_risk",
    "red": "off_track",
    "achieved": "completed",
    "partial": "at_risk",
    "missed": "off_track",
    "dropped": "off_track",
}
CHOICES = [
    ("green", "On track"),
    ("yellow", "At risk"),
    ("red", "Off track"),
    ("achieved", "Achieved"),
    ("partial", "Partial"),
    ("missed", "Missed"),
    ("dropped", "Dropped"),
    ("", "No status"),
]
MODELS = ("Goal", "KeyResult")


def to_asana_values(apps, schema_editor):
    for name in MODELS:
        apps.get_model("goals", name).objects.update(status=Substr("asana_status", 1, 16))


def to_old_states(apps, schema_editor):
    for name in MODELS:
        model = apps.get_model("goals", name)
        model.objects.update(asana_status=F("status"))
        for asana, old in OLD_STATES.items():
            model.objects.filter(asana_status=asana).update(status=old)
        model.objects.exclude(status__in=set(OLD_STATES.values())).update(status="on_track")


def status_field() -> models.CharField:
    return models.CharField(
        blank=True,
        choices=CHOICES,
        default="",
        help_text="Asana's status value as sent (empty: no status).",
        max_length=16,
    )


class Migration(migrations.Migration):
    dependencies = [("goals", "0002_managers_group")]

    operations = [
        migrations.AlterField(model_name="goal", name="status", field=status_field()),
        migrations.AlterField(model_name="keyresult", name="status", field=status_field()),
        migrations.RunPython(to_asana_values, to_old_states),
        migrations.RemoveField(model_name="goal", name="asana_status"),
        migrations.RemoveField(model_name="keyresult", name="asana_status"),
    ]
