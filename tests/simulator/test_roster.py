"""Rosters (full and delta), participants actions, invites, escalation, online meetings."""

from __future__ import annotations

from typing import Any

import httpx

from tests.simulator.conftest import (
    ANA,
    APP_MEDIA,
    LEE,
    RAVI,
    meeting_with_bot,
    ring_and_answer,
    rosters,
)
from tests.support.emulator import RecordingWebhook, RunningEmulator


def names(roster: list[dict[str, Any]]) -> list[str]:
    found = []
    for entry in roster:
        identity = entry["info"]["identity"]
        member = (
            identity.get("user")
            or identity.get("application")
            or identity.get("phone")
            or {}
        )
        found.append(member.get("displayName") or member.get("id"))
    return sorted(found)


def test_meeting_join_echoes_meeting_info_and_sends_a_full_roster(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting, call_id = meeting_with_bot(emulator, webhook, graph)

    established = next(
        i["resourceData"]
        for i in webhook.notifications(call_id)
        if isinstance(i["resourceData"], dict)
        and i["resourceData"].get("state") == "established"
    )
    first = rosters(webhook, call_id)[0]

    assert established["chatInfo"]["threadId"] == meeting["chatInfo"]["threadId"]
    assert (
        established["meetingInfo"]["@odata.type"]
        == "#microsoft.graph.organizerMeetingInfo"
    )
    assert names(first) == ["Callbot"]
    assert (
        first[0]["id"]
        == graph.get(f"/communications/calls/{call_id}").json()["myParticipantId"]
    )


def test_full_roster_follows_joins_mutes_and_leaves(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting, call_id = meeting_with_bot(emulator, webhook, graph)
    path = f"/meetings/{meeting['id']}/participants"

    ana = emulator.control("POST", path, ANA)["participantId"]
    emulator.control("POST", path, LEE)
    emulator.control("PATCH", f"{path}/{ana}", {"muted": True, "sharing": True})
    muted = webhook.wait_for(
        lambda n: [
            e
            for r in rosters(webhook, call_id)
            for e in r
            if e["id"] == ana and e["isMuted"]
        ],
        call_id,
    )
    emulator.control("DELETE", f"{path}/{ana}")

    webhook.wait_for(
        lambda n: names(rosters(webhook, call_id)[-1]) == ["Callbot", "Lee Chen"],
        call_id,
    )
    assert any(
        s["mediaType"] == "videoBasedScreenSharing" for s in muted[0]["mediaStreams"]
    )
    listed = graph.get(f"/communications/calls/{call_id}/participants").json()["value"]
    assert names(listed) == ["Callbot", "Lee Chen"]


def test_delta_roster_sends_changes_with_sequence_numbers(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting, call_id = meeting_with_bot(emulator, webhook, graph, delta=True)
    path = f"/meetings/{meeting['id']}/participants"

    ana = emulator.control("POST", path, ANA)["participantId"]
    lee = emulator.control("POST", path, LEE)["participantId"]
    emulator.control("DELETE", f"{path}/{ana}")
    graph.delete(f"/communications/calls/{call_id}/participants/{lee}")

    webhook.wait_for(lambda n: len(rosters(webhook, call_id)) == 5, call_id)
    deltas = rosters(webhook, call_id)
    assert all(d["@odata.type"] == "#microsoft.graph.deltaParticipants" for d in deltas)
    assert [d["sequenceNumber"] for d in deltas] == [1, 2, 3, 4, 5]
    assert [len(d["participants"]) for d in deltas] == [1, 1, 1, 1, 1]
    left, removed = deltas[3]["participants"][0], deltas[4]["participants"][0]
    assert left["id"] == ana
    assert left["removedState"]["reason"] == "left"
    assert removed["id"] == lee
    assert removed["removedState"]["reason"] == "removed"
    assert all(
        d["participants"][0]["rosterSequenceNumber"] == d["sequenceNumber"]
        for d in deltas
    )


def test_self_mute_and_participant_mute_complete_at_once_with_roster(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting, call_id = meeting_with_bot(emulator, webhook, graph)
    ana = emulator.control("POST", f"/meetings/{meeting['id']}/participants", ANA)[
        "participantId"
    ]

    mute = graph.post(
        f"/communications/calls/{call_id}/mute", json={"clientContext": "m"}
    )
    unmute = graph.post(f"/communications/calls/{call_id}/unmute", json={})
    other = graph.post(
        f"/communications/calls/{call_id}/participants/{ana}/mute", json={}
    )

    assert mute.json()["@odata.type"] == "#microsoft.graph.muteParticipantOperation"
    assert mute.json()["status"] == "completed"
    assert unmute.json()["@odata.type"] == "#microsoft.graph.unmuteParticipantOperation"
    assert other.json()["status"] == "completed"
    assert "Location" in other.headers
    webhook.wait_for(
        lambda n: any(
            e["id"] == ana and e["isMuted"]
            for r in rosters(webhook, call_id)
            for e in r
        ),
        call_id,
    )
    assert not [
        i for i in webhook.notifications(call_id) if "/operations/" in i["resourceUrl"]
    ]


def test_self_mute_is_refused_in_a_peer_to_peer_call(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    assert (
        graph.post(f"/communications/calls/{call_id}/mute", json={}).status_code == 400
    )


def test_hold_music_answers_202_running_then_completes(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting, call_id = meeting_with_bot(emulator, webhook, graph)
    ana = emulator.control("POST", f"/meetings/{meeting['id']}/participants", ANA)[
        "participantId"
    ]

    start = graph.post(
        f"/communications/calls/{call_id}/participants/{ana}/startHoldMusic",
        json={"clientContext": "h"},
    )
    stop = graph.post(
        f"/communications/calls/{call_id}/participants/{ana}/stopHoldMusic", json={}
    )

    assert start.status_code == 202
    assert start.json()["status"] == "running"
    assert start.json()["@odata.type"] == "#microsoft.graph.startHoldMusicOperation"
    assert stop.status_code == 202
    assert stop.json()["@odata.type"] == "#microsoft.graph.stopHoldMusicOperation"
    done = webhook.wait_for(
        lambda n: len([i for i in n if "/operations/" in i["resourceUrl"]]) == 2,
        call_id,
    )
    assert done


def test_screen_sharing_role_shows_the_bots_stream(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    _, call_id = meeting_with_bot(emulator, webhook, graph, media=APP_MEDIA)
    bot_id = graph.get(f"/communications/calls/{call_id}").json()["myParticipantId"]

    response = graph.post(
        f"/communications/calls/{call_id}/changeScreenSharingRole",
        json={"role": "sharer"},
    )

    assert response.status_code == 202
    webhook.wait_for(
        lambda n: any(
            e["id"] == bot_id
            and any(s["direction"] == "sendOnly" for s in e["mediaStreams"])
            for r in rosters(webhook, call_id)
            for e in r
        ),
        call_id,
    )


def test_invite_with_replaces_call_id_moves_the_peer_and_ends_the_old_call(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    p2p = ring_and_answer(emulator, webhook, graph, caller=LEE)
    _, meeting_call = meeting_with_bot(emulator, webhook, graph)
    body = {
        "participants": [
            {
                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": LEE,
                "replacesCallId": p2p,
            }
        ],
        "clientContext": "inv",
    }

    response = graph.post(
        f"/communications/calls/{meeting_call}/participants/invite", json=body
    )

    assert response.status_code == 200
    operation = response.json()
    assert operation["@odata.type"] == "#microsoft.graph.inviteParticipantsOperation"
    assert operation["status"].lower() == "running"
    assert (
        operation["participants"][0]["identity"]["user"]["tenantId"]
        == emulator.config.bot.tenant_id
    )
    webhook.wait_for(lambda n: "deleted:terminated" in webhook.call_states(p2p))
    webhook.wait_for(
        lambda n: "Lee Chen" in names(rosters(webhook, meeting_call)[-1]), meeting_call
    )
    # Order holds per call; two calls' notifications travel independently (as in Graph).
    order = [i["resourceUrl"] for i in webhook.notifications(meeting_call)]
    op_at = next(k for k, url in enumerate(order) if "/operations/" in url)
    assert order[op_at + 1 :] == [f"/communications/calls/{meeting_call}/participants"]
    deleted = webhook.notifications(p2p)[-1]["resourceData"]["resultInfo"]
    assert (deleted["code"], deleted["subcode"]) == (200, 5300)
    assert "Lee Chen" in names(rosters(webhook, meeting_call)[-1])


def test_invite_needs_the_group_call_permission(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    with emulator.graph() as graph:
        _, call_id = meeting_with_bot(emulator, webhook, graph)
    emulator.control(
        "PATCH",
        "/config",
        {
            "permissions": [
                "Calls.Initiate.All",
                "Calls.JoinGroupCall.All",
                "Calls.AccessMedia.All",
            ]
        },
    )
    with emulator.graph() as limited:
        response = limited.post(
            f"/communications/calls/{call_id}/participants/invite",
            json={"participants": [{"identity": ANA}]},
        )

    assert response.status_code == 403
    assert "Calls.InitiateGroupCall.All" in response.json()["error"]["message"]


def test_escalation_drops_a_bot_without_group_call_permission(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)
    emulator.control(
        "PATCH",
        "/config",
        {
            "revokePermissions": [
                "Calls.JoinGroupCall.All",
                "Calls.JoinGroupCallAsGuest.All",
            ]
        },
    )

    emulator.control("POST", f"/calls/{call_id}/escalate", {"add": RAVI})

    deleted = webhook.wait_for(
        lambda n: [i for i in n if i["changeType"] == "deleted"], call_id
    )[0]
    assert deleted["resourceData"]["resultInfo"] == {
        "@odata.type": "#microsoft.graph.resultInfo",
        "code": 403,
        "subcode": 7504,
        "message": (
            "Call was escalated to a group call and the application lacks "
            "Calls.JoinGroupCall.All."
        ),
    }


def test_escalation_keeps_a_permitted_bot_and_starts_rosters(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    emulator.control("POST", f"/calls/{call_id}/escalate", {"add": RAVI})

    roster = webhook.wait_for(lambda n: rosters(webhook, call_id), call_id)[0]
    assert names(roster) == ["Ana Lopez", "Callbot", "Ravi Iyer"]
    update = [
        i["resourceData"]
        for i in webhook.notifications(call_id)
        if isinstance(i["resourceData"], dict) and i["resourceData"].get("chatInfo")
    ]
    assert update
    assert update[0]["state"] == "established"


def test_join_meeting_by_join_meeting_id_and_unknown_id_fails_later(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting = emulator.control(
        "POST", "/meetings", {"subject": "Bridge", "passcodeRequired": True}
    )
    base = {
        "callbackUri": webhook.url,
        "requestedModalities": ["audio"],
        "mediaConfig": {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"},
    }
    info = {
        "@odata.type": "#microsoft.graph.joinMeetingIdMeetingInfo",
        "joinMeetingId": meeting["joinMeetingId"],
        "passcode": meeting["passcode"],
    }

    good = graph.post("/communications/calls", json={**base, "meetingInfo": info})
    bad = graph.post(
        "/communications/calls",
        json={**base, "meetingInfo": {**info, "joinMeetingId": "1"}},
    )

    assert good.status_code == 201
    assert good.json()["chatInfo"]["threadId"] == meeting["chatInfo"]["threadId"]
    assert bad.status_code == 201
    deleted = webhook.wait_for(
        lambda n: [i for i in n if i["changeType"] == "deleted"], bad.json()["id"]
    )[0]
    assert deleted["resourceData"]["resultInfo"]["code"] == 480


def test_incoming_meeting_invite_carries_chat_and_meeting_info(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting = emulator.control("POST", "/meetings", {"subject": "Standup"})
    emulator.control("POST", f"/meetings/{meeting['id']}/participants", ANA)

    call_id = emulator.control("POST", f"/meetings/{meeting['id']}/invite-bot")[
        "callId"
    ]
    created = webhook.wait_for(lambda n: n, call_id)[0]["resourceData"]
    graph.post(
        f"/communications/calls/{call_id}/answer",
        json={
            "acceptedModalities": ["audio"],
            "mediaConfig": {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"},
        },
    )

    assert created["chatInfo"]["threadId"] == meeting["chatInfo"]["threadId"]
    assert (
        created["meetingInfo"]["@odata.type"] == "#microsoft.graph.organizerMeetingInfo"
    )
    roster = webhook.wait_for(lambda n: rosters(webhook, call_id), call_id)[0]
    assert names(roster) == ["Ana Lopez", "Callbot"]


def test_online_meetings_create_get_and_filter(
    emulator: RunningEmulator, graph: httpx.Client
) -> None:
    organizer = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918"

    created = graph.post(
        f"/users/{organizer}/onlineMeetings",
        json={
            "subject": "Sev2 bridge",
            "joinMeetingIdSettings": {"isPasscodeRequired": True},
        },
    )
    meeting = created.json()
    by_id = graph.get(f"/users/{organizer}/onlineMeetings/{meeting['id']}")
    by_url = graph.get(
        f"/users/{organizer}/onlineMeetings",
        params={"$filter": f"JoinWebUrl eq '{meeting['joinWebUrl']}'"},
    )
    by_join_id = graph.get(
        f"/users/{organizer}/onlineMeetings",
        params={
            "$filter": f"joinMeetingIdSettings/joinMeetingId eq '{meeting['joinMeetingIdSettings']['joinMeetingId']}'"
        },
    )
    no_filter = graph.get(f"/users/{organizer}/onlineMeetings")

    assert created.status_code == 201
    assert meeting["joinWebUrl"].startswith(
        "https://teams.microsoft.com/l/meetup-join/19%3Ameeting_"
    )
    assert meeting["chatInfo"]["messageId"] == "0"
    assert meeting["joinMeetingIdSettings"]["passcode"]
    assert by_id.json()["id"] == meeting["id"]
    assert by_url.json()["value"][0]["id"] == meeting["id"]
    assert by_join_id.json()["value"][0]["id"] == meeting["id"]
    assert no_filter.status_code == 400


def test_create_or_get_returns_the_meeting_made_under_the_same_external_id(
    emulator: RunningEmulator, graph: httpx.Client
) -> None:
    organizer = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918"
    other = "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170"
    path = f"/users/{organizer}/onlineMeetings/createOrGet"
    body = {"subject": "Sev2 bridge", "externalId": "action-41"}

    first = graph.post(path, json=body)
    again = graph.post(path, json={**body, "subject": "Renamed"})
    another_key = graph.post(path, json={**body, "externalId": "action-42"})
    another_user = graph.post(f"/users/{other}/onlineMeetings/createOrGet", json=body)
    without_key = graph.post(path, json={"subject": "Sev2 bridge"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["externalId"] == "action-41"
    assert first.json()["subject"] == "Sev2 bridge"
    assert another_key.status_code == 201
    assert another_key.json()["id"] != first.json()["id"]
    # The tenant, the user and the external id together name a meeting.
    assert another_user.status_code == 201
    assert another_user.json()["id"] != first.json()["id"]
    assert without_key.status_code == 400
    assert len(emulator.control("GET", "/meetings")["value"]) == 3
