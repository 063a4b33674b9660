from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_webhook_resource_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="asanaconnection",
            name="watch_method",
            field=models.CharField(
                choices=[
                    ("tag_list", "tag list"),
                    ("search", "search"),
                    ("webhooks_first", "webhooks first"),
                ],
                db_default="tag_list",
                default="tag_list",
                help_text="tag list: every task ever tagged, each poll (any plan); search: open "
                "tagged tasks only, one request when idle (paid plans); webhooks first: poll at "
                "the reconciling interval while a webhook is healthy.",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="asanaconnection",
            name="last_reconcile_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="asanaconnection",
            name="search_unavailable_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
