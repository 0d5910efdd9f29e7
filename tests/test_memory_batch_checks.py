"""The memory store's write batch check (``_batch.check_batch``, before its one-loop write):
each kind of bad batch is refused with the store unchanged; an Event subclass and a room
version equal to the stored one are accepted."""

from __future__ import annotations

import attrs
import pytest

from eventgraph import Event, MemoryStore
from eventgraph.errors import StoreError
from eventgraph.events.room_versions import room_version
from eventgraph.testing import make_event


def _events(n: int, room: str = "!a:test", version: str = "10") -> list[Event]:
    return [
        make_event(f"$e{i}{room}", room_id=room, version=version, depth=i + 1) for i in range(n)
    ]


class _Sub(Event):
    pass


@pytest.mark.parametrize(
    "bad",
    [
        "another event under a stored ID",
        "two events under one ID",
        "two room versions in one room",
        "a version differing from the stored one",
        "a non-event",
        "a flag naming an event not in the batch",
        "a rejection reason that is not a string",
    ],
)
def test_the_memory_store_refuses_and_stays_unchanged(bad: str) -> None:
    store = MemoryStore()
    store.add_events(_events(2))
    before = (len(store), store.forward_extremities("!a:test"))
    new = _events(4)[2:]
    other = make_event("$e0!a:test", room_id="!a:test", depth=9)  # a stored ID, another event
    kwargs: dict[str, object] = {}
    batch: list[object]
    if bad == "another event under a stored ID":
        batch = [*new, other]
    elif bad == "two events under one ID":
        batch = [*new, make_event(new[0].event_id, room_id="!a:test", depth=7)]
    elif bad == "two room versions in one room":
        batch = [*new, make_event("$v11", room_id="!a:test", version="11")]
    elif bad == "a version differing from the stored one":
        batch = [make_event("$v11", room_id="!a:test", version="11")]
    elif bad == "a non-event":
        batch = [*new, "$not-an-event"]
    elif bad == "a flag naming an event not in the batch":
        batch, kwargs = list(new), {"outliers": ["$elsewhere"]}
    else:
        batch, kwargs = list(new), {"rejected": {new[0].event_id: 5}}
    with pytest.raises(StoreError):
        store.add_events(batch, **kwargs)  # type: ignore[arg-type]
    assert (len(store), store.forward_extremities("!a:test")) == before


def test_a_subclass_or_an_equal_version_goes_through_the_loop() -> None:
    """An Event subclass and a room version equal to, not the same object as, the stored one
    are accepted as by the loop."""
    store = MemoryStore()
    store.add_events(_events(1))
    event = make_event("$s", room_id="!a:test", depth=2)
    fields = {str(f.alias): getattr(event, f.name) for f in attrs.fields(Event)}
    sub = _Sub(**fields)
    store.add_events([sub])
    rv = room_version("10")
    copy = attrs.evolve(rv)
    assert copy == rv
    assert copy is not rv
    late = make_event("$t", room_id="!a:test", version=copy, depth=3)
    store.add_events([late])
    assert len(store) == 3
