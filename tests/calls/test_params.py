"""Per-kind parameter cleaning, without a database: every bad value is a refusal
with a sentence, never an exception of another kind."""

from __future__ import annotations

from typing import Any

import pytest

from callbot.calls import params
from callbot.calls.access import ActionRefusedError

NOT_TEXT: list[Any] = [None, 3, 1.5, ["viewer"], {"role": "viewer"}, True]


@pytest.mark.parametrize("value", NOT_TEXT)
@pytest.mark.parametrize(
    ("cleaner", "name"),
    [
        (params.screen_sharing_role, "role"),
        (params.recording_status, "status"),
        (params.reject, "reason"),
    ],
)
def test_a_choice_that_is_not_text_is_refused_as_invalid(
    cleaner: params.Cleaner, name: str, value: Any
) -> None:
    with pytest.raises(ActionRefusedError) as refused:
        cleaner({name: value}, None)
    assert refused.value.code == "invalid"


def test_choices_the_contract_allows_are_kept() -> None:
    assert params.screen_sharing_role({"role": "sharer"}, None) == (
        {"role": "sharer"},
        "sharer",
    )
    assert params.reject({}, None) == ({"reason": "none"}, "none")


@pytest.mark.parametrize(
    "target",
    [
        {"phone": "+0123456789"},
        {"user_id": "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d-0"},
        {"phone": "5550100"},
        {"user_id": "u-1"},
        "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d",
    ],
)
def test_a_target_that_is_not_an_object_id_or_e164_number_is_refused(
    target: Any,
) -> None:
    with pytest.raises(ActionRefusedError):
        params.clean_target(target)


def test_phone_numbers_are_normalised_and_object_ids_lower_cased() -> None:
    assert params.clean_target({"phone": "+1 (555) 010-0200"})["phone"] == (
        "+15550100200"
    )
    assert params.clean_target({"user_id": "8A7B6C5D-4E3F-4A2B-9C1D-0E9F8A7B6C5D"})[
        "user_id"
    ] == ("8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d")


@pytest.mark.parametrize("tones", ["", "1" * 33, "12x", ["1"], 5])
def test_dtmf_tones_outside_the_keys_are_refused(tones: Any) -> None:
    with pytest.raises(ActionRefusedError):
        params.dtmf({"tones": tones}, None)
