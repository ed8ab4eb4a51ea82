"""One row per action kind: everything Callbot knows about a kind, in one table.

A row says which call states the kind needs (or that it creates its own call),
whether it targets a participant, whether it only makes sense in a group call,
whether a browser may ask for it over the socket, whether only the bot may, how
its parameters are cleaned, how a call's state settles it when Graph answers with
a bare 202, whether it moves someone's hold state, and which media the call must
have (``media``; with ``group_only`` and ``unsupported`` the columns
``availability.py`` words into "not offered on this call" sentences). The service,
the socket, the page's labels (sent in the socket's ``hello``), ingest and the
performers' completeness check all read this table.

Three rows are requests rather than Actions: ``mute_all`` (one ``mute_participant``
per person, see ``services.request``), ``take`` (a person takes a call held with
music for them: ``callbot.ivr.supervisors.take_call``) and ``unmute_participant``
(always refused: Graph cannot do it). Adding an action kind is one row here, one performer in
``performers.py`` and one client method with its body in ``callbot/graph``.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbot.calls import params
from callbot.calls.models import Action
from callbot.calls.states import CONNECTED_STATES, ActionStatus, CallState

S = CallState
K = Action.Kind


@dataclass(frozen=True)
class Settles:
    """A kind finished by its call's state: the states that complete it, fail it."""

    completes: frozenset[CallState]
    fails: frozenset[CallState] = frozenset()
    # Fails only when the call comes back from one of these states (a transfer
    # that falls back to established); empty: from any state.
    fails_after: frozenset[CallState] = frozenset()


@dataclass(frozen=True)
class KindSpec:
    kind: str
    # The call states the kind acts in; None: the kind creates its own call.
    states: frozenset[CallState] | None
    verb: str = ""
    participant: bool = False
    group_only: bool = False
    browser: bool = False
    bot_only: bool = False
    clean: params.Cleaner = params.no_params
    settles: Settles | None = None
    # A completed one puts its participant on hold (True) or takes them off (False).
    hold: bool | None = None
    # False for the two requests that are not Actions of their own.
    is_action: bool = True
    # A request Graph cannot carry out: refused with this sentence.
    unsupported: str = ""
    label_text: str = ""
    # The media a call must have for Graph to allow the kind: "app_hosted" or
    # "service_hosted" (contract §6.9-§6.14); "" for either.
    media: str = ""
    # What the kind lets the bot do, for the sentence saying where Graph allows it
    # ("mute itself"): ``availability.py`` words it.
    can: str = ""
    # The application permission Graph requires for the kind (contract §1.3;
    # ``app_permissions.FEATURES`` words what fails without it); "" for none.
    needs: str = ""

    @property
    def label(self) -> str:
        if self.label_text:
            return self.label_text
        return str(Action.Kind(self.kind).label)


_CONNECTED = frozenset(CONNECTED_STATES)
_LIVE_BUT_INCOMING = frozenset(set(CallState) - {S.TERMINATED, S.INCOMING})
_UP = frozenset({S.ESTABLISHED, S.HOLD, S.TRANSFERRING, S.TRANSFER_ACCEPTED})
# Answer, place and join: up when established, failed when the call ends first.
_SET_UP = Settles(completes=_UP, fails=frozenset({S.TERMINATED}))
# Reject, redirect and hang up: done when the call has ended.
_ENDS = Settles(completes=frozenset({S.TERMINATED}))
INITIATE = "Calls.Initiate.All"
GROUP_CALL = "Calls.InitiateGroupCall.All"
JOIN_GROUP_CALL = "Calls.JoinGroupCall.All"
ACCESS_MEDIA = "Calls.AccessMedia.All"

_ROWS = [
    KindSpec(
        K.ANSWER,
        frozenset({S.INCOMING}),
        "answer",
        browser=True,
        clean=params.answer,
        settles=_SET_UP,
    ),
    KindSpec(
        K.REJECT,
        frozenset({S.INCOMING}),
        "reject",
        browser=True,
        clean=params.reject,
        settles=_ENDS,
    ),
    KindSpec(
        K.REDIRECT,
        frozenset({S.INCOMING}),
        "redirect",
        browser=True,
        clean=params.redirect,
        settles=_ENDS,
        can="redirect a call",
        needs=INITIATE,
    ),
    KindSpec(
        K.TRANSFER,
        frozenset({S.ESTABLISHED}),
        "transfer",
        browser=True,
        clean=params.transfer,
        # Done when the bot's leg ends; transferAccepted is not yet success: a
        # failed transfer comes back to established after it (contract §6.7).
        settles=Settles(
            completes=frozenset({S.TERMINATED}),
            fails=frozenset({S.ESTABLISHED}),
            fails_after=frozenset({S.TRANSFERRING, S.TRANSFER_ACCEPTED}),
        ),
        can="transfer a call",
        needs=INITIATE,
    ),
    KindSpec(
        K.PLACE_CALL,
        None,
        "place a call",
        clean=params.place_call,
        settles=_SET_UP,
        needs=INITIATE,
    ),
    KindSpec(
        K.PLACE_GROUP_CALL,
        None,
        "place a group call",
        clean=params.group_call,
        settles=_SET_UP,
        needs=GROUP_CALL,
    ),
    KindSpec(
        K.JOIN_MEETING,
        None,
        "join a meeting",
        clean=params.join_meeting,
        settles=_SET_UP,
        needs=JOIN_GROUP_CALL,
    ),
    KindSpec(
        K.CREATE_ONLINE_MEETING,
        None,
        "create a meeting",
        clean=params.online_meeting,
        needs="OnlineMeetings.ReadWrite.All",
    ),
    KindSpec(
        K.INVITE,
        _CONNECTED,
        "invite someone to",
        browser=True,
        clean=params.invite,
        can="invite people into a call",
        needs=GROUP_CALL,
    ),
    # Self-mute is for group calls only (contract §6.8).
    KindSpec(
        K.MUTE_BOT,
        _CONNECTED,
        "mute the bot in",
        group_only=True,
        browser=True,
        can="mute itself",
    ),
    KindSpec(
        K.UNMUTE_BOT,
        _CONNECTED,
        "unmute the bot in",
        group_only=True,
        browser=True,
        can="unmute itself",
    ),
    KindSpec(
        K.MUTE_PARTICIPANT,
        _CONNECTED,
        "mute someone in",
        participant=True,
        group_only=True,
        browser=True,
        can="mute someone",
    ),
    KindSpec(
        K.REMOVE_PARTICIPANT,
        _CONNECTED,
        "remove someone from",
        participant=True,
        group_only=True,
        browser=True,
        can="remove someone",
        needs=JOIN_GROUP_CALL,
    ),
    KindSpec(
        K.START_HOLD_MUSIC,
        _CONNECTED,
        "put someone on hold",
        participant=True,
        browser=True,
        hold=True,
    ),
    KindSpec(
        K.STOP_HOLD_MUSIC,
        _CONNECTED,
        "take someone off hold",
        participant=True,
        browser=True,
        hold=False,
    ),
    KindSpec(K.HANG_UP, _LIVE_BUT_INCOMING, "hang up", browser=True, settles=_ENDS),
    KindSpec(
        K.PLAY_PROMPT,
        _CONNECTED,
        "play a prompt in",
        browser=True,
        clean=params.play_prompt,
        media="service_hosted",
        can="play prompts",
    ),
    KindSpec(
        K.RECORD_RESPONSE,
        _CONNECTED,
        "record in",
        clean=params.record_response,
        media="service_hosted",
        can="record responses",
        needs=ACCESS_MEDIA,
    ),
    KindSpec(K.CANCEL_MEDIA_PROCESSING, _CONNECTED, "cancel media in"),
    KindSpec(
        K.SUBSCRIBE_TO_TONE,
        _CONNECTED,
        "collect tones in",
        media="service_hosted",
        can="collect key presses",
        needs=ACCESS_MEDIA,
    ),
    KindSpec(K.SEND_DTMF_TONES, _CONNECTED, "send tones in", clean=params.dtmf),
    KindSpec(
        K.CHANGE_SCREEN_SHARING_ROLE,
        _CONNECTED,
        "change screen sharing in",
        group_only=True,
        browser=True,
        clean=params.screen_sharing_role,
        # Application-hosted media group calls only (contract §6.14).
        media="app_hosted",
        can="change its screen-sharing role",
        needs=ACCESS_MEDIA,
    ),
    KindSpec(
        K.UPDATE_RECORDING_STATUS,
        _CONNECTED,
        "set recording status in",
        browser=True,
        clean=params.recording_status,
        needs=ACCESS_MEDIA,
    ),
    KindSpec(K.KEEP_ALIVE, _LIVE_BUT_INCOMING, "keep alive", bot_only=True),
    # Requests that are not Actions of their own.
    KindSpec(
        "mute_all",
        _CONNECTED,
        "mute everyone in",
        group_only=True,
        browser=True,
        is_action=False,
        label_text="Mute everyone except presenters",
        can="mute people",
    ),
    KindSpec(
        "take",
        _CONNECTED,
        "take",
        browser=True,
        is_action=False,
        label_text="Take the call",
    ),
    KindSpec(
        "unmute_participant",
        _CONNECTED,
        "unmute someone in",
        participant=True,
        browser=True,
        is_action=False,
        unsupported=(
            "Teams does not let a bot unmute someone else; ask them to unmute "
            "themselves."
        ),
        label_text="Unmute Participant",
    ),
]

KINDS: dict[str, KindSpec] = {row.kind: row for row in _ROWS}
ACTION_KINDS: frozenset[str] = frozenset(k for k, r in KINDS.items() if r.is_action)
BROWSER_KINDS: frozenset[str] = frozenset(k for k, r in KINDS.items() if r.browser)
LABELS: dict[str, str] = {k: r.label for k, r in KINDS.items()}
SETTLED_BY_CALL_KINDS: frozenset[str] = frozenset(
    k for k, r in KINDS.items() if r.settles is not None
)
# The kinds that act only on a ringing call (answer, reject, redirect): Graph ends
# a call nobody answered after about 15 s, so they are time-critical.
RINGING_KINDS: frozenset[str] = frozenset(
    k for k, r in KINDS.items() if r.states == frozenset({S.INCOMING})
)
HOLD_KINDS: dict[str, bool] = {
    k: r.hold for k, r in KINDS.items() if r.hold is not None
}


def spec(kind: str) -> KindSpec | None:
    """The row for ``kind``, or None for a kind Callbot does not know."""
    return KINDS.get(kind)


def label(kind: str) -> str:
    """The kind's label, lower case, for sentences; the raw kind if unknown."""
    row = KINDS.get(kind)
    return row.label.lower() if row is not None else kind


def settled_status(
    kind: str, state: str, previous: str | None = None
) -> ActionStatus | None:
    """What a call in ``state`` (just moved from ``previous``, if known) means for a
    pending action of ``kind``: completed, failed, or None when it says nothing."""
    row = KINDS.get(kind)
    settles = row.settles if row is not None else None
    if settles is None:
        return None
    if state in settles.completes:
        return ActionStatus.COMPLETED
    if state in settles.fails:
        if settles.fails_after and previous not in settles.fails_after:
            return None  # e.g. established again, but not after a transfer attempt
        return ActionStatus.FAILED
    return None
