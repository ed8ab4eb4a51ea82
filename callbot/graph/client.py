"""``GraphClient``: one typed method per action of the calls contract (§6, §10).

Synchronous on purpose: the callers are Celery tasks. Each public method validates
its input and builds the body with ``callbot.graph.bodies`` (``ValueError`` before
any HTTP), sends it through ``GraphTransport.send`` — the one place that owns the
bearer token, ``client-request-id``, timeouts, retries with ``Retry-After``, error
mapping and logging — and returns a ``callbot.graph.resources`` type.

Every method takes an optional ``client_request_id``: a Celery task passes the id it
stored for the action, so a retried task lets Graph recognise the repeat.

Base URL, timeouts and CA bundle come from the caller (``factory.get_graph_client``
reads settings); nothing here imports Django.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx

from callbot.graph import bodies
from callbot.graph.app_roles import AppGrant, read_grant
from callbot.graph.bodies import (
    CallOptions,
    ChatInfoLike,
    MeetingInfoLike,
    PromptLike,
    TargetLike,
)
from callbot.graph.resources import (
    CallResource,
    Identity,
    JsonDict,
    OnlineMeetingResource,
    OperationResource,
    ParticipantResource,
)
from callbot.graph.tokens import TokenProvider
from callbot.graph.transport import (
    GraphTransport,
    invalid_response,
    json_object,
    location_id,
    parse_resource,
)

# A roster larger than this many pages is a server bug, not a meeting.
MAX_PAGES = 1000


class GraphClient:
    """Typed access to Graph's cloud-communications API.

    Every public method raises ``ValueError`` for input the contract rules out
    (checked before any HTTP) and a ``GraphError`` subclass when Graph refuses or
    cannot be reached within the retry budget (``err.retryable`` says whether a
    later retry may help). Safe to share between threads. ``for_tenant`` gives a
    view acting in another tenant over the same connection pool.
    """

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        timeout: float = 10.0,
        retry_budget_seconds: float = 30.0,
        ca_bundle: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        tenant_id: str | None = None,
    ) -> None:
        self._transport = GraphTransport(
            base_url,
            token_provider,
            timeout=timeout,
            retry_budget_seconds=retry_budget_seconds,
            ca_bundle=ca_bundle,
            transport=transport,
            sleep=sleep,
        )
        self._tenant_id = tenant_id

    @property
    def base_url(self) -> str:
        """The Graph root, e.g. ``https://graph.microsoft.com/v1.0``."""
        return self._transport.base_url

    @property
    def tenant_id(self) -> str | None:
        """The tenant tokens are requested for; None means the provider's default."""
        return self._tenant_id

    def for_tenant(self, tenant_id: str | None) -> GraphClient:
        """A view of this client acting in ``tenant_id`` (a multi-tenant bot acts in
        the tenant of the call); it shares this client's transport and pool."""
        view = object.__new__(GraphClient)
        view._transport = self._transport
        view._tenant_id = tenant_id
        return view

    def app_grant(self, *, fresh: bool = False) -> AppGrant:
        """The application permissions the app's token holds (its ``roles``), read
        from the token itself; ``fresh`` asks for a new token first. Makes no Graph
        request. Raises ``GraphAuthError`` when no readable token can be had."""
        return read_grant(self._transport.access_token(self._tenant_id, fresh=fresh))

    def close(self) -> None:
        """Close the connection pool (for every ``for_tenant`` view too)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls (§6.2, §6.3) -----------------------------------------------------

    def create_call(
        self, body: Mapping[str, Any], *, client_request_id: str | None = None
    ) -> CallResource:
        """``POST /communications/calls`` with a prepared call body.

        Prefer the helpers below, which build and validate the body. Returns the new
        call (state ``establishing``); its id falls back to the ``Location`` header.
        Raises ``GraphForbiddenError`` when the app lacks the permission for this
        kind of call, ``GraphBadRequestError`` for a body Graph refuses.
        """
        response = self._request(
            "POST",
            "/communications/calls",
            body=body,
            client_request_id=client_request_id,
        )
        call = parse_resource(CallResource.parse, response, json_object(response))
        if call.id is None and (new_id := location_id(response)):
            call = replace(call, id=new_id)
        return call

    def place_peer_to_peer_call(
        self,
        target: TargetLike,
        *,
        callback_uri: str,
        tenant_id: str | None = None,
        modalities: Sequence[str] = ("audio",),
        prompts_to_prefetch: Sequence[PromptLike] = (),
        media_config: Mapping[str, Any] | None = None,
        call_options: CallOptions | None = None,
        source: Identity | None = None,
        client_request_id: str | None = None,
    ) -> CallResource:
        """Call one user, application instance or phone number (needs
        ``Calls.Initiate.All``; PSTN needs ``source`` = an application instance).

        Media is service-hosted unless ``media_config`` says otherwise. Raises as
        ``create_call``.
        """
        body = bodies.peer_to_peer_call(
            target,
            callback_uri=callback_uri,
            tenant_id=tenant_id,
            modalities=modalities,
            prompts_to_prefetch=prompts_to_prefetch,
            media_config=media_config,
            call_options=call_options,
            source=source,
        )
        return self.create_call(body, client_request_id=client_request_id)

    def place_group_call(
        self,
        targets: Sequence[TargetLike],
        subject: str | None = None,
        *,
        callback_uri: str,
        tenant_id: str | None = None,
        modalities: Sequence[str] = ("audio",),
        prompts_to_prefetch: Sequence[PromptLike] = (),
        media_config: Mapping[str, Any] | None = None,
        call_options: CallOptions | None = None,
        source: Identity | None = None,
        client_request_id: str | None = None,
    ) -> CallResource:
        """Start an ad-hoc group call with 2-5 targets (``Calls.InitiateGroupCall.All``).

        Raises ``ValueError`` for fewer than 2 or more than 5 targets; otherwise as
        ``create_call``.
        """
        body = bodies.group_call(
            targets,
            callback_uri=callback_uri,
            subject=subject,
            tenant_id=tenant_id,
            modalities=modalities,
            prompts_to_prefetch=prompts_to_prefetch,
            media_config=media_config,
            call_options=call_options,
            source=source,
        )
        return self.create_call(body, client_request_id=client_request_id)

    def join_meeting(
        self,
        chat_info: ChatInfoLike | None,
        meeting_info: MeetingInfoLike,
        tenant_id: str,
        *,
        callback_uri: str,
        modalities: Sequence[str] = ("audio",),
        prompts_to_prefetch: Sequence[PromptLike] = (),
        media_config: Mapping[str, Any] | None = None,
        call_options: CallOptions | None = None,
        source: Identity | None = None,
        client_request_id: str | None = None,
    ) -> CallResource:
        """Join a scheduled meeting (``Calls.JoinGroupCall.All``).

        ``chat_info`` + an ``OrganizerMeetingInfo`` for a meeting from its join URL,
        or ``chat_info=None`` with a ``TokenMeetingInfo`` (or the ``meetingInfo`` dict
        stored from an invite) to rejoin. Raises as ``create_call``.
        """
        body = bodies.meeting_join(
            meeting_info,
            chat_info=chat_info,
            callback_uri=callback_uri,
            tenant_id=tenant_id,
            modalities=modalities,
            prompts_to_prefetch=prompts_to_prefetch,
            media_config=media_config,
            call_options=call_options,
            source=source,
        )
        return self.create_call(body, client_request_id=client_request_id)

    def join_meeting_by_id(
        self,
        join_meeting_id: str,
        passcode: str | None,
        tenant_id: str,
        *,
        callback_uri: str,
        modalities: Sequence[str] = ("audio",),
        prompts_to_prefetch: Sequence[PromptLike] = (),
        media_config: Mapping[str, Any] | None = None,
        call_options: CallOptions | None = None,
        source: Identity | None = None,
        client_request_id: str | None = None,
    ) -> CallResource:
        """Join a meeting by its numeric id and passcode (None when not required).

        Sends no ``chatInfo``; Graph resolves it and echoes it in the response.
        Raises as ``create_call``.
        """
        return self.join_meeting(
            None,
            bodies.join_meeting_id_info(join_meeting_id, passcode),
            tenant_id,
            callback_uri=callback_uri,
            modalities=modalities,
            prompts_to_prefetch=prompts_to_prefetch,
            media_config=media_config,
            call_options=call_options,
            source=source,
            client_request_id=client_request_id,
        )

    def get_call(
        self, call_id: str, *, client_request_id: str | None = None
    ) -> CallResource:
        """``GET`` one call. Raises ``GraphNotFoundError`` once the call has ended."""
        response = self._request(
            "GET", _call_path(call_id), client_request_id=client_request_id
        )
        return parse_resource(CallResource.parse, response, json_object(response))

    def delete_call(
        self, call_id: str, *, client_request_id: str | None = None
    ) -> None:
        """Hang up: ``DELETE`` the bot's leg (the meeting itself goes on).

        The outcome arrives as ``terminating`` then ``deleted`` notifications.
        Raises ``GraphNotFoundError`` if the call has already ended.
        """
        self._request(
            "DELETE", _call_path(call_id), client_request_id=client_request_id
        )

    def keep_alive(self, call_id: str, *, client_request_id: str | None = None) -> None:
        """Tell Graph the bot still holds the call; needed at least every 45 minutes.

        Raises ``GraphNotFoundError`` when the call has already ended.
        """
        self._request(
            "POST",
            _call_path(call_id, "keepAlive"),
            client_request_id=client_request_id,
        )

    # --- incoming calls (§6.4-6.7) ----------------------------------------------

    def answer(
        self,
        call_id: str,
        *,
        callback_uri: str | None = None,
        accepted_modalities: Sequence[str] = ("audio",),
        media_config: Mapping[str, Any] | None = None,
        prompts_to_prefetch: Sequence[PromptLike] = (),
        call_options: CallOptions | None = None,
        participant_capacity: int | None = None,
        client_request_id: str | None = None,
    ) -> None:
        """Answer an ``incoming`` call (202; ``established`` follows by notification).

        Precondition: within 15 s of the incoming notification. Media is
        service-hosted (with ``prompts_to_prefetch``) unless ``media_config`` is given.
        Raises ``GraphNotFoundError`` when the caller has gone.
        """
        body = bodies.answer(
            callback_uri=callback_uri,
            accepted_modalities=accepted_modalities,
            media_config=media_config,
            prompts_to_prefetch=prompts_to_prefetch,
            call_options=call_options,
            participant_capacity=participant_capacity,
        )
        self._request(
            "POST",
            _call_path(call_id, "answer"),
            body=body,
            client_request_id=client_request_id,
        )

    def reject(
        self,
        call_id: str,
        reason: str = "none",
        *,
        callback_uri: str | None = None,
        client_request_id: str | None = None,
    ) -> None:
        """Reject an ``incoming`` call: ``none``, ``busy`` or ``forbidden`` (202).

        Only for calls not yet answered; hang up answered ones with ``delete_call``.
        """
        self._request(
            "POST",
            _call_path(call_id, "reject"),
            body=bodies.reject(reason, callback_uri),
            client_request_id=client_request_id,
        )

    def redirect(
        self,
        call_id: str,
        targets: Sequence[TargetLike],
        *,
        timeout: int | None = None,
        callback_uri: str | None = None,
        client_request_id: str | None = None,
    ) -> None:
        """Forward an ``incoming`` call to 1-25 targets ringing at once (202).

        ``timeout`` is 15-90 s (Graph's default 55/60). Needs ``Calls.Initiate.All``.
        """
        self._request(
            "POST",
            _call_path(call_id, "redirect"),
            body=bodies.redirect(targets, timeout, callback_uri),
            client_request_id=client_request_id,
        )

    def transfer(
        self,
        call_id: str,
        transfer_target: TargetLike,
        *,
        transferee: Identity | Mapping[str, Any] | None = None,
        transferee_participant_id: str | None = None,
        replaces_call_id: str | None = None,
        client_context: str | None = None,
        client_request_id: str | None = None,
    ) -> None:
        """Transfer an established call (202); progress comes as notifications.

        ``replaces_call_id`` (the bot's call with the target) makes it consultative;
        ``transferee`` is required out of a group call. Needs ``Calls.Initiate.All``.
        """
        body = bodies.transfer(
            transfer_target,
            replaces_call_id=replaces_call_id,
            transferee=transferee,
            transferee_participant_id=transferee_participant_id,
            client_context=client_context,
        )
        self._request(
            "POST",
            _call_path(call_id, "transfer"),
            body=body,
            client_request_id=client_request_id,
        )

    # --- media and call control (§6.8-6.15) -------------------------------------

    def mute(
        self,
        call_id: str,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Server-mute the bot in a group call; usually returned ``completed``."""
        return self._operation(
            _call_path(call_id, "mute"),
            bodies.client_context_only(client_context),
            client_request_id,
        )

    def unmute(
        self,
        call_id: str,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Unmute the bot in a group call; usually returned ``completed``."""
        return self._operation(
            _call_path(call_id, "unmute"),
            bodies.client_context_only(client_context),
            client_request_id,
        )

    def play_prompt(
        self,
        call_id: str,
        prompts: Sequence[PromptLike],
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Queue 1-20 WAV prompts (URLs or ``MediaInfo``) on service-hosted media.

        Returns the ``running`` operation; completion arrives as a ``deleted``
        operation notification echoing ``client_context``. Raises
        ``GraphBadRequestError`` on app-hosted media.
        """
        return self._operation(
            _call_path(call_id, "playPrompt"),
            bodies.play_prompt(prompts, client_context),
            client_request_id,
        )

    def record_response(
        self,
        call_id: str,
        *,
        prompt: PromptLike | None = None,
        barge_in_allowed: bool = False,
        initial_silence_timeout: int = 5,
        max_silence_timeout: int = 5,
        max_record_duration: int = 5,
        play_beep: bool = True,
        stop_tones: Sequence[str] = (),
        client_context: str | None = None,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Record a short answer (≤ 2 min) after an optional prompt (§6.10).

        Timers are seconds, 1-120 each (defaults as Graph's); ``stop_tones`` are DTMF
        characters such as ``"#"``. Completion carries ``recording_location`` and
        ``recording_access_token`` for ``download_recording``. Needs
        ``Calls.AccessMedia.All``.
        """
        body = bodies.record_response(
            prompt=prompt,
            barge_in_allowed=barge_in_allowed,
            initial_silence_timeout=initial_silence_timeout,
            max_silence_timeout=max_silence_timeout,
            max_record_duration=max_record_duration,
            play_beep=play_beep,
            stop_tones=stop_tones,
            client_context=client_context,
        )
        return self._operation(
            _call_path(call_id, "recordResponse"), body, client_request_id
        )

    def cancel_media_processing(
        self,
        call_id: str,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Cancel the running and queued prompts/recordings (not the tone subscription).

        Each cancelled operation then reports ``failed`` (400/8508) by notification.
        """
        return self._operation(
            _call_path(call_id, "cancelMediaProcessing"),
            bodies.client_context_only(client_context),
            client_request_id,
        )

    def subscribe_to_tone(
        self,
        call_id: str,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Receive DTMF key presses as call notifications with ``toneInfo``.

        Service-hosted media only; needs ``Calls.AccessMedia.All``.
        """
        return self._operation(
            _call_path(call_id, "subscribeToTone"),
            bodies.client_context_only(client_context),
            client_request_id,
        )

    def send_dtmf_tones(
        self,
        call_id: str,
        tones: Sequence[str],
        delay_between_tones_ms: int | None = None,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Play DTMF tones (``tone0``-``tone9``, ``star``, ``pound``, ``a``-``d``,
        ``flash``) into the call; completion arrives by notification."""
        return self._operation(
            _call_path(call_id, "sendDtmfTones"),
            bodies.send_dtmf_tones(tones, delay_between_tones_ms, client_context),
            client_request_id,
        )

    def change_screen_sharing_role(
        self, call_id: str, role: str, *, client_request_id: str | None = None
    ) -> None:
        """Make the bot a screen-sharing ``viewer`` or ``sharer`` (202).

        App-hosted media group calls only; the roster update shows the result.
        """
        self._request(
            "POST",
            _call_path(call_id, "changeScreenSharingRole"),
            body=bodies.change_screen_sharing_role(role),
            client_request_id=client_request_id,
        )

    def update_recording_status(
        self,
        call_id: str,
        status: str,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Declare the bot ``recording``, ``notRecording`` or ``failed``.

        Mandatory before persisting app-hosted media and after recording stops.
        """
        return self._operation(
            _call_path(call_id, "updateRecordingStatus"),
            bodies.update_recording_status(status, client_context),
            client_request_id,
        )

    # --- participants (§6.16) ---------------------------------------------------

    def list_participants(
        self, call_id: str, *, client_request_id: str | None = None
    ) -> list[ParticipantResource]:
        """The call's roster, following ``@odata.nextLink`` pages.

        A next link pointing anywhere but this client's Graph host raises
        ``GraphError`` (the bearer token must not leave for another host).
        """
        url = _call_path(call_id, "participants")
        participants: list[ParticipantResource] = []
        request_id = client_request_id
        for _ in range(MAX_PAGES):
            response = self._request("GET", url, client_request_id=request_id)
            request_id = None  # each further page is a request of its own
            page = json_object(response)
            values = page.get("value")
            if not isinstance(values, list):
                raise invalid_response(
                    response, "participants page without a value list"
                )
            participants.extend(
                parse_resource(ParticipantResource.parse, response, v) for v in values
            )
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return participants
            url = self._transport.same_origin(str(next_link), response)
        raise invalid_response(response, f"more than {MAX_PAGES} participant pages")

    def get_participant(
        self, call_id: str, participant_id: str, *, client_request_id: str | None = None
    ) -> ParticipantResource:
        """One roster entry. Raises ``GraphNotFoundError`` when it is not (or no
        longer) in the call."""
        response = self._request(
            "GET",
            _participant_path(call_id, participant_id),
            client_request_id=client_request_id,
        )
        return parse_resource(
            ParticipantResource.parse, response, json_object(response)
        )

    def invite_participants(
        self,
        call_id: str,
        participants: Sequence[TargetLike],
        *,
        replaces_call_id: str | None = None,
        client_context: str | None = None,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Invite 1-5 people into a group call or meeting (needs valid ``chatInfo``).

        With ``replaces_call_id`` (the invitee's current P2P call with the bot) only
        one participant is allowed, and that call ends once they join. Needs
        ``Calls.InitiateGroupCall.All``.
        """
        body = bodies.invite_participants(
            participants, replaces_call_id, client_context
        )
        return self._operation(
            _call_path(call_id, "participants", "invite"), body, client_request_id
        )

    def mute_participant(
        self,
        call_id: str,
        participant_id: str,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Server-mute another participant (there is no API to unmute others)."""
        return self._operation(
            _participant_path(call_id, participant_id, "mute"),
            bodies.client_context_only(client_context),
            client_request_id,
        )

    def remove_participant(
        self, call_id: str, participant_id: str, *, client_request_id: str | None = None
    ) -> None:
        """Drop a participant, or cancel an outstanding invite (204).

        Raises ``GraphForbiddenError`` unless the tenant allows the app to remove
        participants (``AllowRemoveParticipantAppIds``).
        """
        self._request(
            "DELETE",
            _participant_path(call_id, participant_id),
            client_request_id=client_request_id,
        )

    def start_hold_music(
        self,
        call_id: str,
        participant_id: str,
        custom_prompt: PromptLike | None = None,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Put one participant on hold with music (one at a time per call; 202)."""
        return self._operation(
            _participant_path(call_id, participant_id, "startHoldMusic"),
            bodies.start_hold_music(custom_prompt, client_context),
            client_request_id,
        )

    def stop_hold_music(
        self,
        call_id: str,
        participant_id: str,
        client_context: str | None = None,
        *,
        client_request_id: str | None = None,
    ) -> OperationResource:
        """Take a participant off hold (202); completion arrives by notification."""
        return self._operation(
            _participant_path(call_id, participant_id, "stopHoldMusic"),
            bodies.client_context_only(client_context),
            client_request_id,
        )

    # --- online meetings and recordings (§10.1, §6.10) --------------------------

    def create_online_meeting(
        self,
        user_id: str,
        subject: str,
        start: datetime,
        end: datetime,
        *,
        attendees: Sequence[Identity] = (),
        is_passcode_required: bool | None = None,
        lobby_bypass_scope: str | None = None,
        allowed_presenters: str | None = None,
        client_request_id: str | None = None,
    ) -> OnlineMeetingResource:
        """Create an online meeting organised by ``user_id`` (timezone-aware times).

        Needs ``OnlineMeetings.ReadWrite.All`` and an application access policy for
        that user, else ``GraphForbiddenError``.
        """
        body = bodies.online_meeting(
            subject=subject,
            start=start,
            end=end,
            attendees=attendees,
            is_passcode_required=is_passcode_required,
            lobby_bypass_scope=lobby_bypass_scope,
            allowed_presenters=allowed_presenters,
        )
        path = f"/users/{_segment(user_id, 'user_id')}/onlineMeetings"
        response = self._request(
            "POST", path, body=body, client_request_id=client_request_id
        )
        return parse_resource(
            OnlineMeetingResource.parse, response, json_object(response)
        )

    def create_or_get_online_meeting(
        self,
        user_id: str,
        external_id: str,
        subject: str,
        start: datetime,
        end: datetime,
        *,
        attendees: Sequence[Identity] = (),
        client_request_id: str | None = None,
    ) -> OnlineMeetingResource:
        """Create an online meeting organised by ``user_id`` under our own key
        ``external_id``, or get the one already created under it (§10.2).

        Idempotent where ``create_online_meeting`` is not: Graph answers 201 with a
        new meeting, or 200 with the meeting that (tenant, ``user_id``,
        ``external_id``) already names, whatever the rest of the body says. Same
        permission and access policy as ``create_online_meeting``.
        """
        body = bodies.online_meeting_create_or_get(
            external_id=external_id,
            subject=subject,
            start=start,
            end=end,
            attendees=attendees,
        )
        path = f"/users/{_segment(user_id, 'user_id')}/onlineMeetings/createOrGet"
        response = self._request(
            "POST", path, body=body, client_request_id=client_request_id
        )
        return parse_resource(
            OnlineMeetingResource.parse, response, json_object(response)
        )

    def download_recording(
        self,
        location: str,
        access_token: str,
        *,
        client_request_id: str | None = None,
    ) -> bytes:
        """Fetch a ``recordResponse`` recording with its own access token.

        Fetch soon: the file is discarded shortly after the call ends
        (``GraphNotFoundError``). Retried like any request.
        """
        parts = urlsplit(location)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("recording location must be an absolute http(s) URL")
        if not access_token:
            raise ValueError("a recording access token is required")
        response = self._request(
            "GET",
            location,
            bearer=access_token,
            client_request_id=client_request_id,
        )
        return response.content

    # --- the wire ---------------------------------------------------------------

    def _operation(
        self,
        path: str,
        body: JsonDict,
        client_request_id: str | None,
    ) -> OperationResource:
        response = self._request(
            "POST", path, body=body, client_request_id=client_request_id
        )
        operation = parse_resource(
            OperationResource.parse, response, json_object(response)
        )
        if operation.id is None and (new_id := location_id(response)):
            operation = replace(operation, id=new_id)
        return operation

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        body: Mapping[str, Any] | None = None,
        client_request_id: str | None = None,
        bearer: str | None = None,
    ) -> httpx.Response:
        # Every request goes through GraphTransport.send: headers, client-request-id,
        # retries, Retry-After, error mapping and logging live there and only there.
        return self._transport.send(
            method,
            path_or_url,
            tenant_id=self._tenant_id,
            body=body,
            client_request_id=client_request_id,
            bearer=bearer,
        )


# --- helpers ----------------------------------------------------------------------


def _segment(value: str, what: str) -> str:
    # Ids are opaque (contract conventions): quote them whole, never parse them.
    return quote(bodies.check_id(value, what), safe="")


def _call_path(call_id: str, *rest: str) -> str:
    """``/communications/calls/{id}/...``; ``rest`` are action names (ours)."""
    return "/".join(["/communications/calls", _segment(call_id, "call_id"), *rest])


def _participant_path(call_id: str, participant_id: str, *rest: str) -> str:
    return _call_path(
        call_id, "participants", _segment(participant_id, "participant_id"), *rest
    )
