"""A stand-in for ``GraphClient`` in unit tests of the worker side of calls.

``FakeGraph`` has the client's public methods and no others: each call is checked
against the real method's signature (a renamed argument fails the test, as it would
fail against Graph), recorded, and answered from a script the test sets with
``on``, or with a plausible default (a ``running`` operation, a new call id).
Scripted answers may be the real ``callbot.graph.errors`` types, which are raised.

The real client is tested against the emulator over sockets (tests/graph,
tests/e2e); here it is a boundary not under test.
"""

from __future__ import annotations

import inspect
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callbot.graph.client import GraphClient
from callbot.graph.resources import (
    CallResource,
    OnlineMeetingResource,
    OperationResource,
    ParticipantResource,
)

TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
# Methods that do not send a request, so are not faked.
_NOT_REQUESTS = {"for_tenant", "close", "base_url", "tenant_id"}
REQUEST_METHODS = frozenset(
    name
    for name, member in vars(GraphClient).items()
    if not name.startswith("_") and callable(member) and name not in _NOT_REQUESTS
)


@dataclass(frozen=True)
class Request:
    """One request the code under test made: the method and its bound arguments."""

    method: str
    args: dict[str, Any]
    tenant: str | None

    @property
    def client_request_id(self) -> str | None:
        crid: str | None = self.args.get("client_request_id")
        return crid


def operation(
    status: str = "running",
    op_id: str | None = None,
    *,
    code: int | None = None,
    subcode: int = 0,
    message: str = "",
) -> OperationResource:
    """An operation as Graph answers it (contract §5)."""
    data: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.commsOperation",
        "id": op_id or str(uuid.uuid4()),
        "status": status,
    }
    if code is not None:
        data["resultInfo"] = {"code": code, "subcode": subcode, "message": message}
    return OperationResource.parse(data)


def call_resource(
    call_id: str | None = None, state: str = "establishing"
) -> CallResource:
    return CallResource.parse(
        {
            "@odata.type": "#microsoft.graph.call",
            "id": call_id or str(uuid.uuid4()),
            "state": state,
            "tenantId": TENANT,
            "myParticipantId": str(uuid.uuid4()),
        }
    )


def participant_resource(
    participant_id: str, *, muted: bool = False, user_id: str = ""
) -> ParticipantResource:
    return ParticipantResource.parse(
        {
            "@odata.type": "#microsoft.graph.participant",
            "id": participant_id,
            "isMuted": muted,
            "info": {
                "identity": {
                    "user": {"id": user_id or str(uuid.uuid4()), "tenantId": TENANT}
                }
            },
        }
    )


def online_meeting_resource(thread_id: str = "") -> OnlineMeetingResource:
    thread = thread_id or f"19:meeting_{uuid.uuid4().hex}@thread.v2"
    return OnlineMeetingResource.parse(
        {
            "id": f"MSo{uuid.uuid4().hex}",
            "subject": "Created by Graph",
            "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/x",
            "chatInfo": {"threadId": thread, "messageId": "0"},
            "joinMeetingIdSettings": {"joinMeetingId": "4315550987", "passcode": "kT9"},
            "participants": {
                "organizer": {
                    "identity": {"user": {"id": str(uuid.uuid4()), "tenantId": TENANT}}
                }
            },
        }
    )


_DEFAULTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "get_call": lambda a: call_resource(a["call_id"], "established"),
    "get_participant": lambda a: participant_resource(a["participant_id"]),
    "list_participants": lambda a: [],
    "place_peer_to_peer_call": lambda a: call_resource(),
    "place_group_call": lambda a: call_resource(),
    "join_meeting": lambda a: call_resource(),
    "join_meeting_by_id": lambda a: call_resource(),
    "create_call": lambda a: call_resource(),
    "create_online_meeting": lambda a: online_meeting_resource(),
    "download_recording": lambda a: b"RIFF\x24\x00\x00\x00WAVEfmt ",
}


class FakeGraph:
    """Records requests and answers them from a script (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._tenant: str | None = None
        self._script: dict[str, list[Any]] = {}
        self._ops = itertools.count(1)

    def for_tenant(self, tenant_id: str | None) -> FakeGraph:
        view = object.__new__(FakeGraph)
        view.__dict__ = dict(self.__dict__)  # shares requests and script
        view._tenant = tenant_id
        return view

    def on(self, method: str, *outcomes: Any) -> None:
        """Answer ``method`` with these outcomes in turn, the last one repeating.

        An outcome is a value to return, an exception to raise, or a function of
        the bound arguments (a dict) that returns or raises.
        """
        if method not in REQUEST_METHODS:
            raise AssertionError(f"GraphClient has no request method {method!r}")
        self._script[method] = list(outcomes)

    def methods(self) -> list[str]:
        """The methods called, in order."""
        return [r.method for r in self.requests]

    def sent(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in REQUEST_METHODS:
            raise AttributeError(name)
        signature = inspect.signature(getattr(GraphClient, name))

        def request(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(self, *args, **kwargs)
            arguments = dict(bound.arguments)
            arguments.pop("self")
            self.requests.append(Request(name, arguments, self._tenant))
            return self._answer(name, arguments, signature.return_annotation)

        return request

    def _answer(self, name: str, arguments: dict[str, Any], returns: Any) -> Any:
        script = self._script.get(name)
        if script:
            outcome = script.pop(0) if len(script) > 1 else script[0]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome(arguments) if callable(outcome) else outcome
        if name in _DEFAULTS:
            return _DEFAULTS[name](arguments)
        if returns == "OperationResource":
            return operation("running", f"op-{next(self._ops)}")
        if returns == "None":
            return None
        raise AssertionError(f"script an answer for {name}")  # pragma: no cover
