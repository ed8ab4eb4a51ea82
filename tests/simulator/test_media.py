"""Service-hosted media: prompts, recordings, cancel, tones, DTMF, recording status."""

from __future__ import annotations

import io
import wave

import httpx

from tests.simulator.conftest import ring_and_answer
from tests.support.emulator import RecordingWebhook, RunningEmulator, iter_tones

PROMPT = {
    "@odata.type": "#microsoft.graph.mediaPrompt",
    "mediaInfo": {
        "@odata.type": "#microsoft.graph.mediaInfo",
        "uri": "https://bot.example.net/audio/menu.wav",
        "resourceId": "menu",
    },
}


def finished_operations(
    webhook: RecordingWebhook, call_id: str
) -> list[dict[str, object]]:
    return [
        i["resourceData"]
        for i in webhook.notifications(call_id)
        if "/operations/" in i["resourceUrl"]
    ]


def test_play_prompt_runs_then_completes_by_notification(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    response = graph.post(
        f"/communications/calls/{call_id}/playPrompt",
        json={"clientContext": call_id, "prompts": [PROMPT]},
    )

    assert response.status_code == 200
    operation = response.json()
    assert operation["@odata.type"] == "#microsoft.graph.playPromptOperation"
    assert operation["status"] == "running"
    assert operation["clientContext"] == call_id
    assert response.headers["Location"].endswith(
        f"/communications/calls/{call_id}/operations/{operation['id']}"
    )
    done = webhook.wait_for(lambda n: finished_operations(webhook, call_id), call_id)[0]
    assert done["status"] == "completed"
    assert done["id"] == operation["id"]
    assert (done["resultInfo"]["code"], done["resultInfo"]["subcode"]) == (200, 0)
    item = next(
        i for i in webhook.notifications(call_id) if "/operations/" in i["resourceUrl"]
    )
    assert item["changeType"] == "deleted"
    assert (
        graph.get(
            f"/communications/calls/{call_id}/operations/{operation['id']}"
        ).json()["status"]
        == "completed"
    )


def test_play_prompt_needs_service_hosted_media_and_a_prompt(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})[
        "callId"
    ]
    app_hosted = {
        "callbackUri": webhook.url,
        "acceptedModalities": ["audio"],
        "mediaConfig": {
            "@odata.type": "#microsoft.graph.appHostedMediaConfig",
            "blob": "x",
        },
    }
    graph.post(f"/communications/calls/{call_id}/answer", json=app_hosted)
    webhook.wait_for(
        lambda n: "updated:established" in webhook.call_states(call_id), call_id
    )

    app_media = graph.post(
        f"/communications/calls/{call_id}/playPrompt", json={"prompts": [PROMPT]}
    )
    no_prompts = graph.post(
        f"/communications/calls/{call_id}/playPrompt", json={"prompts": []}
    )

    assert app_media.status_code == 400
    assert "serviceHostedMediaConfig" in app_media.json()["error"]["message"]
    assert no_prompts.status_code == 400


def test_record_response_gives_a_downloadable_wav(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    response = graph.post(
        f"/communications/calls/{call_id}/recordResponse",
        json={
            "prompts": [PROMPT],
            "maxRecordDurationInSeconds": 10,
            "stopTones": ["#"],
        },
    )

    assert response.json()["status"] == "running"
    assert response.json()["recordingLocation"] is None
    done = webhook.wait_for(lambda n: finished_operations(webhook, call_id), call_id)[0]
    assert done["@odata.type"] == "#microsoft.graph.recordOperation"
    assert done["status"] == "completed"
    audio = emulator.http().get(
        str(done["recordingLocation"]),
        headers={"Authorization": f"Bearer {done['recordingAccessToken']}"},
    )
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "application/octet-stream"
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (
            1,
            2,
            16000,
        )
    assert emulator.http().get(str(done["recordingLocation"])).status_code == 401


def test_a_stop_tone_ends_the_recording_early(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    emulator.control("PATCH", "/config", {"mediaSeconds": 5})
    call_id = ring_and_answer(emulator, webhook, graph)
    graph.post(
        f"/communications/calls/{call_id}/recordResponse", json={"stopTones": ["#"]}
    )

    emulator.control("POST", f"/calls/{call_id}/tones", {"keys": "#"})

    done = webhook.wait_for(
        lambda n: finished_operations(webhook, call_id), call_id, timeout=3
    )[0]
    assert done["status"] == "completed"
    assert done["resultInfo"]["subcode"] == 0


def test_cancel_media_processing_fails_running_and_queued_operations(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    emulator.control("PATCH", "/config", {"mediaSeconds": 10})
    call_id = ring_and_answer(emulator, webhook, graph)
    graph.post(f"/communications/calls/{call_id}/subscribeToTone", json={})
    prompt = graph.post(
        f"/communications/calls/{call_id}/playPrompt", json={"prompts": [PROMPT]}
    ).json()
    record = graph.post(
        f"/communications/calls/{call_id}/recordResponse", json={}
    ).json()

    cancel = graph.post(
        f"/communications/calls/{call_id}/cancelMediaProcessing",
        json={"clientContext": "c"},
    )

    assert cancel.status_code == 200
    assert (
        cancel.json()["@odata.type"]
        == "#microsoft.graph.cancelMediaProcessingOperation"
    )
    assert cancel.json()["status"] == "completed"
    failed = webhook.wait_for(
        lambda n: (
            len(finished_operations(webhook, call_id)) == 2
            and finished_operations(webhook, call_id)
        ),
        call_id,
    )
    assert [f["id"] for f in failed] == [prompt["id"], record["id"]]
    assert all(
        f["status"] == "failed" and f["resultInfo"]["subcode"] == 8508 for f in failed
    )
    assert failed[1]["recordingLocation"] == ""
    assert failed[1]["completionReason"] == "operationCanceled"
    emulator.control(
        "POST", f"/calls/{call_id}/tones", {"keys": "5"}
    )  # the tone subscription survives
    webhook.wait_for(lambda n: list(iter_tones(n)), call_id)


def test_tones_arrive_after_subscribing_with_increasing_sequence(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)
    ignored = emulator.control("POST", f"/calls/{call_id}/tones", {"keys": "9"})

    subscribed = graph.post(
        f"/communications/calls/{call_id}/subscribeToTone", json={"clientContext": "t"}
    )
    emulator.control(
        "POST", f"/calls/{call_id}/tones", {"keys": "0*#", "tones": ["tone5"]}
    )

    assert ignored["notified"] == 0
    assert subscribed.json()["status"] == "completed"
    tones = webhook.wait_for(
        lambda n: len(list(iter_tones(n))) == 4 and list(iter_tones(n)), call_id
    )
    assert [(t["sequenceId"], t["tone"]) for t in tones] == [
        (1, "tone0"),
        (2, "star"),
        (3, "pound"),
        (4, "tone5"),
    ]
    tone_item = next(
        i
        for i in webhook.notifications(call_id)
        if (i["resourceData"] or {}).get("toneInfo")
    )
    assert tone_item["changeType"] == "updated"
    assert tone_item["resourceData"]["state"] == "established"


def test_send_dtmf_tones_accepts_both_path_forms(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)
    body = {
        "tones": ["tone1", "pound"],
        "delayBetweenTonesMs": 50,
        "clientContext": "d",
    }

    plain = graph.post(f"/communications/calls/{call_id}/sendDtmfTones", json=body)
    qualified = graph.post(
        f"/communications/calls/{call_id}/microsoft.graph.sendDtmfTones", json=body
    )
    bad = graph.post(
        f"/communications/calls/{call_id}/sendDtmfTones", json={"tones": ["tone11"]}
    )

    assert plain.json()["status"] == "running"
    assert qualified.json()["status"] == "running"
    assert bad.status_code == 400
    done = webhook.wait_for(
        lambda n: (
            len(finished_operations(webhook, call_id)) == 2
            and finished_operations(webhook, call_id)
        ),
        call_id,
    )
    assert all(
        d["status"] == "completed" and d["completionReason"] == "completedSuccessfully"
        for d in done
    )


def test_update_recording_status_completes_at_once(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    response = graph.post(
        f"/communications/calls/{call_id}/updateRecordingStatus",
        json={"status": "recording", "clientContext": "r"},
    )
    bad = graph.post(
        f"/communications/calls/{call_id}/updateRecordingStatus",
        json={"status": "paused"},
    )

    assert response.status_code == 200
    assert (
        response.json()["@odata.type"]
        == "#microsoft.graph.updateRecordingStatusOperation"
    )
    assert response.json()["status"] == "completed"
    assert bad.status_code == 400


def test_record_response_and_tones_need_access_media(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    with emulator.graph() as graph:
        call_id = ring_and_answer(emulator, webhook, graph)
    emulator.control("PATCH", "/config", {"permissions": ["Calls.Initiate.All"]})
    with emulator.graph() as limited:
        record = limited.post(
            f"/communications/calls/{call_id}/recordResponse", json={}
        )
        tones = limited.post(
            f"/communications/calls/{call_id}/subscribeToTone", json={}
        )

    assert record.status_code == 403
    assert tones.status_code == 403
