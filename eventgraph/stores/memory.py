"""MemoryStore: every storage protocol, in memory.

Rules of this module:

1. It implements the protocols of :mod:`eventgraph.protocols` and nothing else public beyond
   :meth:`MemoryStore.check_invariants` and a few read-only conveniences for tools.
2. A write validates the whole batch before changing anything, so a refused batch leaves the
   store exactly as it was (protocols rule 3).
3. Forward extremities are the *accepted* events (not outlier, rejected or soft-failed) with no
   accepted child in the same room (a ``prev_events`` edge from another room is not a child).
   Backward extremities are the IDs named in ``prev_events`` of non-outlier events and not
   stored as non-outliers, each with the smallest depth of those children.
   Both follow from the set of stored events alone, so they never depend on insertion order.
4. State groups (snapshots and deltas of the state before events, :mod:`.memory_state`) are
   composed in, written with their events in one atomic call (:meth:`add_events_with_state`).
5. The store never imports an algorithm. It maintains the chain cover index of the auth DAG
   (:class:`~eventgraph.protocols.ChainIndexReader`, read backwards too:
   :class:`~eventgraph.protocols.ChainIndexReverseReader`) in its write path with the pure logic of
   :mod:`eventgraph.chain_cover` (protocol layer), whatever order events arrive in.
6. Each room keeps the set of ``(type, state_key)`` keys of its stored state events (outliers,
   rejected and soft-failed ones included), added to when an event is first stored and never
   removed (events are never deleted), for
   :class:`~eventgraph.protocols.StateKeyPresenceReader`.
7. The children of an event (the non-outliers naming it in ``prev_events``) are kept as the
   child's ID while there is one (most events: no set object per event, less memory and less
   for the garbage collector to scan), as a set from the second on.
8. The facts of each event are kept as an exact tuple of the :class:`EventFacts` fields, in
   their order, and built into an :class:`EventFacts` only when read (:meth:`get_facts`): its
   items are strings, numbers, booleans, ``None`` and tuples of strings, so CPython's garbage
   collector stops tracking it once it has seen it (an attrs instance stays tracked and is
   rescanned at every full collection: one per stored event). Reads ask for fewer facts than
   events are written (about 0.6 per event ingested). The facts built lately are kept for
   the next reads (state resolution reads the same auth events again and again) in a
   :class:`_RecentlyBuilt` of two generations of ``_FACTS_CACHE_SIZE``; an entry is dropped
   when its event's facts change (an outlier connected).
9. The IDs of the stored events that are outliers or rejected are kept in a set, updated with
   their facts (an outlier connected and not rejected leaves it), for
   :class:`~eventgraph.protocols.FlaggedEventsReader`: most events are neither, so the set is
   small and a read of many IDs' flags builds facts only for those in it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from operator import attrgetter, itemgetter
from typing import Final, Generic, TypeVar, cast

import attrs

from ..chain_cover import ChainCoverIndex
from ..errors import StoreError
from ..events.event import Event, StateKey
from ..events.room_versions import RoomVersion
from ..protocols import (
    ChainLink,
    ChainPosition,
    ChainReverseLink,
    EventFacts,
    EventStateGroups,
    StateWrite,
)
from ._batch import check_batch
from .memory_state import MemoryStateGroups, StateGroupStats

__all__ = ["MemoryStore"]

#: The facts of an event as the store keeps them (rule 8): the :class:`EventFacts` fields, in
#: order. The positions read here:
_Facts = tuple[str, str, int, tuple[str, ...], tuple[str, ...], bool, bool, str | None, bool, int]
_ROOM: Final = 1
_DEPTH_OF = itemgetter(2)
_OUTLIER: Final = 6
_REJECTED: Final = 7
_SOFT_FAILED: Final = 8
_ARRIVAL: Final = 9
_EVENT_ID = attrgetter("event_id")
#: How many built :class:`EventFacts` each of the two generations of the read cache holds.
_FACTS_CACHE_SIZE = 4096
#: From this many IDs on, a read of facts first tries a few passes at C speed (none stored,
#: all built lately).
_MANY = 8

_K = TypeVar("_K")
_V = TypeVar("_V")


class _RecentlyBuilt(Generic[_K, _V]):
    """The values a read built lately from what the store keeps, for the next reads (rule 8).

    Two generations of at most ``size`` values each: when the young one is full it becomes
    the old one (the values before are dropped); a read finding a value in the old one keeps
    it again. So at most ``2 x size`` values are kept, the ones read lately. A read looks in
    :attr:`young` first (one dictionary step), then in :attr:`old`, and keeps what it found or
    built (:meth:`keep`); a writer drops a value that changes (:meth:`drop`).

    >>> recent = _RecentlyBuilt[str, int](2)
    >>> for key in "abc":
    ...     recent.keep(key, ord(key))
    >>> recent.old, recent.young
    ({'a': 97, 'b': 98}, {'c': 99})
    """

    __slots__ = ("old", "size", "young")

    def __init__(self, size: int) -> None:
        self.size = size
        self.young: dict[_K, _V] = {}
        self.old: dict[_K, _V] = {}

    def keep(self, key: _K, value: _V) -> None:
        """Keep ``value`` in the young generation (which may then replace the old one)."""
        young = self.young
        if len(young) >= self.size:
            self.old = young
            young = self.young = {}
        young[key] = value

    def drop(self, key: _K) -> None:
        """Forget the value kept for ``key`` (it changed)."""
        self.young.pop(key, None)
        self.old.pop(key, None)


@attrs.define
class _RoomData:
    version: RoomVersion
    forward: set[str] = attrs.field(factory=set)
    backward: dict[str, int] = attrs.field(factory=dict)
    event_count: int = 0
    # Every key with a stored state event of the room, whatever its flags (rule 6).
    state_keys: set[StateKey] = attrs.field(factory=set)


class MemoryStore:
    """An in-memory store for any number of rooms.

    >>> store = MemoryStore()
    >>> store.forward_extremities("!nowhere:example")
    ()
    """

    def __init__(self) -> None:
        self._events: dict[str, Event] = {}
        self._facts: dict[str, _Facts] = {}  # rule 8
        self._built_facts = _RecentlyBuilt[str, EventFacts](_FACTS_CACHE_SIZE)  # rule 8
        self._flagged: set[str] = set()  # rule 9
        self._children: dict[str, str | set[str]] = {}  # one child: its ID (rule 7)
        self._rooms: dict[str, _RoomData] = {}
        self._next_arrival = 1
        self._chain_index = ChainCoverIndex(self._room_of)
        self._state_groups = MemoryStateGroups()
        # The state reads made for every event ingested go straight to the state groups (the
        # methods below forward the same call: this skips one call level per read), unless a
        # subclass overrides them.
        cls = type(self)
        if cls.get_state is MemoryStore.get_state:
            vars(self)["get_state"] = self._state_groups.get_state
        if cls.get_event_state_groups is MemoryStore.get_event_state_groups:
            vars(self)["get_event_state_groups"] = self._state_groups.get_event_state_groups

    def _room_of(self, event_id: str) -> str | None:
        facts = self._facts.get(event_id)
        return None if facts is None else facts[_ROOM]

    # -- EventReader --------------------------------------------------------------------------

    def get_events(self, event_ids: Collection[str], /) -> Mapping[str, Event]:
        events = self._events
        out: dict[str, Event] = {}  # (a loop, not a comprehension: no function call)
        for i in event_ids:
            event = events.get(i)
            if event is not None:
                out[i] = event
        return out

    def get_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        # Built from the kept tuples, unless built lately (rule 8).
        facts = self._facts
        built = self._built_facts
        young = built.young
        if len(event_ids) > _MANY:
            # At C speed: none stored (new events asked about), or all built lately.
            if facts.keys().isdisjoint(event_ids):
                return {}
            found = list(map(young.get, event_ids))
            if all(found):
                return dict(zip(event_ids, cast(list[EventFacts], found), strict=True))
        out: dict[str, EventFacts] = {}
        for i in event_ids:
            got = young.get(i)
            if got is None:
                kept = facts.get(i)
                if kept is None:
                    continue
                got = built.old.get(i)
                if got is None:
                    got = EventFacts(*kept)
                built.keep(i, got)
                young = built.young
            out[i] = got
        return out

    # -- FlaggedEventsReader -------------------------------------------------------------------

    def get_flagged_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        # One probe per ID into a set of the few flagged events (rule 9), at C speed.
        flagged = self._flagged.intersection(event_ids)
        return self.get_facts(flagged) if flagged else {}

    # -- GraphReader --------------------------------------------------------------------------

    def get_children(self, event_ids: Collection[str], /) -> Mapping[str, tuple[str, ...]]:
        children = self._children
        out: dict[str, tuple[str, ...]] = {}
        for i in event_ids:
            got = children.get(i)
            if got is not None:
                out[i] = tuple(sorted(_ids(got)))
        return out

    def forward_extremities(self, room_id: str, /) -> tuple[str, ...]:
        room = self._rooms.get(room_id)
        return () if room is None else tuple(sorted(room.forward))

    def backward_extremities(self, room_id: str, /) -> Mapping[str, int]:
        room = self._rooms.get(room_id)
        return {} if room is None else dict(sorted(room.backward.items()))

    def room_version_of(self, room_id: str, /) -> RoomVersion | None:
        room = self._rooms.get(room_id)
        return None if room is None else room.version

    # -- ChainIndexReader ---------------------------------------------------------------------

    def get_chain_positions(self, event_ids: Collection[str], /) -> Mapping[str, ChainPosition]:
        return self._chain_index.positions(event_ids)

    def get_chain_links(self, chain_ids: Collection[int], /) -> Mapping[int, tuple[ChainLink, ...]]:
        return self._chain_index.links(chain_ids)

    def get_chain_members(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[str, ...]]:
        return self._chain_index.members(ranges)

    # -- ChainIndexReverseReader --------------------------------------------------------------

    def get_chain_reverse_links(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[ChainReverseLink, ...]]:
        return self._chain_index.reverse_links(ranges)

    def get_unindexed(self, event_ids: Collection[str], /) -> Collection[str]:
        facts = self._facts
        return {i for i in self._chain_index.not_indexed(event_ids) if i in facts}

    # -- ChainIndexDepthReader ----------------------------------------------------------------

    def auth_depths_descend(self, room_ids: Collection[str], /) -> bool:
        return self._chain_index.depths_descend(room_ids)

    def greatest_depth(self, event_ids: Collection[str], /) -> int | None:
        facts = self._facts
        try:
            # At C speed when every ID is stored (the usual case).
            return max(map(_DEPTH_OF, map(facts.__getitem__, event_ids)), default=None)
        except KeyError:
            stored = facts.keys() & event_ids
            return max(map(_DEPTH_OF, map(facts.__getitem__, stored)), default=None)

    # -- conveniences for tools ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._events

    def room_ids(self) -> tuple[str, ...]:
        """The rooms the store holds events of, sorted."""
        return tuple(sorted(self._rooms))

    def room_event_count(self, room_id: str) -> int:
        """How many events of ``room_id`` are stored."""
        room = self._rooms.get(room_id)
        return 0 if room is None else room.event_count

    # -- EventWriter --------------------------------------------------------------------------

    def add_events(
        self,
        events: Iterable[Event],
        /,
        *,
        outliers: Collection[str] = (),
        rejected: Mapping[str, str] | None = None,
        soft_failed: Collection[str] = (),
    ) -> None:
        """Store ``events`` atomically (see :class:`eventgraph.protocols.EventWriter`).

        Complexity: O(edges of the batch); no step depends on the room's size.

        Raises:
            StoreError: the batch is inconsistent; the store is unchanged.
        """
        batch = self._validate(events, outliers, rejected or {}, soft_failed)
        self._write(batch, outliers, rejected, soft_failed)

    def _write(
        self,
        batch: list[Event],
        outliers: Collection[str],
        rejected: Mapping[str, str] | None,
        soft_failed: Collection[str],
    ) -> None:
        """Store each validated event of ``batch`` with its flags (or connect a stored
        outlier). One loop over the batch (no call per event: most are messages).

        Everything below only adds to dicts and sets: it cannot fail half-way on valid input.

        Complexity: O(prev_events + auth_events) dictionary steps per event, plus the chain
        cover index's upkeep for a state event (or one an unindexed event waits for).
        """
        flagged = bool(outliers or rejected or soft_failed)
        outlier_set = frozenset(outliers)
        rejected_map = dict(rejected or {})
        soft_set = frozenset(soft_failed)
        facts = self._facts
        rooms = self._rooms
        stored = self._events
        all_children = self._children
        chain_index = self._chain_index
        awaited = chain_index.awaited
        outlier = soft = False
        rejection: str | None = None
        next_arrival = self._next_arrival
        for event in batch:
            event_id = event.event_id
            if flagged:
                outlier = event_id in outlier_set
                rejection = rejected_map.get(event_id)
                soft = event_id in soft_set
            old = facts.get(event_id)
            if old is not None and (outlier or not old[_OUTLIER]):
                continue  # already stored, and not being connected: a no-op
            room_id = event.room_id
            room = rooms.get(room_id)
            if room is None:
                room = rooms[room_id] = _RoomData(event.room_version)
            state_key = event.state_key
            key = None if state_key is None else (event.type, state_key)  # event.state_tuple
            if old is None:
                arrival = next_arrival
                next_arrival += 1
                room.event_count += 1
                stored[event_id] = event
                if key is not None:
                    room.state_keys.add(key)
            else:
                arrival = old[_ARRIVAL]
                # The facts change (the outlier is connected): drop the ones built (rule 8).
                self._built_facts.drop(event_id)
            prevs = event.prev_event_ids
            depth = event.depth
            facts[event_id] = (  # the fields of EventFacts (rule 8)
                event_id,
                room_id,
                depth,
                prevs,
                event.auth_event_ids,
                key is not None,
                outlier,
                rejection,
                soft,
                arrival,
            )
            if outlier or rejection is not None:
                self._flagged.add(event_id)  # rule 9
            elif old is not None:
                self._flagged.discard(event_id)  # an outlier connected, not rejected
            if old is None and (key is not None or event_id in awaited):
                # (else the index would do nothing: see ChainCoverIndex.add_fields)
                chain_index.add_fields(event_id, room_id, key, event.auth_event_ids, depth)
            if outlier:
                continue
            # A non-outlier joins the DAG: edges, then extremities (rule 3).
            backward = room.backward
            backward.pop(event_id, None)
            mine = all_children.get(event_id)
            if mine is not None:
                for child in _ids(mine):
                    # A child in another room listed this event as a backward extremity of
                    # its room.
                    rooms[facts[child][_ROOM]].backward.pop(event_id, None)
            for prev in prevs:
                theirs = all_children.get(prev)
                if theirs is None:
                    all_children[prev] = event_id  # the first child (rule 7)
                elif isinstance(theirs, str):
                    if theirs != event_id:
                        all_children[prev] = {theirs, event_id}
                else:
                    theirs.add(event_id)
                prev_facts = facts.get(prev)
                if prev_facts is None or prev_facts[_OUTLIER]:
                    known = backward.get(prev)
                    if known is None or depth < known:
                        backward[prev] = depth
            if rejection is None and not soft:
                forward = room.forward
                forward.difference_update(prevs)
                if event_id in prevs:
                    mine = all_children.get(event_id)  # (an event naming itself: its child)
                if mine is None or not any(self._is_accepted(c, room_id) for c in _ids(mine)):
                    forward.add(event_id)
        self._next_arrival = next_arrival

    def _validate(
        self,
        events: Iterable[Event],
        outliers: Collection[str],
        rejected: Mapping[str, str],
        soft_failed: Collection[str],
    ) -> list[Event]:
        def stored_version(room_id: str) -> RoomVersion | None:
            room = self._rooms.get(room_id)
            return None if room is None else room.version

        batch, _ = check_batch(
            events,
            outliers,
            rejected,
            soft_failed,
            stored_event=self._events.get,
            stored_version=stored_version,
        )
        return batch

    def _is_accepted(self, event_id: str, room_id: str | None = None) -> bool:
        # With ``room_id``: also of that room (a child in another room does not count: rule 3).
        f = self._facts.get(event_id)
        return (
            f is not None
            and not f[_OUTLIER]
            and f[_REJECTED] is None
            and not f[_SOFT_FAILED]
            and (room_id is None or f[_ROOM] == room_id)
        )

    # -- StateGroupReader / StateGroupWriter ----------------------------------------------------

    def get_event_state_groups(
        self, event_ids: Collection[str], /
    ) -> Mapping[str, EventStateGroups]:
        return self._state_groups.get_event_state_groups(event_ids)

    def get_state(
        self, group_ids: Collection[int], /, keys: Collection[StateKey] | None = None
    ) -> Mapping[int, Mapping[StateKey, str]]:
        return self._state_groups.get_state(group_ids, keys)

    def get_resolutions(
        self, input_sets: Collection[frozenset[int]], /
    ) -> Mapping[frozenset[int], int]:
        return self._state_groups.get_resolutions(input_sets)

    def get_parked_children(self, event_ids: Collection[str], /) -> Mapping[str, tuple[str, ...]]:
        return self._state_groups.get_parked_children(event_ids)

    def get_changed_keys(self, first: int, second: int, /) -> Collection[StateKey] | None:
        return self._state_groups.get_changed_keys(first, second)

    def get_present_state_keys(
        self, room_id: str, keys: Collection[StateKey], /
    ) -> Collection[StateKey]:
        room = self._rooms.get(room_id)
        if room is None:
            return set()
        present = room.state_keys
        return {k for k in keys if k in present}

    def state_group_stats(self) -> StateGroupStats:
        """Counts of the stored state groups (see :class:`StateGroupStats`)."""
        return self._state_groups.stats()

    def add_events_with_state(
        self,
        events: Iterable[Event],
        /,
        *,
        outliers: Collection[str] = (),
        rejected: Mapping[str, str] | None = None,
        soft_failed: Collection[str] = (),
        state: StateWrite,
    ) -> Mapping[int, int]:
        """Store ``events`` and ``state`` atomically (see
        :class:`eventgraph.protocols.StateGroupWriter`).

        Complexity: O(edges of the batch + entries written); compactions and snapshots copy at
        most one state (see :mod:`eventgraph.stores.memory_state`).

        Raises:
            StoreError: the batch or the state write is inconsistent; the store is unchanged.
        """
        batch = self._validate(events, outliers, rejected or {}, soft_failed)
        outlier_set = frozenset(outliers)
        by_id: dict[str, Event] = dict(zip(map(_EVENT_ID, batch), batch, strict=True))
        # The non-outliers of the batch: connected once written (``connected`` says so too).
        connected_ids = by_id.keys() - outlier_set if outlier_set else by_id

        def connected(event_id: str) -> bool:
            if event_id in by_id:
                return event_id not in outlier_set or self._stored_connected(event_id)
            return self._stored_connected(event_id)

        def parkable(event_id: str) -> tuple[str, ...] | None:
            event = by_id.get(event_id)
            if event is None or event_id not in outlier_set:
                return None
            return event.prev_event_ids

        # Validate and plan everything first; then write, which cannot fail half-way.
        plan = self._state_groups.prepare(
            state, connected=connected, parkable=parkable, connected_ids=connected_ids
        )
        self._write(batch, outliers, rejected, soft_failed)
        return self._state_groups.apply(plan, prev_events=lambda i: by_id[i].prev_event_ids)

    def _stored_connected(self, event_id: str) -> bool:
        facts = self._facts.get(event_id)
        return facts is not None and not facts[_OUTLIER]

    # -- invariants ---------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Recompute every derived index from the stored events and compare.

        Complexity: O(size of the store): for tests, never for serving.

        Raises:
            StoreError: an index disagrees with the events (a bug in the store).
        """
        self._state_groups.check_invariants()
        children: dict[str, set[str]] = {}
        forward: dict[str, set[str]] = {r: set() for r in self._rooms}
        backward: dict[str, dict[str, int]] = {r: {} for r in self._rooms}
        counts: dict[str, int] = dict.fromkeys(self._rooms, 0)
        state_keys: dict[str, set[StateKey]] = {r: set() for r in self._rooms}
        for event_id, event in self._events.items():
            f = EventFacts(*self._facts[event_id])
            if f.event_id != event_id or f.room_id != event.room_id:
                raise StoreError(f"facts of {event_id} disagree with the event")
            counts[event.room_id] += 1
            if event.state_tuple is not None:
                state_keys[event.room_id].add(event.state_tuple)
            if f.outlier:
                continue
            for prev in event.prev_event_ids:
                children.setdefault(prev, set()).add(event_id)
                pf = self._facts.get(prev)
                if pf is None or pf[_OUTLIER]:
                    bw = backward[event.room_id]
                    bw[prev] = min(bw.get(prev, event.depth), event.depth)
        for event_id in self._events:
            room_id = self._events[event_id].room_id
            if self._is_accepted(event_id) and not any(
                self._is_accepted(c, room_id) for c in children.get(event_id, ())
            ):
                forward[self._events[event_id].room_id].add(event_id)
        flagged = {e for e, f in self._facts.items() if f[_OUTLIER] or f[_REJECTED] is not None}
        if flagged != self._flagged:
            raise StoreError("the set of outliers and rejected events disagrees with the facts")
        stored = {k: set(_ids(v)) for k, v in self._children.items()}
        if children != {k: v for k, v in stored.items() if v}:
            raise StoreError("the children index disagrees with the events")
        for room_id, room in self._rooms.items():
            if room.forward != forward[room_id]:
                raise StoreError(f"forward extremities of {room_id} disagree with the events")
            if room.backward != backward[room_id]:
                raise StoreError(f"backward extremities of {room_id} disagree with the events")
            if room.event_count != counts[room_id]:
                raise StoreError(f"the event count of {room_id} disagrees with the events")
            if room.state_keys != state_keys[room_id]:
                raise StoreError(f"the state keys of {room_id} disagree with the events")
        self._chain_index.check()


def _ids(children: str | set[str]) -> Collection[str]:
    """The child IDs of one ``_children`` entry: one ID, or a set from the second (rule 7)."""
    return (children,) if type(children) is str else children
