"""Resolution of stored state groups on the keys where they differ (``resolve_groups``).

The reference is whole-state :func:`resolve_state` on the groups' full states: for every pair
and triple of state groups tried, in generated rooms with concurrent state changes of room
versions 2–12, the scoped answer must be the same state.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph.errors import InvalidRequestError, UnsupportedRoomVersionError
from eventgraph.events.event import StateKey
from eventgraph.protocols import RoomStore, StateGroupChangesReader
from eventgraph.room import NoSignatureChecks, Room
from eventgraph.state.group_resolution import GroupResolution, resolve_groups
from eventgraph.state.resolution import resolve_state
from eventgraph.stores.memory import MemoryStore
from eventgraph.synth import generate_room

from .stores import RoomStoreFactory
from .test_state_at import random_room

TRUST = NoSignatureChecks()


def _applied(store: RoomStore, answer: GroupResolution) -> dict[StateKey, str]:
    state = dict(store.get_state([answer.base])[answer.base])
    for key, value in answer.changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state


def _groups_of(store: RoomStore, event_ids: list[str]) -> list[int]:
    groups = store.get_event_state_groups(event_ids)
    return sorted({g.after for g in groups.values()} | {g.before for g in groups.values()})


def _compare(
    store: RoomStore, version: str, groups: list[int], rng: random.Random, tries: int
) -> tuple[int, int]:
    """Compare scoped and whole-state resolution on ``tries`` random sets of 2–3 groups
    (and on consecutive pairs); how many were answered, and how many searched the index."""
    combos: list[tuple[int, ...]] = list(itertools.pairwise(groups[-12:]))
    combos.extend(
        tuple(rng.sample(groups, min(len(groups), rng.choice((2, 3))))) for _ in range(tries)
    )
    answered = searched = 0
    for combo in combos:
        answer = resolve_groups(version, combo, store)
        if answer is None:
            continue
        answered += 1
        searched += answer.chains_searched > 0
        assert answer.base in combo
        states = store.get_state(combo)
        expected = resolve_state(version, [states[g] for g in combo], store)
        assert _applied(store, answer) == expected, combo
    return answered, searched


@pytest.mark.parametrize(
    ("seed", "version"), [(s, v) for s in range(3) for v in ("10", "11", "12")]
)
def test_scoped_equals_whole_state_resolution_in_contested_rooms(seed: int, version: str) -> None:
    b = random_room(seed, version, n=80)
    store = MemoryStore()
    Room(store, version, verifier=TRUST).add(b.pdus)
    groups = _groups_of(store, list(b.events))
    answered, searched = _compare(store, version, groups, random.Random(seed), 40)
    assert answered >= 40  # the scoped path really ran, on most of the sets
    assert searched > 0  # ... and its witness search too


@pytest.mark.parametrize("version", ["2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"])
def test_scoped_equals_whole_state_resolution_in_synthetic_rooms(version: str) -> None:
    events = list(generate_room(version, events=400, members=25, fork_rate=0.15, seed=7))
    store = MemoryStore()
    Room(store, version, verifier=TRUST).add([e.to_pdu() for e in events])
    event_ids = [e.event_id for e in events]
    groups = _groups_of(store, event_ids)
    answered, _ = _compare(store, version, groups, random.Random(version), 30)
    assert answered >= 30


@settings(max_examples=15)
@given(seed=st.integers(0, 10**6), version=st.sampled_from(["10", "11", "12"]))
def test_scoped_equals_whole_state_resolution_property(seed: int, version: str) -> None:
    b = random_room(seed, version, n=50)
    store = MemoryStore()
    Room(store, version, verifier=TRUST).add(b.pdus)
    _compare(store, version, _groups_of(store, list(b.events)), random.Random(seed), 12)


def test_declines_what_it_cannot_do_in_proportion() -> None:
    """Room version 1, a single group, a spent search budget: ``None`` (the caller resolves
    whole states)."""
    b = random_room(1, "11", n=80)
    store = MemoryStore()
    Room(store, "11", verifier=TRUST).add(b.pdus)
    groups = _groups_of(store, list(b.events))
    assert resolve_groups("1", groups[:2], store) is None
    assert resolve_groups("11", groups[:1], store) is None
    searched = [
        combo
        for combo in itertools.combinations(groups[-10:], 2)
        if (answer := resolve_groups("11", combo, store)) is not None and answer.chains_searched
    ]
    assert searched
    assert resolve_groups("11", searched[0], store, search_budget=0) is None


def test_equal_groups_need_no_change() -> None:
    b = random_room(2, "11", n=40)
    store = MemoryStore()
    Room(store, "11", verifier=TRUST).add(b.pdus)
    groups = _groups_of(store, list(b.events))
    g = groups[-1]
    # Two groups whose states are equal (a group and a copy of it written as a new group).
    answer = resolve_groups("11", [g, g], store)
    assert answer is None  # one distinct group: nothing to resolve


@pytest.mark.parametrize("seed", range(2))
def test_on_every_store(room_store_factory: RoomStoreFactory, seed: int) -> None:
    """Every store's changed keys are a superset of where two groups differ, and the scoped
    resolution over it equals whole-state resolution."""
    b = random_room(seed, "11", n=80)
    store = room_store_factory()
    Room(store, "11", verifier=TRUST).add(b.pdus)
    assert isinstance(store, StateGroupChangesReader)
    groups = _groups_of(store, list(b.events))
    compared = 0
    for first, second in itertools.combinations(groups[-20:], 2):
        changed = store.get_changed_keys(first, second)
        if changed is None:
            continue
        compared += 1
        states = store.get_state([first, second])
        a, c = states[first], states[second]
        assert {k for k in a.keys() | c.keys() if a.get(k) != c.get(k)} <= set(changed)
    assert compared > 20
    answered, _ = _compare(store, "11", groups, random.Random(seed), 25)
    assert answered >= 25


def test_kept_mainlines_give_the_walked_answers() -> None:
    """The power-levels tree kept per store between resolutions (state resolution's mainline
    ordering, eventgraph.state._mainline) gives the same answers as walking afresh for every
    resolution, and is really kept."""
    from eventgraph.state import _mainline

    events = list(generate_room("11", events=600, members=15, fork_rate=0.2, seed=11))
    store = MemoryStore()
    Room(store, "11", verifier=TRUST).add([e.to_pdu() for e in events])
    groups = _groups_of(store, [e.event_id for e in events])
    rng = random.Random(11)
    combos = [tuple(rng.sample(groups, 2)) for _ in range(60)]
    states = store.get_state(groups)
    fresh = []
    for combo in combos:
        _mainline.forget(store)
        fresh.append(resolve_state("11", [states[g] for g in combo], store))
    warm = [resolve_state("11", [states[g] for g in combo], store) for combo in combos]
    assert warm == fresh
    assert _mainline._TREES.get(store)  # the warm runs read a kept tree


@pytest.mark.parametrize("groups", [["1", 2], "12", [1.0, 2], [None, 1], [True, 2]])
def test_malformed_groups_are_refused_with_a_typed_error(groups: object) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidRequestError):
        resolve_groups("11", groups, store)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedRoomVersionError):
        resolve_groups("99", [1, 2], store)


class _WideChanges(MemoryStore):
    """A store whose changed keys are every key of both states: a superset as wide as it gets
    (as when one input's delta chain was compacted)."""

    def get_changed_keys(self, first: int, second: int, /) -> frozenset[StateKey] | None:
        states = self.get_state([first, second])
        return frozenset(states[first].keys() | states[second].keys())


def test_resolves_only_where_the_inputs_really_differ() -> None:
    """Keys of the store's superset where every input has the same entry stay outside R: the
    answer and the number of keys resolved do not depend on how wide the superset is."""
    b = random_room(0, "11", n=80)
    narrow, wide = MemoryStore(), _WideChanges()
    Room(narrow, "11", verifier=TRUST).add(b.pdus)
    Room(wide, "11", verifier=TRUST).add(b.pdus)
    groups = _groups_of(narrow, list(b.events))
    assert groups == _groups_of(wide, list(b.events))
    compared = 0
    for combo in itertools.combinations(groups[-12:], 2):
        a, c = resolve_groups("11", combo, narrow), resolve_groups("11", combo, wide)
        assert (a is None) == (c is None)
        if a is None or c is None:
            continue
        compared += 1
        assert (c.base, c.changes, c.keys_resolved) == (a.base, a.changes, a.keys_resolved)
        states = wide.get_state(combo)
        assert c.keys_resolved < len(states[combo[0]])  # not every key of the states
        assert _applied(wide, c) == resolve_state("11", [states[g] for g in combo], wide)
    assert compared > 20
