"""The state of a room at any event, and its current state.

Rules of this module (spec: server-server API "Room State Resolution"; digest §7.1):

1. S(E), the state *before* E, is the resolution of {S'(P) : P in E's ``prev_events``}; S'(E),
   the state *after* E, is S(E) with E's ``(type, state_key)`` set to E for an accepted (or
   soft-failed) state event, and S(E) otherwise. "Rejected" state events do not update the
   state (server-server API "Rejection").
2. The ingest pipeline (:mod:`eventgraph.room`) computes both once per event and stores them as
   state groups; this module only reads them through
   :class:`~eventgraph.protocols.StateGroupReader`, so a lookup costs O(size of the answer) plus a
   bounded delta chain and never walks the DAG.
3. An outlier has no known state: asking for it raises :class:`~eventgraph.EventNotFoundError`
   (HTTP 404, ``M_NOT_FOUND``, as ``/state_ids`` answers "the server doesn't know about the state
   at that event"), as does an unknown event.
4. The current state is the resolution of the states after the room's forward extremities
   (server-server API "Soft failure": "the resolved state across all forward extremities").
   Resolutions are looked up in the store's cache, keyed by the set of input groups, before
   being computed; reading never writes.
"""

from __future__ import annotations

from collections.abc import Collection

from ..errors import EventNotFoundError
from ..events.event import StateKey
from ..events.room_versions import RoomVersion
from ..protocols import EventStateGroups, StateStore
from .resolution import resolve_state

__all__ = [
    "current_state_ids",
    "resolve_state_groups",
    "state_id_after",
    "state_id_before",
    "state_ids_after",
    "state_ids_before",
]


def _groups_of(store: StateStore, event_id: str) -> EventStateGroups:
    groups = store.get_event_state_groups((event_id,)).get(event_id)
    if groups is None:
        facts = store.get_facts((event_id,)).get(event_id)
        if facts is None:
            raise EventNotFoundError(f"event {event_id} is not in the store")
        msg = f"the state at {event_id} is not known (it is an outlier)"
        raise EventNotFoundError(msg)
    return groups


def _state_of_group(store: StateStore, group: int) -> dict[StateKey, str]:
    state = store.get_state((group,)).get(group)
    if state is None:
        raise EventNotFoundError(f"state group {group} is not in the store")
    return dict(state)


def state_ids_before(store: StateStore, event_id: str) -> dict[StateKey, str]:
    """The state before an event, S(E): ``(type, state_key) -> event ID``.

    Args:
        store: a store with state groups.
        event_id: a connected (non-outlier) event.

    Returns:
        A fresh dict the caller owns.

    Raises:
        EventNotFoundError: the event is unknown, or an outlier (its state is not known).

    Spec: server-server API "Room State Resolution" (digest §7.1); this is what ``/state_ids``
    returns (digest §3.2).

    Complexity: O(size of the state) plus at most ``MAX_DELTA_HOPS`` deltas; 2 store round
    trips.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> for key in sorted(state_ids_before(store, ids["topic"])):
        ...     print(key)
        ('m.room.create', '')
        ('m.room.join_rules', '')
        ('m.room.member', '@alice:a.example')
        ('m.room.power_levels', '')
    """
    return _state_of_group(store, _groups_of(store, event_id).before)


def state_ids_after(store: StateStore, event_id: str) -> dict[StateKey, str]:
    """The state after an event, S'(E) (rule 1).

    Raises:
        EventNotFoundError: the event is unknown, or an outlier.

    Spec: server-server API "Room State Resolution" (digest §7.1).

    Complexity: as :func:`state_ids_before`.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> state_ids_after(store, ids["topic"])[("m.room.topic", "")] == ids["topic"]
        True
    """
    return _state_of_group(store, _groups_of(store, event_id).after)


def state_id_before(store: StateStore, event_id: str, key: StateKey) -> str | None:
    """One entry of the state before an event: the event ID at ``key``, or ``None``.

    Raises:
        EventNotFoundError: the event is unknown, or an outlier.

    Spec: server-server API "Room State Resolution" (digest §7.1).

    Complexity: at most ``MAX_DELTA_HOPS + 2`` dict lookups at any depth; 2 store round trips.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> state_id_before(store, ids["topic"], ("m.room.topic", "")) is None
        True
        >>> state_id_before(store, ids["message"], ("m.room.topic", "")) == ids["topic"]
        True
    """
    group = _groups_of(store, event_id).before
    return store.get_state((group,), (key,)).get(group, {}).get(key)


def state_id_after(store: StateStore, event_id: str, key: StateKey) -> str | None:
    """One entry of the state after an event (rule 1).

    Raises:
        EventNotFoundError: the event is unknown, or an outlier.

    Spec: server-server API "Room State Resolution" (digest §7.1).

    Complexity: as :func:`state_id_before`.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> state_id_after(store, ids["topic"], ("m.room.topic", "")) == ids["topic"]
        True
    """
    group = _groups_of(store, event_id).after
    return store.get_state((group,), (key,)).get(group, {}).get(key)


def resolve_state_groups(
    store: StateStore, version: RoomVersion, group_ids: Collection[int]
) -> tuple[dict[StateKey, str], int | None]:
    """Resolve the states of several groups, using the store's cache of resolutions.

    Args:
        store: a store with state groups.
        version: the room's version (chooses the resolution algorithm).
        group_ids: the input groups (duplicates are ignored).

    Returns:
        The resolved state, and the cached group holding it (``None`` when it was computed
        now, or when no resolution was needed and there is no input).

    Raises:
        EventNotFoundError: an input group, or an event of its state, is not stored.

    Spec: server-server API "Room State Resolution"; the algorithm of the room version
    (digest §7.2–7.4).

    Complexity: one cache lookup; on a miss, loading every input state in full and one state
    resolution.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> g = store.get_event_state_groups([ids["topic"]])[ids["topic"]]
        >>> state, group = resolve_state_groups(store, store.room_version_of(
        ...     "!room:a.example"), [g.after])
        >>> group == g.after and state[("m.room.topic", "")] == ids["topic"]
        True
    """
    distinct = frozenset(group_ids)
    if not distinct:
        return {}, None
    if len(distinct) == 1:
        (only,) = distinct
        return _state_of_group(store, only), only
    cached = store.get_resolutions((distinct,)).get(distinct)
    if cached is not None:
        return _state_of_group(store, cached), cached
    ordered = sorted(distinct)
    states = store.get_state(ordered)
    missing = [g for g in ordered if g not in states]
    if missing:
        raise EventNotFoundError(f"state groups {missing} are not in the store")
    # The store's states: their writes were checked (``check_state_write``), so they are
    # trusted (no second type check of every entry).
    return resolve_state(version, [states[g] for g in ordered], store, trusted=True), None


def current_state_ids(store: StateStore, room_id: str) -> dict[StateKey, str]:
    """The room's current state: the resolution of the states after its forward extremities.

    Args:
        store: a store with state groups.
        room_id: the room.

    Returns:
        A fresh dict; empty for a room the store does not hold.

    Spec: server-server API "Soft failure" ("the current state of the room ... the resolved
    state across all forward extremities"), "Room State Resolution" (digest §7.1, §8.3).

    Complexity: one state copy when every extremity shares a state group or the resolution is
    cached; otherwise one state resolution over the extremities' states.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> current_state_ids(store, "!room:a.example")[("m.room.topic", "")] == ids["topic"]
        True
        >>> current_state_ids(store, "!elsewhere:a.example")
        {}
    """
    version = store.room_version_of(room_id)
    if version is None:
        return {}
    extremities = store.forward_extremities(room_id)
    groups = store.get_event_state_groups(extremities)
    state, _ = resolve_state_groups(store, version, [groups[e].after for e in sorted(groups)])
    return state
