"""Layer 2: the storage contracts every algorithm talks to.

Rules of this module:

1. Every read is batch-shaped: it takes a collection of IDs and returns a mapping. An ID the store
   does not know is simply absent from the mapping (never ``None``). Algorithms advance a whole
   frontier per call, so a SQL store answers a walk in O(depth) round trips.
2. Algorithms import this module and the model, never a store module. Any object with these
   methods is a store (structural typing): a server can wrap its own database.
3. Writes are atomic: a write that raises :class:`~eventgraph.StoreError` (or any
   :class:`~eventgraph.EventGraphError`) changed nothing.
4. Results never depend on the order events were written in, except the ``arrival`` number, which
   is store-local and only ever used as information, never as a tie-break of an answer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import NamedTuple, Protocol, runtime_checkable

import attrs

from .events.event import Event
from .events.room_versions import RoomVersion

__all__ = [
    "ChainIndexDepthReader",
    "ChainIndexReader",
    "ChainIndexReverseReader",
    "ChainLink",
    "ChainPosition",
    "ChainReverseLink",
    "EventFacts",
    "EventReader",
    "EventStore",
    "EventWriter",
    "FlaggedEventsReader",
    "GraphReader",
]


@attrs.frozen
class EventFacts:
    """What the walks need to know about a stored event, without loading the event itself.

    Attributes:
        event_id: the event's ID.
        room_id: the room the event belongs to (walks never leave it).
        depth: the sender-asserted depth.
        prev_event_ids: the event's ``prev_events``.
        auth_event_ids: the event's ``auth_events`` (with the implied create event in RV 12).
        is_state: whether the event is a state event.
        outlier: the event's place in the DAG is unknown (its state was never computed): it was
            fetched as an auth event or state event, or its prev events were missing. Walks
            over ``prev_events`` never enter outliers.
        rejected: the reason the event was rejected by the auth rules, or ``None``.
        soft_failed: the event passed auth but failed against the current state.
        arrival: a store-local number, increasing in the order events were first stored.
    """

    event_id: str
    room_id: str
    depth: int
    prev_event_ids: tuple[str, ...]
    auth_event_ids: tuple[str, ...]
    is_state: bool
    outlier: bool
    rejected: str | None
    soft_failed: bool
    arrival: int


@runtime_checkable
class EventReader(Protocol):
    """Reads events and their graph facts, a batch at a time."""

    def get_events(self, event_ids: Collection[str], /) -> Mapping[str, Event]:
        """The stored events among ``event_ids`` (unknown IDs are absent)."""
        ...

    def get_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        """The graph facts of the stored events among ``event_ids`` (unknown IDs are absent)."""
        ...


@runtime_checkable
class FlaggedEventsReader(Protocol):
    """Tells which of some stored events are outliers or rejected (optional, on top of
    :class:`EventReader`).

    Most stored events are neither. A caller that needs only those two flags of many events
    — the ingest pipeline asks them of every auth event a batch names, to apply the auth rule
    about rejected auth events — reads them here without a :class:`EventFacts` for each of
    the others: an ID absent from the answer is either not stored (:meth:`EventReader.get_events`
    tells) or stored, connected and not rejected.
    """

    def get_flagged_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        """The facts of the stored events among ``event_ids`` that are outliers or rejected
        (or both), as :meth:`EventReader.get_facts` gives them; unknown IDs are omitted."""
        ...


@runtime_checkable
class GraphReader(Protocol):
    """Reads the shape of each room's DAG: children and extremities."""

    def get_children(self, event_ids: Collection[str], /) -> Mapping[str, tuple[str, ...]]:
        """For each ID, the non-outlier stored events listing it in ``prev_events``, sorted.

        IDs with no such child are absent. The ID itself need not be stored.
        """
        ...

    def forward_extremities(self, room_id: str, /) -> tuple[str, ...]:
        """The room's forward extremities, sorted: stored events with no stored children that
        are not outliers, rejected or soft-failed (server-server API "PDUs")."""
        ...

    def backward_extremities(self, room_id: str, /) -> Mapping[str, int]:
        """The room's backward extremities: IDs listed in the ``prev_events`` of stored
        non-outlier events that are not stored as non-outliers themselves, each with the
        smallest depth among those children (the nearest known point in the DAG)."""
        ...

    def room_version_of(self, room_id: str, /) -> RoomVersion | None:
        """The room's version, if the store holds events of that room."""
        ...


@runtime_checkable
class EventWriter(Protocol):
    """Writes events as a raw graph (no auth, no state): for tests, tools and the pipeline."""

    def add_events(
        self,
        events: Iterable[Event],
        /,
        *,
        outliers: Collection[str] = (),
        rejected: Mapping[str, str] | None = None,
        soft_failed: Collection[str] = (),
    ) -> None:
        """Store ``events`` atomically, with the given flags by event ID.

        Storing an event that is already stored is a no-op, except that an outlier stored again
        as a non-outlier is connected into the DAG (de-outliered).

        Raises:
            StoreError: the batch is inconsistent (a non-event, a room with two room versions,
                a different event under a stored ID, flags naming events not in the batch). The
                store is unchanged.
        """
        ...


@runtime_checkable
class EventStore(EventReader, GraphReader, Protocol):
    """Everything the read-only algorithms need."""


class ChainPosition(NamedTuple):
    """Where a state event sits in the chain cover index of the auth DAG.

    A *chain* is a path of the auth graph: the event at sequence n has the one at n - 1 in its
    auth chain. Sequences start at 1 and have no holes.

    Attributes:
        chain_id: the chain (a store-local number).
        sequence: the event's position on its chain.

    Why a ``NamedTuple`` and not an attrs class like the other value types: the chain index
    makes, hashes, compares and unpacks these on every write and every indexed read (hot
    path). A tuple does all four at C speed; an ``attrs`` ``order=True`` class compares by
    building tuples in Python (~1 µs a comparison: the sorted inserts of reverse links alone
    were nearly a fifth of ``Room.add``'s time on a 10^5-member room). With tuples (and fewer
    probes) the index upkeep is 3-5x cheaper (benchmarks/results/chain_cover.txt). Same field
    names, order and repr as before; immutable. Being a tuple, it equals (and unpacks like) the
    plain tuple ``(chain_id, sequence)``, and any other tuple of the same numbers.
    """

    chain_id: int
    sequence: int


class ChainLink(NamedTuple):
    """An edge of the chain cover index, stored with its origin chain.

    The event at ``origin_sequence`` of the origin chain has the event at
    ``(target_chain_id, target_sequence)`` in its auth chain; so does every later event of the
    origin chain, and so is every earlier event of the target chain.

    A ``NamedTuple`` for speed, as :class:`ChainPosition` (sorted and compared at C speed):
    equal to the plain tuple ``(origin_sequence, target_chain_id, target_sequence)``.
    """

    origin_sequence: int
    target_chain_id: int
    target_sequence: int


@runtime_checkable
class ChainIndexReader(Protocol):
    """Reads the chain cover index of the auth DAG (optional: the auth-chain algorithms use it
    when a store offers it and walk ``auth_events`` otherwise).

    The contract, which every store offering it keeps:

    1. Only state events are indexed; an event is indexed exactly when every ``auth_events``
       entry that is stored in the same room is indexed, and no entry is unknown. (Entries
       stored in another room are not edges: the auth rules reject them.) So an indexed event's
       auth chain holds only indexed events, and events wait unindexed while an auth event is
       missing; a forged cycle is never indexed.
    2. E is in the auth chain of an indexed F exactly when E and F share a chain and E's
       sequence is smaller, or a path of links leads from F's chain, starting at a link whose
       origin sequence is at most F's, to E's chain at a target sequence at least E's.
    3. The numbering is store-local and depends on insertion order; answers computed from it
       never do.
    """

    def get_chain_positions(self, event_ids: Collection[str], /) -> Mapping[str, ChainPosition]:
        """The positions of the indexed events among ``event_ids`` (others are absent)."""
        ...

    def get_chain_links(self, chain_ids: Collection[int], /) -> Mapping[int, tuple[ChainLink, ...]]:
        """For each chain, the links leaving it, sorted by origin sequence (chains without
        links are absent)."""
        ...

    def get_chain_members(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[str, ...]]:
        """For each ``chain_id: (low, high)``, the IDs of its events with ``low < sequence <=
        high``, in sequence order (chains with none are absent)."""
        ...


class ChainReverseLink(NamedTuple):
    """A :class:`ChainLink` seen from its target chain (the same edge, read backwards).

    The event at ``(origin_chain_id, origin_sequence)`` has the event at ``target_sequence`` of
    the target chain in its auth chain (see :class:`ChainLink`).

    A ``NamedTuple`` for speed, as :class:`ChainPosition` (kept sorted by ``insort`` on every
    link the index makes): equal to the plain tuple
    ``(target_sequence, origin_chain_id, origin_sequence)``.
    """

    target_sequence: int
    origin_chain_id: int
    origin_sequence: int


@runtime_checkable
class ChainIndexReverseReader(ChainIndexReader, Protocol):
    """Reads the chain cover index backwards (optional, on top of :class:`ChainIndexReader`).

    With it, :func:`~eventgraph.graph.auth_chain.auth_chain_difference` of state sets that share
    most events costs in proportion to where they differ: it asks whether an event is below the
    shared events by walking *up* from the event (reverse links) until it meets a shared event,
    instead of walking down from every shared event.
    """

    def get_chain_reverse_links(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[ChainReverseLink, ...]]:
        """For each ``chain_id: (low, high)``, the links *into* that chain with ``low <
        target_sequence <= high``, sorted (chains with none are absent)."""
        ...

    def get_unindexed(self, event_ids: Collection[str], /) -> Collection[str]:
        """The stored events among ``event_ids`` that the index does not hold (events that are
        not state events, or wait for an auth event: contract rule 1 of
        :class:`ChainIndexReader`). Unknown IDs are left out."""
        ...


@runtime_checkable
class ChainIndexDepthReader(ChainIndexReader, Protocol):
    """Says whether rooms' depths agree with their auth DAG (optional, on top of
    :class:`ChainIndexReader`).

    ``depth`` is a sender's claim, not checked on receipt, so a walk may take the events of the
    auth DAG a depth at a time (every event after the events it is an auth event of) only in a
    room where no indexed event has a depth at or below one of its same-room auth events'.
    With it, :func:`~eventgraph.graph.auth_chain.auth_chain_difference_split` of a small fork
    walks down from both sides at once and stops where they meet.
    """

    def auth_depths_descend(self, room_ids: Collection[str], /) -> bool:
        """``True`` only if, in each of these rooms, every event the index holds has a greater
        depth than each of its auth events stored in the same room. A store may always answer
        ``False`` (the walks then take another way)."""
        ...

    def greatest_depth(self, event_ids: Collection[str], /) -> int | None:
        """The greatest ``depth`` among the stored events of ``event_ids`` (outliers
        included), ``None`` if none is stored; unknown IDs are ignored.

        The colouring walk needs no more of the events every side holds until it comes down
        to them (most forks meet above them): one number instead of their facts.
        """
        ...


# -- state groups (the state at events, stored as snapshots and deltas) --------------------------

#: A key of the room state, ``(event type, state key)`` (the model's ``StateKey``).
_StateKey = tuple[str, str]


@attrs.frozen
class EventStateGroups:
    """The state groups of a non-outlier event: the state before it and the state after it.

    For a non-state event, and for a rejected one, ``after == before`` (spec: server-server API
    "Room State Resolution" and "Rejection"; digest §7.1).
    """

    before: int
    after: int


@attrs.frozen
class StateGroupDraft:
    """A state group to create in a write: ``changes`` applied to the state of ``prev_group``.

    Attributes:
        group_id: a negative number naming the draft inside one write (the store assigns the
            stored ID and returns the mapping).
        room_id: the room the state belongs to.
        prev_group: the group whose state this one changes (a stored group, or an earlier draft
            of the same write), or ``None`` to start from the empty state.
        changes: the new event ID of each changed key; ``None`` removes the key.
    """

    group_id: int
    room_id: str
    prev_group: int | None
    changes: Mapping[_StateKey, str | None]


@attrs.frozen
class StateWrite:
    """The state part of an atomic write (see :class:`StateGroupWriter`).

    Attributes:
        groups: new groups, each after the drafts it builds on.
        event_groups: the groups of events being connected (stored or draft group IDs).
        resolutions: cache entries ``frozenset(input groups) -> resolved group``.
        parked: events of the write stored as outliers because some ``prev_events`` have no
            known state; they are listed by :meth:`StateGroupReader.get_parked_children`.
        unparked: previously parked events no longer waiting (connected, or given up).
    """

    groups: tuple[StateGroupDraft, ...] = ()
    event_groups: Mapping[str, EventStateGroups] = attrs.field(factory=dict)
    resolutions: Mapping[frozenset[int], int] = attrs.field(factory=dict)
    parked: frozenset[str] = frozenset()
    unparked: frozenset[str] = frozenset()


@runtime_checkable
class StateGroupReader(Protocol):
    """Reads the state at events: state groups, each a snapshot or a delta on another group.

    Group IDs are store-local numbers; answers computed from them never depend on them.
    """

    def get_event_state_groups(
        self, event_ids: Collection[str], /
    ) -> Mapping[str, EventStateGroups]:
        """The state groups of the connected (non-outlier) events among ``event_ids``."""
        ...

    def get_state(
        self, group_ids: Collection[int], /, keys: Collection[_StateKey] | None = None
    ) -> Mapping[int, Mapping[_StateKey, str]]:
        """The full state of each known group (only ``keys``, when given); unknown groups are
        absent. Each mapping is a fresh ``dict`` the caller may keep."""
        ...

    def get_resolutions(
        self, input_sets: Collection[frozenset[int]], /
    ) -> Mapping[frozenset[int], int]:
        """The cached resolved group of each known set of input groups."""
        ...

    def get_parked_children(self, event_ids: Collection[str], /) -> Mapping[str, tuple[str, ...]]:
        """For each ID, the parked outliers listing it in ``prev_events``, sorted (IDs with none
        are absent)."""
        ...


@runtime_checkable
class StateGroupChangesReader(Protocol):
    """Tells where two state groups can differ (optional, on top of :class:`StateGroupReader`).

    With it, the ingest pipeline turns a state resolution into a delta on its closest input by
    looking only at the keys that can differ, instead of comparing whole states.
    """

    def get_changed_keys(self, first: int, second: int, /) -> Collection[_StateKey] | None:
        """A superset of the keys at which the states of two stored groups differ, costing far
        less than the states (for instance: the keys changed since their closest common
        ancestor); ``None`` when the store cannot tell cheaply or a group is unknown."""
        ...


@runtime_checkable
class StateKeyPresenceReader(Protocol):
    """Tells which state keys a room has any stored event for (optional, on top of
    :class:`StateGroupReader`).

    With it, the ingest pipeline knows the current state at a key that no forward extremity's
    state has, without resolving, when the room has no event for that key at all (a newcomer's
    ``m.room.member`` key): a state resolution can only bring a key in through an event of its
    inputs' auth chains, and those are stored events of the room.
    """

    def get_present_state_keys(
        self, room_id: str, keys: Collection[_StateKey], /
    ) -> Collection[_StateKey]:
        """The keys among ``keys`` for which ``room_id`` has at least one stored state event,
        whatever its flags (outlier, rejected or soft-failed events count: a resolution may
        re-admit a rejected event)."""
        ...


@runtime_checkable
class StateGroupWriter(Protocol):
    """Writes events together with their state groups, in one atomic step."""

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
        """Store ``events`` as :meth:`EventWriter.add_events` does and ``state`` with them.

        Returns:
            The stored group ID of every draft group of ``state``.

        Raises:
            StoreError: the events or the state write are inconsistent (a draft on an unknown
                group or one of another room, groups for an outlier or unknown event, a
                non-negative draft ID, ...). The store is unchanged.
        """
        ...


@runtime_checkable
class StateStore(EventStore, StateGroupReader, Protocol):
    """Everything the state-at-event algorithms read."""


@runtime_checkable
class RoomStore(StateStore, EventWriter, StateGroupWriter, Protocol):
    """Everything the ingest pipeline needs."""


__all__ += [
    "EventStateGroups",
    "RoomStore",
    "StateGroupChangesReader",
    "StateGroupDraft",
    "StateGroupReader",
    "StateGroupWriter",
    "StateKeyPresenceReader",
    "StateStore",
    "StateWrite",
]


#: :func:`_provides`' answers, per (store class, protocol).
_PROVIDES: dict[tuple[type, type], bool] = {}


def _provides(store: object, protocol: type) -> bool:
    """``isinstance(store, protocol)`` for a runtime-checkable protocol of this module, decided
    once per store class: a runtime protocol check costs tens of microseconds (one
    ``hasattr`` per member), as much as a small query's own work, and algorithms ask it per
    call. A class with ``__getattr__`` (a proxy, which may wrap stores offering different
    reads) is asked every time; the memo is bounded.
    """
    kind = type(store)
    key = (kind, protocol)
    got = _PROVIDES.get(key)
    if got is None:
        got = isinstance(store, protocol)
        if len(_PROVIDES) < 1024 and not hasattr(kind, "__getattr__"):
            _PROVIDES[key] = got
    return got
