"""Canonical JSON: the spec appendix examples and Matrix's number rules (digest §4.8)."""

from __future__ import annotations

import json
from typing import Any

import canonicaljson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgraph import FrozenDict, InvalidEventError, encode_canonical_json
from eventgraph.events.canonical_json import (
    MAX_SAFE_INTEGER,
    check_json,
    encode_canonical_parts,
    encode_canonical_text,
    encode_json_string,
    freeze_json,
    thaw_json,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, "{}"),
        ({"one": 1, "two": "Two"}, '{"one":1,"two":"Two"}'),
        ({"b": "2", "a": "1"}, '{"a":"1","b":"2"}'),
        ({"本": 2, "日": 1}, '{"日":1,"本":2}'),
        ({"a": "\u65e5"}, '{"a":"日"}'),
        ({"a": None}, '{"a":null}'),
        ({"a": '\x00\x1f\n"\\'}, '{"a":"\\u0000\\u001f\\n\\"\\\\"}'),
        (
            {"auth": {"success": True, "mxid": "@john.doe:example.com"}},
            '{"auth":{"mxid":"@john.doe:example.com","success":true}}',
        ),
    ],
)
def test_appendix_examples(value: Any, expected: str) -> None:
    """Examples from the spec appendix "Canonical JSON" (and the escaping grammar)."""
    assert encode_canonical_json(value) == expected.encode("utf-8")


def test_frozen_values_encode_like_plain_ones() -> None:
    value = {"a": [1, {"b": [True, None]}], "c": "d"}
    assert encode_canonical_json(freeze_json(value, strict=True)) == encode_canonical_json(value)


@pytest.mark.parametrize("n", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0])
def test_integer_range_edges_pass(n: int) -> None:
    check_json({"n": n}, strict=True)


@pytest.mark.parametrize("n", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**64])
def test_integers_outside_the_range_fail_strictly(n: int) -> None:
    with pytest.raises(InvalidEventError, match="range"):
        check_json({"n": [n]}, strict=True)
    check_json({"n": [n]}, strict=False)


@pytest.mark.parametrize("n", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**64])
def test_integers_of_an_object_outside_the_range_fail_strictly(n: int) -> None:
    # Integers held directly by an object (power levels' ``users``) take an inline path.
    value = {"users": {"@a:x": 50, "@b:x": n}}
    with pytest.raises(InvalidEventError, match=r"users\.@b:x: integer .* range"):
        freeze_json(value, strict=True)
    assert freeze_json(value, strict=False) == value
    assert freeze_json({"users": {"@a:x": MAX_SAFE_INTEGER}}, strict=True) == {
        "users": {"@a:x": MAX_SAFE_INTEGER}
    }


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object(), {1: "a"}, b"x"])
def test_non_json_values_fail_in_both_modes(bad: Any) -> None:
    for strict in (True, False):
        with pytest.raises(InvalidEventError):
            check_json({"x": bad}, strict=strict)


def test_error_names_the_path() -> None:
    with pytest.raises(InvalidEventError, match=r"content\.a\[1\]\.b: floats"):
        check_json({"a": [0, {"b": 0.5}]}, strict=True, where="content")


def test_frozen_dict_is_read_only_and_hashable() -> None:
    d = FrozenDict({"a": 1})
    with pytest.raises(TypeError):
        d.update({"b": 2})
    with pytest.raises(TypeError):
        d.pop("a")
    with pytest.raises(TypeError):
        d.setdefault("b", 2)
    with pytest.raises(TypeError):
        d.clear()
    with pytest.raises(TypeError):
        d.popitem()
    with pytest.raises(TypeError):
        del d["a"]
    assert hash(d) == hash(FrozenDict({"a": 1}))
    assert thaw_json(freeze_json({"a": [1]}, strict=True)) == {"a": [1]}


json_strategy = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(json_strategy)
def test_encoding_is_sorted_compact_and_round_trips(value: Any) -> None:
    """The encoding parses back to the value, and equals the appendix's reference encoder."""
    try:
        encoded = encode_canonical_json(value)
    except InvalidEventError:
        return  # lone surrogates cannot be UTF-8
    assert json.loads(encoded) == value
    reference = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert encoded == reference.encode("utf-8")
    assert encoded == canonicaljson.encode_canonical_json(value)


@pytest.mark.parametrize("value", ["x", 1, None, True, [1, "a"], -5, 2**70, 1.5])
def test_scalars_and_arrays_encode_like_canonicaljson(value: Any) -> None:
    assert encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


@given(json_strategy | st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_text_and_string_encoders_match_the_bytes(value: Any) -> None:
    """The text forms the parser assembles from: the same characters as the byte encoding
    (before UTF-8), whole or in parts; a string encodes as the encoder writes it."""
    text = encode_canonical_text(value)
    assert "".join(encode_canonical_parts(value, 0)) == text
    reference = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert text == reference
    if isinstance(value, str):
        assert encode_json_string(value) == reference
        assert encode_canonical_text([value]) == "[" + encode_json_string(value) + "]"


def test_huge_integers_are_refused_with_a_typed_error() -> None:
    """More than 4300 digits: str() raises ValueError, which must not escape as one."""
    with pytest.raises(InvalidEventError, match="bits is outside"):
        freeze_json({"n": 10**5000}, strict=True)
    with pytest.raises(InvalidEventError, match="cannot encode"):
        encode_canonical_json({"n": 10**5000})


def _plain_freeze(value: Any, strict: bool) -> Any:
    """A slow reference of freeze_json's answer (rule by rule, no bulk paths); raises
    InvalidEventError like it."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise InvalidEventError("key")
            out[k] = _plain_freeze(v, strict)
        return out
    if isinstance(value, list):
        return tuple(_plain_freeze(v, strict) for v in value)
    if type(value) is int and strict and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise InvalidEventError("range")
    if type(value) is float and (strict or value != value or abs(value) == float("inf")):
        raise InvalidEventError("float")
    if value is None or type(value) in (str, int, bool, float):
        return value
    raise InvalidEventError("type")


_flat_values = st.one_of(
    st.integers(-MAX_SAFE_INTEGER - 2, MAX_SAFE_INTEGER + 2),
    st.sampled_from([2**64, True, False, None, 1.5, "x", float("nan")]),
    st.text(max_size=3),
)


@given(
    st.lists(st.tuples(st.text(max_size=4), _flat_values), min_size=15, max_size=40),
    st.sampled_from(["ints", "strings", "no ints", "mixed"]),
    st.booleans(),
)
def test_big_flat_objects_freeze_like_the_plain_reference(
    items: list[tuple[str, Any]], kind: str, strict: bool
) -> None:
    """Objects big enough for the bulk checks (power levels' ``users`` maps): the same frozen
    value, or the same refusal, as a plain walk — integers at and past the range's edges,
    booleans (not integers), floats, strings, keys that are not strings."""
    if kind == "ints":
        items = [(k, v if type(v) is int else 7) for k, v in items]
    elif kind == "strings":
        items = [(k, v if type(v) is str else "s") for k, v in items]
    elif kind == "no ints":  # strings, booleans, null, floats: none of them an int
        items = [(k, 1.5 if type(v) is int else v) for k, v in items]
    value: dict[Any, Any] = {"users": dict(items)}
    if kind == "mixed" and items:
        value["users"][3] = 1  # a key that is not a string
    try:
        expected = _plain_freeze(value, strict)
    except InvalidEventError:
        with pytest.raises(InvalidEventError):
            freeze_json(value, strict=strict)
        return
    got = freeze_json(value, strict=strict)
    assert got == expected
    assert list(got["users"]) == list(expected["users"])


def test_big_flat_object_edges() -> None:
    """The bulk path's refusals at the edges: one value past the range, or a bool."""
    users = {f"@u{i}:x": i for i in range(40)}
    assert freeze_json({"users": users}, strict=True) == {"users": users}
    for bad in (MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1):
        with pytest.raises(InvalidEventError, match=r"users\.@u9:x: integer .* range"):
            freeze_json({"users": {**users, "@u9:x": bad}}, strict=True)
    assert freeze_json({"users": {**users, "@u9:x": True}}, strict=True)["users"]["@u9:x"] is True
