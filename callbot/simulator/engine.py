"""The engine: call legs, their state machine (contract §3.2) and what follows each move.

Request handlers call engine methods, which check the move, change state at once and
say what notifications follow. Inside a Graph or control request those notifications
(and any delayed flow, such as establishing -> established) are held in a
``Deferred`` and released only after the HTTP response went out, because Graph always
notifies asynchronously after answering (contract §14). Outside a request (timers,
scenarios) they go straight to the notifier.

Emulator choices where the contract is silent (also in docs/emulator.md):
* an incoming call nobody answers ends after ``answer_timeout`` (15 s) with 408/1106
  "Call acceptance not acknowledged in time";
* DELETE ends with ``updated`` terminating, then ``deleted`` 200/5001;
* a wrong-state action (answer an established call, transfer a ringing one) is 409;
* an ad-hoc group call whose humans all left ends with 200/5002.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from callbot.simulator import notices, validate
from callbot.simulator.clock import Clock
from callbot.simulator.config import EmulatorConfig
from callbot.simulator.delivery import Notification, Notifier
from callbot.simulator.errors import (
    GraphError,
    bad_request,
    conflict,
    forbidden,
    not_found,
)
from callbot.simulator.events import EventLog
from callbot.simulator.faults import FaultBoard
from callbot.simulator.model import (
    Call,
    Conversation,
    Participant,
    identity_set,
    new_id,
    odata,
    result_info,
)
from callbot.simulator.roster import delta_roster, full_roster

logger = logging.getLogger(__name__)

_ENDED_KEPT = 2000
LIVE_STATES = frozenset(
    {"establishing", "established", "hold", "transferring", "transferAccepted"}
)

RESULT_HANGUP = (200, 5001, "The conversation has ended.")
RESULT_ANSWER_TIMEOUT = (408, 1106, "Call acceptance not acknowledged in time.")
RESULT_KEEPALIVE = (408, 8537, "Call was ended because no keepAlive was received.")
RESULT_PEER_HANGUP = (
    200,
    4521,
    "Call ended by the other participant in peer-to-peer call.",
)
RESULT_REMOVED = (200, 5000, "Removed from the conversation by another participant.")
RESULT_ALL_LEFT = (200, 5002, "All other participants left.")
RESULT_UNREACHABLE = (480, 10076, "Callee unreachable.")
RESULT_NOT_ROUTED = (480, 10134, "Could not route the call.")


@dataclass
class Deferred:
    """Notifications and flows held until the current response has been sent."""

    notes: list[Notification] = field(default_factory=list)
    starts: list[Coroutine[Any, Any, None]] = field(default_factory=list)

    def discard(self) -> None:
        for coro in self.starts:
            coro.close()
        self.notes.clear()
        self.starts.clear()

    def __bool__(self) -> bool:
        return bool(self.notes or self.starts)


_deferred: contextvars.ContextVar[Deferred | None] = contextvars.ContextVar(
    "emulator_deferred", default=None
)


def ri(result: tuple[int, int, str]) -> dict[str, Any]:
    return result_info(*result)


class Engine:
    """Owns every call leg and conversation; the only writer of emulator state."""

    def __init__(
        self,
        config: EmulatorConfig,
        clock: Clock,
        notifier: Notifier,
        faults: FaultBoard,
        events: EventLog,
        rng: random.Random,
    ) -> None:
        self.config = config
        self.clock = clock
        self.notifier = notifier
        self.faults = faults
        self.events = events
        self.rng = rng
        self.calls: dict[str, Call] = {}
        self.ended: OrderedDict[str, Call] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        # Called with each leg that ends (media.py drops its queue there).
        self.on_end: list[Callable[[Call], None]] = []
        # The origin clients reach us at, learnt from requests when not configured.
        self.seen_base = f"https://{config.host}:{config.port}"

    # --- deferral ------------------------------------------------------------------
    @contextmanager
    def request_scope(self) -> Iterator[Deferred]:
        """Hold notifications and flows raised inside the block (one HTTP request)."""
        deferred = Deferred()
        token = _deferred.set(deferred)
        try:
            yield deferred
        except BaseException:
            deferred.discard()
            raise
        finally:
            _deferred.reset(token)

    def release(self, deferred: Deferred) -> None:
        """Send what a request held, in order, then start its flows."""
        for note in deferred.notes:
            self.notifier.enqueue(note)
        for coro in deferred.starts:
            self._create_task(coro)
        deferred.notes.clear()
        deferred.starts.clear()

    async def release_after_response(self, deferred: Deferred) -> None:
        """``release`` as a Starlette background task (async, so it stays on the loop
        instead of being sent to a worker thread)."""
        self.release(deferred)

    def notify(self, note: Notification) -> None:
        """Queue ``note`` now, or after the response when inside a request."""
        deferred = _deferred.get()
        if deferred is not None:
            deferred.notes.append(note)
        else:
            self.notifier.enqueue(note)

    def start(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a background flow (after the response inside a request)."""
        deferred = _deferred.get()
        if deferred is not None:
            deferred.starts.append(coro)
        else:
            self._create_task(coro)

    def _create_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(
            coro, context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("emulator flow failed", exc_info=task.exception())

    def busy(self) -> bool:
        """True while a flow (establishing, hang-up, media...) is still running."""
        return bool(self._tasks)

    def reset(self) -> None:
        """Forget every call, silently (``POST /_emulator/reset``)."""
        for task in list(self._tasks):
            task.cancel()
        for call in self.calls.values():
            self._cancel_timers(call)
        self.calls.clear()
        self.ended.clear()

    def public_base(self) -> str:
        """Origin for URLs we hand out (recordings): configured, else as last seen."""
        return (self.config.public_url or self.seen_base).rstrip("/")

    # --- lookups -------------------------------------------------------------------
    def live_call(self, call_id: str) -> Call:
        """The live call ``call_id`` or Graph's 404 (ended calls are gone, §6.3)."""
        call = self.calls.get(call_id) or self.calls.get(
            _find_loose(self.calls, call_id)
        )
        if call is None:
            raise not_found(f"Call '{call_id}'")
        return call

    def any_call(self, call_id: str) -> Call | None:
        """A live or recently ended call (control API)."""
        return self.calls.get(call_id) or self.ended.get(call_id)

    def require(self, roles: frozenset[str], *permissions: str) -> None:
        """403 unless the token's roles hold one of ``permissions``."""
        if not any(p in roles for p in permissions):
            raise forbidden(" or ".join(permissions))

    # --- building blocks -----------------------------------------------------------
    def bot_identity(self, instance: bool = False) -> dict[str, Any]:
        bot = self.config.bot
        if instance:
            return identity_set(
                "applicationInstance", bot.instance_id, bot.display_name, bot.tenant_id
            )
        return identity_set(
            "application", bot.client_id, bot.display_name, bot.tenant_id
        )

    def new_call(
        self,
        conversation: Conversation,
        direction: str,
        state: str,
        callback_uri: str,
        source: dict[str, Any],
        targets: list[dict[str, Any]],
        modalities: list[str],
        tenant_id: str | None = None,
    ) -> Call:
        call = Call(
            id=new_id(),
            direction=direction,
            state=state,
            callback_uri=callback_uri,
            tenant_id=tenant_id or self.config.bot.tenant_id,
            conversation=conversation,
            my_participant_id=new_id(),
            source=source,
            targets=targets,
            requested_modalities=modalities,
            created_at=self.clock.now(),
        )
        conversation.call_ids.append(call.id)
        self.calls[call.id] = call
        return call

    def add_participant(
        self,
        conversation: Conversation,
        identity: dict[str, Any],
        *,
        bot_leg: Call | None = None,
        muted: bool = False,
    ) -> Participant:
        """Put someone in the roster and tell every established bot leg."""
        participant = Participant(
            id=bot_leg.my_participant_id if bot_leg else new_id(),
            identity=identity,
            is_bot_leg=bot_leg is not None,
            muted=muted,
            source_base=conversation.allocate_sources(),
        )
        conversation.participants[participant.id] = participant
        self.roster_changed(conversation, [participant], [])
        return participant

    def remove_participant(
        self, conversation: Conversation, participant_id: str, reason: str
    ) -> Participant | None:
        participant = conversation.participants.pop(participant_id, None)
        if participant is not None:
            self.roster_changed(conversation, [], [(participant, reason)])
        return participant

    def roster_changed(
        self,
        conversation: Conversation,
        changed: list[Participant],
        removed: list[tuple[Participant, str]],
    ) -> None:
        """Send a roster update to each established bot leg of a group conversation."""
        for participant in changed:
            participant.touch()
        if conversation.kind == "p2p":
            return
        for call_id in conversation.call_ids:
            call = self.calls.get(call_id)
            if call is None or not call.roster_started or call.ended:
                continue
            if call.delta_roster:
                self.notify(delta_roster(call, changed, removed))
            else:
                self.notify(full_roster(call))

    # --- timers --------------------------------------------------------------------
    def _arm(self, call: Call, name: str, seconds: float, expired: Any) -> None:
        old = call.timers.pop(name, None)
        if old is not None:
            old.cancel()
        call.timers[name] = self.clock.call_later(seconds, lambda: expired(call))

    def _cancel_timers(self, call: Call) -> None:
        for handle in call.timers.values():
            handle.cancel()
        call.timers.clear()

    def arm_keepalive(self, call: Call) -> None:
        self._arm(
            call, "keepalive", self.config.keepalive_timeout, self._keepalive_expired
        )

    def _keepalive_expired(self, call: Call) -> None:
        if not call.ended:
            self.events.add(
                "call", f"call {call.id} had no keepAlive in time", callId=call.id
            )
            self.end(call, ri(RESULT_KEEPALIVE))

    def arm_answer_timeout(self, call: Call) -> None:
        self._arm(call, "answer", self.config.answer_timeout, self._answer_expired)

    def _answer_expired(self, call: Call) -> None:
        if call.state == "incoming":
            self.events.add(
                "call",
                f"incoming call {call.id} was not answered in time",
                callId=call.id,
            )
            self.end(call, ri(RESULT_ANSWER_TIMEOUT))

    # --- the state machine -----------------------------------------------------------
    def establish_later(
        self, call: Call, delay: float, joining: list[dict[str, Any]]
    ) -> None:
        """Notify ``establishing`` now and ``established`` after ``delay``."""
        self.notify(notices.call_updated(call))
        self.start(self._establish_flow(call, delay, joining))

    async def _establish_flow(
        self, call: Call, delay: float, joining: list[dict[str, Any]]
    ) -> None:
        await self.clock.sleep(delay)
        if call.state != "establishing":
            return
        if call.direction == "outgoing" and call.kind != "meeting":
            if self.faults.take("callee_unreachable", call.id) is not None:
                self.end(call, ri(RESULT_UNREACHABLE))
                return
            for identity in joining:
                self.add_participant(call.conversation, identity)
        self.established(call)

    def established(self, call: Call) -> None:
        """Move to ``established``: notify, join the roster, start media and keepAlive."""
        call.state = "established"
        extra: dict[str, Any] = {}
        if call.kind == "meeting":
            extra = {"chatInfo": call.chat_info, "meetingInfo": call.meeting_info}
        self.notify(notices.call_updated(call, **extra))
        bot_identity = self.bot_identity(
            instance="applicationInstance" in _identity_of(call.source)
        )
        if call.direction == "incoming" and call.kind == "p2p":
            bot_identity = self.bot_identity(
                instance=any(
                    "applicationInstance" in _identity_of(t) for t in call.targets
                )
            )
        self.add_participant(call.conversation, bot_identity, bot_leg=call)
        call.media_active = True
        self.notify(notices.call_updated(call, mediaState=call.media_state_json()))
        if call.kind != "p2p":
            self.start_roster(call)
        self.arm_keepalive(call)
        self.events.add(
            "call", f"call {call.id} established ({call.kind})", callId=call.id
        )
        call.bump()

    def start_roster(self, call: Call) -> None:
        """First roster of a leg: everyone present (in delta mode: all as changed)."""
        call.roster_started = True
        if call.delta_roster:
            self.notify(
                delta_roster(call, list(call.conversation.participants.values()), [])
            )
        else:
            self.notify(full_roster(call))

    def end(
        self, call: Call, result: dict[str, Any] | None, bare: bool = False
    ) -> None:
        """Terminate a leg: ``deleted`` to the bot, leave the roster, drop its state.

        Idempotent. Every path to ``terminated`` goes through here (contract §3.2).
        """
        if call.ended:
            return
        call.state = "terminated"
        call.result_info = result
        call.ended_at = self.clock.now()
        self._cancel_timers(call)
        for hook in self.on_end:
            hook(call)
        conversation = call.conversation
        if call.id in conversation.call_ids:
            conversation.call_ids.remove(call.id)
        self.remove_participant(conversation, call.my_participant_id, "left")
        self.notify(notices.call_deleted(call, bare=bare))
        if conversation.kind == "p2p":
            conversation.participants.clear()
        self.calls.pop(call.id, None)
        self.ended[call.id] = call
        while len(self.ended) > _ENDED_KEPT:
            self.ended.popitem(last=False)
        code = (
            f"{result.get('code')}/{result.get('subcode')}" if result else "no result"
        )
        self.events.add("call", f"call {call.id} terminated ({code})", callId=call.id)
        call.bump()

    # --- Graph: call-level actions ---------------------------------------------------
    def answer(self, call: Call, body: dict[str, Any], roles: frozenset[str]) -> None:
        """``POST .../answer`` (contract §6.4): 202, then establishing -> established."""
        callback = validate.callback_uri(body.get("callbackUri"), required=False)
        validate.modalities(body.get("acceptedModalities"), "acceptedModalities")
        media = validate.media_config(body.get("mediaConfig"))
        options = validate.opt_obj(body.get("callOptions"), "callOptions")
        if call.state != "incoming":
            raise conflict(
                f"Call is {call.state}; only an incoming call can be answered."
            )
        if call.kind != "p2p":
            self.require(
                roles, "Calls.JoinGroupCall.All", "Calls.JoinGroupCallAsGuest.All"
            )
        if callback:
            call.callback_uri = callback
        call.media_config = media
        call.call_options = options
        call.delta_roster = bool(options and options.get("isDeltaRosterEnabled"))
        call.state = "establishing"
        self._cancel_timers(call)
        self.events.add("graph", f"bot answered call {call.id}", callId=call.id)
        self.establish_later(call, self.config.setup_delay, [])

    def reject(self, call: Call, body: dict[str, Any]) -> None:
        """``POST .../reject`` (§6.5): 202, then a bare ``deleted``."""
        reason = validate.text(body.get("reason"), "reason") or "none"
        if reason.lower() not in ("none", "busy", "forbidden"):
            raise bad_request("'reason' must be none, busy or forbidden.")
        callback = validate.callback_uri(body.get("callbackUri"), required=False)
        if call.state != "incoming":
            raise conflict(
                f"Call is {call.state}; only an incoming call can be rejected."
            )
        if callback:
            call.callback_uri = callback
        self.events.add(
            "graph", f"bot rejected call {call.id} ({reason})", callId=call.id
        )
        self.end(call, None, bare=True)

    def redirect(self, call: Call, body: dict[str, Any], roles: frozenset[str]) -> None:
        """``POST .../redirect`` (§6.6): 202, then ``deleted`` with state terminated."""
        targets = validate.array(body.get("targets"), "targets")
        if not 1 <= len(targets) <= 25:
            raise bad_request("'targets' must hold 1 to 25 entries.")
        for index, target in enumerate(targets):
            validate.invitation(target, f"targets[{index}]")
        validate.integer(body.get("timeout"), "timeout", 55, 15, 90)
        callback = validate.callback_uri(body.get("callbackUri"), required=False)
        self.require(roles, "Calls.Initiate.All")
        if call.state != "incoming":
            raise conflict(
                f"Call is {call.state}; only an incoming call can be redirected."
            )
        if callback:
            call.callback_uri = callback
        self.events.add("graph", f"bot redirected call {call.id}", callId=call.id)
        self.end(call, None)

    def hang_up(self, call: Call) -> None:
        """``DELETE .../calls/{id}`` (§6.3): terminating now, deleted 200/5001 shortly."""
        if call.state == "terminating":
            return
        call.state = "terminating"
        self._cancel_timers(call)
        self.notify(notices.call_updated(call))
        self.events.add("graph", f"bot hung up call {call.id}", callId=call.id)
        self.start(self._finish_hang_up(call))

    async def _finish_hang_up(self, call: Call) -> None:
        await self.clock.sleep(self.config.setup_delay)
        self.end(call, ri(RESULT_HANGUP))

    def keep_alive(self, call: Call) -> None:
        """``POST .../keepAlive``: restart the 45-minute expiry (§6.3)."""
        if call.state == "incoming":
            raise conflict("Call has not been answered yet.")
        self.arm_keepalive(call)

    def transfer(self, call: Call, body: dict[str, Any], roles: frozenset[str]) -> None:
        """``POST .../transfer`` (§6.7): transferring -> transferAccepted -> deleted."""
        target = validate.invitation(body.get("transferTarget"), "transferTarget")
        transferee = validate.opt_obj(body.get("transferee"), "transferee")
        validate.client_context(body)
        self.require(roles, "Calls.Initiate.All")
        if call.state != "established":
            raise conflict(
                f"Call is {call.state}; only an established call can be transferred."
            )
        if call.kind != "p2p" and transferee is None:
            raise bad_request(
                "'transferee' is required to transfer out of a group call."
            )
        if transferee is not None:
            validate.identity_set(transferee.get("identity"), "transferee.identity")
            listed = transferee.get("participantId")
            if call.kind != "p2p" and listed not in call.conversation.participants:
                raise bad_request(
                    "'transferee.participantId' must name a participant of the call."
                )
        replaces = target.get("replacesCallId")
        if replaces is not None:
            if not isinstance(replaces, str) or not replaces:
                raise bad_request("'transferTarget.replacesCallId' must be a call id.")
            if _find_loose({call.id: call}, replaces):
                raise bad_request(
                    "'transferTarget.replacesCallId' names the call being "
                    "transferred; give the bot's other call with the target."
                )
        call.state = "transferring"
        self.notify(notices.call_updated(call))
        self.events.add("graph", f"bot transfers call {call.id}", callId=call.id)
        self.start(self._transfer_flow(call, target))

    async def _transfer_flow(self, call: Call, target: dict[str, Any]) -> None:
        await self.clock.sleep(self.config.transfer_delay)
        if call.state != "transferring":
            return
        call.state = "transferAccepted"
        self.notify(notices.call_updated(call))
        await self.clock.sleep(self.config.transfer_delay)
        if call.state != "transferAccepted":
            return
        consultative = bool(target.get("replacesCallId"))
        replaced = None
        if consultative:
            known = _find_loose(self.calls, str(target["replacesCallId"]))
            replaced = self.calls.get(known) if known else None
        # A consultative transfer needs the bot's live call with the target.
        gone = consultative and (replaced is None or replaced.ended)
        if gone or self.faults.take("transfer_failure", call.id) is not None:
            call.state = "established"
            code = (500, 7700 if consultative else 7000, "Transfer failed.")
            call.result_info = ri(code)
            self.notify(notices.call_updated(call, resultInfo=call.result_info))
            self.events.add(
                "call", f"transfer of call {call.id} failed", callId=call.id
            )
            call.bump()
            return
        done = result_info(0, 7015, "GracefulTransferCompleted")
        self.end(call, done)
        if replaced is not None:
            self.end(replaced, dict(done))


def _identity_of(info: dict[str, Any]) -> dict[str, Any]:
    identity = info.get("identity")
    return identity if isinstance(identity, dict) else {}


def _find_loose(calls: dict[str, Call], call_id: str) -> str:
    """Ids compare case-insensitively with dashes removed (contract conventions)."""
    wanted = call_id.replace("-", "").lower()
    for known in calls:
        if known.replace("-", "").lower() == wanted:
            return known
    return ""


def participant_info(
    identity: dict[str, Any], participant_id: str | None = None
) -> dict[str, Any]:
    """A participantInfo around an identitySet."""
    info = odata(
        "participantInfo",
        identity=identity,
        endpointType="default",
        region="amer",
        languageId="en-US",
    )
    if participant_id:
        info["participantId"] = participant_id
    return info


def invitation_info(identity: dict[str, Any]) -> dict[str, Any]:
    return odata("invitationParticipantInfo", identity=identity)


__all__ = ["LIVE_STATES", "Deferred", "Engine", "GraphError"]
