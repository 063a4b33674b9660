from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from pilotsite import routes

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    *routes.mounted(),
]

handler403 = "pilotsite.views.permission_denied"
handler404 = "pilotsite.views.page_not_found"
