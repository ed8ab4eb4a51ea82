"""Call lifecycle: incoming, answer, reject, redirect, transfer, hang up, create, timers."""

from __future__ import annotations

import httpx
import pytest

from tests.simulator.conftest import (
    ANA,
    LEE,
    SERVICE_MEDIA,
    answer_body,
    meeting_with_bot,
    ring_and_answer,
)
from tests.support.emulator import RecordingWebhook, RunningEmulator


def incoming(emulator: RunningEmulator, caller: dict[str, object] = ANA) -> str:
    call_id: str = emulator.control("POST", "/calls/incoming", {"from": caller})[
        "callId"
    ]
    return call_id


def test_incoming_call_is_announced_signed_to_the_registered_webhook(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    call_id = incoming(emulator)

    created = webhook.wait_for(lambda n: n, call_id)[0]
    delivery = webhook.valid_deliveries()[0]

    assert created["changeType"] == "created"
    assert created["resource"] == f"/app/calls/{call_id}"
    assert created["resourceUrl"] == f"/communications/calls/{call_id}"
    data = created["resourceData"]
    assert data["state"] == "incoming"
    assert data["direction"] == "incoming"
    assert data["source"]["identity"]["user"]["displayName"] == "Ana Lopez"
    assert (
        data["targets"][0]["identity"]["application"]["id"]
        == emulator.config.bot.client_id
    )
    assert data["callbackUri"] == webhook.url
    assert delivery.claims["aud"] == emulator.config.bot.client_id
    assert delivery.claims["tid"] == emulator.config.bot.tenant_id
    assert delivery.claims["exp"] - delivery.claims["iat"] == 3600
    assert delivery.chain_id == data["callChainId"]
    assert delivery.message_id
    assert delivery.client_request_id


def test_a_phone_caller_reaches_the_bots_application_instance(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    call_id = incoming(emulator, {"phone": "+14255550123"})

    data = webhook.wait_for(lambda n: n, call_id)[0]["resourceData"]

    assert data["source"]["identity"]["phone"]["id"] == "+14255550123"
    assert "applicationInstance" in data["targets"][0]["identity"]


def test_answer_establishes_the_call_in_order(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    assert webhook.call_states(call_id) == [
        "created:incoming",
        "updated:establishing",
        "updated:established",
        "updated:established",
    ]
    call = graph.get(f"/communications/calls/{call_id}").json()
    assert call["state"] == "established"
    assert call["mediaState"]["audio"] == "active"
    p2p_rosters = [
        i
        for i in webhook.notifications(call_id)
        if i["resourceUrl"].endswith("/participants")
    ]
    assert (
        p2p_rosters == []
    )  # peer-to-peer calls get call-state notifications only (§4.1)


def test_answering_twice_conflicts(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    again = graph.post(
        f"/communications/calls/{call_id}/answer", json=answer_body(webhook)
    )

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "Conflict"


def test_answer_with_a_bad_body_names_the_problem(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = incoming(emulator)

    no_media = graph.post(
        f"/communications/calls/{call_id}/answer",
        json={"acceptedModalities": ["audio"]},
    )
    bad_json = graph.post(
        f"/communications/calls/{call_id}/answer",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )

    assert no_media.status_code == 400
    assert "mediaConfig" in no_media.json()["error"]["message"]
    assert bad_json.status_code == 400


def test_reject_ends_the_call_with_a_bare_deleted(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = incoming(emulator)

    response = graph.post(
        f"/communications/calls/{call_id}/reject", json={"reason": "busy"}
    )

    assert response.status_code == 202
    assert response.content == b""
    deleted = webhook.wait_for(
        lambda n: [i for i in n if i["changeType"] == "deleted"], call_id
    )[0]
    assert set(deleted["resourceData"]) == {"@odata.type", "@odata.id"}
    assert graph.get(f"/communications/calls/{call_id}").status_code == 404


def test_redirect_ends_the_call_with_state_terminated(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = incoming(emulator)
    target = {
        "@odata.type": "#microsoft.graph.invitationParticipantInfo",
        "identity": LEE,
    }

    too_short = graph.post(
        f"/communications/calls/{call_id}/redirect",
        json={"targets": [target], "timeout": 5},
    )
    response = graph.post(
        f"/communications/calls/{call_id}/redirect",
        json={"targets": [target], "timeout": 30},
    )

    assert too_short.status_code == 400
    assert response.status_code == 202
    webhook.wait_for(
        lambda n: "deleted:terminated" in webhook.call_states(call_id), call_id
    )


def test_transfer_goes_through_transferring_and_transfer_accepted(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)
    body = {
        "transferTarget": {
            "@odata.type": "#microsoft.graph.invitationParticipantInfo",
            "identity": LEE,
        }
    }

    assert (
        graph.post(f"/communications/calls/{call_id}/transfer", json=body).status_code
        == 202
    )

    webhook.wait_for(
        lambda n: "deleted:terminated" in webhook.call_states(call_id), call_id
    )
    assert webhook.call_states(call_id)[-3:] == [
        "updated:transferring",
        "updated:transferAccepted",
        "deleted:terminated",
    ]
    result = webhook.notifications(call_id)[-1]["resourceData"]["resultInfo"]
    assert (result["code"], result["subcode"]) == (0, 7015)


def test_a_failed_transfer_returns_to_established(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)
    emulator.control("POST", "/faults", {"transfer_failure": {"count": 1}})
    body = {
        "transferTarget": {
            "@odata.type": "#microsoft.graph.invitationParticipantInfo",
            "identity": LEE,
        }
    }

    graph.post(f"/communications/calls/{call_id}/transfer", json=body)

    webhook.wait_for(
        lambda n: (
            webhook.call_states(call_id)[-1] == "updated:established"
            and len(webhook.call_states(call_id)) > 5
        ),
        call_id,
    )
    last = webhook.notifications(call_id)[-1]["resourceData"]
    assert (last["resultInfo"]["code"], last["resultInfo"]["subcode"]) == (500, 7000)
    assert (
        emulator.control("GET", "/stats")["faults"]["applied"]["transfer_failure"] == 1
    )


def test_hang_up_sends_terminating_then_deleted(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    assert graph.delete(f"/communications/calls/{call_id}").status_code == 204

    webhook.wait_for(
        lambda n: "deleted:terminated" in webhook.call_states(call_id), call_id
    )
    assert webhook.call_states(call_id)[-2:] == [
        "updated:terminating",
        "deleted:terminated",
    ]
    result = webhook.notifications(call_id)[-1]["resourceData"]["resultInfo"]
    assert (result["code"], result["subcode"]) == (200, 5001)
    assert graph.post(f"/communications/calls/{call_id}/keepAlive").status_code == 404
    assert graph.get(f"/communications/calls/{call_id}").status_code == 404


def test_remote_hang_up_carries_the_chosen_result(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    emulator.control(
        "POST",
        f"/calls/{call_id}/hangup",
        {
            "resultInfo": {
                "code": 200,
                "subcode": 540000,
                "message": "Ended by PSTN user",
            }
        },
    )

    deleted = webhook.wait_for(
        lambda n: [i for i in n if i["changeType"] == "deleted"], call_id
    )[0]
    assert deleted["resourceData"]["resultInfo"]["subcode"] == 540000


def test_keep_alive_is_200_and_its_absence_ends_the_call(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    emulator.control("PATCH", "/config", {"keepaliveTimeout": 0.6})
    call_id = ring_and_answer(emulator, webhook, graph)

    kept = graph.post(f"/communications/calls/{call_id}/keepAlive")

    assert kept.status_code == 200
    assert kept.content == b""
    deleted = webhook.wait_for(
        lambda n: [i for i in n if i["changeType"] == "deleted"], call_id, timeout=5
    )[0]
    result = deleted["resourceData"]["resultInfo"]
    assert (result["code"], result["subcode"]) == (408, 8537)


def test_an_unanswered_incoming_call_ends_after_the_answer_window(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    emulator.control("PATCH", "/config", {"answerTimeout": 0.3})

    call_id = incoming(emulator)

    deleted = webhook.wait_for(
        lambda n: [i for i in n if i["changeType"] == "deleted"], call_id
    )[0]
    assert (
        deleted["resourceData"]["resultInfo"]["code"],
        deleted["resourceData"]["resultInfo"]["subcode"],
    ) == (408, 1106)


def test_create_p2p_call_answers_201_with_location_and_establishes(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    body = {
        "@odata.type": "#microsoft.graph.call",
        "callbackUri": webhook.url,
        "targets": [
            {
                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": ANA,
            }
        ],
        "requestedModalities": ["audio"],
        "mediaConfig": SERVICE_MEDIA,
    }

    response = graph.post("/communications/calls", json=body)

    assert response.status_code == 201
    call = response.json()
    assert response.headers["Location"].endswith(
        f"/v1.0/communications/calls/{call['id']}"
    )
    assert call["state"] == "establishing"
    assert call["direction"] == "outgoing"
    assert (
        call["source"]["identity"]["application"]["id"] == emulator.config.bot.client_id
    )
    assert call["myParticipantId"]
    assert call["callChainId"]
    assert call["mediaConfig"] == SERVICE_MEDIA
    webhook.wait_for(
        lambda n: "updated:established" in webhook.call_states(call["id"]), call["id"]
    )
    assert webhook.call_states(call["id"])[:2] == [
        "updated:establishing",
        "updated:established",
    ]


def test_create_call_validates_its_body(
    graph: httpx.Client, webhook: RecordingWebhook
) -> None:
    base = {
        "callbackUri": webhook.url,
        "requestedModalities": ["audio"],
        "mediaConfig": SERVICE_MEDIA,
    }
    phone = {"identity": {"phone": {"id": "+14255550123"}}}

    no_targets = graph.post("/communications/calls", json=base)
    no_callback = graph.post(
        "/communications/calls",
        json={**base, "callbackUri": None, "targets": [{"identity": ANA}]},
    )
    pstn_without_instance = graph.post(
        "/communications/calls", json={**base, "targets": [phone]}
    )

    assert no_targets.status_code == 400
    assert "targets" in no_targets.json()["error"]["message"]
    assert no_callback.status_code == 400
    assert "callbackUri" in no_callback.json()["error"]["message"]
    assert pstn_without_instance.status_code == 400


@pytest.mark.parametrize(
    ("body_extra", "permission"),
    [
        (
            {"targets": [{"identity": ANA}, {"identity": LEE}]},
            "Calls.InitiateGroupCall.All",
        ),
        ({"targets": [{"identity": ANA}]}, "Calls.Initiate.All"),
    ],
)
def test_create_call_needs_its_permission(
    emulator: RunningEmulator,
    webhook: RecordingWebhook,
    body_extra: dict[str, object],
    permission: str,
) -> None:
    permissions = [p for p in emulator.config.bot.permissions if p != permission]
    emulator.control("PATCH", "/config", {"permissions": permissions})
    with emulator.graph() as graph:
        response = graph.post(
            "/communications/calls",
            json={
                "callbackUri": webhook.url,
                "requestedModalities": ["audio"],
                "mediaConfig": SERVICE_MEDIA,
                **body_extra,
            },
        )

    assert response.status_code == 403
    assert permission in response.json()["error"]["message"]


def test_group_call_gets_a_roster_with_everyone(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    body = {
        "callbackUri": webhook.url,
        "requestedModalities": ["audio"],
        "mediaConfig": SERVICE_MEDIA,
        "subject": "Sev2 triage",
        "targets": [{"identity": ANA}, {"identity": LEE}],
    }

    call = graph.post("/communications/calls", json=body).json()

    roster = webhook.wait_for(
        lambda n: [i for i in n if i["resourceUrl"].endswith("/participants")],
        call["id"],
    )[0]
    names = sorted(
        p["info"]["identity"]
        .get("user", p["info"]["identity"].get("application", {}))
        .get("displayName")
        for p in roster["resourceData"]
    )
    assert names == ["Ana Lopez", "Callbot", "Lee Chen"]


def test_callee_unreachable_fault_ends_an_outgoing_call(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    emulator.control("POST", "/faults", {"callee_unreachable": {"count": 1}})
    body = {
        "callbackUri": webhook.url,
        "requestedModalities": ["audio"],
        "mediaConfig": SERVICE_MEDIA,
        "targets": [{"identity": ANA}],
    }

    call = graph.post("/communications/calls", json=body).json()

    deleted = webhook.wait_for(
        lambda n: [i for i in n if i["changeType"] == "deleted"], call["id"]
    )[0]
    assert deleted["resourceData"]["resultInfo"]["code"] == 480


def test_a_call_to_a_phone_needs_the_application_instance_as_its_source(
    graph: httpx.Client, webhook: RecordingWebhook, emulator: RunningEmulator
) -> None:
    base = {
        "callbackUri": webhook.url,
        "requestedModalities": ["audio"],
        "mediaConfig": SERVICE_MEDIA,
        "targets": [{"identity": {"phone": {"id": "+14255550123"}}}],
        "tenantId": emulator.config.bot.tenant_id,
    }
    as_the_app = graph.post("/communications/calls", json=base)
    instance = {"applicationInstance": {"id": emulator.config.bot.instance_id}}
    as_the_instance = graph.post(
        "/communications/calls",
        json={**base, "source": {"identity": instance}},
    )

    assert as_the_app.status_code == 400
    assert (
        "source.identity.applicationInstance" in as_the_app.json()["error"]["message"]
    )
    assert as_the_instance.status_code == 201, as_the_instance.text
    assert as_the_instance.json()["state"] == "establishing"


def test_transferring_a_meeting_leg_needs_the_transferee(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting, call_id = meeting_with_bot(emulator, webhook, graph)
    webhook.wait_for(
        lambda n: "updated:established" in webhook.call_states(call_id), call_id
    )
    target = {"identity": {"user": {"id": LEE["user"]["id"]}}}
    ana = emulator.control("POST", f"/meetings/{meeting['id']}/participants", ANA)

    without = graph.post(
        f"/communications/calls/{call_id}/transfer", json={"transferTarget": target}
    )
    with_transferee = graph.post(
        f"/communications/calls/{call_id}/transfer",
        json={
            "transferTarget": target,
            "transferee": {
                "identity": ANA,
                "participantId": ana["participantId"],
            },
        },
    )

    assert without.status_code == 400
    assert "'transferee' is required" in without.json()["error"]["message"]
    assert with_transferee.status_code == 202, with_transferee.text
