"""Who may ask for what, and on which call: actor checks and refusals.

``ActionRefusedError`` is the one way a request is turned down, with a code and a
sentence for a supervisor. The checks here take plain values (states, a verb) so
that the table of action kinds (``kinds.py``) can use them without an import back.

Reads only; must not import services, ingest or the tasks.
"""

from __future__ import annotations

from collections.abc import Collection

from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.db.models import Q

from callbot.calls.models import Call, Participant
from callbot.calls.states import CallState

# Who asks: a signed-in user, an anonymous one (refused), or None for the bot.
Actor = User | AnonymousUser | None

BOT_NAME = "callbot"

# The refusal codes, for the socket, the pages and the API.
REFUSAL_CODES = frozenset(
    {
        "forbidden",
        "call_not_found",
        "call_ended",
        "wrong_state",
        "not_offered",
        "participant_not_found",
        "unsupported",
        "invalid",
        "rate_limited",
    }
)


class ActionRefusedError(Exception):
    """A request Callbot will not make; ``message`` says why in a supervisor's words.

    ``code`` is one of ``REFUSAL_CODES``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_actor(actor: Actor, *, bot_only: bool = False, what: str = "") -> None:
    """Raise unless ``actor`` may request actions (None, the bot, always may).

    ``bot_only`` requests (keepAlive) are refused to every person.
    """
    if actor is None:
        return
    if bot_only:
        raise ActionRefusedError("forbidden", f"Only the bot may {what}.")
    if not actor.is_authenticated or not actor.is_active:
        raise ActionRefusedError("forbidden", "Sign in to act on calls.")
    read_permissions(actor)
    if not actor.has_perm("calls.request_action"):
        raise ActionRefusedError(
            "forbidden", "Your role may watch calls but not act on them."
        )


def read_permissions(user: User | AnonymousUser) -> None:
    """Read an active user's permission names, their own and their groups', in
    one statement, into the cache on the user object that ``ModelBackend``'s
    ``has_perm`` reads first (``_perm_cache``); the backend reads them in two,
    a round trip more before every click's transaction. The names are the
    backend's: every permission for a superuser. Cached on this object only,
    as the backend does: a user read afresh (every socket message, every
    request) reads them afresh, so a permission revoked applies at once."""
    if not isinstance(user, User) or not user.is_active or hasattr(user, "_perm_cache"):
        return
    permissions = Permission.objects.all()
    if not user.is_superuser:
        mine = User.user_permissions.through.objects.filter(user_id=user.pk)
        groups = User.groups.through.objects.filter(user_id=user.pk)
        theirs = Group.permissions.through.objects.filter(
            group_id__in=groups.values("group_id")
        )
        permissions = permissions.filter(
            Q(pk__in=mine.values("permission_id"))
            | Q(pk__in=theirs.values("permission_id"))
        )
    names = permissions.values_list("content_type__app_label", "codename").order_by()
    user._perm_cache = {f"{app}.{name}" for app, name in names}  # type: ignore[attr-defined]


def locked_call(
    call_pk: int | None,
    *,
    states: Collection[CallState],
    verb: str,
    what: str = "",
) -> Call:
    """The call, locked (``FOR NO KEY UPDATE``), if it exists and allows the request.

    Must run inside a transaction. Raises ``ActionRefusedError``: no such call, the
    call has ended, or it is in a state the request does not fit. Whether Graph
    allows the request on a call of this kind and media is ``availability.py``'s.
    """
    if call_pk is None:
        raise ActionRefusedError("invalid", f"{what} needs a call.")
    call = Call.objects.select_for_update(no_key=True).filter(pk=call_pk).first()
    if call is None:
        raise ActionRefusedError("call_not_found", f"There is no call {call_pk}.")
    return check_call_state(call, states=states, verb=verb)


def check_call_state(call: Call, *, states: Collection[CallState], verb: str) -> Call:
    """``call`` itself if its state allows the request; ``locked_call``'s checks
    for a call the caller has locked already (the IVR's runtime holds the lock for
    a whole step and asks for several actions under it).

    Raises ``ActionRefusedError``: the call has ended, or it is in a state the
    request does not fit.
    """
    if call.state == CallState.TERMINATED:
        raise ActionRefusedError("call_ended", f"Cannot {verb} a call that has ended.")
    if CallState(call.state) not in states:
        raise ActionRefusedError(
            "wrong_state",
            f"Cannot {verb} a call that is {call.get_state_display().lower()}"
            f" (needs {_states_text(states)}).",
        )
    return call


def _states_text(states: Collection[CallState]) -> str:
    return " or ".join(sorted(s.label.lower() for s in states))


def present_participant(call: Call, participant_id: str) -> Participant:
    """The participant with this Graph id who is in the call now, not the bot."""
    if not participant_id:
        raise ActionRefusedError("invalid", "Choose a participant.")
    participant = (
        call.participants.filter(graph_id=participant_id, left_at__isnull=True)
        .order_by("-joined_at")
        .first()
    )
    if participant is None:
        raise ActionRefusedError(
            "participant_not_found", "That participant is no longer in the call."
        )
    if participant.is_bot:
        raise ActionRefusedError(
            "invalid", "That is the bot itself; use the bot's own controls."
        )
    return participant
