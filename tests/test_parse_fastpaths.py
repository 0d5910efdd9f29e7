"""Differential tests of the parser's construction shortcuts against their plain forms.

* ``_EventBuilder`` (the cheap ``Event`` construction) against the ``attrs`` initialiser: the
  same type, the same fields, the same frozenness.
* The fast path's key test by count (10 required keys, or those and a string ``state_key``, take
  no pass over the keys): PDUs of the common shape in canonical and other key orders, valid or
  not in every slot, with extra keys of every kind, against the plain reference parser
  (``tests/test_event.py``'s ``_agree``: same event, bytes, ID, content hash, or refusal).
* The checked auth event IDs the fast path remembers (``_AUTH_ID_TEXT``): a remembered ID only
  stands for an exact ``str`` equal to it, and the memory is bounded.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgraph import Event, room_version
from eventgraph.events import event as event_module
from eventgraph.events.canonical_json import FrozenDict
from eventgraph.events.event import _EventBuilder, _parse_common

from .test_event import ALL, _agree, common_pdus, leaf_values, make_pdu, valid_ids

_IDS = st.text(min_size=1, max_size=8).map(lambda s: "$" + s)
_FIELDS = st.tuples(
    _IDS,
    st.text(max_size=8),
    st.text(max_size=8),
    st.none() | st.text(max_size=8),
    st.text(max_size=8),
    st.lists(_IDS, max_size=3).map(tuple),
    st.lists(_IDS, max_size=3).map(tuple),
    st.integers(min_value=0),
    st.integers(),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4)).map(FrozenDict),
    st.none() | _IDS,
    st.sampled_from(["3", "10", "11", "12"]).map(room_version),
    st.booleans(),
    st.binary(max_size=16),
)


@given(_FIELDS)
def test_builder_makes_the_event_the_attrs_initialiser_makes(fields: tuple[object, ...]) -> None:
    built = _EventBuilder(*fields)  # type: ignore[arg-type]
    plain = Event(*fields)  # type: ignore[arg-type]
    assert type(built) is Event
    assert attrs.astuple(built, recurse=False) == attrs.astuple(plain, recurse=False) == fields
    assert built == plain
    assert hash(built) == hash(plain)
    assert repr(built) == repr(plain)


def test_built_event_is_frozen() -> None:
    event = Event.from_pdu(
        {
            "type": "m.room.message",
            "room_id": "!r:a",
            "sender": "@u:a",
            "content": {"body": "x"},
            "depth": 1,
            "origin_server_ts": 0,
            "prev_events": [],
            "auth_events": [],
            "hashes": {"sha256": "x"},
            "signatures": {},
        },
        "11",
    )
    assert type(event) is Event
    for name in ("depth", "event_id", "_pdu_json", "new_attribute"):
        with pytest.raises((attrs.exceptions.FrozenInstanceError, AttributeError)):
            setattr(event, name, 1)
        with pytest.raises((attrs.exceptions.FrozenInstanceError, AttributeError)):
            delattr(event, name)
    assert event.depth == 1


def _sorted(pdu: dict[str, Any]) -> dict[str, Any]:
    return {k: pdu[k] for k in sorted(pdu)}


# Any value in any one slot of a sorted PDU: every type check of the unpacked layouts.
_slot_values: st.SearchStrategy[Any] = (
    leaf_values | st.lists(valid_ids | leaf_values, max_size=2) | st.just({})
)


@given(st.sampled_from(ALL[2:]), common_pdus, st.data())
def test_sorted_layouts_agree_with_the_reference(
    version: str, pdu: dict[str, Any], data: st.DataObject
) -> None:
    """The common shape with its keys in canonical order and reversed, then with one slot given
    any value."""
    ordered = _sorted(pdu)
    _agree(ordered, version)
    _agree({k: ordered[k] for k in reversed(ordered)}, version)
    key = data.draw(st.sampled_from(sorted(ordered)))
    ordered[key] = data.draw(_slot_values)
    _agree(ordered, version)
    _agree(ordered, version, backfilled=True)


class _Str(str):
    __slots__ = ()


def test_a_remembered_auth_id_stands_only_for_an_exact_str() -> None:
    """After an ID was checked and remembered, an equal ``str`` subclass, or a null in the
    same place, is still refused as the reference refuses it."""
    pdu = _sorted(make_pdu("11", auth_events=["$remembered"]))
    assert _parse_common(pdu, room_version("11"), False, True) is not None
    assert "$remembered" in event_module._AUTH_ID_TEXT
    for odd in (_Str("$remembered"), None, ["$remembered"]):
        bad = {**pdu, "auth_events": [odd]}
        assert _parse_common(bad, room_version("11"), False, True) is None
        _agree(bad, "11")


def test_remembered_auth_ids_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_module, "_AUTH_ID_TEXT", {})
    monkeypatch.setattr(event_module, "_AUTH_ID_TEXT_SIZE", 3)
    for i in range(10):
        pdu = _sorted(make_pdu("11", auth_events=[f"$a{i}", '$q"'], depth=i))
        _agree(pdu, "11")
        assert len(event_module._AUTH_ID_TEXT) <= 3
    assert event_module._AUTH_ID_TEXT['$q"'] == '"$q\\""'


@pytest.mark.parametrize("state_key", [None, "", "@u:a"])
def test_every_slot_of_the_common_layouts_with_every_type(state_key: str | None) -> None:
    """Each slot of both counted layouts given a value of each JSON type (and a ``str``
    subclass), and each extra key: the reference's outcome, valid or refused."""
    pdu = make_pdu("11")
    if state_key is not None:
        pdu["state_key"] = state_key
    ordered = _sorted(pdu)
    odd_values: list[Any] = [None, True, 0, -1, 1.5, "", "$x", _Str("$x"), [], ["$x"], {}]
    for key in ordered:
        for value in odd_values:
            _agree({**ordered, key: value}, "11")
    extra_keys = ["state_key", "unsigned", "event_id", "redacts", "origin", "x"]
    for key in extra_keys:
        for value in odd_values:
            _agree({**ordered, key: value}, "11")
            _agree({**ordered, key: value, "unsigned": {"age": 1}}, "11")
    for key in ordered:
        missing = {k: v for k, v in ordered.items() if k != key}
        _agree(missing, "11")
        for extra in extra_keys:
            _agree({**missing, extra: "$x"}, "11")
