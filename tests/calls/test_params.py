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


@pytest.mark.parametrize("value", [None, "", "abc", 1.5, True, [1], {"id": 1}])
def test_a_saved_target_that_is_not_a_number_is_refused(value: Any) -> None:
    if value in (None, ""):
        # No saved target named: the typed target is required instead.
        with pytest.raises(ActionRefusedError) as refused:
            params.redirect({"saved_target": value}, None)
        assert "Give a target" in refused.value.message
        return
    with pytest.raises(ActionRefusedError) as refused:
        params.saved_target(value)
    assert (refused.value.code, refused.value.message) == (
        "invalid",
        "A saved target is named by its number.",
    )


def test_a_call_to_a_phone_needs_the_application_instance(settings: Any) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""
    phone = {"target": {"phone": "+1 425 555 0123"}}

    with pytest.raises(ActionRefusedError) as refused:
        params.place_call(phone, None)
    settings.GRAPH_APPLICATION_INSTANCE_ID = "3b9e4c1a-7d2f-4e8b-9a6c-5f0d1e2c3b4a"

    assert refused.value.code == "unsupported"
    assert params.place_call(phone, None)[0] == {
        "target": {"phone": "+14255550123", "display_name": ""}
    }
    user = {"target": {"user_id": "B2A19087-F6E5-4D4C-B3A2-918070F6E5D4"}}
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""
    assert params.place_call(user, None)[0]["target"]["user_id"].startswith("b2a1")
