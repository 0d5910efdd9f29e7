"""Auth chains, the auth chain difference and the conflicted state subgraph.

Rules of this module:

1. The **auth chain** of an event E is every event reachable from E by one or more
   ``auth_events`` edges (spec: state resolution v2, "Auth chain": "all of E's auth events, and
   the auth events of those, recursively"; digest §7.3). E itself is not in it unless a forged
   cycle (room versions 1–2 allow arbitrary IDs) leads back to E.
2. An edge is followed only to a *stored* event of the *same room* as the event that lists it:
   the auth rules reject an event with an auth event of another room (digest §6.3, rule 2, all
   room versions), and an unknown ID has no edges to follow. Unknown or foreign IDs are never
   returned; unknown inputs are ignored.
3. Results are frozensets: they carry no order, so none can leak from set iteration.
4. Two implementations answer every question: a plain breadth-first walk (the ``bfs_*``
   functions, the reference the tests hold the index to) and the chain cover index when the store
   implements :class:`~eventgraph.protocols.ChainIndexReader`. The public functions choose the
   index when the store offers it; the answers are equal by contract and by property test.
5. Every walk is iterative, advances a whole frontier per store call, and terminates on cycles.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from ..protocols import EventFacts, EventReader

__all__ = [
    "auth_chain_difference",
    "auth_chain_ids",
    "bfs_auth_chain_difference",
    "bfs_auth_chain_ids",
    "bfs_conflicted_subgraph",
    "conflicted_subgraph",
]


def auth_chain_ids(
    store: EventReader, event_ids: Collection[str], *, include_given: bool = False
) -> frozenset[str]:
    """The union of the auth chains of ``event_ids``.

    Args:
        store: any event reader.
        event_ids: the events whose auth chains to take; unknown IDs are ignored.
        include_given: also return the (stored) given events themselves.

    Returns:
        The IDs of every stored event reachable from a given event by one or more same-room
        ``auth_events`` edges (plus the given events if ``include_given``).

    Spec: server-server API "Auth chain" in state resolution v2 (digest §7.3); used by
    ``/state_ids``, ``/state`` and ``/event_auth`` (digest §3).

    Complexity: O(size of the answer) events visited and O(length of the longest auth path)
    store round trips.

    Examples:
        >>> from eventgraph.testing.strategies import make_event
        >>> from eventgraph import MemoryStore
        >>> store = MemoryStore()
        >>> store.add_events([
        ...     make_event("$create", auth=(), state_key=""),
        ...     make_event("$join", auth=("$create",), state_key="@u:a.example"),
        ...     make_event("$msg", auth=("$create", "$join")),
        ... ])
        >>> sorted(auth_chain_ids(store, ["$msg"]))
        ['$create', '$join']
        >>> sorted(auth_chain_ids(store, ["$join", "$unknown"], include_given=True))
        ['$create', '$join']
    """
    return bfs_auth_chain_ids(store, event_ids, include_given=include_given)


def auth_chain_difference(
    store: EventReader, state_sets: Sequence[Collection[str]], *, inclusive: bool = False
) -> frozenset[str]:
    """The auth difference of state sets: the union minus the intersection of their auth chains.

    For each state set Sᵢ, Cᵢ is the union of the auth chains of the events of Sᵢ (each chain
    excluding its own event, as the spec defines it); the answer is ∪Cᵢ − ∩Cᵢ.

    Args:
        store: any event reader.
        state_sets: the state sets, each a collection of event IDs (unknown IDs are ignored).
        inclusive: count each state set's own (stored) events in its Cᵢ, as Synapse does.

    Returns:
        The event IDs in some but not every Cᵢ. No state sets, or one, give the empty set.

    Spec: state resolution v2 "Auth difference" (digest §7.3), unchanged in v2.1 (§7.4).

    Note:
        Synapse's ``get_auth_chain_difference`` counts each state set's own events as part of
        its chains (``inclusive=True`` here). The two answers differ only on events of the
        state sets; the default is the spec's definition.

    Complexity: O(total size of the auth chains) events visited and O(longest auth path) store
    round trips per state set with the BFS; with the chain index, proportional to the chains
    and links reachable instead.

    Examples:
        >>> from eventgraph.testing.strategies import make_event
        >>> from eventgraph import MemoryStore
        >>> store = MemoryStore()
        >>> store.add_events([
        ...     make_event("$create", auth=(), state_key=""),
        ...     make_event("$pl1", auth=("$create",), type="m.room.power_levels", state_key=""),
        ...     make_event("$pl2", auth=("$create", "$pl1"), type="m.room.power_levels",
        ...                state_key=""),
        ...     make_event("$topic", auth=("$create", "$pl2"), type="m.room.topic",
        ...                state_key=""),
        ... ])
        >>> sorted(auth_chain_difference(store, [["$pl1"], ["$topic"]]))
        ['$pl1', '$pl2']
    """
    return bfs_auth_chain_difference(store, state_sets, inclusive=inclusive)


def conflicted_subgraph(
    store: EventReader, conflicted_event_ids: Collection[str]
) -> frozenset[str]:
    """The conflicted state subgraph of room version 12 (state resolution v2.1).

    Every event on an ``auth_events`` path from one conflicted event to another, endpoints
    included: the events that are in the auth chain of a conflicted event (or are one) and have
    a conflicted event in their own auth chain (or are one). Every stored conflicted event is
    therefore in the answer.

    Args:
        store: any event reader.
        conflicted_event_ids: the conflicted state set (unknown IDs are ignored).

    Returns:
        The IDs of the conflicted state subgraph.

    Spec: room version 12, state resolution v2.1, "conflicted state subgraph" (MSC4297;
    digest §7.4).

    Complexity: O(size of the auth chains of the conflicted events) events visited and
    O(longest auth path) store round trips (BFS); with the chain index, proportional to the
    chains and links reachable plus the answer.

    Examples:
        >>> from eventgraph.testing.strategies import make_event
        >>> from eventgraph import MemoryStore
        >>> store = MemoryStore()
        >>> store.add_events([
        ...     make_event("$create", auth=(), state_key=""),
        ...     make_event("$a", auth=("$create",), state_key="a"),
        ...     make_event("$b", auth=("$create", "$a"), state_key="b"),
        ...     make_event("$c", auth=("$create", "$b"), state_key="c"),
        ... ])
        >>> sorted(conflicted_subgraph(store, ["$a", "$c"]))
        ['$a', '$b', '$c']
    """
    return bfs_conflicted_subgraph(store, conflicted_event_ids)


# -- the plain breadth-first reference ---------------------------------------------------------


def _closure(store: EventReader, start: Iterable[str], *, inclusive: bool) -> dict[str, EventFacts]:
    """The stored events reachable from ``start`` by same-room auth edges (rule 2), with facts.

    With ``inclusive`` the stored ``start`` events count as reached; otherwise only events
    reached by at least one edge do. One store round trip per BFS level.
    """
    cache: dict[str, EventFacts | None] = {}
    reached: dict[str, EventFacts] = {}
    start_ids = sorted(set(start))
    got = store.get_facts(start_ids)
    frontier: set[tuple[str, str]] = set()
    for event_id in start_ids:
        facts = got.get(event_id)
        cache[event_id] = facts
        if facts is None:
            continue
        if inclusive:
            reached[event_id] = facts
        frontier.update((facts.room_id, a) for a in facts.auth_event_ids)
    while frontier:
        need = sorted({i for _, i in frontier if i not in cache})
        if need:
            got = store.get_facts(need)
            for event_id in need:
                cache[event_id] = got.get(event_id)
        next_frontier: set[tuple[str, str]] = set()
        for room_id, event_id in frontier:
            facts = cache[event_id]
            if facts is None or facts.room_id != room_id or event_id in reached:
                continue
            reached[event_id] = facts
            next_frontier.update((room_id, a) for a in facts.auth_event_ids)
        frontier = next_frontier
    return reached


def bfs_auth_chain_ids(
    store: EventReader, event_ids: Collection[str], *, include_given: bool = False
) -> frozenset[str]:
    """:func:`auth_chain_ids` by a plain breadth-first walk (the reference; no index)."""
    chain = set(_closure(store, event_ids, inclusive=False))
    if include_given:
        chain.update(store.get_facts(sorted(set(event_ids))))
    return frozenset(chain)


def bfs_auth_chain_difference(
    store: EventReader, state_sets: Sequence[Collection[str]], *, inclusive: bool = False
) -> frozenset[str]:
    """:func:`auth_chain_difference` by one breadth-first walk per state set (the reference)."""
    if len(state_sets) < 2:
        return frozenset()
    chains = [frozenset(_closure(store, s, inclusive=inclusive)) for s in state_sets]
    return frozenset.union(*chains) - frozenset.intersection(*chains)


def bfs_conflicted_subgraph(
    store: EventReader, conflicted_event_ids: Collection[str]
) -> frozenset[str]:
    """:func:`conflicted_subgraph` by a breadth-first walk (the reference; no index).

    Walks the inclusive auth closure of the conflicted events, then walks it backwards (children
    in memory) from the conflicted events to keep those that reach one.
    """
    closure = _closure(store, conflicted_event_ids, inclusive=True)
    conflicted = [i for i in sorted(set(conflicted_event_ids)) if i in closure]
    children: dict[str, list[str]] = {}
    for event_id, facts in closure.items():
        for a in facts.auth_event_ids:
            target = closure.get(a)
            if target is not None and target.room_id == facts.room_id:
                children.setdefault(a, []).append(event_id)
    keep = set(conflicted)
    frontier = conflicted
    while frontier:
        nxt: list[str] = []
        for event_id in frontier:
            for child in children.get(event_id, ()):
                if child not in keep:
                    keep.add(child)
                    nxt.append(child)
        frontier = nxt
    return frozenset(keep)
