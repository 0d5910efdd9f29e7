"""State resolution's fast paths against the plain ways (hypothesis, differential).

- The iterative auth checks hand the selected auth events to the rules as a mapping, skipping
  ``check_auth``'s checks of the list when they hold by construction (``_checker`` rule 5):
  compared with the plain path (a list through ``check_auth``) on generated rooms, against
  their real states and against scrambled ones (keys filed under other events or unknown IDs,
  missing keys, extra rejected flags).
- Two state sets are partitioned by the symmetric difference of their items views, and only
  the entries of later sets not equal to the first set's are type-checked: compared with the
  definitions, and bad entries anywhere still refused.
- The sender power of the reverse topological power ordering, memoised by (sender, power
  levels, create), against ``sender_power_level``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph import InvalidRequestError, StateKey
from eventgraph.state._checker import AuthChecker
from eventgraph.state.authz import sender_power_level
from eventgraph.state.resolution import _partition_v2, _validated

from .stateres_support import RoomStates
from .test_stateres_properties import rooms


def _scrambled(
    room: RoomStates, state: dict[StateKey, str], data: st.DataObject
) -> dict[StateKey, str]:
    """``state`` with some keys dropped and some filed under other events of the room."""
    out = dict(state)
    ids = sorted(room.events)
    keys = sorted(out)
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=3)) if keys else []:
        out.pop(key, None)
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=3)) if keys else []:
        # Mostly an event of the key's type under another state key (the subtle case).
        same_type = [i for i in ids if room.events[i].type == key[0]]
        out[key] = data.draw(st.sampled_from(same_type or ids) | st.sampled_from([*ids, "$x"]))
    return out


@settings(max_examples=300)
@given(room=rooms, data=st.data(), scramble=st.booleans())
def test_fast_auth_checks_equal_plain_ones(
    room: RoomStates, data: st.DataObject, scramble: bool
) -> None:
    """``AuthChecker.allowed`` answers (and counts) as ``allowed_plain`` for every event of the
    room against a state of the room, scrambled or not."""
    state = room.after[data.draw(st.sampled_from(sorted(room.after)))]
    if scramble:
        state = _scrambled(room, state, data)
    events = room.store.get_events(sorted(room.events))
    rejected = set(room.store.rejected)
    if data.draw(st.booleans()):  # flags the store does not have: always checked in full
        rejected.update(data.draw(st.lists(st.sampled_from(sorted(events)), max_size=3)))
    fallback = room.rv.identifier != "1"
    fast = AuthChecker(room.rv, events, rejected, fallback_to_own_auth_events=fallback)
    plain = AuthChecker(room.rv, events, rejected, fallback_to_own_auth_events=fallback)
    for event_id in sorted(events):
        assert fast.allowed(state, event_id) == plain.allowed_plain(state, event_id), event_id
    assert (fast.checks, fast.known) == (plain.checks, plain.known)


# -- partition and input check -------------------------------------------------------------

_keys = st.tuples(st.sampled_from(["m.room.member", "m.room.topic", "t"]), st.sampled_from("ab"))
_sets = st.dictionaries(_keys, st.sampled_from(["$1", "$2", "$3"]), max_size=6)


@given(sets=st.lists(_sets, min_size=2, max_size=4))
def test_partition_equals_the_definition(sets: list[dict[StateKey, str]]) -> None:
    """The partition (two sets: by the items views' symmetric difference, with or without the
    input check's keys) equals the spec's definition, key by key."""
    keys = {k for s in sets for k in s}
    expected_unconflicted = {
        k: sets[0][k] for k in keys if all(k in s and s[k] == sets[0][k] for s in sets)
    }
    expected_conflicted = {
        k: frozenset(s[k] for s in sets if k in s) for k in keys - expected_unconflicted.keys()
    }
    checked, differing = _validated(sets)
    assert checked == sets
    for given_differing in (None, differing if len(sets) == 2 else None):
        got = _partition_v2(sets, given_differing)
        assert got == (expected_unconflicted, expected_conflicted)


class _Str(str):
    __slots__ = ()


@pytest.mark.parametrize(
    "bad",
    [
        {("a",): "$x"},
        {("a", "b"): 1},
        {("a", "b"): ["$unhashable"]},
        {("a", 1): "$x"},
        {"ab": "$x"},
        {("a", "b", "c"): "$x"},
    ],
)
def test_bad_entries_of_later_sets_are_refused(bad: dict[object, object]) -> None:
    """Only entries equal to the first set's skip the entry check; any other bad one raises."""
    first = {("m.room.create", ""): "$c"}
    with pytest.raises(InvalidRequestError):
        _validated([first, {**first, **bad}])
    with pytest.raises(InvalidRequestError):
        _validated([{**first, **bad}, first])


def test_entries_equal_to_the_first_sets_are_taken_as_those() -> None:
    """An equal ``str`` subclass in a later set counts as the first set's ``str``."""
    first = {("m.room.create", ""): "$c", ("m.room.topic", ""): "$t"}
    second = {("m.room.create", ""): _Str("$c"), ("m.room.topic", ""): "$u"}
    sets, differing = _validated([first, second])
    assert differing == {("m.room.topic", "")}
    unconflicted, conflicted = _partition_v2(sets, differing)
    assert unconflicted == {("m.room.create", ""): "$c"}
    assert type(unconflicted[("m.room.create", "")]) is str
    assert conflicted == {("m.room.topic", ""): frozenset({"$t", "$u"})}


@given(room=rooms)
def test_memoised_sender_power_equals_sender_power_level(room: RoomStates) -> None:
    """``AuthChecker.sender_power`` (memoised by sender and auth events, no list per event)
    equals ``sender_power_level`` over the event's loaded auth events, for every event."""
    events = room.store.get_events(sorted(room.events))
    checker = AuthChecker(room.rv, events, set())
    for event_id in sorted(events):
        ev = events[event_id]
        auth = [events[a] for a in ev.auth_event_ids if a in events]
        assert checker.sender_power(ev) == sender_power_level(room.rv, ev, auth), event_id
