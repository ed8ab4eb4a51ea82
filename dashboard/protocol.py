"""The live socket's wire rules: what a client frame may be, and how it is refused.

``decode`` turns a websocket frame into a message (a JSON object) or raises
``FrameError`` with a code and a sentence; ``action_request`` reads an ``action``
message's fields strictly (``ActionRefusedError`` ``invalid`` otherwise). Nothing
a client sends can make these raise anything else. Close codes and the per-socket
limits live here too, so the consumer and the page agree on them. Pure: no
database, no channel layer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from callbot.calls.access import ActionRefusedError

# Application close codes (4000-4999), each handled by static/dashboard/live.js.
CLOSE_SIGNED_OUT = 4401
CLOSE_FORBIDDEN = 4403
# Too many bad or excess messages: the page says so, waits, then reconnects.
CLOSE_FLOODED = 4429
CLOSE_FLOODED_REASON = "Too many bad or excess messages."
# The channel layer (Redis) could not be reached: the page reconnects with its
# usual backoff and resyncs from snapshots once it is back.
CLOSE_LAYER_UNREACHABLE = 4503

# The largest client message: actions and subscriptions are a few hundred bytes.
# (Daphne refuses frames over 1 MiB itself, with 1009.)
MAX_MESSAGE_CHARS = 16 * 1024
# The deepest a valid message nests: {"params": {"target": {...}}} is 3.
MAX_DEPTH = 6
# Ids fit the database's bigint.
MAX_ID = 2**63 - 1
MAX_REQUEST_ID = 64

# Every message a socket sends (of any type): the page sends a handful a minute.
MESSAGE_RATE = 10.0  # a second
MESSAGE_BURST = 60
# Errors a socket may earn (bad frames, unknown types, over-limit messages) before
# it is closed with CLOSE_FLOODED; one is forgiven every STRIKE_FORGIVE_SECONDS.
STRIKE_BURST = 30
STRIKE_FORGIVE_SECONDS = 5.0


class FrameError(Exception):
    """A frame that is not a message of this protocol; ``code`` for the page."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]!r} is out of range")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """How deep containers nest in ``value``, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def decode(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    """The message in a frame; raises ``FrameError`` for anything else."""
    if text_data is None:
        raise FrameError(
            "binary", "Binary frames are not part of this protocol; send JSON text."
        )
    if len(text_data) > MAX_MESSAGE_CHARS:
        raise FrameError(
            "too_large", f"A message is at most {MAX_MESSAGE_CHARS // 1024} KiB."
        )
    try:
        content = json.loads(
            text_data, parse_float=_finite, parse_constant=_no_constant
        )
    except RecursionError:
        raise FrameError("too_deep", "The message nests too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, and the two parsers above
        raise FrameError("bad_json", f"Not JSON: {str(exc)[:120]}") from None
    if not isinstance(content, dict):
        raise FrameError("not_an_object", "A message is a JSON object with a type.")
    if _depth(content) > MAX_DEPTH:
        raise FrameError("too_deep", "The message nests too deeply.")
    return content


def request_id(content: dict[str, Any]) -> str:
    """The client's id for its message, echoed in the answer; "" when unusable."""
    value = content.get("request_id")
    return value[:MAX_REQUEST_ID] if isinstance(value, str) else ""


def message_type(content: dict[str, Any]) -> str:
    value = content.get("type")
    return value[:64] if isinstance(value, str) else ""


def call_id(value: Any) -> int | None:
    """A call's id from a message (a number, or digits in a string), else None."""
    if isinstance(value, str) and value.isdecimal() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    return None


@dataclass(frozen=True)
class ActionRequest:
    """An ``action`` message, its fields checked for type."""

    request_id: str
    kind: str
    call: int | None
    participant: str
    params: dict[str, Any]

    def refusal(self, code: str, message: str) -> dict[str, Any]:
        return {
            "type": "action.refused",
            "request_id": self.request_id,
            "kind": self.kind,
            "call": self.call,
            "participant": self.participant,
            "code": code,
            "message": message,
        }


def action_request(content: dict[str, Any]) -> ActionRequest:
    """Read an action message leniently enough to answer it; ``check`` it next."""
    kind = content.get("kind")
    participant = content.get("participant")
    params = content.get("params")
    return ActionRequest(
        request_id=request_id(content),
        kind=kind[:64] if isinstance(kind, str) else "",
        call=call_id(content.get("call")) if "call" in content else None,
        participant=participant[:64] if isinstance(participant, str) else "",
        params=params if isinstance(params, dict) else {},
    )


def check_action(
    content: dict[str, Any],
    request: ActionRequest,
    allowed: Collection[str],
    labels: Mapping[str, str],
) -> None:
    """Raise ``ActionRefusedError`` ``invalid`` unless the message is well formed and
    names a kind a browser may ask for (``allowed``; ``labels`` names every kind)."""
    if request.kind in labels and request.kind not in allowed:
        raise ActionRefusedError(
            "invalid", f"{labels[request.kind]} is not asked for from the live page."
        )
    if request.kind not in allowed:
        shown = content.get("kind")
        what = repr(shown[:64]) if isinstance(shown, str) else "with no kind"
        raise ActionRefusedError("invalid", f"Unknown action {what}.")
    if request.call is None:
        raise ActionRefusedError("invalid", "An action names a call by its number.")
    if content.get("participant") not in (None, "") and not isinstance(
        content.get("participant"), str
    ):
        raise ActionRefusedError("invalid", "A participant is named by its id.")
    if content.get("params") is not None and not isinstance(
        content.get("params"), dict
    ):
        raise ActionRefusedError("invalid", "An action's params are a JSON object.")
