"""Pages that start calls: place a call, join a meeting, and the other calls a
transfer or an invite on a call page can use.

Thin, like every view: parse the form, call one service, answer. Placing and
joining create the call in the worker; the page then follows it live (the call
page, or the board until the new call shows up, ``static/dashboard/placing.js``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from callbot.calls import services
from callbot.calls.access import ActionRefusedError
from callbot.calls.models import Action, Call
from callbot.calls.params import peer_target, phone_refused, target_label
from callbot.calls.states import CallKind, CallState
from dashboard import snapshots
from dashboard.permissions import can_act, can_view
from dashboard.views import allowed, client_ip, render_page


class PlaceCallForm(forms.Form):
    target_kind = forms.ChoiceField(
        label="Call",
        choices=[("user", "A Teams user"), ("phone", "A phone number")],
        widget=forms.RadioSelect,
        initial="user",
    )
    user_id = forms.CharField(
        label="Azure AD object id",
        required=False,
        max_length=64,
        widget=forms.TextInput(
            attrs={"placeholder": "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170", "size": 40}
        ),
    )
    phone = forms.CharField(
        label="Phone number",
        required=False,
        max_length=32,
        widget=forms.TextInput(
            attrs={"placeholder": "+14255550123", "type": "tel", "size": 20}
        ),
    )
    display_name = forms.CharField(label="Name", required=False, max_length=255)

    def target(self) -> dict[str, str]:
        """The target as ``params.clean_target`` takes it (the service checks it)."""
        data = self.cleaned_data
        kind = data["target_kind"]
        value = (data["user_id"] if kind == "user" else data["phone"]).strip()
        if not value:
            raise ActionRefusedError(
                "invalid",
                "Give the person's Azure AD object id."
                if kind == "user"
                else "Give the phone number in +E.164 form, e.g. +14255550123.",
            )
        return {
            ("user_id" if kind == "user" else "phone"): value,
            "display_name": data["display_name"],
        }


class JoinMeetingForm(forms.Form):
    join_web_url = forms.CharField(
        label="Teams join link",
        required=False,
        max_length=4000,
        widget=forms.TextInput(
            attrs={
                "placeholder": "https://teams.microsoft.com/meet/… or …/l/meetup-join/…",
                "size": 60,
            }
        ),
    )
    join_meeting_id = forms.CharField(
        label="or Meeting ID",
        required=False,
        max_length=40,
        widget=forms.TextInput(
            attrs={"placeholder": "234 567 890 123", "inputmode": "numeric"}
        ),
    )
    passcode = forms.CharField(label="Passcode", required=False, max_length=64)
    again = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def params(self) -> dict[str, str]:
        data = self.cleaned_data
        if data["join_web_url"].strip() and data["join_meeting_id"].strip():
            raise ActionRefusedError(
                "invalid", "Give the join link or the meeting id, not both."
            )
        if data["join_web_url"].strip():
            return {"join_web_url": data["join_web_url"].strip()}
        if data["join_meeting_id"].strip():
            return {
                "join_meeting_id": data["join_meeting_id"],
                "passcode": data["passcode"],
            }
        raise ActionRefusedError(
            "invalid", "Paste the meeting's Teams join link, or give its meeting id."
        )


@require_http_methods(["GET", "POST"])
@allowed(can_act)
def place_call(request: HttpRequest) -> HttpResponse:
    """Have the bot call a Teams user or a phone number; then follow the call."""
    form = PlaceCallForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            action = services.request_action(
                Action.Kind.PLACE_CALL,
                actor=request.user,
                params={"target": form.target()},
                client_ip=client_ip(request),
            )
        except ActionRefusedError as exc:
            form.add_error(None, exc.message)
        else:
            return _follow(request, action, f"Calling {action.target}")
    return render_page(
        request,
        "dashboard/place.html",
        nav="board",
        form=form,
        phone_refused=phone_refused(),
    )


@require_http_methods(["GET", "POST"])
@allowed(can_act)
def join_meeting(request: HttpRequest) -> HttpResponse:
    """Join a meeting by any Teams join link or by meeting id and passcode; asks
    first when the bot is already in that meeting."""
    form = JoinMeetingForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            joined = services.request_join(
                actor=request.user,
                params=form.params(),
                again=form.cleaned_data["again"],
                client_ip=client_ip(request),
            )
        except ActionRefusedError as exc:
            form.add_error(None, exc.message)
        else:
            if joined.action is None:
                confirm = JoinMeetingForm(initial={**form.cleaned_data, "again": True})
                return render_page(
                    request,
                    "dashboard/join.html",
                    nav="meetings",
                    form=confirm,
                    meeting=joined.meeting,
                    already_in=joined.already_in,
                )
            messages.success(
                request, "Joining: this page follows the join as Teams answers."
            )
            return redirect("dashboard:meeting", meeting_id=joined.meeting.pk)
    return render_page(request, "dashboard/join.html", nav="meetings", form=form)


def _follow(request: HttpRequest, action: Action, doing: str) -> HttpResponse:
    """The call page once the worker has made the call (at once on the embedded
    default), else the board, which opens it when it appears."""
    action.refresh_from_db(fields=["call", "status"])
    if action.call_id is not None:
        return redirect("dashboard:call", call_id=action.call_id)
    messages.info(request, f"{doing}: the call opens here when Teams answers.")
    return redirect(f"{reverse('dashboard:board')}?placing={action.pk}")


def _other_call_shape(call: Call) -> dict[str, Any]:
    target = peer_target(call)
    return {
        "id": call.pk,
        "name": target_label(target) if target else call.source_display,
        "kind": "user" if target and target.get("user_id") else "phone",
        "state": call.state,
    }


@require_GET
@allowed(can_view)
def other_calls(request: HttpRequest, call_id: int) -> JsonResponse:
    """The bot's other established peer-to-peer calls whose party Callbot knows:
    the calls a consultative transfer (or a move into this call) can use. Read
    once when a dialog opens."""
    try:
        call = snapshots.access_call(request.user, call_id)
    except snapshots.CallAccessError:
        raise Http404("No such call") from None
    rows = (
        Call.objects.filter(state=CallState.ESTABLISHED, kind=CallKind.PEER_TO_PEER)
        .exclude(pk=call.pk)
        .order_by("-created_at")[:50]
    )
    shapes = [_other_call_shape(c) for c in rows if peer_target(c) is not None]
    return JsonResponse({"calls": shapes})
