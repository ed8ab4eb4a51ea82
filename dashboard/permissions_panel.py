"""The app-permissions panel (admins): what the app's token holds against what
Callbot's features need, with the missing ones named and what stops working.

GET reads the token Callbot already uses; POST asks for a new token first, for an
admin who has just granted (or revoked) a permission in Entra ID. Thin: the
comparison is ``callbot.calls.app_permissions``.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from callbot.calls.app_permissions import check_app
from dashboard.permissions import can_manage
from dashboard.views import allowed, render_page


@require_http_methods(["GET", "POST"])
@allowed(can_manage)
def permissions_panel(request: HttpRequest) -> HttpResponse:
    """The panel; POST fetches a fresh token and shows the page again."""
    if request.method == "POST":
        check = check_app(fresh=True)
        if check.error:
            messages.error(request, check.error)
        else:
            messages.success(request, "Checked with a new access token.")
        return redirect("dashboard:permissions")
    check = check_app()
    return render_page(
        request,
        "dashboard/permissions.html",
        nav="settings",
        check=check,
        report=check.report,
        grant=check.grant,
    )
