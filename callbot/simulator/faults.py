"""Fault switches: what may go wrong on purpose, and a count of what did.

A fault is named and has a trigger: ``probability`` (each eligible event, drawn from the
emulator's seeded RNG) or ``count`` (the next N eligible events), plus parameters. The
same JSON shape configures a whole run (``EmulatorConfig.faults``) and single requests
(``POST /_emulator/faults``). Graph-side faults may be narrowed with ``match``, a
substring of the request path.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# name -> allowed parameters (besides probability, count, match).
FAULTS: dict[str, frozenset[str]] = {
    # Graph API answers.
    "graph_429": frozenset({"retry_after"}),
    "graph_500": frozenset(),
    "graph_503": frozenset({"retry_after"}),
    "graph_slow": frozenset({"delay_ms"}),
    # Notification delivery.
    "notify_duplicate": frozenset(),
    "notify_reorder": frozenset({"scope"}),
    "notify_redeliver": frozenset({"delay"}),
    "notify_drop": frozenset(),
    "notify_wrong_key": frozenset({"mode"}),
    # Outcomes Microsoft decides.
    "transfer_failure": frozenset(),
    "callee_unreachable": frozenset(),
}
_TRIGGERS = frozenset({"probability", "count", "match"})


class FaultSpecError(ValueError):
    """A fault definition that does not parse; the message names the problem."""


@dataclass
class FaultSpec:
    """One switched-on fault."""

    name: str
    probability: float = 1.0
    count: int | None = None
    match: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.params)
        if self.count is not None:
            data["count"] = self.count
        else:
            data["probability"] = self.probability
        if self.match:
            data["match"] = self.match
        return data


def parse_fault(name: str, raw: Any) -> FaultSpec:
    """Validate one ``name: {...}`` entry of a fault definition."""
    if name not in FAULTS:
        raise FaultSpecError(
            f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}"
        )
    if raw is True:
        raw = {}
    if not isinstance(raw, dict):
        raise FaultSpecError(f"fault {name!r} must be an object")
    unknown = set(raw) - _TRIGGERS - FAULTS[name]
    if unknown:
        raise FaultSpecError(
            f"fault {name!r} has unknown keys: {', '.join(sorted(unknown))}"
        )
    spec = FaultSpec(
        name=name, params={k: v for k, v in raw.items() if k not in _TRIGGERS}
    )
    if "count" in raw:
        if not isinstance(raw["count"], int) or raw["count"] < 0:
            raise FaultSpecError(
                f"fault {name!r}: count must be a non-negative integer"
            )
        spec.count = raw["count"]
    if "probability" in raw:
        p = raw["probability"]
        if not isinstance(p, int | float) or not 0 <= p <= 1:
            raise FaultSpecError(f"fault {name!r}: probability must be between 0 and 1")
        spec.probability = float(p)
    if "match" in raw:
        if not isinstance(raw["match"], str):
            raise FaultSpecError(f"fault {name!r}: match must be a string")
        spec.match = raw["match"]
    for number in ("retry_after", "delay_ms", "delay"):
        if number in spec.params and not isinstance(spec.params[number], int | float):
            raise FaultSpecError(f"fault {name!r}: {number} must be a number")
    if spec.params.get("mode", "same_kid") not in ("same_kid", "unknown_kid"):
        raise FaultSpecError(f"fault {name!r}: mode must be same_kid or unknown_kid")
    if spec.params.get("scope", "establishing") not in ("establishing", "any"):
        raise FaultSpecError(f"fault {name!r}: scope must be establishing or any")
    return spec


def parse_faults(raw: Any) -> dict[str, FaultSpec]:
    """Validate a whole ``{name: spec}`` object."""
    if not isinstance(raw, dict):
        raise FaultSpecError("faults must be a JSON object of name -> settings")
    return {name: parse_fault(name, value) for name, value in raw.items()}


class FaultBoard:
    """The switched-on faults, the decision whether one fires, and what fired."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.active: dict[str, FaultSpec] = {}
        self.applied: Counter[str] = Counter()

    def set(self, specs: dict[str, FaultSpec]) -> None:
        """Switch on (or replace) the given faults; others stay as they are."""
        self.active.update(specs)

    def clear(self, names: list[str] | None = None) -> None:
        """Switch off the named faults, or all of them."""
        if names is None:
            self.active.clear()
        for name in names or ():
            self.active.pop(name, None)

    def take(self, name: str, path: str = "") -> FaultSpec | None:
        """Decide whether fault ``name`` fires for this event; count it if so.

        A count-triggered fault is used up after its last firing and switched off.
        """
        spec = self.active.get(name)
        if spec is None or (spec.match and spec.match not in path):
            return None
        if spec.count is not None:
            if spec.count <= 0:
                self.active.pop(name, None)
                return None
            spec.count -= 1
            if spec.count == 0:
                self.active.pop(name, None)
        elif self._rng.random() >= spec.probability:
            return None
        self.applied[name] += 1
        return spec

    def as_json(self) -> dict[str, Any]:
        return {name: spec.as_json() for name, spec in self.active.items()}
