"""Graph's call end reasons (``resultInfo`` code and subcode) in words.

From the contract's §11.2 table (the delete-call page's "common" codes); any other
pair is described by its code's class, since Graph may send codes not listed.
Pure Python: no Django, no HTTP.
"""

from __future__ import annotations

# (code, subcode) -> words. Code 0 is also used for success (contract §5).
_KNOWN: dict[tuple[int, int], str] = {
    (200, 4097): "Ended by the other participant",
    (200, 4521): "The other participant ended the call",
    (200, 5000): "Removed from the conversation by another participant",
    (200, 5300): "Removed from the conversation by another participant",
    (200, 5001): "Conversation ended",
    (200, 5003): "Conversation ended",
    (200, 5002): "All other participants left",
    (200, 5007): "The group call's initiator left",
    (200, 5010): "Only one participant remained",
    (200, 5012): "No participants left in the roster",
    (200, 5020): "No participants left in the roster",
    (200, 5013): "Nobody else joined the group call",
    (200, 5014): "No potential host could be found",
    (200, 5030): "Breakout room time elapsed",
    (200, 5855): "Lobby inactivity timeout",
    (200, 7000): "Ended by the bot",
    (200, 10550): "Ended by the bot",
    (200, 7015): "Transfer completed",
    (0, 7015): "Transfer completed",
    (200, 18503): "The other participant left",
    (200, 540000): "Ended by the phone caller",
    (200, 560000): "Ended by the phone caller",
    (408, 8537): "Keep-alive timeout",
    (408, 1106): "Call acceptance not acknowledged in time",
    (408, 10057): "No signalling from the callee",
    (410, 301005): "Media connectivity failure",
    (480, 10037): "No callee endpoints found",
    (480, 10076): "Callee unreachable",
    (480, 10134): "Could not route the call",
    (480, 10199): "Private calling is disabled for the user",
    (500, 1005): "Connectivity error with the bot's media",
    (500, 7000): "Transfer failed",
    (500, 7700): "Transfer failed",
}

_CLASSES = {
    2: "Ended normally",
    4: "Failed (client error)",
    5: "Failed (server error)",
}


def describe_result(code: int | None, subcode: int | None) -> str:
    """``"Conversation ended (200/5001)"``; ``""`` when Graph sent no result."""
    if code is None:
        return ""
    numbers = f"{code}/{subcode}" if subcode else str(code)
    words = _KNOWN.get((code, subcode or 0))
    if words is None:
        words = "Ended normally" if code == 0 else _CLASSES.get(code // 100, "Ended")
    return f"{words} ({numbers})"
