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
   What a store offers is decided once per store *class* (protocol ``isinstance`` checks cost
   microseconds each): every instance of a class is taken to have its class's methods, except
   for classes with ``__getattr__`` (proxies), which are asked every time.
5. Every walk is iterative, advances a whole frontier per store call, and terminates on cycles.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from heapq import heapify, heappop, heappush
from itertools import chain as _chain
from typing import Protocol, TypeGuard

from ..protocols import (
    ChainIndexDepthReader,
    ChainIndexReader,
    ChainIndexReverseReader,
    ChainLink,
    ChainPosition,
    ChainReverseLink,
    EventFacts,
    EventReader,
    _provides,
)

__all__ = [
    "auth_chain_difference",
    "auth_chain_difference_split",
    "auth_chain_difference_walking_down",
    "auth_chain_ids",
    "auth_chains_hold",
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
    if _reads_forward(store):
        return _indexed_auth_chain_ids(store, event_ids, include_given=include_given)
    return bfs_auth_chain_ids(store, event_ids, include_given=include_given)


def auth_chains_hold(
    store: EventReader, event_ids: Collection[str], candidates: Collection[str]
) -> set[str]:
    """The ``candidates`` that are in the union of the auth chains of ``event_ids``:
    ``auth_chain_ids(store, event_ids) & candidates``, without reading the whole chain.

    With the chain cover index, the walk down from ``event_ids`` follows links only (per
    chain, the highest sequence reached) and each candidate is placed by its position — no
    chain's members are read. That matters when the auth chains are long (a room's whole
    power-levels history) and the candidates few, as in state resolution's step 1.

    Unknown IDs (in either argument) are ignored, as by :func:`auth_chain_ids`; a forged
    cycle ends the walk.

    Spec: server-server API "Auth chain" (digest §7.3): the auth events of an event, and
    theirs, recursively; state resolution v2 "Reverse topological power ordering" reads it for
    "the events in their auth chains that are in the full conflicted set".

    Complexity: the chains and links reachable from ``event_ids`` (not their events), the
    unindexed events among them, and one positions read of the candidates; O(longest link
    path) round trips. Without the index: :func:`auth_chain_ids`.
    """
    wanted = candidates if isinstance(candidates, (set, frozenset)) else set(candidates)
    if not wanted:
        return set()
    if not _reads_forward(store):
        return set(bfs_auth_chain_ids(store, event_ids).intersection(wanted))
    walk = _Reach()
    unindexed, _ = _split(store, event_ids, inclusive=False, walk=walk)
    _materialize(store, [walk], {})
    reach = walk.reach
    held = unindexed.intersection(wanted)
    for event_id, (chain, sequence) in store.get_chain_positions(wanted).items():
        if sequence <= reach.get(chain, 0):
            held.add(event_id)
    return held


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

    How the index answers (any store with
    :class:`~eventgraph.protocols.ChainIndexReader`): with U the events in every set and Xᵢ the
    rest, ∪Cᵢ − ∩Cᵢ = (∪A(Xᵢ) − ∩A(Xᵢ)) − A(U) (A: auth chains, with the events themselves when
    ``inclusive``). The candidates come from walking down from the Xᵢ only; when the store also
    offers :class:`~eventgraph.protocols.ChainIndexReverseReader` (``MemoryStore``,
    ``SqliteStore``), candidates below U are found by searching *up* from them for a shared
    event, so U itself is never walked; otherwise U is walked down once (not once per set).
    When the store also offers :class:`~eventgraph.protocols.ChainIndexDepthReader` and says
    the rooms' depths descend along auth edges, a small inclusive difference (a fork's few
    events) is found by one walk down by depth from every set at once, which stops where the
    sets meet.

    Complexity: BFS: O(total size of the auth chains) events visited and O(longest auth path)
    round trips per state set. Index, reading both ways: O(Σ|Sᵢ|) C-level set work (the sets,
    their intersection, one unindexed check of U in the store) plus events visited and rows
    read proportional to the chains and links reachable from the Xᵢ and those above the
    candidates (up to the first shared event); round trips: a few per level of those walks and
    two per level of each upward search. The search is budgeted (about two rows per shared
    event); past the budget, or with many candidate chains against few shared events, U is
    walked down once: O(|U| + chains and links reachable from U).

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
    if _reads_forward(store):
        return _indexed_auth_chain_difference(store, state_sets, inclusive=inclusive)
    return bfs_auth_chain_difference(store, state_sets, inclusive=inclusive)


def auth_chain_difference_walking_down(
    store: EventReader, state_sets: Sequence[Collection[str]], *, inclusive: bool = False
) -> frozenset[str]:
    """:func:`auth_chain_difference`, the same answer, with the events every set holds always
    walked down once (never searched for upwards from the candidates).

    For small state sets — a few dozen events, as the restricted states of
    :func:`~eventgraph.state.group_resolution.resolve_groups` — whose candidates may lie deep in
    long chains (a room's power-levels history): an upward search reads every member and link
    above them up to the chains' tips, while the walk down from the few shared events follows
    links only. Measured on the 10^6-event synthetic room (docs/performance.md, "Ingest",
    fourth round): the scoped resolutions took 30–45% less CPU this way. Unknown IDs are
    ignored, as by :func:`auth_chain_difference`.

    Spec: state resolution v2 "Auth difference" (digest §7.3), unchanged in v2.1 (§7.4).

    Complexity: O(Σ|Sᵢ|) set work, plus the chains and links reachable from the sets' events;
    O(longest link path) round trips. Without the index: :func:`bfs_auth_chain_difference`.
    """
    if _reads_forward(store):
        return _indexed_auth_chain_difference(store, state_sets, inclusive=inclusive, upward=False)
    return bfs_auth_chain_difference(store, state_sets, inclusive=inclusive)


def auth_chain_difference_split(
    store: EventReader,
    shared: Collection[str],
    extras: Sequence[Collection[str]],
    *,
    inclusive: bool = False,
) -> frozenset[str]:
    """:func:`auth_chain_difference` of the state sets ``shared`` ∪ ``extras[i]``, given so.

    For a caller that already knows what its state sets share (state resolution: the values of
    the unconflicted state map) and where they differ: it saves building and intersecting sets
    of every state set's events. The answer is the same however the events are split (an
    event of ``shared`` may also be in an extra; one in every extra counts as shared).

    Args:
        store: any event reader.
        shared: events in every state set (a ``set`` or ``frozenset`` is used as it is).
        extras: per state set, its other events.
        inclusive: as for :func:`auth_chain_difference`.

    Complexity: with a store offering
    :class:`~eventgraph.protocols.ChainIndexReverseReader`, O(Σ|extras|) Python work plus one
    set difference over ``shared`` in the store, then walks proportional to the chains and
    links near where the sets differ (see :func:`auth_chain_difference`); otherwise as
    :func:`auth_chain_difference`.

    Examples:
        >>> from eventgraph.testing.strategies import make_event
        >>> from eventgraph import MemoryStore
        >>> store = MemoryStore()
        >>> store.add_events([
        ...     make_event("$create", auth=(), state_key=""),
        ...     make_event("$a", auth=("$create",), state_key="a"),
        ...     make_event("$b", auth=("$create", "$a"), state_key="b"),
        ... ])
        >>> sorted(auth_chain_difference_split(store, {"$create"}, [["$a"], ["$b"]]))
        ['$a']
        >>> sorted(auth_chain_difference_split(store, {"$create"}, [["$a"], ["$b"]],
        ...                                    inclusive=True))
        ['$b']
    """
    if len(extras) < 2:
        return frozenset()
    common = shared if isinstance(shared, (set, frozenset)) else set(shared)
    parts = [x if isinstance(x, (set, frozenset)) else set(x) for x in extras]
    in_every = parts[0] & parts[1] if len(parts) == 2 else set(parts[0]).intersection(*parts[1:])
    if in_every:
        common = common | in_every
    rest = [x.difference(common) for x in parts]
    if _reads_forward(store):
        return _split_difference(store, common, rest, inclusive)
    return bfs_auth_chain_difference(store, [common | x for x in rest], inclusive=inclusive)


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
    if _reads_forward(store):
        return _indexed_conflicted_subgraph(store, conflicted_event_ids)
    return bfs_conflicted_subgraph(store, conflicted_event_ids)


def _reads_forward(store: object) -> TypeGuard[_IndexStore]:
    """Whether the store's chain index can be read (rule 4; decided once per store class)."""
    return _provides(store, ChainIndexReader)


def _reads_both_ways(store: object) -> TypeGuard[_ReverseStore]:
    """Whether the store's chain index can also be read upwards (rule 4)."""
    return _provides(store, ChainIndexReverseReader)


def _reads_depth_order(store: object) -> TypeGuard[_DepthStore]:
    """Whether the store says if rooms' depths agree with their auth DAG (rule 4)."""
    return _provides(store, ChainIndexDepthReader)


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


# -- the chain cover index ------------------------------------------------------------------------
#
# Reads follow the contract of ChainIndexReader: E is in the auth chain of an indexed F iff they
# share a chain and seq(E) < seq(F), or links lead from F's chain (origin <= seq F) to E's chain
# (target >= seq E). Unindexed events (waiting for an auth event, or above a forged cycle) are
# only ever *above* indexed ones, so a query first walks them breadth-first and hands the indexed
# events it reaches to the index.


class _IndexStore(EventReader, ChainIndexReader, Protocol):
    """What the indexed paths need: facts and the index."""


class _ReverseStore(_IndexStore, ChainIndexReverseReader, Protocol):
    """The index read both ways."""


class _DepthStore(_IndexStore, ChainIndexDepthReader, Protocol):
    """The index, and whether depths descend along auth edges."""


class _Reach:
    """One walk over the links: per chain, how high it stands and how high it has reached.

    ``stand[c]`` is the highest sequence of chain c whose links may be followed; ``reach[c]``
    the highest sequence in the answer (for a given event ``stand`` is its sequence and
    ``reach`` one less: an event is not in its own auth chain).
    """

    def __init__(self) -> None:
        self.stand: dict[int, int] = {}
        self.reach: dict[int, int] = {}
        self.dirty: set[int] = set()

    def start(self, pos: ChainPosition, *, inclusive: bool) -> None:
        self.start_all((pos,), inclusive=inclusive)

    def start_all(self, positions: Collection[ChainPosition], *, inclusive: bool) -> None:
        """Start from every position (one loop, positions unpacked as tuples)."""
        reach, stand, dirty = self.reach, self.stand, self.dirty
        less = 0 if inclusive else 1
        if not stand:
            # A fresh walk: build the dictionaries at C speed (per chain its highest position).
            # (A comprehension, not ``dict(positions)``: that copies each named tuple.)
            fresh = {c: s for c, s in positions}  # noqa: C416
            if len(fresh) < len(positions):
                fresh = {c: s for c, s in sorted(positions)}  # noqa: C416 (highest last)
            stand.update(fresh)
            dirty.update(fresh)
            if less:
                reach.update({c: s - 1 for c, s in fresh.items() if s > 1})
            else:
                reach.update(fresh)
            return
        for c, s in positions:
            r = s - less
            if r > reach.get(c, 0):
                reach[c] = r
            if s > stand.get(c, 0):
                stand[c] = s
                dirty.add(c)


def _materialize(
    store: ChainIndexReader, walks: Sequence[_Reach], links: dict[int, tuple[ChainLink, ...]]
) -> None:
    """Follow links until every walk is closed: one round trip per level of new chains.

    Links come sorted by origin sequence (the :class:`~eventgraph.protocols.ChainIndexReader`
    contract), so reading a chain stops at the first link above where the walk stands.

    ``links`` is a cache shared between calls. Values only grow and are bounded, so this ends
    even if the links had a cycle.
    """
    while True:
        busy = [w for w in walks if w.dirty]
        if not busy:
            return
        if len(busy) == 1:
            unread = busy[0].dirty.difference(links)
        else:
            unread = busy[0].dirty.union(*[w.dirty for w in busy[1:]]).difference(links)
        if unread:
            got = store.get_chain_links(sorted(unread))
            links.update(got)
            if len(got) < len(unread):
                links.update(dict.fromkeys(unread.difference(got.keys()), ()))
        for w in busy:
            batch = w.dirty
            dirty: set[int] = set()
            w.dirty = dirty
            reach, stand = w.reach, w.stand
            reach_at, stand_at, mark = reach.get, stand.get, dirty.add
            for c in batch:
                here = stand[c]
                # Links come sorted by origin (ChainIndexReader): stop at the first above.
                for origin, tc, ts in links[c]:
                    if origin > here:
                        break
                    if ts > reach_at(tc, 0):  # (reach never exceeds stand)
                        reach[tc] = ts
                        if ts > stand_at(tc, 0):
                            stand[tc] = ts
                            mark(tc)


def _members(store: ChainIndexReader, ranges: Mapping[int, tuple[int, int]]) -> set[str]:
    """The members of the non-empty ranges (``chain: (low, high)``)."""
    wanted = {c: r for c, r in ranges.items() if r[1] > r[0]}
    if not wanted:
        return set()
    return set(_concat(store.get_chain_members(wanted).values()))


def _answer(
    store: ChainIndexReader, ranges: Mapping[int, tuple[int, int]], loose: AbstractSet[str]
) -> frozenset[str]:
    """The members of ``ranges`` (each non-empty) and ``loose``: one read, built at C speed."""
    if not ranges:
        return frozenset(loose)
    got = _concat(store.get_chain_members(ranges).values())
    if not loose:
        return frozenset(got)
    out = set(got)
    out |= loose
    return frozenset(out)


def _split(
    store: _IndexStore,
    event_ids: Iterable[str],
    *,
    inclusive: bool,
    walk: _Reach,
    known: Mapping[str, ChainPosition] | None = None,
) -> tuple[set[str], dict[str, EventFacts]]:
    """Start ``walk`` from the indexed events among ``event_ids`` and walk the unindexed ones.

    Returns the unindexed events in the answer and the facts of the unindexed given events.
    Unindexed events reached by an edge are in the answer; indexed ones reached by an edge
    start the walk inclusively. One or two round trips per level of unindexed events, plus one
    for the positions of ``event_ids`` unless ``known`` holds them (the positions of a
    superset, read already).
    """
    ids = event_ids if isinstance(event_ids, (set, frozenset)) else set(event_ids)
    if known is None:
        positions = store.get_chain_positions(ids)
    else:
        positions = {i: known[i] for i in ids if i in known}
    walk.start_all(positions.values(), inclusive=inclusive)
    rest = sorted(ids.difference(positions.keys())) if len(positions) < len(ids) else []
    given = dict(store.get_facts(rest)) if rest else {}
    unindexed: set[str] = set()
    if inclusive:
        unindexed.update(given)
    visited: set[str] = set()
    frontier: set[tuple[str, str]] = {
        (f.room_id, a) for f in given.values() for a in f.auth_event_ids
    }
    while frontier:
        need = sorted({i for _, i in frontier})
        got = store.get_facts(need)
        found = store.get_chain_positions([i for i in need if i in got])
        nxt: set[tuple[str, str]] = set()
        for room_id, i in frontier:
            f = got.get(i)
            if f is None or f.room_id != room_id:
                continue
            p = found.get(i)
            if p is not None:
                walk.start(p, inclusive=True)
            elif i not in visited:
                visited.add(i)
                unindexed.add(i)
                nxt.update((f.room_id, a) for a in f.auth_event_ids if a not in visited)
        frontier = nxt
    return unindexed, given


def _indexed_auth_chain_ids(
    store: _IndexStore, event_ids: Collection[str], *, include_given: bool
) -> frozenset[str]:
    walk = _Reach()
    unindexed, _ = _split(store, event_ids, inclusive=False, walk=walk)
    _materialize(store, [walk], {})
    chain = _members(store, {c: (0, r) for c, r in walk.reach.items()})
    chain |= unindexed
    if include_given:
        chain.update(store.get_facts(sorted(set(event_ids))))
    return frozenset(chain)


def _indexed_auth_chain_difference(
    store: _IndexStore,
    state_sets: Sequence[Collection[str]],
    *,
    inclusive: bool,
    upward: bool = True,
) -> frozenset[str]:
    """The auth difference from the index, split into what every set holds and the rest.

    With U the events in every set and Xᵢ = Sᵢ − U, and A(X) the auth chains of X (with X
    itself when ``inclusive``), every Cᵢ = A(Sᵢ) = A(U) ∪ A(Xᵢ), so

        ∪Cᵢ − ∩Cᵢ = (∪A(Xᵢ) − ∩A(Xᵢ)) − A(U).

    The first part (the *candidates*) comes from walking the small Xᵢ: per chain, the events
    above the lowest reach of the Xᵢ and up to the highest. What remains is to drop the
    candidates below U without walking U: see :func:`_drop_below_shared`.

    A small inclusive difference in a store that vouches for its rooms' depths is first tried
    by the colouring walk (:func:`_coloured_difference`), which stops where the sets meet.
    """
    if len(state_sets) < 2:
        return frozenset()
    sets = [s if isinstance(s, (set, frozenset)) else set(s) for s in state_sets]
    shared = set(sets[0]).intersection(*sets[1:])
    return _split_difference(store, shared, [s.difference(shared) for s in sets], inclusive, upward)


def _split_difference(
    store: _IndexStore,
    shared: AbstractSet[str],
    extras: Sequence[AbstractSet[str]],
    inclusive: bool,
    upward: bool = True,
) -> frozenset[str]:
    """:func:`_indexed_auth_chain_difference` given U (``shared``) and the Xᵢ (``extras``);
    ``upward=False`` never searches upwards (U is walked down)."""
    if not any(extras):
        return frozenset()  # every set holds the same events
    if (
        inclusive
        and sum(map(len, extras)) <= _COLOUR_MAX_EXTRAS
        and (upward or len(shared) <= _COLOUR_MAX_SHARED)  # (its other way searches upwards)
        and _reads_depth_order(store)
    ):
        found = _coloured_difference(store, shared, extras)
        if found is not None:
            return found
    walks = [_Reach() for _ in extras]
    everything = set().union(*extras)
    placed = store.get_chain_positions(everything)  # one round trip for every set
    loose: set[str] = set()
    if len(placed) == len(everything):
        # Every extra is indexed (the usual case): start each walk from its positions at C
        # speed, no unindexed closure to walk.
        for x, w in zip(extras, walks, strict=True):
            w.start_all(list(map(placed.__getitem__, x)), inclusive=inclusive)
    else:
        loose_sets = [
            _split(store, x, inclusive=inclusive, walk=w, known=placed)[0]
            for x, w in zip(extras, walks, strict=True)
        ]
        loose = set().union(*loose_sets) - set(loose_sets[0]).intersection(*loose_sets[1:])
    links: dict[int, tuple[ChainLink, ...]] = {}
    _materialize(store, walks, links)
    candidates = _candidates([w.reach for w in walks])
    if not candidates and not loose:
        return frozenset()
    below = _Reach()  # what is known to be in A(U)
    if (
        upward
        and _reads_both_ways(store)
        and len(candidates) * _UPWARD_CHAIN_COST <= len(shared) + _UPWARD_BUDGET_BASE // 8
    ):
        unindexed_shared: Collection[str] = store.get_unindexed(shared) if shared else ()
        if unindexed_shared:
            loose -= _split(store, unindexed_shared, inclusive=inclusive, walk=below)[0]
            _materialize(store, [below], links)
        if candidates:
            search = _UpwardSearch(store, shared)
            candidates, known = _drop_below_shared(
                store, search, candidates, below, links, inclusive=inclusive
            )
            loose |= known
    else:
        loose -= _split(store, shared, inclusive=inclusive, walk=below)[0]
        _materialize(store, [below], links)
        candidates = _above(candidates, below)
    return _answer(store, candidates, loose)


#: The colouring walk (:func:`_coloured_difference`) is tried for at most this many events
#: besides the shared ones (in all: it takes a store round trip per depth it passes), and it
#: starts from the shared events too for at most this many of them (it reads their greatest
#: depth, and their facts if it comes down to them; above, it only recognises those it meets
#: and the index's upward search drops the rest).
#: Measured on bench_stateres's forks (auth difference alone, µs, against the index):
#: 10^3/10 (100 shared, 16 others) 56–64 against 70–111; 10^3/100 (61 shared, ~150 others)
#: 301 against 231; 10^4/10 (1,000 shared) from the shared events 483–516 against 137–157.
_COLOUR_MAX_EXTRAS = 48
_COLOUR_MAX_SHARED = 256
#: The walk gives up (the index answers) after this many events per starting event, plus
#: the base: a fork whose sides meet deep in the room is the index's case.
_COLOUR_BUDGET_FACTOR = 8
_COLOUR_BUDGET_BASE = 256

#: The upward search is chosen when the candidate chains, times this, are at most the shared
#: events: a search costs about as much Python work as walking down from this many of them.
_UPWARD_CHAIN_COST = 6
#: The upward search gives up after examining this many chain members and links per shared
#: event (plus the base) and walks down from every shared event instead.
_UPWARD_BUDGET_FACTOR = 2
_UPWARD_BUDGET_BASE = 4096
_NO_SEQUENCE = 1 << 62  # above every sequence
_NO_DEPTH = float("-inf")  # below every depth
_UNTESTED = (_NO_SEQUENCE - 1, 0)  # (an entry of ``_UpwardSearch.tested``: nothing compared)
_concat = _chain.from_iterable  # (iterables joined at C speed)


def _coloured_difference(
    store: _DepthStore, shared: AbstractSet[str], extras: Sequence[AbstractSet[str]]
) -> frozenset[str] | None:
    """The inclusive auth difference of the sets U ∪ Xᵢ (U: ``shared``, Xᵢ: ``extras``, each
    disjoint from U) by one walk down from all of them at once; ``None`` when this walk may not
    answer (the caller asks the index).

    Each event reached is coloured with the sets whose inclusive auth chain holds it: bit i for
    Xᵢ, and every bit for an event of U or below one (it is in every Cᵢ = A(U) ∪ A(Xᵢ)). The
    difference is the events whose colour is not full. Events are taken a depth at a time,
    deepest first, one ``get_facts`` per depth for the auth events met: in a room whose depths
    descend along auth edges (the store says so: ``auth_depths_descend``), every event that
    can colour an event is deeper, so its colour is final when it is taken. The walk stops when
    no partly coloured event is left to take: everything further down is below a fully
    coloured event, so fully coloured too. A fork's sides meet a few depths below where they
    split, so the walk reads tens of events where the index reads every chain the sides reach.

    ``None`` when an event of U or of an Xᵢ is stored but not indexed (contract rule 1 of
    :class:`~eventgraph.protocols.ChainIndexReader`: its auth chain may hold events the store
    has not checked), when a room of the partly coloured ones (the answer's rooms: walks
    never leave a room) is not known to have descending depths, when an auth edge does not
    descend after all (defensive), or past the budget of events taken. Unknown IDs are
    ignored and foreign auth events are not edges (module rule 2). The shared events join the
    walk only when it comes down to them (the same walk: none could be taken earlier); until
    then only their greatest depth is read (``greatest_depth``), not their facts.

    Complexity: O(|U| + Σ|Xᵢ|) to start, then O(events taken x auth events) with one round
    trip per depth taken, at most ``_COLOUR_BUDGET_FACTOR`` events per starting event plus
    ``_COLOUR_BUDGET_BASE``.
    """
    full = (1 << len(extras)) - 1
    from_shared = len(shared) <= _COLOUR_MAX_SHARED
    colour: dict[str, int] = dict.fromkeys(shared, full) if from_shared else {}
    # (the starting events also as a set, for the store: a set is what its reads take as is)
    starts: set[str] = set(shared) if from_shared else set()
    others: set[str] = set()
    for i, x in enumerate(extras):
        bit = 1 << i
        others.update(x)
        for e in x:
            colour[e] = colour.get(e, 0) | bit
    starts |= others
    # The facts of the Xᵢ only. The partly coloured ones go on the heap now. The fully coloured
    # starts (the shared events, and an event of every Xᵢ) join the walk only when it comes
    # down to the deepest of them (``waiting_top``): none of them can be taken before, so it is
    # the same walk, level for level; a walk that ends above them (where a fork meets above the
    # shared state) never reads their facts, only their greatest depth. (One pass over the
    # facts: a plain loop is cheaper than maps of attribute getters.)
    facts: dict[str, EventFacts] = dict(store.get_facts(others))
    heap: list[tuple[int, str]] = []
    rooms: set[str] = set()
    partly: set[str] = set()
    waiting_top: float = _NO_DEPTH
    for e, f in facts.items():
        depth = f.depth
        if colour[e] != full:
            heap.append((-depth, e))
            rooms.add(f.room_id)
            partly.add(e)
        elif depth > waiting_top:
            waiting_top = depth
    if not heap:
        return frozenset()  # nothing partly coloured: every set holds the same stored events
    # Every starting event indexed (rule 1): the store's set difference when it has one.
    if _reads_both_ways(store):
        if store.get_unindexed(starts):
            return None  # a stored event not indexed (rule 1): its chain is not vouched for
    else:  # (as many stored starts as indexed ones; the others' facts are read already)
        stored = set(facts)
        if from_shared:
            stored.update(store.get_facts(shared))
        if len(store.get_chain_positions(starts)) < len(stored):
            return None
    if from_shared and shared:
        top = store.greatest_depth(shared)
        if top is not None and top > waiting_top:
            waiting_top = top
    waiting = waiting_top != _NO_DEPTH  # a fully coloured start is stored
    # Only the rooms of the partly coloured starts need descending depths: a walk never
    # leaves a room (rule 2), so events of another room cannot colour those.
    if not store.auth_depths_descend(rooms):
        return None
    # (per starting event: the shared ones count when the walk starts from them)
    begun = len(facts) + len(shared) if from_shared else len(facts)
    budget = _COLOUR_BUDGET_FACTOR * begun + _COLOUR_BUDGET_BASE
    partial = len(heap)  # partly coloured, not yet taken
    heapify(heap)
    out: list[str] = []
    colour_get, facts_get = colour.get, facts.get
    while partial:
        if waiting and waiting_top >= -heap[0][0]:
            # A fully coloured start at or above the next depth: all of them join, with their
            # facts. (The stored starts not on the heap: events met later are never starts;
            # a shared event is met only as fully coloured, so its facts are not read yet.)
            if from_shared:
                facts.update(store.get_facts(shared))
            heap += [(-facts[e].depth, e) for e in starts if e not in partly and e in facts]
            heapify(heap)
            waiting = False
        # Take one depth: every event at it (no edge joins two events of one depth).
        level = [heappop(heap)]
        top = level[0][0]
        while heap and heap[0][0] == top:
            level.append(heappop(heap))
        budget -= len(level)
        if budget < 0:
            return None
        new: set[str] = set()
        for _, e in level:  # (a plain loop: a comprehension is a function call in 3.11)
            for a in facts[e].auth_event_ids:
                if a not in colour:
                    new.add(a)
        if new:
            facts.update(store.get_facts(new))
        for minus_depth, e in level:
            c = colour[e]
            if c != full:
                partial -= 1
                out.append(e)
            f = facts[e]
            room_id = f.room_id
            for a in f.auth_event_ids:
                old = colour_get(a)
                if old == full:
                    continue  # fully coloured already: nothing to add, edge or not
                fa = facts_get(a)
                if fa is None or fa.room_id != room_id:
                    continue  # unknown, or another room's: not an edge (module rule 2)
                if -fa.depth <= minus_depth:
                    return None  # not descending after all (the store's answer was stale)
                if old is None:
                    if c != full and a in shared:  # (met, when not started from)
                        colour[a] = full
                    else:
                        colour[a] = c
                        if c != full:
                            partial += 1
                    heappush(heap, (-fa.depth, a))
                elif old | c != old:
                    colour[a] = old | c
                    if old | c == full:
                        partial -= 1
    if from_shared or not out:
        return frozenset(out)
    # Started from the Xᵢ only: ``out`` is ∪A(Xᵢ) − ∩A(Xᵢ) less what lies below the shared
    # events met. The rest of A(U) is dropped by the index's upward search from each chain's
    # lowest event of ``out`` (on each chain, the events of ``out`` are a run: every Cᵢ meets a
    # chain in a prefix, and so does A(U)).
    if not _reads_both_ways(store) or store.get_unindexed(shared):
        return None
    ranges: dict[int, tuple[int, int]] = {}
    for chain_id, sequence in store.get_chain_positions(out).values():
        low, high = ranges.get(chain_id, (sequence, sequence))
        ranges[chain_id] = (min(low, sequence), max(high, sequence))
    kept, known = _drop_below_shared(
        store,
        _UpwardSearch(store, shared),
        {c: (low - 1, high) for c, (low, high) in ranges.items()},
        _Reach(),
        {},
        inclusive=True,
    )
    return _answer(store, kept, known)


def _candidates(reaches: Sequence[Mapping[int, int]]) -> dict[int, tuple[int, int]]:
    """Per chain, the lowest and highest of the walks' reaches (0 where a walk does not reach
    the chain), for the chains where they differ: the members in ∪A(Xᵢ) − ∩A(Xᵢ)."""
    candidates: dict[int, tuple[int, int]] = {}
    if len(reaches) == 2:  # the usual fork: one pass over each walk, no per-chain list
        first, second = reaches
        for c, x in first.items():
            y = second.get(c, 0)
            if x != y:
                candidates[c] = (x, y) if x < y else (y, x)
        for c, y in second.items():
            if c not in first and y > 0:
                candidates[c] = (0, y)
        return candidates
    for c in sorted({c for r in reaches for c in r}):
        values = [r.get(c, 0) for r in reaches]
        low, high = min(values), max(values)
        if high > low:
            candidates[c] = (low, high)
    return candidates


def _above(candidates: Mapping[int, tuple[int, int]], below: _Reach) -> dict[int, tuple[int, int]]:
    """The candidate ranges with what ``below`` reaches cut off (empty ranges dropped)."""
    out: dict[int, tuple[int, int]] = {}
    reach = below.reach
    for c, (low, high) in candidates.items():
        got = reach.get(c, 0)
        if got > low:
            low = got
        if high > low:
            out[c] = (low, high)
    return out


class _OverBudgetError(Exception):
    """The upward search examined more than its budget."""


class _UpwardSearch:
    """Walks the index upwards (reverse links) looking for a shared event above a position.

    Facts kept between the walks of one difference (they stay true whatever is asked next):

    * ``tested[c]``: every member of chain c at a sequence above ``tested[c][0]`` was compared
      with the shared events (those found were handed to the caller); the value is the range
      read, so that a read's ranges are recorded at C speed;
    * ``clear[c]``: every event above chain c's position ``clear[c]`` (through links into c
      with a target at or above it) was examined by a walk that found no shared event.

    A walk from a candidate the caller has not yet found to be below a known shared event
    never meets a shared event it was handed before (that event would be above the candidate),
    so skipping tested members loses nothing.
    """

    def __init__(self, store: _ReverseStore, shared: AbstractSet[str]) -> None:
        self.store = store
        self.shared = shared
        self.budget = _UPWARD_BUDGET_FACTOR * len(shared) + _UPWARD_BUDGET_BASE
        self.work = 0
        self.tested: dict[int, tuple[int, int]] = {}
        self.clear: dict[int, int] = {}

    def _hits(
        self, ranges: Mapping[int, tuple[int, int]], got: Mapping[int, tuple[str, ...]]
    ) -> list[ChainPosition]:
        """The highest shared member of each chain of ``got`` (the members of ``ranges``,
        read) that has one; the members count as compared (``tested``)."""
        shared, tested = self.shared, self.tested
        hits: list[ChainPosition] = []
        self.work += sum(map(len, got.values()))
        for c, ids in got.items():
            if shared.isdisjoint(ids):  # (C speed: most chains above a fork share nothing)
                continue
            k = len(ids) - 1
            while ids[k] not in shared:
                k -= 1
            hits.append(ChainPosition(c, ranges[c][0] + 1 + k))
        tested.update(ranges)
        return hits

    def first_level(
        self, pending: Mapping[int, tuple[int, int]], *, inclusive: bool
    ) -> tuple[
        list[ChainPosition],
        Mapping[int, tuple[str, ...]],
        Mapping[int, tuple[int, int]],
        Mapping[int, tuple[ChainReverseLink, ...]],
    ]:
        """The first level of the searches from the lowest candidate of every chain of
        ``pending`` (``chain: (low, high)``, the candidates ``low < sequence <= high``), all at
        once; the first call on a search.

        Returns the shared events found (as :meth:`walk`), the members read (per chain, those
        from the lowest candidate up: the candidate itself is compared only when
        ``inclusive``), the chains without a shared member (``chain: (low, top)``) and the
        links read into them (from the lowest candidate up). The search of such a chain that no
        link enters ends here with none: the caller marks it ``clear`` (one loop over these
        chains for both). Two round trips.
        """
        assert not self.tested  # (the first call: nothing to skip yet)
        assert not self.clear
        top = _NO_SEQUENCE - 1
        follow = {c: (low, top) for c, (low, _) in pending.items()}
        ranges = follow if inclusive else {c: (low + 1, top) for c, (low, _) in pending.items()}
        got = self.store.get_chain_members(ranges)
        hits = self._hits(ranges, got)
        if hits:
            follow = follow.copy()  # (``ranges`` is recorded in ``tested``)
            for c, _ in hits:
                del follow[c]
        into = self.store.get_chain_reverse_links(follow) if follow else {}
        self.work += sum(map(len, into.values()))
        return hits, got, follow, into

    def walk(
        self,
        chain: int,
        member_from: int,
        link_from: int,
        into_chain: Sequence[ChainReverseLink] | None = None,
    ) -> list[ChainPosition]:
        """Shared events above ``chain``: members at ``member_from`` or higher, or reached from
        links into it at ``link_from`` or higher, and so on upwards. ``into_chain``: the links
        into ``chain`` at ``link_from`` or higher, if read already (at least those; the first
        level's read), so they are not asked for again.

        Returns the highest shared member of each chain where the first were found (empty if
        none is above).

        Complexity: the chain members and links above the start not yet known (members compared
        once per difference; links followed again only after a search that found a shared
        event); two round trips per level of chains.

        Raises:
            _OverBudgetError: the search examined more than its budget.
        """
        store, tested, clear = self.store, self.tested, self.clear
        opened: dict[int, int] = {}  # links followed by this walk (committed if it finds none)
        # Per chain of this level, the lowest member to compare and the lowest link target to
        # follow (the same past the first level: the origin of a link followed into it).
        todo: dict[int, int] = {chain: member_from}
        starts: dict[int, int] = {chain: link_from}
        while todo:
            ranges = {
                c: (m - 1, t) for c, m in todo.items() if m <= (t := tested.get(c, _UNTESTED)[0])
            }
            if ranges:
                hits = self._hits(ranges, store.get_chain_members(ranges))
                if hits:
                    return hits
            follow: dict[int, tuple[int, int]] = {}
            for c, f in starts.items():
                known = clear.get(c, _NO_SEQUENCE)
                was = opened.get(c, _NO_SEQUENCE)
                if was < known:
                    known = was
                if f < known:
                    follow[c] = (f - 1, known - 1)
                    opened[c] = f
            if follow:
                got: Mapping[int, Sequence[ChainReverseLink]]
                if into_chain is not None:  # the first level: only ``chain``, read already
                    low, high = follow[chain]
                    # (sorted by target, as the store returns them: cut by bisection)
                    start = bisect_left(into_chain, (low + 1,))
                    got = {chain: into_chain[start : bisect_left(into_chain, (high + 1,), start)]}
                    into_chain = None
                else:
                    got = store.get_chain_reverse_links(follow)
                self.work += sum(map(len, got.values()))
                # The next level: per origin chain, its lowest origin sequence.
                todo = starts = {}
                for into in got.values():
                    for _, o, q in into:
                        if q < todo.get(o, _NO_SEQUENCE):
                            todo[o] = q
            else:
                todo = {}
            if self.work > self.budget:
                raise _OverBudgetError
        for c, f in opened.items():
            if f < clear.get(c, _NO_SEQUENCE):
                clear[c] = f
        return []


def _drop_below_shared(
    store: _ReverseStore,
    search: _UpwardSearch,
    candidates: Mapping[int, tuple[int, int]],
    below: _Reach,
    links: dict[int, tuple[ChainLink, ...]],
    *,
    inclusive: bool,
) -> tuple[dict[int, tuple[int, int]], set[str]]:
    """The candidate ranges without the events in A(U), U the shared events; and members of
    such ranges already read (those ranges left out).

    A(U) meets each chain in a prefix (chains are auth paths), so per chain it is enough to
    find the lowest candidate not in A(U). For chain c, take the lowest candidate x not yet
    known to be in A(U) and search upwards from it for a shared event (one whose A holds x).
    None: x and every candidate above it on c are in the answer. Some: walk down from those
    shared events (``below`` grows, for every chain at once) and try again. Forks make the
    usual candidate a new event nothing shared is above, whose search ends quickly; the
    searches share what they learnt (:class:`_UpwardSearch`), so together they examine each
    chain position and link above the candidates at most once.

    If the searches exceed their budget (a candidate far below the shared events with much
    of the room above it), the rest is done the plain way: walk down from every shared event.

    Complexity: within the budget, the rows :class:`_UpwardSearch` reads plus a walk down from
    each shared event found (events visited: chains and links they reach); round trips: two for
    the first level of every search, two per further level of each search, and one per level
    of each walk down. Past the budget, additionally O(|U|) positions and the chains and links
    reachable from them, in O(longest link path) round trips.
    """
    out: dict[int, tuple[int, int]] = {}
    known: set[str] = set()
    try:
        # The first level of every search at once: most candidates of a fork are new events
        # with no link into their chain above them, whose search ends there.
        pending = _above(candidates, below) if below.reach else dict(candidates)
        found, read, follow, into = search.first_level(pending, inclusive=inclusive)
        if found:
            below.start_all(found, inclusive=inclusive)
            _materialize(store, [below], links)
        # The first level read each chain's members from its lowest candidate up (with the
        # candidate itself when ``inclusive``), so the candidates found to be in the answer are
        # taken from that read when it covers them; otherwise they are read at the end.
        first_low: dict[int, int] = {}

        def answer(c: int, low: int, high: int) -> None:
            ids = read.get(c)
            start = low - first_low.get(c, low + 1)
            if ids is None or start < 0 or len(ids) < high - low + start:
                out[c] = (low, high)
            elif start == 0 and len(ids) == high - low:
                known.update(ids)
            else:
                known.update(ids[start : start + high - low])

        # Nothing shared above the lowest candidate of a chain no link enters there (closed):
        # its candidates are in the answer. (``answer`` inline, with the first level's read
        # starting at the candidate: most candidate chains are closed here, and the call per
        # chain measured +2% instructions on the small fork rows of bench_stateres.)
        clear = search.clear
        closed = follow.keys() - into.keys()  # (C speed: few chains have a link into them)
        for c in closed:
            low, high = pending[c]
            clear[c] = low + 1
            ids = read.get(c, ()) if inclusive else ()
            n = high - low
            if len(ids) == n:
                known.update(ids)
            elif len(ids) > n:
                known.update(ids[:n])
            else:
                out[c] = (low, high)
        rest = sorted(pending.keys() - closed)  # the chains with a hit or a link into them
        if inclusive:
            first_low.update((c, pending[c][0]) for c in rest)
        for c in rest:
            low, high = pending[c]
            while True:
                low = max(low, below.reach.get(c, 0))
                if low >= high:
                    break
                x = low + 1
                found = search.walk(c, x if inclusive else x + 1, x, into.get(c))
                if not found:
                    answer(c, low, high)
                    break
                for pos in found:
                    below.start(pos, inclusive=inclusive)
                _materialize(store, [below], links)
    except _OverBudgetError:
        positions = store.get_chain_positions(search.shared)
        for pos in positions.values():
            below.start(pos, inclusive=inclusive)
        _materialize(store, [below], links)
        return _above(candidates, below), set()
    return out, known


def _indexed_conflicted_subgraph(
    store: _IndexStore, conflicted_event_ids: Collection[str]
) -> frozenset[str]:
    ids = sorted(set(conflicted_event_ids))
    positions = store.get_chain_positions(ids)
    # Backwards: everything in the (inclusive) auth closure of a conflicted event.
    back = _Reach()
    # (the positions just read are handed on: not read again)
    unindexed, _ = _split(store, ids, inclusive=True, walk=back, known=positions)
    links: dict[int, tuple[ChainLink, ...]] = {}
    _materialize(store, [back], links)
    # Forwards: per chain, the lowest sequence that has a conflicted event in its closure
    # (inclusive), over the links just read (every path inside the closure uses only them).
    lowest: dict[int, int] = {}
    for c, s in positions.values():
        if s < lowest.get(c, s + 1):
            lowest[c] = s
    reverse: dict[int, list[tuple[int, int, int]]] = {}  # target chain -> (ts, origin, os)
    for c, chain_links in links.items():
        for origin_seq, target_chain, target_seq in chain_links:
            into = reverse.get(target_chain)
            if into is None:
                into = reverse[target_chain] = []
            into.append((target_seq, c, origin_seq))
    dirty = sorted(lowest)
    while dirty:
        target_chain = dirty.pop()
        low = lowest[target_chain]
        for target_seq, origin_chain, origin_seq in reverse.get(target_chain, ()):
            if target_seq >= low and origin_seq < lowest.get(origin_chain, origin_seq + 1):
                lowest[origin_chain] = origin_seq
                dirty.append(origin_chain)
    ranges = {c: (lowest[c] - 1, back.reach[c]) for c in sorted(lowest) if c in back.reach}
    sub = _members(store, ranges)
    if unindexed:
        sub |= _unindexed_part(store, unindexed, ids, lowest)
    return frozenset(sub)


def _unindexed_part(
    store: _IndexStore,
    unindexed: set[str],
    conflicted: Sequence[str],
    lowest: Mapping[int, int],
) -> set[str]:
    """The unindexed events of the subgraph: those reaching a conflicted event, found by
    walking the unindexed closure backwards (children in memory)."""
    facts = dict(store.get_facts(sorted(unindexed)))
    targets = sorted({a for f in facts.values() for a in f.auth_event_ids} - unindexed)
    target_facts = store.get_facts(targets)
    target_pos = store.get_chain_positions([t for t in targets if t in target_facts])
    conflicted_set = set(conflicted)
    seeds = [i for i in sorted(unindexed) if i in conflicted_set]
    children: dict[str, list[str]] = {}
    for i in sorted(facts):
        f = facts[i]
        for a in f.auth_event_ids:
            if a in unindexed:
                if facts[a].room_id == f.room_id:
                    children.setdefault(a, []).append(i)
                continue
            tf = target_facts.get(a)
            tp = target_pos.get(a)
            if tf is None or tp is None or tf.room_id != f.room_id:
                continue
            if tp.sequence >= lowest.get(tp.chain_id, tp.sequence + 1):
                seeds.append(i)  # reaches an indexed event that reaches a conflicted one
    keep = set(seeds)
    frontier = list(keep)
    while frontier:
        nxt: list[str] = []
        for i in frontier:
            for child in children.get(i, ()):
                if child not in keep:
                    keep.add(child)
                    nxt.append(child)
        frontier = nxt
    return keep
