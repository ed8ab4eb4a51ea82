"""What happened to calls, announced after commit for the bot's behaviour to react.

Ingest sends ``call_activity`` once per applied batch, after the transaction commits,
so receivers see committed rows; ``lifecycle.finish`` sends ``action_finished`` the
same way. Receivers must be cheap (enqueue a Celery task and
return): they run inside the webhook's request. This module imports nothing of the
receivers; ``callbot.ivr`` connects itself in its ``AppConfig.ready``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.dispatch import Signal

# Sent with ``activity: list[CallActivity]``.
call_activity = Signal()

# Sent once an action's final outcome has committed (``lifecycle.finish``), with
# ``action_id``, ``kind``, ``status`` ("completed"/"failed") and ``call_id``.
action_finished = Signal()


@dataclass(frozen=True)
class CallActivity:
    """One call's changes in one applied batch."""

    call_id: int
    graph_id: str
    # This batch held the first notification we ever saw for the call, or a
    # redelivery of it while the call still rings undecided (``redelivery.py``):
    # the bot's policy should decide the call now.
    created: bool
    direction: str
    kind: str
    state: str
    state_changed: bool
    # New tones in the order pressed: "0".."9", "*", "#", "a".."d".
    tones: tuple[str, ...] = ()
    # (action id, kind, status) for actions that became completed or failed.
    finished_actions: tuple[tuple[int, str, str], ...] = ()
    # The call became terminated in this batch.
    terminated: bool = False
