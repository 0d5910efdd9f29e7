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
   ``PROBE_BUDGET`` links; a probe that runs out keeps the link (a redundant link costs a row,
   never a wrong answer).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Collection, Mapping
from operator import attrgetter

import attrs

from .errors import StoreError
from .events.event import StateKey
from .protocols import ChainLink, ChainPosition, ChainReverseLink

__all__ = ["PROBE_BUDGET", "ChainCoverIndex", "IndexedEvent"]

#: The most links one reachability probe of the link reduction examines (rule 4).
PROBE_BUDGET = 256

_target_sequence = attrgetter("target_sequence")


@attrs.frozen
class IndexedEvent:
    """What the index needs to know of a stored event.

    Attributes:
        event_id: the event's ID.
        room_id: the event's room.
        state_key: ``(type, state_key)`` for a state event, ``None`` otherwise.
        auth_event_ids: the event's ``auth_events`` (RV 12: with the implied create event).
    """

    event_id: str
    room_id: str
    state_key: StateKey | None
    auth_event_ids: tuple[str, ...]


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
        self._events: dict[str, IndexedEvent] = {}  # the state events added
        self._positions: dict[str, ChainPosition] = {}
        self._members: dict[int, list[str]] = {}
        self._links: dict[int, list[ChainLink]] = {}
        self._reverse: dict[int, list[ChainReverseLink]] = {}  # by target chain, sorted
        self._next_chain = 1
        # Rule 1: an unindexed state event -> the auth IDs it still waits for, and the reverse.
        self._waiting_for: dict[str, set[str]] = {}
        self._waiters: dict[str, set[str]] = {}

    # -- reads (the ChainIndexReader shape) ---------------------------------------------------

    def positions(self, event_ids: Collection[str]) -> dict[str, ChainPosition]:
        """The positions of the indexed events among ``event_ids``."""
        pos = self._positions
        return {i: pos[i] for i in event_ids if i in pos}

    def links(self, chain_ids: Collection[int]) -> dict[int, tuple[ChainLink, ...]]:
        """The links leaving each chain, sorted (chains without links are absent)."""
        # Appended in increasing origin sequence (an event is indexed at its chain's tip), so
        # insertion order is sorted by origin; ties are sorted when they are made.
        links = self._links
        return {c: tuple(links[c]) for c in chain_ids if links.get(c)}

    def members(self, ranges: Mapping[int, tuple[int, int]]) -> dict[int, tuple[str, ...]]:
        """For each ``chain: (low, high)``, its events with ``low < sequence <= high``."""
        out: dict[int, tuple[str, ...]] = {}
        for chain, (low, high) in ranges.items():
            chain_members = self._members.get(chain)
            if chain_members is None:
                continue
            got = chain_members[max(low, 0) : max(high, 0)]
            if got:
                out[chain] = tuple(got)
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
            start = bisect_left(into, low + 1, key=_target_sequence)
            end = bisect_right(into, high, lo=start, key=_target_sequence)
            if end > start:
                out[chain] = tuple(into[start:end])
        return out

    def not_indexed(self, event_ids: Collection[str]) -> set[str]:
        """The IDs among ``event_ids`` that have no position (stored or not).

        Complexity: O(|event_ids|) in one set difference at C speed, no Python step per ID.
        """
        ids: set[str] = event_ids if isinstance(event_ids, set) else set(event_ids)
        return ids.difference(self._positions)

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
        event_id = event.event_id
        if event_id in self._events:
            return
        ready: list[str] = []
        # This arrival resolves the edges other events wait on (rule 1).
        waiters = self._waiters.get(event_id)
        if waiters:
            ready.extend(
                waiter
                for waiter in sorted(waiters)
                if self._events[waiter].room_id != event.room_id and self._release(waiter, event_id)
            )
            if not self._waiters.get(event_id):
                self._waiters.pop(event_id, None)
        if event.state_key is not None:
            self._events[event_id] = event
            room_of = self._room_of
            blockers = {
                a
                for a in event.auth_event_ids
                if a not in self._positions and room_of(a) in (None, event.room_id)
            }
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
            waiting = self._waiters.pop(current, set())
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
        event = self._events[event_id]
        positions = self._positions
        targets: list[str] = []
        for a in event.auth_event_ids:
            if a in positions and a not in targets and self._events[a].room_id == event.room_id:
                targets.append(a)  # (an indexed event is a state event the index keeps)
        # Rule 2: inherit the chain of the first same-key auth event at its chain's tip.
        chain = 0
        for a in targets:
            pos = positions[a]
            if (
                self._events[a].state_key == event.state_key
                and len(self._members[pos.chain_id]) == pos.sequence
            ):
                chain, seq = pos.chain_id, pos.sequence + 1
                break
        if not chain:
            chain, seq = self._next_chain, 1
            self._next_chain += 1
            self._members[chain] = []
        self._members[chain].append(event_id)
        positions[event_id] = ChainPosition(chain, seq)
        # Rule 3: link only to auth events not reachable otherwise.
        candidates = [a for a in targets if positions[a].chain_id != chain]
        for a in candidates:
            target = positions[a]
            if any(
                b != a and self.reaches(positions[b], target, budget=PROBE_BUDGET) for b in targets
            ):
                continue
            existing = self._links.setdefault(chain, [])
            if any(
                link.target_chain_id == target.chain_id
                and link.target_sequence >= target.sequence
                and link.origin_sequence <= seq
                for link in existing
            ):
                continue
            existing.append(ChainLink(seq, target.chain_id, target.sequence))
            if len(existing) > 1 and existing[-2].origin_sequence == seq:
                existing.sort()
            insort(
                self._reverse.setdefault(target.chain_id, []),
                ChainReverseLink(target.sequence, chain, seq),
            )

    # -- reachability -------------------------------------------------------------------------

    def reaches(self, source: ChainPosition, target: ChainPosition, *, budget: int | None) -> bool:
        """Whether ``target`` is in the auth chain of ``source`` according to the index.

        With a ``budget``, give up (answer ``False``) after examining that many links.
        """
        if source.chain_id == target.chain_id:
            return target.sequence < source.sequence
        best: dict[int, int] = {source.chain_id: source.sequence}
        stack = [source]
        examined = 0
        while stack:
            here = stack.pop()
            for link in self._links.get(here.chain_id, ()):
                examined += 1
                if budget is not None and examined > budget:
                    return False
                if link.origin_sequence > here.sequence:
                    continue
                if (
                    link.target_chain_id == target.chain_id
                    and link.target_sequence >= target.sequence
                ):
                    return True
                if best.get(link.target_chain_id, 0) < link.target_sequence:
                    best[link.target_chain_id] = link.target_sequence
                    stack.append(ChainPosition(link.target_chain_id, link.target_sequence))
        return False

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
        for chain, chain_members in self._members.items():
            for n, member in enumerate(chain_members, start=1):
                if self._positions.get(member) != ChainPosition(chain, n):
                    raise StoreError(f"chain {chain} disagrees with the position of {member}")
                if n > 1 and chain_members[n - 2] not in events[member].auth_event_ids:
                    raise StoreError(f"{member} does not have its chain predecessor as auth")
        for chain, links in self._links.items():
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
