"""CountingStore: a store wrapper that counts round trips, to prove walks are batch-shaped.

Rules of this module:

1. Every call of a protocol read method is one round trip (a SQL store answers it with one
   query); ``events_fetched`` counts the records those calls returned (events, facts, chain
   positions).
2. The wrapper offers exactly the protocols the wrapped store offers: it implements
   :class:`~eventgraph.protocols.ChainIndexReader` only if the wrapped store does, so an
   algorithm takes the same path through it as through the store itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from ..events.event import Event
from ..events.room_versions import RoomVersion
from ..protocols import ChainIndexReader, ChainLink, ChainPosition, EventFacts, EventStore

__all__ = ["CountingStore", "StoreStatistics"]


@attrs.frozen
class StoreStatistics:
    """What a :class:`CountingStore` has seen since it was made or last reset.

    Attributes:
        round_trips: how many read calls reached the store.
        events_fetched: how many records those calls returned.
    """

    round_trips: int
    events_fetched: int


class CountingStore:
    """Wraps a store and counts its round trips (trio's ``statistics()`` pattern).

    >>> from eventgraph import MemoryStore
    >>> from eventgraph.testing import make_event
    >>> inner = MemoryStore()
    >>> inner.add_events([make_event("$a")])
    >>> store = CountingStore(inner)
    >>> _ = store.get_facts(["$a", "$unknown"])
    >>> store.statistics()
    StoreStatistics(round_trips=1, events_fetched=1)
    """

    def __new__(cls, store: EventStore) -> CountingStore:
        if cls is CountingStore and isinstance(store, ChainIndexReader):
            cls = _CountingIndexStore
        return super().__new__(cls)

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._round_trips = 0
        self._fetched = 0

    @property
    def inner(self) -> EventStore:
        """The wrapped store."""
        return self._store

    def statistics(self) -> StoreStatistics:
        """The counts so far."""
        return StoreStatistics(round_trips=self._round_trips, events_fetched=self._fetched)

    def reset(self) -> None:
        """Set both counts back to zero."""
        self._round_trips = 0
        self._fetched = 0

    def _count(self, result: Any, fetched: int) -> Any:
        self._round_trips += 1
        self._fetched += fetched
        return result

    # -- EventReader --------------------------------------------------------------------------

    def get_events(self, event_ids: Collection[str], /) -> Mapping[str, Event]:
        got = self._store.get_events(event_ids)
        self._count(got, len(got))
        return got

    def get_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        got = self._store.get_facts(event_ids)
        self._count(got, len(got))
        return got

    # -- GraphReader --------------------------------------------------------------------------

    def get_children(self, event_ids: Collection[str], /) -> Mapping[str, tuple[str, ...]]:
        got = self._store.get_children(event_ids)
        self._count(got, 0)
        return got

    def forward_extremities(self, room_id: str, /) -> tuple[str, ...]:
        got = self._store.forward_extremities(room_id)
        self._count(got, 0)
        return got

    def backward_extremities(self, room_id: str, /) -> Mapping[str, int]:
        got = self._store.backward_extremities(room_id)
        self._count(got, 0)
        return got

    def room_version_of(self, room_id: str, /) -> RoomVersion | None:
        got = self._store.room_version_of(room_id)
        self._count(got, 0)
        return got


class _CountingIndexStore(CountingStore):
    """A :class:`CountingStore` of a store with a chain cover index (rule 2)."""

    def get_chain_positions(self, event_ids: Collection[str], /) -> Mapping[str, ChainPosition]:
        store = self._store
        assert isinstance(store, ChainIndexReader)
        got = store.get_chain_positions(event_ids)
        self._count(got, len(got))
        return got

    def get_chain_links(self, chain_ids: Collection[int], /) -> Mapping[int, tuple[ChainLink, ...]]:
        store = self._store
        assert isinstance(store, ChainIndexReader)
        got = store.get_chain_links(chain_ids)
        self._count(got, 0)
        return got

    def get_chain_members(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[str, ...]]:
        store = self._store
        assert isinstance(store, ChainIndexReader)
        got = store.get_chain_members(ranges)
        self._count(got, sum(len(v) for v in got.values()))
        return got
