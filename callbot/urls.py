"""Project URLs: the Graph webhook, health, admin and the dashboard."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from callbot.calls import views as calls_views

urlpatterns = [
    path("api/calling/callback", calls_views.callback, name="graph-callback"),
    path("healthz", calls_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
