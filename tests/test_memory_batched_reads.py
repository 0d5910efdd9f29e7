"""MemoryStore's reads of many IDs at once (the pipeline's batched reads): events and facts
answer like the one-by-one reads, in the order asked, whether all, none or some of the IDs
are stored (and built lately, for facts), with repeats."""

from __future__ import annotations

import random

import pytest

from eventgraph import Event, MemoryStore
from eventgraph.testing import make_event


def _store(n: int) -> tuple[MemoryStore, list[Event]]:
    events = [make_event(f"$e{i}", depth=i + 1, prev=[f"$e{i - 1}"] if i else []) for i in range(n)]
    store = MemoryStore()
    store.add_events(events)
    return store, events


@pytest.mark.parametrize("seed", range(4))
def test_many_ids_read_like_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    store, events = _store(60)
    stored = [e.event_id for e in events]
    unknown = [f"$x{i}" for i in range(20)]
    for shape in ("all", "none", "some", "repeats", "set"):
        ids: list[str] | set[str]
        if shape == "all":
            ids = rng.sample(stored, 30)
        elif shape == "none":
            ids = rng.sample(unknown, 15)
        elif shape == "some":
            ids = rng.sample(stored, 20) + rng.sample(unknown, 5)
            rng.shuffle(ids)
        elif shape == "repeats":
            ids = rng.choices(stored, k=25)
        else:
            ids = set(rng.sample(stored, 12))
        for _ in range(2):  # facts: built, then read again from the ones built lately
            got_events = store.get_events(ids)
            got_facts = store.get_facts(ids)
            want_events = {i: e for i in ids for e in store.get_events([i]).values()}
            want_facts = {i: f for i in ids for f in store.get_facts([i]).values()}
            assert list(got_events.items()) == list(want_events.items())
            assert list(got_facts.items()) == list(want_facts.items())
            assert all(got_facts[i].event_id == i for i in got_facts)
