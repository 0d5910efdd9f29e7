"""Differential tests of the parser's construction shortcuts against their plain forms.

* ``_EventBuilder`` (the cheap ``Event`` construction) against the ``attrs`` initialiser: the
  same type, the same fields, the same frozenness.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgraph import Event, room_version
from eventgraph.events.canonical_json import FrozenDict
from eventgraph.events.event import _EventBuilder

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
