"""Reading JSON from the wire so that every value in it can be stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbot.graph import wire_json
from callbot.graph.wire_json import MAX_NESTING, TOO_DEEP


def read(text: str | bytes) -> Any:
    return wire_json.loads(wire_json.decode_text(text))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e999", "1e999"),
        ("-1e999", "-1e999"),
        ("1.5e3", 1500.0),
        (str(2**63 - 1), 2**63 - 1),
        (str(-(2**63)), -(2**63)),
        (str(2**63), str(2**63)),
        ("9" * 5000, "9" * 5000),
    ],
)
def test_numbers_that_do_not_fit_are_kept_as_the_text_they_were(
    text: str, value: Any
) -> None:
    assert read(f"[{text}]") == [value]
    json.dumps(read(f"[{text}]"), allow_nan=False)  # and the result is JSON


def test_nul_and_lone_surrogates_become_replacement_characters() -> None:
    text = r'{"a\u0000": ["x\u0000y", "\ud800", "\udc00z", "\ud83d\ude00"]}'
    value, cut = wire_json.sanitize(read(text), strings=wire_json.needs_cleaning(text))
    assert value == {"a\ufffd": ["x\ufffdy", "\ufffd", "\ufffdz", "\U0001f600"]}
    assert cut is False
    json.dumps(value).encode("utf-8")  # storable


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    assert read(b'["Ana\xff\xfe L\xc3\xb3pez"]') == ["Ana\ufffd\ufffd López"]
    assert read(b'\xef\xbb\xbf["bom"]') == ["bom"]


def test_clean_documents_are_left_alone() -> None:
    text = json.dumps({"a": [1, "b", {"c": None}]})
    assert wire_json.needs_cleaning(text) is False
    assert wire_json.sanitize(read(text)) == ({"a": [1, "b", {"c": None}]}, False)


@pytest.mark.parametrize("levels", [MAX_NESTING + 5, 5_000, 200_000])
def test_nesting_past_the_limit_is_cut_and_reported(levels: int) -> None:
    text = '{"keep": 1, "deep": ' + "[" * levels + "]" * levels + "}"

    value, cut = wire_json.sanitize(read(text))

    assert cut is True
    assert value["keep"] == 1
    inner = value["deep"]
    depth = 1
    while isinstance(inner, list):
        inner, depth = inner[0], depth + 1
    assert inner == TOO_DEEP
    assert depth == MAX_NESTING
    json.dumps(value)  # short enough for every encoder and for jsonb


def test_nesting_up_to_the_limit_is_kept() -> None:
    levels = MAX_NESTING - 1
    text = "[" * levels + "]" * levels
    assert wire_json.sanitize(read(text)) == (json.loads(text), False)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2.5, -3e2, true, false, null, "s\\"\\\\\\n"], "b": {}}',
        ' [ [ ] , { } , { "k" : [ { } ] } ] ',
        '{"a": 1, "a": 2}',
        "[]",
        '"x"',
        "0",
    ],
)
def test_the_iterative_parser_reads_what_json_reads(text: str) -> None:
    assert wire_json._loads_iteratively(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[",
        "]",
        "[1,]",
        '{"a" 1}',
        '{"a": 1,}',
        "[1 2]",
        "[01]",
        '["\x01"]',
        "{1: 2}",
        "[] []",
        "tru",
    ],
)
def test_the_iterative_parser_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (json's own error, whatever it says)
        json.loads(text)
    with pytest.raises(ValueError):  # noqa: PT011
        wire_json._loads_iteratively(text)


def test_a_deep_document_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="char"):
        read('{"value": [' + "[" * 100_000 + "]" * 99_999 + "}")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 0, 2]))
def test_the_iterative_parser_agrees_with_json_on_documents(
    value: Any, indent: int | None
) -> None:
    text = json.dumps(value, indent=indent)
    expected = wire_json._DECODER.decode(text)
    assert wire_json._loads_iteratively(text) == expected


@settings(max_examples=300, deadline=None)
@given(value=json_values, cut=st.integers(0, 10**6), junk=st.sampled_from('[]{},:"x 1'))
def test_the_iterative_parser_agrees_with_json_on_broken_documents(
    value: Any, cut: int, junk: str
) -> None:
    text = json.dumps(value)
    at = cut % (len(text) + 1)
    broken = text[:at] + junk + text[at + 1 :]
    try:
        expected: Any = ("value", wire_json._DECODER.decode(broken))
    except ValueError:
        expected = ("error",)
    try:
        got: Any = ("value", wire_json._loads_iteratively(broken))
    except ValueError:
        got = ("error",)
    assert got == expected


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=20,
    )


@pytest.mark.parametrize(
    "value",
    [
        {"b": [1, -2, True, None], "a": {"z": "x", "y": "caf\u00e9"}},
        {"tab": "a\tb\x01\x7f", "quote": '"\\/'},
        {"n": 1.5, "m": [1e16, -0.0]},
        2.5,
        {"big": 2**70},
        "plain",
    ],
)
def test_canonical_is_the_text_json_writes_sorted(value: Any) -> None:
    # Digests already stored were taken of json's text: it must not change.
    expected = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    assert wire_json.canonical(value) == expected


@settings(max_examples=300, deadline=None)
@given(_json_values())
def test_canonical_is_the_text_json_writes_for_any_value(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    assert wire_json.canonical(value) == expected


def test_storage_encoder_writes_what_json_reads_back() -> None:
    value = {"a": [1, 2.5, "caf\u00e9", None], "big": 2**70, "deep": TOO_DEEP}
    text = json.dumps(value, cls=wire_json.StorageEncoder)
    assert json.loads(text) == value


def test_an_encoded_object_is_stored_as_the_text_it_carries() -> None:
    value = {"b": [1, 2.5, "caf\u00e9"], "a": None}
    text = wire_json.written(value)
    assert text is not None
    encoded = wire_json.Encoded(value, text)

    assert encoded == value
    assert json.dumps(encoded, cls=wire_json.StorageEncoder) == text.decode()
    assert json.dumps(value, cls=wire_json.StorageEncoder) == text.decode()
    assert wire_json.written({"big": 2**70}) is None  # orjson refuses it


@pytest.mark.parametrize("escape", [r"\u0000", r"\ud800", r"\uDC00", r"x\"\u0000"])
def test_an_escape_of_a_nul_or_a_surrogate_after_a_long_text_needs_cleaning(
    escape: str,
) -> None:
    text = '{"a": "' + "b" * 10_000 + '", "c": "' + escape + '"}'
    assert wire_json.needs_cleaning(text) is True
    assert wire_json.needs_cleaning(text.replace(escape, r"\"\u00e9")) is False


@settings(max_examples=300, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 0, 2]))
def test_loads_reads_documents_as_the_number_rules_do(
    value: Any, indent: int | None
) -> None:
    # orjson reads most documents; what it reads must be what json's rules read,
    # down to an int not turning into a float (json.dumps tells 1 from 1.0).
    text = json.dumps(value, indent=indent)
    expected = wire_json._DECODER.decode(text)
    assert json.dumps(wire_json.loads(text)) == json.dumps(expected)


def depth_of(value: Any) -> int:
    """Levels of containers in ``value`` (a scalar 0, ``[]`` 1)."""
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


@pytest.mark.parametrize(
    ("text", "within"),
    [
        ("[]", True),
        ('"x"', True),
        ('{"a": [{"b": []}]}', True),
        # Brackets in strings, escaped quotes and backslashes are no structure.
        ('{"a\\\\": "\\"]]]]\\\\", "b": ["\\\\"]}', False),  # a bracket in a string
        ('["\\\\", "\\"", {"\\\\\\"": "x"}]', True),
    ],
)
def test_the_nesting_bound_reads_only_structure(text: str, within: bool) -> None:
    # A bound: within 8 levels is told for these of at most 4 (each pass of
    # the count may remove two).
    assert wire_json.nested_within(text.encode(), 8) is within
    if within:
        assert depth_of(json.loads(text)) <= 8


def test_the_nesting_bound_never_passes_a_document_deeper_than_its_limit() -> None:
    for levels in range(1, 3 * MAX_NESTING):
        for opener, closer in (("[", "]"), ('{"k":', "}"), ('[{"k":', "}]")):
            text = (opener * levels + "0" + closer * levels).encode()
            if wire_json.nested_within(text, MAX_NESTING):
                assert depth_of(json.loads(text)) <= MAX_NESTING
    # A roster's depth (eight levels) is told without the walk.
    assert wire_json.nested_within(b'{"v":[[[[[[[0]]]]]]]}', MAX_NESTING)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='a"\\[]{}'),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='k"\\[]{}', max_size=3), inner, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=_json_values, limit=st.integers(min_value=0, max_value=8))
def test_the_nesting_bound_holds_for_any_document(value: Any, limit: int) -> None:
    for text in (json.dumps(value), json.dumps(value, separators=(",", ":"))):
        if wire_json.nested_within(text.encode(), limit):
            assert depth_of(value) <= limit
