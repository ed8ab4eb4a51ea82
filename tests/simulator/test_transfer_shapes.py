"""The emulator takes the transfer shapes of contract §6.7 and refuses wrong
ones: a consultative transfer replaces the bot's other call, a transfer out of a
meeting names its transferee, and bodies that cannot be right are 400s."""

from __future__ import annotations

from typing import Any

import httpx

from tests.simulator.conftest import LEE, RAVI, meeting_with_bot, ring_and_answer
from tests.support.emulator import RecordingWebhook, RunningEmulator


def target(identity: dict[str, Any], replaces: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.invitationParticipantInfo",
        "identity": identity,
    }
    if replaces is not None:
        body["replacesCallId"] = replaces
    return body


def transfer(graph: httpx.Client, call_id: str, body: dict[str, Any]) -> httpx.Response:
    return graph.post(f"/communications/calls/{call_id}/transfer", json=body)


def test_a_consultative_transfer_ends_both_of_the_bots_calls(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    with_caller = ring_and_answer(emulator, webhook, graph)
    with_target = ring_and_answer(emulator, webhook, graph, caller=LEE)

    answer = transfer(
        graph, with_caller, {"transferTarget": target(LEE, replaces=with_target)}
    )

    assert answer.status_code == 202
    for call_id in (with_caller, with_target):
        webhook.wait_for(
            lambda n, c=call_id: "deleted:terminated" in webhook.call_states(c),
            call_id,
        )
    last = webhook.notifications(with_caller)[-1]["resourceData"]
    assert last["resultInfo"]["subcode"] == 7015


def test_a_consultative_transfer_whose_other_call_is_gone_fails_with_7700(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)
    gone = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

    assert (
        transfer(
            graph, call_id, {"transferTarget": target(LEE, replaces=gone)}
        ).status_code
        == 202
    )

    webhook.wait_for(
        lambda n: (
            webhook.call_states(call_id)[-1] == "updated:established"
            and "updated:transferAccepted" in webhook.call_states(call_id)
        ),
        call_id,
    )
    info = webhook.notifications(call_id)[-1]["resourceData"]["resultInfo"]
    assert (info["code"], info["subcode"]) == (500, 7700)


def test_replaces_call_id_naming_the_call_itself_is_refused(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    answer = transfer(graph, call_id, {"transferTarget": target(LEE, replaces=call_id)})

    assert answer.status_code == 400
    assert "names the call being transferred" in answer.text


def test_a_transfer_out_of_a_meeting_needs_a_transferee_in_its_roster(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting, call_id = meeting_with_bot(emulator, webhook, graph)
    ravi = emulator.control("POST", f"/meetings/{meeting['id']}/participants", RAVI)

    missing = transfer(graph, call_id, {"transferTarget": target(LEE)})
    stranger = transfer(
        graph,
        call_id,
        {
            "transferTarget": target(LEE),
            "transferee": {"identity": RAVI, "participantId": "nobody"},
        },
    )
    no_identity = transfer(
        graph,
        call_id,
        {
            "transferTarget": target(LEE),
            "transferee": {"participantId": ravi["participantId"]},
        },
    )
    right = transfer(
        graph,
        call_id,
        {
            "transferTarget": target(LEE),
            "transferee": {
                "@odata.type": "#microsoft.graph.participantInfo",
                "identity": RAVI,
                "participantId": ravi["participantId"],
            },
        },
    )

    assert missing.status_code == 400
    assert "'transferee' is required" in missing.text
    assert stranger.status_code == 400
    assert "must name a participant" in stranger.text
    assert no_identity.status_code == 400
    assert right.status_code == 202
