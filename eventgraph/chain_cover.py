"""The chain cover index of the auth DAG: the pure maintenance logic a store runs on write.

This module sits at the protocol layer (layer 2), beside :mod:`eventgraph.protocols`, on
purpose: stores maintain the index in their write path, and stores may not import an algorithm
(layer 3, ``eventgraph.graph``). It imports only the protocols' value types and the model. The
*queries* over the index live with the algorithms (:mod:`eventgraph.graph.auth_chain`) and use
only :class:`~eventgraph.protocols.ChainIndexReader`.

Rules of this module (the idea is Synapse's chain cover, research/synapse.md §1.6; this is our
own code):

1. Only state events are indexed (auth chains hold state events). An event is indexed as soon as
   every ``auth_events`` entry is stored, and each entry stored in the same room is indexed;
   entries stored in another room are not edges (the auth rules reject them, digest §6.3 rule
   2). Until then it waits; a missing auth event that arrives later releases it, and the
   release cascades (iteratively). A forged cycle never gets indexed, nor does anything above
   it.
2. An event joins the chain of its first auth event with the same ``(type, state_key)`` when
   that event is the chain's tip; otherwise it starts a new chain at sequence 1.
3. Links are *reduced*: an auth event on the event's own chain needs none; one reachable from
   another of its auth events needs none; one covered by an existing link of the chain needs
   none. The transitive closure is never stored (CVE-2024-31208).
   Each link is also kept with its target chain (a :class:`ChainReverseLink`), sorted, for the
   reads that walk the index upwards (:class:`~eventgraph.protocols.ChainIndexReverseReader`).
4. Work per indexed event is bounded: each reachability probe of the reduction examines at most
   ``PROBE_BUDGET`` links (every link of each chain it pops counts, in order); a probe that
   runs out keeps the link (a redundant link costs a row, never a wrong answer).
5. Speed never changes the index: a probe whose answer is known without walking (nothing can
   reach the target, the source has no way off its chain, or the source was indexed before
   the target) is skipped, and a hub probed for event after event is answered from a cached
   walk when that gives the probe's own answer, budget included (``ChainCoverIndex._reached``).
   The index holds exactly the links of the plain double loop over auth events with
   link-by-link probes (the tests hold it to that reference), so an index replayed from a
   store built by older code agrees with it.
6. Depths are senders' claims, so the index records, per room, whether they agree with the
   auth DAG: a room is *disordered* once an event is indexed whose depth is unknown (not given
   to the index) or not greater than the depth of each of its same-room auth events
   (:meth:`ChainCoverIndex.depths_descend`). Every auth path of a room that is not disordered
   goes down in depth, so a walk may take its events a depth at a time. Indexing never waits
   for this and no later event clears it.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Collection, Mapping
from typing import NamedTuple

import attrs

from .errors import StoreError
from .events.event import StateKey
from .protocols import ChainLink, ChainPosition, ChainReverseLink

__all__ = ["PROBE_BUDGET", "ChainCoverIndex", "IndexedEvent"]

#: The most links one reachability probe of the link reduction examines (rule 4).
PROBE_BUDGET = 256
#: How many walks the index keeps for its probes in each of its two generations (the young
#: one becomes the old one when full, and a walk found in the old one moves back: the walks
#: probed again and again stay).
_WALK_CACHE_SIZE = 1024


class _Walk(NamedTuple):
    """A complete walk of the reachability probe from one position, with no target
    (``ChainCoverIndex._walk``), kept to answer later probes from that position.

    (A named tuple: made at C speed, one per walk.)

    Attributes:
        best: the highest sequence reached on each chain (the start included).
        popped: the chains the walk popped, in order (repeats included).
        counted: the links its pops counted, when ``made`` links had been made.
        repeat: the most times one chain was popped.
        made: how many links the index had made when ``counted`` was taken.
        complete: the walk ended within its cap (otherwise nothing else is kept).
    """

    best: dict[int, int]
    popped: tuple[int, ...]
    counted: int
    repeat: int
    made: int
    complete: bool


class _Kept(NamedTuple):
    """What the index keeps of an added state event (the fields of :class:`IndexedEvent`
    but the ID, its key). A named tuple: made at C speed, and, holding only strings and
    tuples of strings, left alone by the garbage collector once it has seen it."""

    room_id: str
    state_key: StateKey | None
    auth_event_ids: tuple[str, ...]
    depth: int | None


#: ``tuple.__new__``: makes the index's named tuples without a Python-level ``__new__`` call.
_new = tuple.__new__


@attrs.frozen
class IndexedEvent:
    """What the index needs to know of a stored event.

    Attributes:
        event_id: the event's ID.
        room_id: the event's room.
        state_key: ``(type, state_key)`` for a state event, ``None`` otherwise.
        auth_event_ids: the event's ``auth_events`` (RV 12: with the implied create event).
        depth: the event's ``depth``, or ``None`` if not known here (its room is then
            disordered: rule 6).
    """

    event_id: str
    room_id: str
    state_key: StateKey | None
    auth_event_ids: tuple[str, ...]
    depth: int | None = None


class ChainCoverIndex:
    """An in-memory chain cover index, maintained one stored event at a time.

    ``room_of`` tells the index the room of any *stored* event (``None`` if not stored); only
    state events are kept by the index itself, so a store passes its own lookup.

    >>> rooms = {"$a": "!r", "$b": "!r"}
    >>> index = ChainCoverIndex(rooms.get)
    >>> index.add(IndexedEvent("$b", "!r", ("m.test", ""), ("$a",)))   # $a not stored yet
    >>> index.positions(["$a", "$b"])
    {}
    >>> index.add(IndexedEvent("$a", "!r", ("m.test", ""), ()))
    >>> index.positions(["$a", "$b"])
    {'$a': ChainPosition(chain_id=1, sequence=1), '$b': ChainPosition(chain_id=1, sequence=2)}
    """

    def __init__(self, room_of: Callable[[str], str | None]) -> None:
        self._room_of = room_of
        self._events: dict[str, _Kept] = {}  # the state events added
        self._positions: dict[str, ChainPosition] = {}
        self._members: dict[int, list[str]] = {}
        self._links: dict[int, list[ChainLink]] = {}
        self._reverse: dict[int, list[ChainReverseLink]] = {}  # by target chain, sorted
        self._next_chain = 1
        # What a complete walk from a position reaches (see _reached), for the positions
        # probed lately: hubs (power levels, join rules) are probed for nearly every event.
        # Two generations (_WALK_CACHE_SIZE): a walk used again is moved to the young one.
        self._walks: dict[tuple[int, int], _Walk] = {}
        self._old_walks: dict[tuple[int, int], _Walk] = {}
        # When each indexed event was indexed (0, 1, ...): a probe can only reach events
        # indexed before its source (rule 5; see _index).
        self._order: dict[str, int] = {}
        self._made = 0  # links made so far
        # Rule 1: an unindexed state event -> the auth IDs it still waits for, and the reverse.
        self._waiting_for: dict[str, set[str]] = {}
        self._waiters: dict[str, set[str]] = {}
        # Rule 6: the rooms where an indexed event's depth is unknown or not above one of its
        # same-room auth events' depths.
        self._disordered: set[str] = set()

    # -- reads (the ChainIndexReader shape) ---------------------------------------------------

    def positions(self, event_ids: Collection[str]) -> dict[str, ChainPosition]:
        """The positions of the indexed events among ``event_ids``."""
        pos = self._positions
        return {i: pos[i] for i in event_ids if i in pos}

    def links(self, chain_ids: Collection[int]) -> dict[int, tuple[ChainLink, ...]]:
        """The links leaving each chain, sorted (chains without links are absent)."""
        # Kept sorted as they are made (an event is indexed at its chain's tip, so each new
        # link goes at the end, after ties on its origin sequence).
        links = self._links
        out: dict[int, tuple[ChainLink, ...]] = {}
        for c in chain_ids:
            got = links.get(c)
            if got:
                out[c] = tuple(got)
        return out

    def members(self, ranges: Mapping[int, tuple[int, int]]) -> dict[int, tuple[str, ...]]:
        """For each ``chain: (low, high)``, its events with ``low < sequence <= high``."""
        out: dict[int, tuple[str, ...]] = {}
        members_of = self._members
        for chain, (low, high) in ranges.items():
            chain_members = members_of.get(chain)
            if chain_members is None or high <= max(low, 0) or low >= len(chain_members):
                continue
            out[chain] = tuple(chain_members[max(low, 0) : high])
        return out

    def reverse_links(
        self, ranges: Mapping[int, tuple[int, int]]
    ) -> dict[int, tuple[ChainReverseLink, ...]]:
        """For each ``chain: (low, high)``, the links into it with ``low < target <= high``.

        Complexity: O(log links into the chain + answer) per chain.
        """
        out: dict[int, tuple[ChainReverseLink, ...]] = {}
        reverse = self._reverse
        for chain, (low, high) in ranges.items():
            into = reverse.get(chain)
            if not into or high <= low:
                continue
            # Sorted tuples: (n,) sorts before every link at target n and after those below.
            start = bisect_left(into, (low + 1,))
            end = bisect_left(into, (high + 1,), lo=start)
            if end > start:
                out[chain] = tuple(into[start:end])
        return out

    def depths_descend(self, room_ids: Collection[str]) -> bool:
        """Whether no room of ``room_ids`` is disordered (rule 6): in each, every indexed
        event's depth is greater than its same-room auth events' depths (a room the index has
        never seen qualifies: it holds no event)."""
        return self._disordered.isdisjoint(room_ids)

    @property
    def disordered_rooms(self) -> Collection[str]:
        """The rooms that are disordered (rule 6), live (for a store that persists them)."""
        return self._disordered

    def not_indexed(self, event_ids: Collection[str]) -> set[str]:
        """The IDs among ``event_ids`` that have no position (stored or not).

        Complexity: O(|event_ids|) in one set difference at C speed, no Python step per ID.
        """
        ids: set[str] = event_ids if isinstance(event_ids, set) else set(event_ids)
        return ids.difference(self._positions)

    @property
    def awaited(self) -> Collection[str]:
        """The IDs unindexed events wait for (rule 1), live: an event not among them and not
        a state event needs no :meth:`add` (what :meth:`add_fields` checks first)."""
        return self._waiters.keys()

    @property
    def waiting_count(self) -> int:
        """How many state events wait unindexed (rule 1)."""
        return len(self._waiting_for)

    # -- writes -------------------------------------------------------------------------------

    def add(self, event: IndexedEvent) -> None:
        """Record a newly stored event; index it, and whatever it releases, when ready.

        Adding an event ID a second time is a no-op.

        Complexity: O(auth events² x ``PROBE_BUDGET``) per event indexed (plus a sorted insert
        into the target chain's reverse links per link made), amortised over the
        events a late arrival releases.
        """
        self.add_fields(
            event.event_id, event.room_id, event.state_key, event.auth_event_ids, event.depth
        )

    def add_fields(
        self,
        event_id: str,
        room_id: str,
        state_key: StateKey | None,
        auth_event_ids: tuple[str, ...],
        depth: int | None = None,
    ) -> None:
        """:meth:`add` given the fields of an :class:`IndexedEvent`; the same, but an event
        that is not a state event and that no event waits for (most of them: messages) costs
        one dictionary lookup and no object."""
        if state_key is None and event_id not in self._waiters:
            return  # nothing to do: the event is not kept and releases nothing
        events = self._events
        if event_id in events:
            return
        ready: list[str] = []
        # This arrival resolves the edges other events wait on (rule 1).
        waiters = self._waiters.get(event_id)
        if waiters:
            ready.extend(
                waiter
                for waiter in sorted(waiters)
                if events[waiter].room_id != room_id and self._release(waiter, event_id)
            )
            if not self._waiters.get(event_id):
                self._waiters.pop(event_id, None)
        if state_key is not None:
            events[event_id] = _new(_Kept, (room_id, state_key, auth_event_ids, depth))
            positions = self._positions
            blockers: set[str] | None = None
            for a in auth_event_ids:
                if a not in positions and self._room_of(a) in (None, room_id):
                    if blockers is None:
                        blockers = set()
                    blockers.add(a)
            if blockers:
                self._waiting_for[event_id] = blockers
                for a in blockers:
                    self._waiters.setdefault(a, set()).add(event_id)
            else:
                ready.append(event_id)
        # Index everything ready, releasing waiters as we go (iteratively, never recursively).
        while ready:
            current = ready.pop()
            self._index(current)
            waiting = self._waiters.pop(current, None)
            if waiting:
                ready.extend(w for w in sorted(waiting, reverse=True) if self._release(w, current))

    def _release(self, waiter: str, awaited: str) -> bool:
        """Drop one awaited ID of ``waiter``; whether ``waiter`` is now ready."""
        waiter_waits = self._waiting_for[waiter]
        waiter_waits.discard(awaited)
        self._waiters.get(awaited, set()).discard(waiter)
        if waiter_waits:
            return False
        del self._waiting_for[waiter]
        return True

    def _index(self, event_id: str) -> None:
        """Give ``event_id`` (ready: its same-room auth events are indexed) a position and links.

        Rule 3 is read as: link to auth event ``a`` unless another auth event ``b`` reaches it
        (a probe, :meth:`_probe`, with ``PROBE_BUDGET``) or an existing link of the chain
        covers it. Each probe's answer is what counts, not the order they run in (each has its
        own budget), so probes that must answer ``False`` are skipped and the others are
        answered from cached walks where that gives the same answer (:meth:`_reached`): the
        index holds exactly the links of the plain double loop over auth events.

        Complexity: O(auth events) dictionary steps for each of the event's auth events, plus
        a walk (at most ``PROBE_BUDGET`` links) from an auth event not probed lately; and a
        sorted insert per link made (into the chain's links and the target chain's reverse
        links).
        """
        events = self._events
        event = events[event_id]
        room_id = event.room_id
        state_key = event.state_key
        positions = self._positions
        members = self._members
        links_of = self._links
        order = self._order
        # One pass over the auth events gathers what the rules below read: the targets (the
        # distinct indexed same-room auth events) and their positions; the chain to inherit
        # (rule 2: the first same-key target at its chain's tip); the highest target on each
        # chain; and the candidate probe sources (rule 3: targets with a link at or below
        # them; a link made below for this event has its origin above every target, so it
        # would change none of these).
        targets: list[str] = []
        places: list[ChainPosition] = []  # their positions
        top: dict[int, int] = {}  # the highest auth event on each chain
        candidates: list[tuple[ChainPosition, int]] = []  # (position, order indexed)
        latest = -1  # the latest order among the candidates
        chain = 0
        seq = 1
        # Rule 6: compare depths unless the room is disordered already.
        depth = event.depth
        disordered = self._disordered
        if depth is None:
            disordered.add(room_id)
        compare = room_id not in disordered
        for a in event.auth_event_ids:
            place = positions.get(a)
            if place is None or a in targets:
                continue
            kept = events[a]  # (an indexed event is a state event the index keeps)
            if kept.room_id != room_id:
                continue
            if compare and kept.depth >= depth:  # type: ignore[operator]  # (not None: rule 6)
                disordered.add(room_id)
                compare = False
            targets.append(a)
            places.append(place)
            c, s = place
            if not chain and kept.state_key == state_key and len(members[c]) == s:
                chain, seq = c, s + 1  # rule 2
            if s > top.get(c, 0):
                top[c] = s
            out = links_of.get(c)
            if out and out[0][0] <= s:
                o = order[a]
                candidates.append((place, o))
                if o > latest:
                    latest = o
        if chain:
            members[chain].append(event_id)
        else:
            chain = self._next_chain
            self._next_chain = chain + 1
            members[chain] = [event_id]
        positions[event_id] = _new(ChainPosition, (chain, seq))
        order[event_id] = len(order)
        # Rule 3: link only to auth events not reachable otherwise.
        reverse = self._reverse
        existing = links_of.get(chain)
        for target, (target_chain, target_seq) in zip(targets, places, strict=True):
            if target_chain == chain or top[target_chain] > target_seq:
                continue  # on the event's own chain, or below another auth event on its chain
            into = reverse.get(target_chain)
            # Another chain reaches the target only through a link landing on its chain at or
            # above it, from an auth event with a link at or below it (no such link: every
            # probe would answer False).
            if into and into[-1][0] >= target_seq:
                # A probe only reaches events indexed before its source: everything it passes
                # was indexed before what links to it, and a chain's events in sequence order.
                # So an auth event indexed before the target cannot reach it: not probed.
                after = order[target]
                if latest > after:
                    # _reached, its usual case inline: each source's walk cached lately and
                    # complete, answering without a probe (else _reached from that source).
                    walks = self._walks
                    reached = False
                    for source, indexed in candidates:
                        if indexed <= after or source[0] == target_chain:
                            continue
                        walk = walks.get(source)
                        if walk is None or not walk.complete:
                            if self._reached([(source, indexed)], after, target_chain, target_seq):
                                reached = True
                                break
                            continue
                        if walk.best.get(target_chain, 0) < target_seq:
                            continue
                        if walk.counted + walk.repeat * (self._made - walk.made) <= PROBE_BUDGET:
                            reached = True
                            break
                        if self._reached([(source, indexed)], after, target_chain, target_seq):
                            reached = True
                            break
                    if reached:
                        continue
            if existing is None:
                existing = links_of[chain] = []
            else:
                covered = False
                for o, tc, ts in existing:  # (a loop: no generator object per target)
                    if tc == target_chain and ts >= target_seq and o <= seq:
                        covered = True
                        break
                if covered:
                    continue  # covered by a link of the chain
            link = _new(ChainLink, (seq, target_chain, target_seq))
            if existing and existing[-1] > link:
                insort(existing, link)
            else:
                existing.append(link)  # (the usual case: the event is the chain's tip)
            back = _new(ChainReverseLink, (target_seq, chain, seq))
            if into is None:
                reverse[target_chain] = [back]
            elif into[-1] > back:
                # Usually among the last links (those into the chain's tip): search there first.
                tail = len(into) - 32
                insort(into, back, tail if tail > 0 and into[tail - 1] <= back else 0)
            else:
                into.append(back)  # (the usual case: a link to a chain's tip, from a new chain)
            self._made += 1

    def _reached(
        self,
        candidates: list[tuple[ChainPosition, int]],
        after: int,
        target_chain: int,
        target_seq: int,
    ) -> bool:
        """Whether a probe (:meth:`_probe` with ``PROBE_BUDGET``) from one of the sources on
        another chain than the target answers ``True``; from cached walks when they can tell.
        The sources are the positions of ``candidates`` (position, order indexed) indexed
        after ``after`` (see :meth:`_index`), in order.

        A walk from an indexed position follows only links whose origin is at most where it
        stands, all made before anything above that position was indexed (an event is indexed
        at its chain's tip): so the positions a walk pushes, and the order it pops them in,
        never change; only the number of links it *counts* grows, as popped chains grow. A
        cached complete walk (:class:`_Walk`) knows what its start reaches. Not the target:
        the probe answers ``False``, whatever its budget. The target, and all the links the
        walk's pops count now fit the budget: even the complete walk fits, so the probe
        answers ``True``. Otherwise (or if the walk outgrew its budget when it was cached) the
        probe runs.

        Complexity: O(1) per source cached and not reaching the target; a walk (at most
        ``PROBE_BUDGET`` links) per source not cached.
        """
        budget = PROBE_BUDGET
        walks = self._walks
        for source, indexed in candidates:
            if indexed <= after:
                continue
            chain, sequence = source
            if chain == target_chain:
                continue
            walk = walks.get(source)
            if walk is None:
                walk = self._old_walks.get(source)
                if walk is None:
                    walk = self._walk(chain, sequence, budget)
                if len(walks) >= _WALK_CACHE_SIZE:
                    self._old_walks = walks
                    walks = self._walks = {}
                walks[source] = walk
            if walk.complete:
                if walk.best.get(target_chain, 0) < target_seq:
                    continue
                # Each link made since the walk adds one to a chain it popped at most
                # ``repeat`` times.
                if walk.counted + walk.repeat * (self._made - walk.made) <= budget:
                    return True
                links_of = self._links
                counted = sum(len(links_of.get(c, ())) for c in walk.popped)
                if counted <= budget:
                    walks[source] = walk._replace(counted=counted, made=self._made)
                    return True
            if self._probe(chain, sequence, target_chain, target_seq, budget):
                return True
        return False

    # -- reachability -------------------------------------------------------------------------

    def reaches(self, source: ChainPosition, target: ChainPosition, *, budget: int | None) -> bool:
        """Whether ``target`` is in the auth chain of ``source`` according to the index.

        With a ``budget``, give up (answer ``False``) after examining that many links.
        """
        if source.chain_id == target.chain_id:
            return target.sequence < source.sequence
        return self._probe(
            source.chain_id, source.sequence, target.chain_id, target.sequence, budget
        )

    def _probe(
        self, chain: int, sequence: int, target_chain: int, target_seq: int, budget: int | None
    ) -> bool:
        """:meth:`reaches` between two chains: a depth-first walk over the links.

        The budget counts every link of each chain the walk pops, in order, including those
        above where the walk stands (their origins are beyond it); as links are sorted by
        origin, the walk stops reading a chain at the first such link and counts the rest in
        one step, and a stale pop (a lower stand on a chain already read from higher) is only
        counted. So a probe gives up exactly where a link-by-link walk would, and the index
        makes the same links however fast its probes are (an index replayed from a SQLite
        store built before agrees with its tables).
        """
        links_of = self._links
        limit = (1 << 62) if budget is None else budget
        best = {chain: sequence}
        stack = [(chain, sequence)]
        examined = 0
        while stack:
            here, stand = stack.pop()
            chain_links = links_of.get(here)
            if not chain_links:
                continue
            examined += len(chain_links)
            if best[here] > stand:
                # Stale: a higher stand on this chain was pushed later, so it was popped first
                # and read every link this one would (none hit, none improves ``best``).
                if examined > limit:
                    return False
                continue
            if examined > limit:
                # The budget runs out in this chain: read only the links it still allows.
                chain_links = chain_links[: limit - examined + len(chain_links)]
            for origin, tc, ts in chain_links:
                if origin > stand:
                    break
                if tc == target_chain and ts >= target_seq:
                    return True
                if best.get(tc, 0) < ts:
                    best[tc] = ts
                    stack.append((tc, ts))
            if examined > limit:
                return False
        return False

    def _walk(self, chain: int, sequence: int, cap: int) -> _Walk:
        """The walk of :meth:`_probe` from ``(chain, sequence)`` to no target, counting at most
        ``cap`` links (incomplete beyond)."""
        links_of = self._links
        best = {chain: sequence}
        stack = [(chain, sequence)]
        popped: list[int] = []
        examined = 0
        while stack:
            here, stand = stack.pop()
            popped.append(here)
            chain_links = links_of.get(here)
            if not chain_links:
                continue
            examined += len(chain_links)
            if examined > cap:
                return _Walk(best, (), 0, 0, 0, False)
            if best[here] > stand:
                continue  # stale (see _probe)
            for origin, tc, ts in chain_links:
                if origin > stand:
                    break
                if best.get(tc, 0) < ts:
                    best[tc] = ts
                    stack.append((tc, ts))
        # The most pops of one chain (a chain popped twice only after a stale push: rare).
        distinct = set(popped)
        repeat = 1 if len(distinct) == len(popped) else max(map(popped.count, distinct))
        return _Walk(best, tuple(popped), examined, repeat, self._made, True)

    # -- invariants ---------------------------------------------------------------------------

    def check(self) -> None:
        """Recompute what must be indexed and verify the chains and links.

        Complexity: O(events x auth events x links reachable): for tests.

        Raises:
            StoreError: the index disagrees with the events it was given.
        """
        events = self._events
        room_of = self._room_of
        # Which state events must be indexed: a fixpoint over rule 1, iterated (no recursion).
        indexed: set[str] = set()
        changed = True
        while changed:
            changed = False
            for event_id in sorted(events):
                ev = events[event_id]
                if event_id in indexed:
                    continue
                if all(
                    a in indexed or room_of(a) not in (None, ev.room_id) for a in ev.auth_event_ids
                ):
                    indexed.add(event_id)
                    changed = True
        if indexed != set(self._positions):
            msg = "the chain index does not hold exactly the events whose auth events are indexed"
            raise StoreError(msg)
        if set(self._waiting_for) != set(events) - indexed:
            raise StoreError("the chain index's waiting list disagrees with its events")
        disordered = set()  # rule 6, recomputed
        for event_id in indexed:
            ev = events[event_id]
            for a in ev.auth_event_ids:
                kept = events.get(a)
                if kept is None or kept.room_id != ev.room_id:
                    continue
                if ev.depth is None or kept.depth is None or kept.depth >= ev.depth:
                    disordered.add(ev.room_id)
            if ev.depth is None:
                disordered.add(ev.room_id)
        if disordered != self._disordered:
            raise StoreError("the chain index's disordered rooms disagree with its events")
        for chain, chain_members in self._members.items():
            for n, member in enumerate(chain_members, start=1):
                if self._positions.get(member) != ChainPosition(chain, n):
                    raise StoreError(f"chain {chain} disagrees with the position of {member}")
                if n > 1 and chain_members[n - 2] not in events[member].auth_event_ids:
                    raise StoreError(f"{member} does not have its chain predecessor as auth")
        for chain, links in self._links.items():
            if links != sorted(links):  # the probes stop reading at the first origin too high
                raise StoreError(f"the links of chain {chain} are not sorted")
            for link in links:
                origin = self._members[chain][link.origin_sequence - 1]
                target = self._members[link.target_chain_id][link.target_sequence - 1]
                if target not in events[origin].auth_event_ids:
                    raise StoreError(f"the link {origin} -> {target} is not an auth edge")
        reverse = {
            c: sorted(ChainReverseLink(x.target_sequence, o, x.origin_sequence) for o, x in pairs)
            for c, pairs in _by_target(self._links).items()
        }
        if reverse != {c: r for c, r in self._reverse.items() if r}:
            raise StoreError("the chain index's reverse links disagree with its links")
        for event_id, pos in self._positions.items():
            ev = events[event_id]
            for a in ev.auth_event_ids:
                if room_of(a) != ev.room_id:
                    continue
                if not self.reaches(pos, self._positions[a], budget=None):
                    raise StoreError(f"the index loses the auth edge {event_id} -> {a}")


def _by_target(links: Mapping[int, list[ChainLink]]) -> dict[int, list[tuple[int, ChainLink]]]:
    """The links grouped by target chain, each with its origin chain."""
    out: dict[int, list[tuple[int, ChainLink]]] = {}
    for origin in sorted(links):
        for link in links[origin]:
            out.setdefault(link.target_chain_id, []).append((origin, link))
    return out
