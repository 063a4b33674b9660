from django.urls import path

from integrations.webhooks.views import asana_webhook

urlpatterns = [
    path("asana/<str:hook_id>/", asana_webhook, name="asana-webhook"),
]
