"""Every bundled store, as a pytest fixture, so one test runs against each (verified fakes).

``tests/conftest.py`` registers the fixtures, so a test module only names them
(``room_store_factory`` for tests of the ingest pipeline and state, which need the state-group
protocols)::

    from .stores import StoreFactory

    def test_something(store_factory: StoreFactory) -> None:
        store = store_factory()
        ...

The fixture is session-scoped and parametrised over :data:`STORE_KINDS`, so each test using it
runs once per store kind, and hypothesis tests may call the factory inside their body (a
function-scoped fixture would trip hypothesis' health check). Stores made by the factory are
closed at the end of the session.

This module also holds :func:`random_batches`, a seeded generator of ingest batches (forks,
gaps, outliers, rejected and soft-failed events, two rooms) shared by the differential and
durability tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from eventgraph import Event
from eventgraph.protocols import RoomStore
from eventgraph.stores.sqlite import SqliteStore
from eventgraph.testing.contract import ContractStore, contract_event
from eventgraph.testing.rooms import room_memory_store

__all__ = [
    "STORE_KINDS",
    "Batch",
    "RoomStoreFactory",
    "StoreFactory",
    "make_room_store",
    "make_store",
    "random_batches",
    "room_store_factory",
    "store_factory",
]

#: The store kinds the fixture yields.
STORE_KINDS = ("memory", "sqlite")

StoreFactory = Callable[[], ContractStore]
RoomStoreFactory = Callable[[], RoomStore]


def make_room_store(kind: str) -> RoomStore:
    """A new, empty store of ``kind`` (``"memory"`` or ``"sqlite"``, the latter in memory), with
    every protocol including state groups (what the ingest pipeline needs)."""
    if kind == "memory":
        return room_memory_store()
    if kind == "sqlite":
        return SqliteStore(":memory:")
    msg = f"unknown store kind {kind!r}"
    raise ValueError(msg)


def make_store(kind: str) -> ContractStore:
    """A new, empty store of ``kind`` (see :func:`make_room_store`)."""
    return make_room_store(kind)


def _closing_factory(kind: str) -> Iterator[RoomStoreFactory]:
    made: list[RoomStore] = []

    def factory() -> RoomStore:
        store = make_room_store(kind)
        made.append(store)
        return store

    yield factory
    for store in made:
        if isinstance(store, SqliteStore):
            store.close()


@pytest.fixture(scope="session", params=STORE_KINDS)
def store_factory(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """A factory of new, empty stores of one kind; the test runs once per kind."""
    yield from _closing_factory(request.param)


@pytest.fixture(scope="session", params=STORE_KINDS)
def room_store_factory(request: pytest.FixtureRequest) -> Iterator[RoomStoreFactory]:
    """A factory of new, empty room stores (state groups included) of one kind."""
    yield from _closing_factory(request.param)


@attrs.frozen
class Batch:
    """One ``add_events`` call: the events and their flags."""

    events: tuple[Event, ...]
    outliers: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()
    soft_failed: tuple[str, ...] = ()

    def add_to(self, store: Any) -> None:
        """Store this batch in ``store``."""
        store.add_events(
            self.events,
            outliers=self.outliers,
            rejected=dict(self.rejected),
            soft_failed=self.soft_failed,
        )

    @property
    def event_ids(self) -> tuple[str, ...]:
        """The IDs of the batch's events."""
        return tuple(e.event_id for e in self.events)


ROOMS = ("!contract:test", "!other:test")


def random_batches(
    seed: int, *, batches: int = 8, size: int = 12, prefix: str = "$e"
) -> list[Batch]:
    """Seeded ingest batches over two rooms: forks, merges, gaps filled later, outliers
    (some connected later by a re-add), rejected and soft-failed events, and re-adds.

    A few events name an event of the other room in ``prev_events`` (hostile input: such an edge
    is not a child for forward extremities). Each event is stored exactly once per flag set,
    except outliers that a later batch connects.
    """
    rng = random.Random(seed)
    made: dict[str, list[tuple[str, int]]] = {r: [] for r in ROOMS}  # room -> (id, depth)
    events: dict[str, Event] = {}
    held_back: list[Event] = []  # events created now, stored later (gaps)
    outliers_pending: list[Event] = []
    out: list[Batch] = []
    n = 0
    for _ in range(batches):
        batch: list[Event] = []
        outliers: list[str] = []
        rejected: list[tuple[str, str]] = []
        soft: list[str] = []
        for _ in range(size):
            room = ROOMS[rng.random() < 0.2]
            pool = made[room]
            width = rng.choice((1, 1, 1, 2, 3))
            prevs = rng.sample(pool[-6:], min(width, len(pool[-6:]))) if pool else []
            other = made[ROOMS[room == ROOMS[0]]]
            if other and rng.random() < 0.04:
                prevs.append(other[-1])  # a hostile edge into the other room
            depth = 1 + max((d for _, d in prevs), default=0)
            event = contract_event(
                f"{prefix}{n}",
                sorted(p for p, _ in prevs),
                depth=depth,
                room_id=room,
                state_key=None if rng.random() < 0.7 else f"k{n % 5}",
            )
            n += 1
            pool.append((event.event_id, depth))
            events[event.event_id] = event
            roll = rng.random()
            if roll < 0.08:
                held_back.append(event)  # a gap: stored by a later batch
                continue
            batch.append(event)
            if roll < 0.16:
                outliers.append(event.event_id)
                if rng.random() < 0.5:
                    outliers_pending.append(event)
            elif roll < 0.22:
                rejected.append((event.event_id, rng.choice(("auth", "state"))))
            elif roll < 0.27:
                soft.append(event.event_id)
        # Fill some gaps and connect some outliers; re-add an old event (a no-op).
        for pending in (held_back, outliers_pending):
            rng.shuffle(pending)
            for _ in range(len(pending) // 2):
                event = pending.pop()
                if all(e.event_id != event.event_id for e in batch):
                    batch.append(event)
        if events and rng.random() < 0.5:
            old = events[rng.choice(sorted(events))]
            if all(e.event_id != old.event_id for e in batch) and old not in held_back:
                batch.append(old)
        rng.shuffle(batch)
        out.append(
            Batch(
                events=tuple(batch),
                outliers=tuple(outliers),
                rejected=tuple(rejected),
                soft_failed=tuple(soft),
            )
        )
    return out
