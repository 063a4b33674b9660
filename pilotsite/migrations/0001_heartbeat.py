from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Heartbeat",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("web", "web server"), ("qcluster", "q cluster"), ("pollers", "pollers")], max_length=16)),
                ("host", models.CharField(max_length=255)),
                ("pid", models.PositiveIntegerField()),
                ("detail", models.CharField(blank=True, max_length=200)),
                ("started_at", models.DateTimeField()),
                ("last_seen", models.DateTimeField(db_index=True)),
            ],
            options={"ordering": ["kind", "host", "pid"]},
        ),
        migrations.AddConstraint(
            model_name="heartbeat",
            constraint=models.UniqueConstraint(fields=("kind", "host", "pid"), name="heartbeat_per_process"),
        ),
    ]
