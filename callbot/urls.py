"""Project URLs: the Graph webhook, health, sign-in, admin and the dashboard."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from callbot.calls import views as calls_views
from callbot.observability import exposition
from dashboard import microsoft

urlpatterns = [
    path("api/calling/callback", calls_views.callback, name="graph-callback"),
    path("healthz", calls_views.healthz, name="healthz"),
    path("metrics", exposition.metrics, name="metrics"),
    # Pages naming no icon (the Django admin, the browsable API) make browsers ask
    # here: the dashboard's icon, not a 404 in the console.
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True),
    ),
    path("api/", include("callbot.api.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", microsoft.SignInView.as_view(), name="login"),
    path("accounts/microsoft/", microsoft.start, name="microsoft-signin"),
    path("accounts/microsoft/callback", microsoft.callback, name="microsoft-callback"),
    path(
        "accounts/logout/",
        auth_views.LogoutView.as_view(next_page="login"),
        name="logout",
    ),
    path("", include("callbot.ivr.urls")),
    path("", include("dashboard.urls")),
]

handler404 = "callbot.api.errors.page_not_found"
