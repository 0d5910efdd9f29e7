"""MemoryStore keeps the facts of each event as an exact tuple (which CPython's garbage
collector stops tracking), while get_facts returns EventFacts with the same values, built on
read or kept from a recent read (``memory`` rule 8)."""

from __future__ import annotations

import gc
import random

import attrs
import pytest

from eventgraph import MemoryStore
from eventgraph.protocols import EventFacts
from eventgraph.room import NoSignatureChecks, Room
from eventgraph.stores import memory
from eventgraph.synth import generate_room
from eventgraph.testing import make_event


def _ingested() -> MemoryStore:
    """A small synthetic room (joins, state changes, forks, messages) ingested by ``Room``."""
    store = MemoryStore()
    room = Room(store, "11", verifier=NoSignatureChecks())
    pdus = [e.to_pdu() for e in generate_room("11", events=300, members=30, seed=3)]
    for i in range(0, len(pdus), 50):
        room.add(pdus[i : i + 50])
    return store


def test_the_store_keeps_exact_tuples_the_collector_stops_tracking() -> None:
    """The facts are exact tuples, untracked by the collector after two full collections (a
    tuple is untracked in a collection that finds its items untracked: one holding a tuple
    seen later in that pass waits for the next)."""
    store = _ingested()
    kept = list(store._facts.values())
    assert {type(x) for x in kept} == {tuple}
    gc.collect()
    gc.collect()
    assert not [x for x in kept if gc.is_tracked(x)]


def test_reads_build_the_public_types_with_the_kept_values() -> None:
    """``get_facts`` returns :class:`EventFacts` equal to the event's fields."""
    store = _ingested()
    ids = sorted(store._facts)
    facts = store.get_facts(ids)
    for event_id in ids:
        got = facts[event_id]
        assert type(got) is EventFacts
        assert attrs.astuple(got, recurse=False) == store._facts[event_id]
        event = store.get_events([event_id])[event_id]
        assert (got.event_id, got.room_id, got.depth) == (event_id, event.room_id, event.depth)
        assert got.prev_event_ids == event.prev_event_ids
        assert got.auth_event_ids == event.auth_event_ids
        assert got.is_state == (event.state_key is not None)
    assert sorted(f.arrival for f in facts.values()) == list(range(1, len(ids) + 1))


def test_facts_read_back_the_flags_written_and_a_connected_outlier() -> None:
    """The flags of a write come back in the facts; connecting an outlier keeps its arrival."""
    store = MemoryStore()
    store.add_events([make_event("$c", auth=(), state_key="")])
    events = [
        make_event(f"${name}", prev=("$c",), auth=("$c",), depth=2)
        for name in ("plain", "out", "rej", "soft")
    ]
    store.add_events(events, outliers=["$out"], rejected={"$rej": "no"}, soft_failed=["$soft"])
    flags = {
        i: (f.outlier, f.rejected, f.soft_failed, f.arrival)
        for i, f in store.get_facts(["$plain", "$out", "$rej", "$soft", "$none"]).items()
    }
    assert flags == {
        "$plain": (False, None, False, 2),
        "$out": (True, None, False, 3),
        "$rej": (False, "no", False, 4),
        "$soft": (False, None, True, 5),
    }
    store.add_events([events[1]])  # connects the outlier
    assert store.get_facts(["$out"])["$out"].outlier is False
    assert store.get_facts(["$out"])["$out"].arrival == 3
    store.check_invariants()


def test_facts_read_through_a_small_cache_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a read cache of 3 facts a generation, reads in any order (hits in the young and
    the old generation, misses, unknown IDs) return the facts kept; connecting outliers read
    before (in either generation) reads back the new facts."""
    monkeypatch.setattr(memory, "_FACTS_CACHE_SIZE", 3)
    store = MemoryStore()
    assert store._built_facts.size == 3
    store.add_events([make_event("$c", auth=(), state_key="")])
    events = [make_event(f"$e{i}", prev=("$c",), auth=("$c",), depth=2) for i in range(12)]
    outliers = [e.event_id for e in events[::3]]
    store.add_events(events, outliers=outliers)
    ids = ["$c", *(e.event_id for e in events), "$none"]
    rng = random.Random(5)
    for step in range(60):
        asked = rng.sample(ids, rng.randrange(1, 6))
        got = store.get_facts(asked)
        assert got == {i: EventFacts(*store._facts[i]) for i in asked if i in store._facts}
        if step == 30:
            # An outlier in each generation (young: the last read; old: three reads before).
            for i in [outliers[0], "$e1", "$e2", outliers[1]]:
                assert store.get_facts([i])[i].outlier == (i in outliers)
            assert outliers[0] in store._built_facts.old
            assert outliers[1] in store._built_facts.young
            store.add_events(events)  # connects the outliers
            assert not any(f.outlier for f in store.get_facts(outliers).values())
    assert len(store._built_facts.young) <= 3
    assert len(store._built_facts.old) <= 3
