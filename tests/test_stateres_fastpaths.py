"""State resolution's fast paths against the plain ways (hypothesis, differential).

- The iterative auth checks hand the selected auth events to the rules as a mapping, skipping
  ``check_auth``'s checks of the list when they hold by construction (``_checker`` rule 5):
  compared with the plain path (a list through ``check_auth``) on generated rooms, against
  their real states and against scrambled ones (keys filed under other events, other rooms'
  events, missing keys, rejected flags).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph import StateKey
from eventgraph.state._checker import AuthChecker

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
