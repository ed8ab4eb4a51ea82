"""Service-hosted media: prompts, recorded responses, DTMF, tones (contract §5, §6.9-§6.13).

``playPrompt`` and ``recordResponse`` join one queue per call and run in order for a
simulated duration (``media_seconds`` per prompt; fast by default). ``bargeInAllowed``
on a recordResponse cancels whatever is queued or running first.
``cancelMediaProcessing`` fails the running and queued ones with 400/8508 (reported
the same way for prompts, which the contract marks as assumed) and reports a running
``sendDtmfTones`` as completed with ``completionReason: mediaOperationCanceled``.
``subscribeToTone`` is outside that queue and survives a cancel. A finished recording
is a small WAV served at ``recordingLocation`` to the ``recordingAccessToken`` bearer.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import secrets
import struct
import wave
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from callbot.simulator import notices, validate
from callbot.simulator.engine import Engine, ri
from callbot.simulator.errors import bad_request
from callbot.simulator.model import Call, Operation, new_id, odata, result_info
from callbot.simulator.participants import new_operation, require_established

CANCELLED = (400, 8508, "Action failed, the operation was cancelled.")
MAX_DURATION = (200, 8515, "Action completed, max record duration reached.")
STOP_TONE = (200, 0, "Action completed successfully.")
PLAYED = (200, 0, "Action completed successfully.")
TONE_CHARS = {f"tone{i}": str(i) for i in range(10)} | {"star": "*", "pound": "#"}


@dataclass
class Recording:
    """A recorded response waiting to be downloaded."""

    token: str
    audio: bytes
    expires_at: float


@dataclass
class CallMedia:
    """One call's media queue."""

    queue: deque[Operation] = field(default_factory=deque)
    running: Operation | None = None
    worker: asyncio.Task[None] | None = None
    dtmf: list[Operation] = field(default_factory=list)


def _wav(seconds: float = 0.5, frequency: float = 440.0) -> bytes:
    """A mono, 16-bit, 16 kHz WAV with a short tone (the prompt format of §12)."""
    rate = 16000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * frequency * n / rate)))
        for n in range(int(rate * seconds))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


_RECORDED = _wav()


class MediaDesk:
    """Per-call media queues and the recordings they produce."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.media: dict[str, CallMedia] = {}
        self.recordings: dict[str, Recording] = {}
        engine.on_end.append(self._call_ended)

    def reset(self) -> None:
        for media in self.media.values():
            if media.worker is not None:
                media.worker.cancel()
        self.media.clear()
        self.recordings.clear()

    def _require_service_media(self, call: Call, action: str) -> None:
        if not call.service_hosted:
            raise bad_request(f"{action} needs a call with serviceHostedMediaConfig.")

    def _of(self, call: Call) -> CallMedia:
        media = self.media.get(call.id)
        if media is None:
            media = self.media[call.id] = CallMedia()
        return media

    # --- the queue -----------------------------------------------------------------
    def play_prompt(self, call: Call, body: dict[str, Any]) -> Operation:
        """``POST .../playPrompt``: running; completed 200/0 when played."""
        prompts = validate.prompts(body.get("prompts"), 20)
        if not prompts:
            raise bad_request("'prompts' must hold at least one mediaPrompt.")
        validate.client_context(body)
        self._require_service_media(call, "playPrompt")
        require_established(call)
        operation = new_operation(call, "playPromptOperation", body, "running")
        operation.seconds = self.engine.config.media_seconds * len(prompts)
        self._enqueue(call, operation)
        return operation

    def record_response(
        self, call: Call, body: dict[str, Any], roles: frozenset[str]
    ) -> Operation:
        """``POST .../recordResponse``: running; completed with a recording URL + token."""
        prompts = validate.prompts(body.get("prompts"), 1)
        for name in (
            "initialSilenceTimeoutInSeconds",
            "maxSilenceTimeoutInSeconds",
            "maxRecordDurationInSeconds",
        ):
            validate.integer(body.get(name), name, 5, 1, 120)
        stop_tones = validate.array(body.get("stopTones"), "stopTones", required=False)
        if any(not isinstance(t, str) for t in stop_tones):
            raise bad_request("'stopTones' must be an array of DTMF characters.")
        validate.client_context(body)
        self.engine.require(roles, "Calls.AccessMedia.All")
        self._require_service_media(call, "recordResponse")
        require_established(call)
        if body.get("bargeInAllowed") is True:
            self._cancel_queue(call)
        operation = new_operation(call, "recordOperation", body, "running")
        operation.extra = {"recordingLocation": None, "recordingAccessToken": None}
        operation.seconds = self.engine.config.media_seconds * (len(prompts) + 1)
        operation.done = asyncio.Event()
        operation.stop_tones = frozenset(str(t) for t in stop_tones)
        self._enqueue(call, operation)
        return operation

    def _enqueue(self, call: Call, operation: Operation) -> None:
        media = self._of(call)
        media.queue.append(operation)
        if media.worker is None or media.worker.done():
            self.engine.start(self._work(call, media))

    async def _work(self, call: Call, media: CallMedia) -> None:
        media.worker = asyncio.current_task()
        while media.queue and not call.ended:
            operation = media.queue.popleft()
            media.running = operation
            if operation.done is None:
                operation.done = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    operation.done.wait(), self.engine.clock.real(operation.seconds)
                )
            media.running = None
            if operation.cancelled or call.ended:
                continue
            self._finish(call, operation, stopped=operation.done.is_set())

    def _finish(self, call: Call, operation: Operation, stopped: bool) -> None:
        operation.status = "completed"
        if operation.type_name == "recordOperation":
            recording_id = new_id()
            token = secrets.token_urlsafe(24)
            expires = self.engine.clock.now() + self.engine.config.recording_retention
            self.recordings[recording_id] = Recording(token, _RECORDED, expires)
            base = self.engine.public_base()
            operation.extra = {
                "recordingLocation": f"{base}/recordings/{recording_id}",
                "recordingAccessToken": token,
            }
            operation.result = ri(STOP_TONE if stopped else MAX_DURATION)
        else:
            operation.result = ri(PLAYED)
        self.engine.notify(notices.operation_finished(call, operation))

    def _cancel_queue(self, call: Call) -> list[Operation]:
        media = self._of(call)
        cancelled = ([media.running] if media.running else []) + list(media.queue)
        media.queue.clear()
        for operation in cancelled:
            operation.cancelled = True
            if operation.done is not None:
                operation.done.set()
            operation.status = "failed"
            operation.result = ri(CANCELLED)
            if operation.type_name == "recordOperation":
                operation.extra = {
                    "recordingLocation": "",
                    "recordingAccessToken": "",
                    "completionReason": "operationCanceled",
                }
            self.engine.notify(notices.operation_finished(call, operation))
        return cancelled

    def cancel(self, call: Call, body: dict[str, Any]) -> Operation:
        """``POST .../cancelMediaProcessing``: completed; each cancelled one ``failed``."""
        validate.client_context(body)
        if call.state not in (
            "established",
            "hold",
            "transferring",
            "transferAccepted",
        ):
            require_established(call)
        operation = new_operation(
            call, "cancelMediaProcessingOperation", body, "completed"
        )
        operation.extra["all"] = True
        cancelled = self._cancel_queue(call)
        for dtmf in self._of(call).dtmf:
            dtmf.cancelled = True
            if dtmf.done is not None:
                dtmf.done.set()
        self.engine.events.add(
            "graph", f"bot cancelled {len(cancelled)} media operations", callId=call.id
        )
        return operation

    def _call_ended(self, call: Call) -> None:
        media = self.media.pop(call.id, None)
        if media is None:
            return
        for operation in (
            ([media.running] if media.running else []) + list(media.queue) + media.dtmf
        ):
            operation.cancelled = True
            if operation.done is not None:
                operation.done.set()

    # --- DTMF and tones ---------------------------------------------------------------
    def send_dtmf(self, call: Call, body: dict[str, Any]) -> Operation:
        """``POST .../sendDtmfTones``: running; completed with a ``completionReason``."""
        tones = validate.array(body.get("tones"), "tones")
        if not tones or any(
            not isinstance(t, str) or t.lower() not in validate.TONES for t in tones
        ):
            raise bad_request(
                "'tones' must be a non-empty array of tone values (tone0..tone9, star, pound, a-d, flash)."
            )
        delay_ms = validate.integer(
            body.get("delayBetweenTonesMs"), "delayBetweenTonesMs", 100, 0, 10000
        )
        validate.client_context(body)
        self._require_service_media(call, "sendDtmfTones")
        require_established(call)
        operation = new_operation(call, "sendDtmfTonesOperation", body, "running")
        operation.done = asyncio.Event()
        operation.seconds = len(tones) * max(delay_ms, 50) / 1000
        self._of(call).dtmf.append(operation)
        self.engine.start(self._dtmf(call, operation))
        return operation

    async def _dtmf(self, call: Call, operation: Operation) -> None:
        if operation.done is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                operation.done.wait(), self.engine.clock.real(operation.seconds)
            )
        media = self.media.get(call.id)
        if media is not None and operation in media.dtmf:
            media.dtmf.remove(operation)
        if call.ended:
            return
        operation.status = "completed"
        operation.result = ri(PLAYED)
        reason = (
            "mediaOperationCanceled" if operation.cancelled else "completedSuccessfully"
        )
        operation.extra["completionReason"] = reason
        self.engine.notify(notices.operation_finished(call, operation))

    def subscribe_to_tone(
        self, call: Call, body: dict[str, Any], roles: frozenset[str]
    ) -> Operation:
        """``POST .../subscribeToTone``: completed at once; tones then arrive as updates."""
        validate.client_context(body)
        self.engine.require(roles, "Calls.AccessMedia.All")
        self._require_service_media(call, "subscribeToTone")
        require_established(call)
        call.tone_subscribed = True
        call.bump()
        return new_operation(call, "subscribeToToneOperation", body, "completed")

    def press(self, call: Call, tones: list[str]) -> int:
        """A human presses keys: one call ``updated`` with ``toneInfo`` per key, if the
        bot subscribed (contract §6.12); a stop tone ends a running recording.

        Returns how many tone notifications were sent.
        """
        sent = 0
        media = self.media.get(call.id)
        for tone in tones:
            running = media.running if media is not None else None
            stops = running.stop_tones if running is not None else frozenset()
            if running is not None and running.done and TONE_CHARS.get(tone) in stops:
                running.done.set()
            if not call.tone_subscribed or call.state != "established":
                continue
            call.tone_sequence += 1
            call.tone_info = odata("toneInfo", sequenceId=call.tone_sequence, tone=tone)
            self.engine.notify(notices.call_updated(call, toneInfo=call.tone_info))
            sent += 1
        return sent

    def recording(self, recording_id: str, token: str) -> bytes | None:
        """The WAV of a recording, if ``token`` is its access token and it is fresh."""
        recording = self.recordings.get(recording_id)
        if recording is None or not secrets.compare_digest(recording.token, token):
            return None
        if recording.expires_at < self.engine.clock.now():
            self.recordings.pop(recording_id, None)
            return None
        return recording.audio


__all__ = ["CANCELLED", "MediaDesk", "result_info"]
