"""What MemoryStore keeps per event is exact tuples (which CPython's garbage collector stops
tracking), while its reads return the public types with the same values: the facts
(``memory`` rule 8) and the chain cover index (``chain_cover`` rule 6)."""

from __future__ import annotations

import gc
import random

import attrs
import pytest

from eventgraph import MemoryStore
from eventgraph import chain_cover as cc
from eventgraph.protocols import ChainLink, ChainPosition, ChainReverseLink, EventFacts
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
    """Facts, positions, links, reverse links and indexed events are exact tuples, untracked
    by the collector after two full collections (a tuple is untracked in a collection that
    finds its items untracked: one holding a tuple seen later in that pass waits for the
    next)."""
    store = _ingested()
    index = store._chain_index
    kept: list[object] = [
        *store._facts.values(),
        *index._positions.values(),
        *(x for links in index._links.values() for x in links),
        *(x for links in index._reverse.values() for x in links),
        *index._events.values(),
    ]
    assert index._links  # (the room exercises both)
    assert index._reverse
    assert {type(x) for x in kept} == {tuple}
    gc.collect()
    gc.collect()
    assert not [x for x in kept if gc.is_tracked(x)]


def test_reads_build_the_public_types_with_the_kept_values() -> None:
    """``get_facts`` returns :class:`EventFacts` equal to the event's fields and flags; the
    chain reads return :class:`ChainPosition`, :class:`ChainLink` and
    :class:`ChainReverseLink` (named tuples, equal to the plain ones kept)."""
    store = _ingested()
    index = store._chain_index
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
    positions = store.get_chain_positions(ids)
    assert positions == index._positions
    assert {type(p) for p in positions.values()} == {ChainPosition}
    chains = sorted({p.chain_id for p in positions.values()})
    links = store.get_chain_links(chains)
    assert links == {c: tuple(v) for c, v in index._links.items() if v}
    assert {type(x) for v in links.values() for x in v} == {ChainLink}
    reverse = store.get_chain_reverse_links(dict.fromkeys(chains, (0, 10**9)))
    assert reverse == {c: tuple(v) for c, v in index._reverse.items() if v}
    assert {type(x) for v in reverse.values() for x in v} == {ChainReverseLink}
    some = next(iter(links.values()))[0]
    assert repr(some).startswith("ChainLink(origin_sequence=")


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


def test_chain_reads_through_small_caches_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """With caches of 3 positions and 3 chains' links a generation, positions and links read
    between writes (chains gaining links after they were read) equal the index's own."""
    monkeypatch.setattr(cc, "_BUILT_CACHE_SIZE", 3)
    rng = random.Random(7)
    store = MemoryStore()
    index = store._chain_index
    assert index._built_links.size == 3
    ids: list[str] = []
    for i in range(120):
        auth = rng.sample(ids, min(len(ids), rng.randrange(1, 5)))
        state_key = f"k{rng.randrange(6)}"
        store.add_events([make_event(f"$e{i}", auth=auth, state_key=state_key, depth=i + 1)])
        ids.append(f"$e{i}")
        asked = rng.sample(ids, min(len(ids), 4))
        assert store.get_chain_positions(asked) == {
            e: index._positions[e] for e in asked if e in index._positions
        }
        chains = rng.sample(range(1, index._next_chain), min(index._next_chain - 1, 4))
        links = store.get_chain_links(chains)
        assert links == {c: tuple(index._links[c]) for c in chains if index._links.get(c)}
        assert {type(x) for v in links.values() for x in v} <= {ChainLink}
    assert sum(map(len, index._links.values())) > 40  # (links were made between the reads)
    index.check()
