"""MemoryStore's write path: the chain cover index it keeps (fed without an object per
non-state event) and its children index (one child kept as an ID, more as a set) against
plain references, on mixed batches delivered in any order."""

from __future__ import annotations

import random

import pytest

from eventgraph import Event, MemoryStore
from eventgraph.chain_cover import ChainCoverIndex, IndexedEvent
from eventgraph.testing import make_event


def _mixed_events(seed: int, n: int = 150) -> list[Event]:
    """State and non-state events in two rooms with random prev and auth events among earlier
    ones (so auth events may be messages, or events of the other room), shuffled."""
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(n):
        room = "!a:test" if rng.random() < 0.8 else "!b:test"
        earlier = [e.event_id for e in events]
        auth = rng.sample(earlier, min(len(earlier), rng.randrange(4)))
        prev = rng.sample(earlier, min(len(earlier), rng.randrange(1, 4)))
        state = rng.random() < 0.5
        events.append(
            make_event(
                f"$e{i}",
                room_id=room,
                prev=prev,
                auth=auth,
                state_key=f"k{rng.randrange(5)}" if state else None,
                depth=i + 1,
            )
        )
    rng.shuffle(events)
    return events


def _index_contents(index: ChainCoverIndex) -> tuple[object, ...]:
    return (
        dict(index._positions),
        {c: list(v) for c, v in index._links.items() if v},
        {c: list(v) for c, v in index._reverse.items() if v},
        dict(index._members),
        dict(index._waiting_for),
    )


@pytest.mark.parametrize("seed", range(8))
def test_store_index_and_children_match_plain_references(seed: int) -> None:
    """The store's index equals one fed every event through ``add``; its children equal the
    prev_events edges of the non-outliers, read back sorted; its invariants hold."""
    events = _mixed_events(seed)
    rng = random.Random(seed)
    store = MemoryStore()
    rooms: dict[str, str] = {}
    reference = ChainCoverIndex(rooms.get)
    outliers: set[str] = set()
    for start in range(0, len(events), 10):
        batch = events[start : start + 10]
        flagged = {e.event_id for e in batch if rng.random() < 0.2}
        outliers |= flagged
        store.add_events(batch, outliers=flagged)
        for e in batch:
            rooms[e.event_id] = e.room_id
            reference.add(IndexedEvent(e.event_id, e.room_id, e.state_tuple, e.auth_event_ids))
        store.check_invariants()
    # Connect the outliers again (an outlier stored again as a non-outlier gains its edges).
    store.add_events([e for e in events if e.event_id in outliers])
    store.check_invariants()
    assert _index_contents(store._chain_index) == _index_contents(reference)
    children: dict[str, set[str]] = {}
    for e in events:
        for p in e.prev_event_ids:
            children.setdefault(p, set()).add(e.event_id)
    ids = [e.event_id for e in events] + ["$unknown"]
    assert dict(store.get_children(ids)) == {p: tuple(sorted(c)) for p, c in children.items()}


def test_a_message_of_another_room_releases_a_waiting_state_event() -> None:
    """A state event waits for an unknown auth event; that ID arrives as a message of another
    room, which is no auth edge: the state event is indexed then (the message, not a state
    event, is never indexed itself)."""
    store = MemoryStore()
    store.add_events([make_event("$s", room_id="!a:test", auth=["$m"], state_key="")])
    assert store.get_unindexed(["$s"]) == {"$s"}
    store.add_events([make_event("$m", room_id="!b:test")])
    assert set(store.get_chain_positions(["$s", "$m"])) == {"$s"}
    assert store.get_unindexed(["$s", "$m"]) == {"$m"}
    store.check_invariants()


def test_one_child_then_two() -> None:
    """An event's first child is kept as an ID, the second turns it into a set: both read back
    sorted, and the forward extremities follow."""
    store = MemoryStore()
    store.add_events([make_event("$a")])
    store.add_events([make_event("$c", prev=["$a"], depth=2)])
    assert dict(store.get_children(["$a"])) == {"$a": ("$c",)}
    assert store.forward_extremities("!room:a.example") == ("$c",)
    store.add_events([make_event("$b", prev=["$a", "$a"], depth=2)])
    assert dict(store.get_children(["$a", "$b"])) == {"$a": ("$b", "$c")}
    assert store.forward_extremities("!room:a.example") == ("$b", "$c")
    store.check_invariants()


def test_an_event_naming_itself_is_its_own_child() -> None:
    """A (forged) event naming itself in ``prev_events`` is its own accepted child, so it is
    no forward extremity, as the recomputation in ``check_invariants`` says."""
    store = MemoryStore()
    store.add_events([make_event("$x", prev=["$x"])])
    assert dict(store.get_children(["$x"])) == {"$x": ("$x",)}
    assert store.forward_extremities("!room:a.example") == ()
    store.check_invariants()
