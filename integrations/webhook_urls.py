from django.urls import path

from integrations.webhook_views import asana_webhook

urlpatterns = [
    path("asana/<str:hook_id>/", asana_webhook, name="asana-webhook"),
]
