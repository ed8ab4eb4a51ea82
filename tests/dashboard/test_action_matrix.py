"""Every action kind x every role x every way in, against a table of outcomes.

Two ways in: the live socket's ``action`` message, and the HTTP forms of
``dashboard/views.py`` (only "join now" on a meeting page offers a kind there).
The tables below are the specification; a new kind fails
``test_the_tables_name_every_action_kind`` until it has its rows.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from django.test import Client

import pytest

import dashboard.place
import dashboard.views
from callbot.calls.kinds import KINDS
from callbot.calls.models import Action, AuditEntry, Call, Participant
from tests.dashboard.sockets import connect, open_socket
from tests.factories import MeetingFactory

ACCEPTED = "accepted"
INVALID = "refused:invalid"  # the socket takes only the kinds the page offers
FORBIDDEN = "refused:forbidden"  # the role may watch but not act
UNSUPPORTED = "refused:unsupported"  # Graph cannot do it, whoever asks
# A ringing-call decision asked for on a call that is not ringing (the table's call
# is an established meeting); tests/dashboard/test_ringing.py covers a ringing one.
WRONG_STATE = "refused:wrong_state"
SIGNED_OUT = "signed out"  # socket closed with 4401; a page redirects to sign-in
NOT_OFFERED = "not offered"  # no form asks for this kind
NOT_OFFERED_HERE = "refused:not_offered"  # Graph does not allow it on this call

ROLES = ("admin", "supervisor", "auditor", "signed out")

# Over the socket: kind -> outcome for (admin, supervisor, auditor, signed out).
SOCKET: dict[str, tuple[str, str, str, str]] = {
    "answer": (WRONG_STATE, WRONG_STATE, FORBIDDEN, SIGNED_OUT),
    "reject": (WRONG_STATE, WRONG_STATE, FORBIDDEN, SIGNED_OUT),
    "redirect": (WRONG_STATE, WRONG_STATE, FORBIDDEN, SIGNED_OUT),
    "transfer": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "place_call": (INVALID, INVALID, INVALID, SIGNED_OUT),
    "place_group_call": (INVALID, INVALID, INVALID, SIGNED_OUT),
    "join_meeting": (INVALID, INVALID, INVALID, SIGNED_OUT),
    "create_online_meeting": (INVALID, INVALID, INVALID, SIGNED_OUT),
    "invite": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "mute_bot": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "unmute_bot": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "mute_participant": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "remove_participant": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "start_hold_music": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "stop_hold_music": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "hang_up": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "play_prompt": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "record_response": (INVALID, INVALID, INVALID, SIGNED_OUT),
    "cancel_media_processing": (INVALID, INVALID, INVALID, SIGNED_OUT),
    "subscribe_to_tone": (INVALID, INVALID, INVALID, SIGNED_OUT),
    "send_dtmf_tones": (INVALID, INVALID, INVALID, SIGNED_OUT),
    # The meeting's media is service hosted: Graph changes the role only with
    # app-hosted media (contract §6.14), so the control is not offered.
    "change_screen_sharing_role": (
        NOT_OFFERED_HERE,
        NOT_OFFERED_HERE,
        FORBIDDEN,
        SIGNED_OUT,
    ),
    "update_recording_status": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    "keep_alive": (INVALID, INVALID, INVALID, SIGNED_OUT),
    "mute_all": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    # Nobody waits on the table's call (see tests/e2e/test_ringing.py for one).
    "take": (WRONG_STATE, WRONG_STATE, FORBIDDEN, SIGNED_OUT),
    # The service says what Graph cannot do before it asks who is asking.
    "unmute_participant": (UNSUPPORTED, UNSUPPORTED, UNSUPPORTED, SIGNED_OUT),
}

_NO_FORM = (NOT_OFFERED, NOT_OFFERED, NOT_OFFERED, NOT_OFFERED)
# Through the pages' HTTP forms: kind -> outcome for the same four.
HTTP: dict[str, tuple[str, str, str, str]] = {
    kind: _NO_FORM for kind in SOCKET if kind not in ("join_meeting", "place_call")
} | {
    # POST /meetings/<id>/join; the auditor gets 403 before any service is asked.
    "join_meeting": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
    # POST /calls/new/
    "place_call": (ACCEPTED, ACCEPTED, FORBIDDEN, SIGNED_OUT),
}

# What each kind carries when asked for, so that a refusal is about the role or
# the kind, never about missing parameters.
PARAMS: dict[str, dict[str, Any]] = {
    "invite": {"target": {"user_id": "8b0c5c2e-3f4a-4d8e-9a51-0c1d2e3f4a5b"}},
    "play_prompt": {"uri": "https://callbot.example.com/static/welcome.wav"},
    "change_screen_sharing_role": {"role": "viewer"},
    "update_recording_status": {"status": "recording"},
    "transfer": {"target": {"phone": "+14255550100"}},
    "redirect": {"target": {"phone": "+14255550100"}},
    "place_call": {"target": {"phone": "+14255550100"}},
    "send_dtmf_tones": {"tones": "123"},
}


def test_the_tables_name_every_action_kind() -> None:
    assert set(SOCKET) == set(KINDS)
    assert set(HTTP) == set(KINDS)


def _kinds_views_ask_for() -> set[str]:
    """The kinds dashboard/views.py and place.py pass to a service, read from
    their source."""
    tree = ast.parse(
        Path(dashboard.views.__file__).read_text()
        + Path(dashboard.place.__file__).read_text()
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "request_join"
        ):
            found.add("join_meeting")  # one kind, asked for by its own service
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "services"
            and node.args
        ):
            kind = node.args[0]
            if isinstance(kind, ast.Attribute):  # Action.Kind.JOIN_MEETING
                found.add(Action.Kind[kind.attr].value)
            elif isinstance(kind, ast.Constant):
                found.add(str(kind.value))
    return found


def test_the_http_table_offers_what_the_views_offer() -> None:
    offered = {kind for kind, row in HTTP.items() if row != _NO_FORM}
    assert offered == _kinds_views_ask_for() == {"join_meeting", "place_call"}


def _outcome(answer: dict[str, Any]) -> str:
    if answer["type"] == "action.accepted":
        return ACCEPTED
    assert answer["type"] == "action.refused", answer
    return f"refused:{answer['code']}"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live", "enqueued")
@pytest.mark.parametrize("role", ["admin", "supervisor", "auditor"])
async def test_socket_actions_by_role(
    role: str,
    ada: Any,
    bob: Any,
    carol: Any,
    meeting_call: Call,
    settings: Any,
) -> None:
    settings.LIVE_ACTION_BURST = 1000  # the limit is not under test here
    user = {"admin": ada, "supervisor": bob, "auditor": carol}[role]
    ana = await Participant.objects.aget(call=meeting_call, display_name="Ana Lopez")
    socket = await open_socket(user)

    seen: dict[str, str] = {}
    for kind in SOCKET:
        await socket.send_json_to(
            {
                "type": "action",
                "request_id": kind,
                "call": meeting_call.pk,
                "kind": kind,
                "participant": ana.graph_id if KINDS[kind].participant else "",
                "params": PARAMS.get(kind, {})
                # Out of a meeting a transfer names who is transferred.
                | ({"transferee": ana.graph_id} if kind == "transfer" else {}),
            }
        )
        answer = await socket.receive_json_from()
        assert answer["request_id"] == kind
        seen[kind] = _outcome(answer)
    await socket.disconnect()

    column = ROLES.index(role)
    assert seen == {kind: row[column] for kind, row in SOCKET.items()}
    # Every refusal is on the record under the person's name; every acceptance
    # is an Action they asked for.
    refused = [kind for kind, outcome in seen.items() if outcome.startswith("refused")]
    audited = [
        entry.action
        async for entry in AuditEntry.objects.filter(
            outcome="refused", actor=user
        ).order_by("pk")
    ]
    assert audited == refused
    asked = {a.kind async for a in Action.objects.filter(requested_by=user)}
    accepted = {k for k, outcome in seen.items() if outcome == ACCEPTED}
    assert asked == {
        "mute_participant" if kind == "mute_all" else kind for kind in accepted
    }


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live")
async def test_a_signed_out_socket_asks_for_nothing() -> None:
    assert {row[ROLES.index("signed out")] for row in SOCKET.values()} == {SIGNED_OUT}
    socket = await connect(None)
    await socket.connect()
    assert await socket.receive_output() == {"type": "websocket.close", "code": 4401}
    await socket.disconnect()
    assert await Action.objects.acount() == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("enqueued")
@pytest.mark.parametrize("role", ROLES)
def test_http_forms_by_role(role: str, ada: Any, bob: Any, carol: Any) -> None:
    meeting = MeetingFactory()
    forms = {
        "join_meeting": f"/meetings/{meeting.pk}/join",
        "place_call": "/calls/new/",
    }
    data = {
        "place_call": {
            "target_kind": "user",
            "user_id": "8b0c5c2e-3f4a-4d8e-9a51-0c1d2e3f4a5b",
        }
    }
    client = Client()
    user = {"admin": ada, "supervisor": bob, "auditor": carol}.get(role)
    if user is not None:
        client.force_login(user)

    seen: dict[str, str] = {}
    for kind in HTTP:
        if kind not in forms:
            seen[kind] = NOT_OFFERED
            continue
        before = Action.objects.filter(kind=kind).count()
        response = client.post(forms[kind], data.get(kind, {}))
        if response.status_code == 403:
            seen[kind] = FORBIDDEN
        elif response["Location"].startswith("/accounts/login/"):
            seen[kind] = SIGNED_OUT
        else:
            assert response["Location"] in (
                f"/meetings/{meeting.pk}/",
                f"/?placing={Action.objects.filter(kind=kind).last().pk}",
            )
            made = Action.objects.filter(kind=kind).count() - before
            seen[kind] = ACCEPTED if made == 1 else f"refused ({made} actions)"

    column = ROLES.index(role)
    assert seen == {kind: row[column] for kind, row in HTTP.items()}
