"""The walks over ``prev_events``: ``/backfill`` and ``/get_missing_events``.

Rules of this module (each answers a question the spec leaves open; see ``docs/walks.md``):

1. **Room-scoped.** A walk starts from, and enters, only stored events of the requested room.
   Unknown IDs and IDs of other rooms are skipped silently (sytest "Backfill checks the events
   requested belong to the room": an event of another room gives an empty answer).
2. **Outliers are never entered nor started from**: their place in the DAG, and so the state
   a visibility check needs, is unknown (Synapse, ``_get_backfill_events``; digest §8.4).
3. **Rejected events are walked through but never returned.** Their ``prev_events`` are still
   history; the walk counts them against ``limit`` (so the work stays bounded by ``limit``) and
   drops them from the answer, as Synapse does. Soft-failed events are returned when the walk
   reaches them: the walk only reaches an event that a returned or requested event references,
   which is what the spec allows (server-server API "Soft failure", note).
4. **Deterministic.** Every choice is made by ``(depth, event_id)``, never by set or dict
   iteration or by the order events were stored; the answer is a function of the DAG.
5. **Bounded.** The work is bounded by ``limit`` (capped by ``max_limit``), never by the room's
   size; cycles (forgeable with room version 1–2 IDs) terminate, each event being visited once;
   nothing recurses. Store calls are batched a frontier at a time: O(depth of the walk) round
   trips, not O(events returned).
6. **Bad input.** A negative ``limit``, a non-integer ``limit``/``min_depth``, or IDs that are
   not a collection of strings raise :class:`~eventgraph.InvalidRequestError` (``M_INVALID_PARAM``,
   400) before the store is touched. ``limit=0`` and empty ID lists give ``[]``. Duplicate IDs
   count once. A ``limit`` above ``max_limit`` is lowered to it.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection

from ..errors import InvalidRequestError
from ..events.event import Event
from ..protocols import EventFacts, EventReader

__all__ = [
    "BACKFILL_MAX_LIMIT",
    "MISSING_EVENTS_MAX_LIMIT",
    "backfill",
    "missing_events",
]

#: Synapse's cap on ``/backfill`` ("Synapse asks for 100 events per backfill request").
BACKFILL_MAX_LIMIT = 100
#: Synapse's cap on ``/get_missing_events`` (Rust servers use 50).
MISSING_EVENTS_MAX_LIMIT = 20


def _check_int(value: object, name: str, *, minimum: int | None) -> int:
    if type(value) is not int:
        msg = f"'{name}' must be an integer, not {type(value).__name__}"
        raise InvalidRequestError(msg)
    if minimum is not None and value < minimum:
        msg = f"'{name}' must be at least {minimum}, not {value}"
        raise InvalidRequestError(msg)
    return value


def _check_ids(value: object, name: str) -> list[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Collection):
        msg = f"'{name}' must be a collection of event IDs"
        raise InvalidRequestError(msg)
    ids: set[str] = set()
    for item in value:
        if type(item) is not str:
            msg = f"'{name}' must hold strings, not {type(item).__name__}"
            raise InvalidRequestError(msg)
        ids.add(item)
    return sorted(ids)


def _walkable(facts: EventFacts | None, room_id: str) -> bool:
    # Rules 1 and 2: stored, of this room, and placed in the DAG.
    return facts is not None and facts.room_id == room_id and not facts.outlier


def _load(store: EventReader, facts: list[EventFacts]) -> list[Event]:
    """The events of ``facts`` (in that order), leaving out rejected events (rule 3)."""
    wanted = [f.event_id for f in facts if f.rejected is None]
    if not wanted:
        return []
    events = store.get_events(wanted)
    return [events[i] for i in wanted if i in events]


def backfill(
    store: EventReader,
    room_id: str,
    from_event_ids: Collection[str],
    limit: int,
    *,
    max_limit: int = BACKFILL_MAX_LIMIT,
) -> list[Event]:
    """The events a server answers ``/backfill`` with: ``from_event_ids`` and their history.

    The answer to the spec's old question "how the server handles divergent history. DFS? BFS?
    Anything weirder?" (digest §9): neither — a **best-first walk by depth**. A priority queue
    holds the events reached so far; the one with the highest ``depth`` is taken next (ties: the
    smaller event ID), added to the answer, and its ``prev_events`` join the queue. On a fork
    both branches are drained together, newest first, as Synapse does (with event ID replacing
    its server-local stream order, so every server gives the same answer). The answer is sorted
    **newest first**: depth descending, then event ID ascending; the requested events come first
    when they are the newest (sytest "Inbound federation can backfill events").

    Args:
        store: any event reader.
        room_id: the room to backfill; events of other rooms are never returned.
        from_event_ids: the ``v`` events to start from; they are included in the answer.
        limit: the most events to walk ("including the given events"); lowered to
            ``max_limit``.
        max_limit: the server's cap on ``limit`` (Synapse: 100).

    Returns:
        At most ``min(limit, max_limit)`` events, newest first. Shorter when the history runs
        out, or when rejected events were walked (they count but are left out; module rule 3).

    Raises:
        InvalidRequestError: ``limit`` or ``max_limit`` is negative or not an integer, or
            ``from_event_ids`` is not a collection of strings. The store is untouched.

    Spec: server-server API ``GET /_matrix/federation/v1/backfill/{roomId}`` and "Backfilling
    and retrieving missing events" (digest §1, §9); walk order and response order are not
    specified there: this follows Synapse and Dendrite (newest first by depth).

    Complexity: O(k log k) for k = ``min(limit, max_limit)`` events walked, plus the facts of
    their ``prev_events``; O(d) store round trips where d is the number of ``prev_events``
    levels the walk descends (a linear history gives d = k, a wide fork far fewer).

    Examples:
        >>> from eventgraph import MemoryStore
        >>> from eventgraph.testing import make_event
        >>> store = MemoryStore()
        >>> store.add_events([
        ...     make_event("$1", depth=1),
        ...     make_event("$2", prev=["$1"], depth=2),
        ...     make_event("$a", prev=["$2"], depth=3),   # a fork ...
        ...     make_event("$b", prev=["$2"], depth=3),
        ...     make_event("$m", prev=["$a", "$b"], depth=4),   # ... and its merge
        ... ])
        >>> [e.event_id for e in backfill(store, "!room:a.example", ["$m"], limit=4)]
        ['$m', '$a', '$b', '$2']
        >>> backfill(store, "!other:a.example", ["$m"], limit=4)
        []
    """
    limit = _check_int(limit, "limit", minimum=0)
    max_limit = _check_int(max_limit, "max_limit", minimum=0)
    seeds = _check_ids(from_event_ids, "from_event_ids")
    budget = min(limit, max_limit)
    if budget == 0 or not seeds:
        return []

    cache: dict[str, EventFacts | None] = {}
    got = store.get_facts(seeds)
    heap: list[tuple[int, str]] = []
    queued: set[str] = set()
    for event_id in seeds:
        facts = got.get(event_id)
        if _walkable(facts, room_id):
            assert facts is not None
            cache[event_id] = facts
            heap.append((-facts.depth, event_id))
            queued.add(event_id)
    heapq.heapify(heap)

    walked: list[EventFacts] = []
    while heap and len(walked) < budget:
        top = cache[heap[0][1]]
        assert top is not None
        if any(p not in cache for p in top.prev_event_ids):
            # Prefetch, in one round trip, the prev facts of every queued event that can still
            # be taken (the best `remaining` ones): one round trip per level of the walk.
            remaining = budget - len(walked)
            need: set[str] = set()
            for _, event_id in heapq.nsmallest(remaining, heap):
                f = cache[event_id]
                assert f is not None
                need.update(p for p in f.prev_event_ids if p not in cache)
            ordered = sorted(need)
            got = store.get_facts(ordered)
            for event_id in ordered:
                cache[event_id] = got.get(event_id)
        heapq.heappop(heap)
        walked.append(top)
        for prev in top.prev_event_ids:
            if prev in queued:
                continue
            pf = cache[prev]
            if _walkable(pf, room_id):
                assert pf is not None
                queued.add(prev)
                heapq.heappush(heap, (-pf.depth, prev))

    walked.sort(key=lambda f: (-f.depth, f.event_id))
    return _load(store, walked)


def missing_events(
    store: EventReader,
    room_id: str,
    earliest_event_ids: Collection[str],
    latest_event_ids: Collection[str],
    limit: int = 10,
    min_depth: int = 0,
    *,
    max_limit: int = MISSING_EVENTS_MAX_LIMIT,
) -> list[Event]:
    """The events a server answers ``/get_missing_events`` with: the gap before ``latest``.

    A breadth-first walk over ``prev_events`` (the spec's words), level by level from
    ``latest_event_ids``. ``earliest_event_ids`` is a stop set: those events are neither
    returned nor walked through. Events with ``depth < min_depth`` are neither returned nor
    walked through (the spec's parameter; Synapse ignores it). The ``latest_event_ids`` are not
    returned unless one of them is reached from another.

    Truncation is deterministic and keeps the nearest levels: when ``limit`` cuts a level, every
    kept event is at a BFS distance no greater than any dropped one, and within the cut level
    the newest are kept (depth descending, then event ID). The answer is **oldest first**: depth
    ascending, then event ID (Complement ``TestInboundCanReturnMissingEvents``).

    Args:
        store: any event reader.
        room_id: the room; events of other rooms are never returned nor walked.
        earliest_event_ids: events the requester already has (the stop set).
        latest_event_ids: the events whose missing history is wanted.
        limit: the most events to walk (default 10, the spec's); lowered to ``max_limit``.
        min_depth: the smallest depth an event may have to be returned or walked (default 0).
        max_limit: the server's cap on ``limit`` (Synapse: 20).

    Returns:
        At most ``min(limit, max_limit)`` events, oldest first (rejected events are walked and
        counted but left out; module rule 3).

    Raises:
        InvalidRequestError: a negative or non-integer ``limit``/``max_limit``, a non-integer
            ``min_depth``, or IDs that are not a collection of strings. The store is untouched.

    Spec: server-server API ``POST /_matrix/federation/v1/get_missing_events/{roomId}``
    ("a breadth-first walk of the ``prev_events`` for the ``latest_events``, ignoring any events
    in ``earliest_events`` and stopping at the ``limit``"; digest §2).

    Complexity: O(k log k) for k = ``min(limit, max_limit)``, plus the facts of the walked
    events' ``prev_events``; one store round trip per BFS level, plus two.

    Examples:
        >>> from eventgraph import MemoryStore
        >>> from eventgraph.testing import make_event
        >>> store = MemoryStore()
        >>> store.add_events([make_event("$1", depth=1)] + [
        ...     make_event(f"${n}", prev=[f"${n - 1}"], depth=n) for n in range(2, 8)])
        >>> gap = missing_events(store, "!room:a.example", ["$2"], ["$7"], limit=3)
        >>> [e.event_id for e in gap]
        ['$4', '$5', '$6']
        >>> [e.event_id for e in missing_events(store, "!room:a.example", ["$2"], ["$7"])]
        ['$3', '$4', '$5', '$6']
    """
    limit = _check_int(limit, "limit", minimum=0)
    max_limit = _check_int(max_limit, "max_limit", minimum=0)
    min_depth = _check_int(min_depth, "min_depth", minimum=None)
    earliest = _check_ids(earliest_event_ids, "earliest_event_ids")
    latest = _check_ids(latest_event_ids, "latest_event_ids")
    budget = min(limit, max_limit)
    if budget == 0 or not latest:
        return []

    seen: set[str] = set(earliest)
    got = store.get_facts([i for i in latest if i not in seen])
    level = [got[i] for i in latest if i in got and _walkable(got[i], room_id)]
    walked: list[EventFacts] = []
    while level and len(walked) < budget:
        need = sorted({p for f in level for p in f.prev_event_ids if p not in seen})
        if not need:
            break
        seen.update(need)
        got = store.get_facts(need)
        nxt = [
            f
            for i in need
            if (f := got.get(i)) is not None and _walkable(f, room_id) and f.depth >= min_depth
        ]
        remaining = budget - len(walked)
        if len(nxt) > remaining:
            # The cut level keeps its newest events: depth descending, then event ID.
            nxt.sort(key=lambda f: (-f.depth, f.event_id))
            del nxt[remaining:]
        walked.extend(nxt)
        level = nxt

    walked.sort(key=lambda f: (f.depth, f.event_id))
    return _load(store, walked)
