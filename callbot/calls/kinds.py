"""What each action kind is called where people read it: ``LABELS``.

Placeholder with only ``LABELS``, built from ``Action.Kind`` plus the two kinds the
dashboard offers that are not stored actions (``mute_all`` queues one
``mute_participant`` per person; ``unmute_participant`` is refused because Graph
cannot unmute someone else). The module of this name on main supersedes it.
"""

from __future__ import annotations

from callbot.calls.models import Action

LABELS: dict[str, str] = {
    **{str(kind): str(label) for kind, label in Action.Kind.choices},
    "mute_all": "Mute everyone except presenters",
    "unmute_participant": "Unmute Participant",
}
