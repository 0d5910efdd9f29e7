"""State resolution of stored state groups, in proportion to where they differ.

:func:`~eventgraph.state.resolution.resolve_state` takes whole states: partitioning them, and
the auth difference of their events, cost O(state size) — tens of milliseconds per fork in a
room of 10^5 members, where a fork's branches typically differ at a handful of keys. When the
states are stored state groups, :func:`resolve_groups` gives the *same answer* by resolving
only a small set of keys R, read from the groups, and taking every other key from the state
the inputs share.

Why that is exact (v2 and v2.1; room version 1 is left to the whole-state path). Write Sᵢ for
the input states, D for the keys where they differ (read from the inputs at the superset of
them that the store's :class:`~eventgraph.protocols.StateGroupChangesReader` gives), R ⊇ D for
the keys resolved, Sᵢ' for Sᵢ restricted to R and E for the entries outside R — the same in
every input. A(X) is the inclusive auth chain of X (the events and their auth ancestors;
resolution uses the inclusive reading, see :mod:`eventgraph.state.resolution`).

1. Conflicted state set: made of the entries at differing keys, all in R, so the same for Sᵢ'.
   The unconflicted state map of Sᵢ' is the full one restricted to R.
2. Auth difference: A(Sᵢ) = A(Sᵢ') ∪ A(E) with A(E) common to all, so
   AD = ∪A(Sᵢ) − ∩A(Sᵢ) = AD' − A(E), where AD' is the auth difference of the Sᵢ'. An event of
   AD' is in A(E) exactly when some entry of E is it or has it in its auth chain — a
   *witness*. Moving a witness's key into R removes the event from the restricted difference
   and adds nothing (the witness is common to all inputs); once every event of AD' ∩ A(E)
   has its witness's key in R, the restricted auth difference is AD. Moving any further
   common key into R keeps it AD (AD ∩ A(E) = ∅).
3. v2.1's conflicted state subgraph depends only on the conflicted events (1).
4. The iterative auth checks read, for each event of the full conflicted set, the state at its
   "Auth events selection" keys (and the create event); the mainline ordering reads the
   resolved power levels. With those keys in R, every read is the same.
5. The final step writes the unconflicted map over the result; the keys of the full
   conflicted set's events are put in R so that an unconflicted entry of theirs is written
   over them in the restricted run too. Keys outside R are then the shared entries.

So R = D ∪ {create, power levels, join rules} ∪ the witnesses' keys ∪ the keys and auth keys of
the full conflicted set, and the answer is the restricted resolution on R plus the shared state
elsewhere — returned as changes to one input group. Witnesses are found by walking the chain
cover index *up* from each event of AD' (reverse links) until a chain holds the shared entry of
its key at or above the reached sequence; every index chain holds events of one key (the chain
cover rule 2 in :mod:`eventgraph.chain_cover`). The walk is bounded by a budget; past it, or
when the store cannot tell the differing keys or lacks the reverse index, the answer is
``None`` and the caller resolves whole states.

A differential property test holds :func:`resolve_groups` equal to whole-state
:func:`~eventgraph.state.resolution.resolve_state` on generated rooms of every room version.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import cast

import attrs

from ..errors import InvalidRequestError
from ..events.auth_selection import auth_types_for_event
from ..events.event import Event, StateKey
from ..events.room_versions import RoomVersion, StateResAlgorithm, room_version
from ..graph.auth_chain import auth_chain_difference_walking_down, conflicted_subgraph
from ..protocols import (
    ChainIndexReverseReader,
    ChainPosition,
    StateGroupChangesReader,
    StateStore,
    _provides,
)
from .resolution import _resolve, _Stats

__all__ = ["GroupResolution", "resolve_groups"]

_CREATE: StateKey = ("m.room.create", "")
_POWER_LEVELS: StateKey = ("m.room.power_levels", "")
_JOIN_RULES: StateKey = ("m.room.join_rules", "")
#: Above any sequence number a chain can reach.
_FAR = 1 << 62
#: How many chains the witness search tests and expands per store round trip.
_SLICE = 64


@attrs.frozen
class GroupResolution:
    """The resolution of stored state groups, as changes to one of them.

    Attributes:
        base: the input group the answer is written on (the one needing fewest changes).
        changes: ``key: event ID`` to set and ``key: None`` to remove, relative to ``base``.
        keys_resolved: the size of R, the keys actually resolved.
        chains_searched: index chains visited looking for witnesses.
    """

    base: int
    changes: dict[StateKey, str | None]
    keys_resolved: int
    chains_searched: int


def resolve_groups(
    room_version_id: str | RoomVersion,
    groups: Sequence[int],
    store: StateStore,
    *,
    search_budget: int = 4096,
) -> GroupResolution | None:
    """The resolution of the states of stored ``groups``, computed on the keys where it can
    differ from their shared state (module docstring), or ``None`` when that cannot be done
    here: room version 1, a store without
    :class:`~eventgraph.protocols.StateGroupChangesReader` or
    :class:`~eventgraph.protocols.ChainIndexReverseReader`, groups it cannot compare, an
    unindexed event in the auth difference, or a witness search past ``search_budget`` chains.

    The answer equals ``resolve_state(room_version_id, [states of groups], store)`` (spec:
    server-server API "Room State Resolution"; digest §7.3–7.4).

    Complexity: O(|R|) state reads and the restricted resolution, plus the witness search:
    chains visited upward from each event of the restricted auth difference up to its first
    witness (at most ``search_budget`` in all) — never O(state size).

    Raises:
        UnsupportedRoomVersionError: unknown room version.
        InvalidRequestError: ``groups`` is not a sequence of group IDs (``int``).
        EventGraphError: what :func:`~eventgraph.state.resolution.resolve_state` raises for
            the events it reads (a missing conflicted event, a cycle of power events).

        The store is never written to.
    """
    rv = room_version(room_version_id)
    if isinstance(groups, (str, bytes)) or not all(type(g) is int for g in groups):
        raise InvalidRequestError("groups must be a sequence of state group IDs (int)")
    distinct = sorted(set(groups))
    if (
        rv.state_res is StateResAlgorithm.V1
        or len(distinct) < 2
        or not _provides(store, StateGroupChangesReader)
        or not _provides(store, ChainIndexReverseReader)
    ):
        return None
    differing = differing_keys(cast(StateGroupChangesReader, store), distinct)
    if differing is None:
        return None
    reader = _Reader(store, distinct)
    always = (_CREATE, _POWER_LEVELS, _JOIN_RULES)
    reader.read({*differing, *always})
    states = reader.states
    conflicted = {
        k: {s[k] for s in states.values() if k in s}
        for k in differing
        if len({s.get(k) for s in states.values()}) > 1
    }
    # R starts from the keys where the inputs really differ: the store's superset can hold
    # every key a compaction of one input's chain touched (hundreds, equal in every input).
    # Those equal entries are shared (E), which the argument allows outside R.
    resolved_keys = {*conflicted, *always}
    reader.keep(resolved_keys)
    if not conflicted:
        # The inputs are equal: resolving identical states gives that state.
        return GroupResolution(distinct[0], {}, len(resolved_keys), 0)

    # The auth events of the conflicted events are mostly shared entries (the sender's
    # membership, ...): putting their keys in R up front (any common key may join R, step 2)
    # makes them part of every restricted set, so the auth difference below meets them as
    # shared instead of searching above them.
    conflicted_events = store.get_events(sorted({e for ids in conflicted.values() for e in ids}))
    early = {k for ev in conflicted_events.values() for k in _auth_keys(rv, ev)}
    early.difference_update(resolved_keys)
    if early:
        reader.read(early)
        resolved_keys |= early

    # Step 2 of the module docstring: the restricted auth difference, less what the shared
    # entries outside R have in their auth chains.
    # (The restricted sets are small: their few shared events are walked down rather than
    # searched for upwards from candidates that may sit deep in long chains.)
    restricted = auth_chain_difference_walking_down(
        store, [set(states[g].values()) for g in distinct], inclusive=True
    )
    search = _WitnessSearch(
        cast(ChainIndexReverseReader, store), reader, resolved_keys, search_budget
    )
    difference: set[str] = set()
    witness_keys: set[StateKey] = set()
    for event_id in sorted(restricted):
        found = search.witness(event_id)
        if found is None:
            return None
        if found is _NONE:
            difference.add(event_id)
        else:
            assert isinstance(found, tuple)
            witness_keys.add(found)

    conflicted_ids = {e for ids in conflicted.values() for e in ids}
    full = conflicted_ids | difference
    if rv.state_res is StateResAlgorithm.V2_1:
        full.update(conflicted_subgraph(store, sorted(conflicted_ids)))
    events = store.get_events(sorted(full))
    extra: set[StateKey] = set(witness_keys)
    for event_id in full:
        ev = events.get(event_id)
        if ev is not None and ev.state_key is not None:
            extra.add((ev.type, ev.state_key))
            extra.update(_auth_keys(rv, ev))
    extra.difference_update(resolved_keys)
    if extra:
        reader.read(extra)
        resolved_keys |= extra

    # Store states (trusted); the auth difference is the one just found (step 2: exact, and
    # the same for R grown by the keys above), so it is not computed again.
    result = _resolve(
        rv, [states[g] for g in distinct], store, _Stats(), trusted=True, auth_difference=difference
    )
    best: tuple[int, int] | None = None
    best_changes: dict[StateKey, str | None] = {}
    for g in distinct:
        state = states[g]
        changes: dict[StateKey, str | None] = {
            k: result.get(k) for k in resolved_keys if state.get(k) != result.get(k)
        }
        if best is None or (len(changes), g) < best:
            best, best_changes = (len(changes), g), changes
    assert best is not None
    return GroupResolution(best[1], best_changes, len(resolved_keys), search.visited)


def differing_keys(store: StateGroupChangesReader, groups: Sequence[int]) -> set[StateKey] | None:
    """A superset of the keys where the states of stored ``groups`` differ (the union of the
    store's changed keys between the first group and each other), or ``None`` when the store
    cannot tell for some pair."""
    keys: set[StateKey] = set()
    for g in groups[1:]:
        changed = store.get_changed_keys(groups[0], g)
        if changed is None:
            return None
        keys.update(changed)
    return keys


def _auth_keys(rv: RoomVersion, ev: Event) -> tuple[StateKey, ...]:
    """The keys the iterative auth checks read for ``ev`` (server-server API "Auth events
    selection", plus the create event)."""
    return (_CREATE, *auth_types_for_event(rv, ev.type, ev.sender, ev.state_key, ev.content))


class _Reader:
    """The input groups' entries at the keys read so far (one store batch per call)."""

    def __init__(self, store: StateStore, groups: Sequence[int]) -> None:
        self._store = store
        self._groups = groups
        self.states: dict[int, dict[StateKey, str]] = {g: {} for g in groups}

    def read(self, keys: Collection[StateKey]) -> None:
        got = self._store.get_state(self._groups, keys)
        for g in self._groups:
            self.states[g].update(got.get(g, {}))

    def keep(self, keys: Collection[StateKey]) -> None:
        """Forget the entries read outside ``keys`` (the states hold R and nothing else)."""
        for state in self.states.values():
            for k in [k for k in state if k not in keys]:
                del state[k]

    def events(self, event_ids: Collection[str]) -> Mapping[str, Event]:
        """The stored events among ``event_ids``."""
        return self._store.get_events(event_ids)

    def shared(self, keys: Collection[StateKey]) -> dict[StateKey, str]:
        """The entries at ``keys``, which are outside R and so the same in every input."""
        first = self._groups[0]
        return dict(self._store.get_state((first,), keys).get(first, {}))


class _NoWitness:
    """The answer of a search that proved there is no witness."""


_NONE = _NoWitness()


class _WitnessSearch:
    """Finds, for an event, a shared entry outside R that has it in its inclusive auth chain
    (module docstring, step 2), by walking the chain cover index upwards."""

    def __init__(
        self,
        store: ChainIndexReverseReader,
        reader: _Reader,
        resolved_keys: set[StateKey],
        budget: int,
    ) -> None:
        self._store = store
        self._reader = reader
        self._resolved = resolved_keys
        self._budget = budget
        self.visited = 0
        self._chain_keys: dict[int, StateKey | None] = {}
        self._shared: dict[StateKey, str | None] = {}
        self._shared_positions: dict[str, ChainPosition | None] = {}

    def witness(self, event_id: str) -> StateKey | _NoWitness | None:
        """The key of a witness of ``event_id``, :data:`_NONE` if it has none, ``None`` if the
        search cannot tell (unindexed event, budget spent)."""
        store = self._store
        start = store.get_chain_positions((event_id,)).get(event_id)
        if start is None:
            return None
        # Breadth first, a slice of chains at a time: a shared event is usually met among the
        # first chains above (an old join rules event has thousands of joins above it, and
        # the first shared one is a witness), so the slice is tested before going on.
        lowest: dict[int, int] = {start.chain_id: start.sequence}
        queue: list[tuple[int, int]] = [(start.chain_id, start.sequence)]
        head = 0
        while head < len(queue):
            end = min(head + _SLICE, len(queue))
            batch = dict(queue[head:end])
            head = end
            self.visited += len(batch)
            if self.visited > self._budget:
                return None
            key = self._first_witness(batch)
            if key is not None:
                return key
            links = store.get_chain_reverse_links({c: (s - 1, _FAR) for c, s in batch.items()})
            for chain_links in links.values():
                for link in chain_links:
                    origin, seq = link.origin_chain_id, link.origin_sequence
                    if lowest.get(origin, _FAR) > seq:
                        lowest[origin] = seq
                        queue.append((origin, seq))
        return _NONE

    def _first_witness(self, frontier: Mapping[int, int]) -> StateKey | None:
        """The key of a chain of ``frontier`` whose shared entry sits at or above the reached
        sequence, if any (the chains are tested in order of their numbers)."""
        self._learn_chain_keys(frontier)
        keys = {
            c: k
            for c in sorted(frontier)
            if (k := self._chain_keys[c]) is not None and k not in self._resolved
        }
        unknown = [k for k in keys.values() if k not in self._shared]
        if unknown:
            found = self._reader.shared(unknown)
            for k in unknown:
                self._shared[k] = found.get(k)
        values = {c: v for c, k in keys.items() if (v := self._shared[keys[c]]) is not None}
        unplaced = [v for v in values.values() if v not in self._shared_positions]
        if unplaced:
            positions = self._store.get_chain_positions(unplaced)
            for v in unplaced:
                self._shared_positions[v] = positions.get(v)
        for c, v in values.items():
            pos = self._shared_positions[v]
            if pos is not None and pos.chain_id == c and pos.sequence >= frontier[c]:
                return keys[c]
        return None

    def _learn_chain_keys(self, chains: Collection[int]) -> None:
        """The key of each chain's events (one key per chain), from its first member."""
        unknown = [c for c in chains if c not in self._chain_keys]
        if not unknown:
            return
        members = self._store.get_chain_members(dict.fromkeys(unknown, (0, 1)))
        firsts = {c: ids[0] for c, ids in members.items() if ids}
        events = self._reader.events(list(firsts.values()))
        for c in unknown:
            ev = events.get(firsts.get(c, ""))
            key = (ev.type, ev.state_key) if ev is not None and ev.state_key is not None else None
            self._chain_keys[c] = key
