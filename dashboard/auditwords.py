"""An audit entry's detail in a line of words, for the audit page.

The detail is JSON whose shape depends on the entry (an action's request carries
its parameters, an outcome Graph's answer, a refusal its reason, an admin change
what changed). The page shows this line and keeps the exact JSON one click away:
the words help an auditor read, the JSON is what the hash chain proves.
"""

from __future__ import annotations

import json
from typing import Any

LIMIT = 160


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {_short(v)}" for k, v in values.items())


def _outcome(detail: dict[str, Any]) -> str:
    said = []
    if detail.get("result_code") not in (None, ""):
        code = f"Teams answered {detail['result_code']}"
        if detail.get("result_subcode") not in (None, ""):
            code += f"/{detail['result_subcode']}"
        said.append(code)
    if detail.get("error_code"):
        said.append(f"error {detail['error_code']}")
    if detail.get("result_message"):
        said.append(f"“{_short(detail['result_message'])}”")
    if not said:
        # Outcomes settled by the call's state were once stored with nothing
        # (an answer's ``established`` carries no resultInfo); the chain keeps
        # them as they are.
        said.append("no result code or words from Teams")
    attempts = detail.get("attempts")
    if isinstance(attempts, int) and attempts > 1:
        said.append(f"after {attempts} attempts")
    return ", ".join(said)


def in_words(detail: Any) -> str:
    """A line saying what ``detail`` holds ("" when there is nothing to say)."""
    if not isinstance(detail, dict) or not detail:
        return ""
    if "request" in detail and "action_id" in detail:
        text = _outcome(detail)
    elif isinstance(detail.get("params"), dict):
        params = detail["params"]
        text = _pairs(params) or "no parameters"
    elif "code" in detail and "message" in detail:  # a refusal
        text = f"refused ({detail['code']}): {_short(detail['message'])}"
    elif "change" in detail:  # an admin change
        change = detail["change"]
        text = _short(change) if change else "saved without changes"
    elif isinstance(detail.get("filters"), dict):  # an export
        filters = detail["filters"]
        text = "filters: " + (
            ", ".join(f"{k} {_short(v)}" for k, v in filters.items()) or "none"
        )
        rest = {k: v for k, v in detail.items() if k != "filters"}
        if rest:
            text += "; " + _pairs(rest)
    else:
        text = _pairs(detail)
    return text if len(text) <= LIMIT else text[: LIMIT - 1] + "…"
