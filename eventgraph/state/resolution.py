"""State resolution: v1 (room version 1), v2 (room versions 2–11) and v2.1 (room version 12).

Rules of this module:

1. The algorithm is chosen by the room version's one feature ``state_res`` (digest §7.1):
   :attr:`~eventgraph.StateResAlgorithm.V1` follows ``rooms/v1.md`` "State resolution",
   ``V2`` follows ``rooms/fragments/v2-state-res.md`` and ``V2_1`` follows ``rooms/v12.md``
   "State resolution" (MSC4297). Every step below names the sentence of the spec it implements.
2. Every ordering is total and ends in an ``event_id`` tie-break, so the answer never depends on
   set or dict iteration, on the order of the state sets, or on the order events were stored in.
3. Events come from the store in batches: one ``get_events``/``get_facts`` pair per frontier
   (the conflicted events with the rest of the full conflicted set; the auth events of the whole
   set with the state entries its checks read; one step of every power-level walk at once),
   never one call per event. Only the rejected flag of the facts is read, so a store offering
   :class:`~eventgraph.protocols.FlaggedEventsReader` is asked ``get_flagged_facts`` instead
   (the facts of the few outlier or rejected events only). Auth chains, the auth difference
   and the conflicted state subgraph come from :mod:`eventgraph.graph.auth_chain` (the index).
4. **Previously rejected events** (decision; the spec is explicit, Synapse differs). Events of the
   full conflicted set that the store marks as rejected are *re-checked like any other event*:
   "Events that have been rejected due to failing auth based on the state at the event (rather
   than based on their auth chain) are handled as usual by the algorithm" (v2 "Rejected
   events"). So a rejected event enters the answer only if it passes the authorization rules
   against the resolved state at that point. Synapse never re-admits them
   (``research/synapse.md`` §8.8); we follow the spec, whose rationale is that rejection status
   is local to a server while the answer must converge across servers. Rejected *auth* events
   are never used: "Rejected auth events are deliberately excluded from use in the iterative
   auth checks" — when a key is missing from the state, only the event's own *non-rejected*
   ``auth_events`` fill it.
5. Hostile input gives a defined answer or an :class:`~eventgraph.EventGraphError`: state-set
   events the store lacks raise :class:`~eventgraph.EventNotFoundError`; conflicted events of
   several rooms raise :class:`~eventgraph.InvalidRequestError`; an auth cycle (forgeable with
   room version 1–2 IDs) raises :class:`~eventgraph.CycleError`; missing or foreign-room auth
   events are treated as absent (the check that needs them then fails); malformed content fails
   the authorization rules. Nothing recurses over the graph. Only ``trusted`` state sets (a
   store's, whose writes are checked) skip the type check of every entry.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from operator import countOf, itemgetter
from typing import NoReturn, cast

import attrs

from ..errors import CycleError, EventNotFoundError, InvalidRequestError
from ..events.event import Event, StateKey
from ..events.room_versions import RoomVersion, StateResAlgorithm, room_version
from ..graph.auth_chain import (
    auth_chain_difference_split,
    auth_chains_hold,
    conflicted_subgraph,
)
from ..protocols import EventReader, FlaggedEventsReader, _provides
from ._checker import AuthChecker
from ._mainline import mainline_positions

__all__ = ["resolve_state"]

_CREATE: StateKey = ("m.room.create", "")
_POWER_LEVELS: StateKey = ("m.room.power_levels", "")
_JOIN_RULES: StateKey = ("m.room.join_rules", "")
_MEMBER = "m.room.member"


def resolve_state(
    room_version_id: str | RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    store: EventReader,
    *,
    trusted: bool = False,
) -> dict[StateKey, str]:
    """Resolve several room states into one, with the room version's algorithm.

    Args:
        room_version_id: the room version (an identifier or a :class:`RoomVersion`).
        state_sets: the states to resolve, each mapping ``(type, state_key)`` to an event ID
            (for state at an event: the states after its ``prev_events``). Their order does not
            matter.
        store: the events and their facts; every event of a conflicted key must be stored.
        trusted: the state sets come from a store's
            :meth:`~eventgraph.protocols.StateGroupReader.get_state`, whose writes are checked
            (every key a ``(str, str)`` tuple, every value a ``str``: ``check_state_write``), so
            their entries are not type-checked again. The check touches every entry of every
            set: in a room of 10,000 members it is memory bound and costs about as much as the
            rest of a small fork's resolution. With ``trusted``, other malformed input may fail
            with any exception.

    Returns:
        The resolved state, a new dict (its iteration order carries no meaning). No state sets
        give ``{}``; one gives a copy of it.

    Raises:
        UnsupportedRoomVersionError: unknown room version.
        InvalidRequestError: a state set is not a mapping of ``(str, str)`` to ``str``, or the
            conflicted events belong to several rooms.
        EventNotFoundError: an event of a conflicted key is not in the store.
        CycleError: the auth events of the conflicted power events form a cycle.

        The store is never written to.

    Spec: server-server API "Room State Resolution"; ``rooms/v1.md`` "State resolution" (v1,
    room version 1); ``rooms/fragments/v2-state-res.md`` (v2, room versions 2–11);
    ``rooms/v12.md`` "State resolution" (v2.1, MSC4297). Digest §7.

    Complexity: with *n* the number of keys of the state sets and *c* the size of the full
    conflicted set: O(n) to partition, the auth difference (and in room version 12 the
    conflicted subgraph) from :mod:`eventgraph.graph.auth_chain`, O(c log c) to sort, one
    authorization check per event of the full conflicted set, and O(log h) per event to place
    it on the mainline (h: the length of the power-levels history), plus the power-levels
    events not met by an earlier resolution on the store (:mod:`eventgraph.state._mainline`
    keeps a tree of them per store). Store round trips: a constant number of batches plus one
    per step of the longest power-levels chain walked for the first time.

    Examples:
        >>> from eventgraph import MemoryStore
        >>> from eventgraph.testing.strategies import make_event
        >>> def ev(eid, type, key, content, auth, ts, sender="@a:x"):
        ...     return make_event(eid, room_id="!r:x", version="11", type=type, state_key=key,
        ...                       sender=sender, content=content, auth=auth,
        ...                       origin_server_ts=ts)
        >>> store = MemoryStore()
        >>> store.add_events([
        ...     ev("$c", "m.room.create", "", {"room_version": "11"}, (), 0),
        ...     ev("$j", "m.room.member", "@a:x", {"membership": "join"}, ("$c",), 1),
        ...     ev("$t1", "m.room.topic", "", {"topic": "one"}, ("$c", "$j"), 2),
        ...     ev("$t2", "m.room.topic", "", {"topic": "two"}, ("$c", "$j"), 3),
        ... ])
        >>> base = {("m.room.create", ""): "$c", ("m.room.member", "@a:x"): "$j"}
        >>> s1 = {**base, ("m.room.topic", ""): "$t1"}
        >>> s2 = {**base, ("m.room.topic", ""): "$t2"}
        >>> resolve_state("11", [s1, s2], store)[("m.room.topic", "")]
        '$t2'
        >>> resolve_state("11", [s2], store) == s2
        True
    """
    return _resolve(room_version_id, state_sets, store, _Stats(), trusted=trusted)


@attrs.define
class _Stats:
    """What one resolution did (for the benchmarks; never part of an answer)."""

    conflicted_keys: int = 0
    conflicted_events: int = 0
    auth_difference: int = 0
    full_conflicted: int = 0
    power_events: int = 0
    auth_checks: int = 0
    known_from_receipt: int = 0


def _resolve(
    room_version_id: str | RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    store: EventReader,
    stats: _Stats,
    *,
    trusted: bool = False,
    auth_difference: Collection[str] | None = None,
) -> dict[StateKey, str]:
    """:func:`resolve_state`, recording what it did in ``stats``.

    ``auth_difference``: the auth difference of the state sets (inclusive reading, see
    :func:`_resolve_v2`) when the caller knows it exactly — :func:`~eventgraph.state.
    group_resolution.resolve_groups` finds it on the way — so it is not computed again.
    """
    rv = room_version(room_version_id)
    sets, split = _checked(state_sets, trusted=trusted)
    if not sets:
        return {}
    if len(sets) == 1:
        return dict(sets[0])
    if rv.state_res is StateResAlgorithm.V1:
        return _resolve_v1(rv, sets, store, stats)
    return _resolve_v2(rv, sets, store, stats, split, auth_difference)


# -- input ---------------------------------------------------------------------------------------


def _validated(
    state_sets: object, *, trusted: bool = False
) -> tuple[list[Mapping[StateKey, str]], set[StateKey] | None]:
    """The state sets, checked to be mappings of ``(str, str)`` to ``str`` (rule 5), and for
    two sets the keys whose entries differ (``None`` when not computed here): :func:`_checked`
    without the values at those keys."""
    sets, split = _checked(state_sets, trusted=trusted)
    return sets, None if split is None else split[0]


#: For two state sets: the keys whose entries differ, and each set's values at those keys.
_Split = tuple[set[StateKey], list[set[str]]]


def _checked(
    state_sets: object, *, trusted: bool = False
) -> tuple[list[Mapping[StateKey, str]], _Split | None]:
    """The state sets, checked to be mappings of ``(str, str)`` to ``str`` (rule 5), and for
    two sets the keys whose entries differ with each set's values at them (``None`` when not
    computed here).

    The first set is checked entry by entry; of the others, only the entries that are not
    equal to an entry of the first (found by the symmetric difference of the items views, at C
    speed: state sets share most entries). An entry equal to a checked one is taken as that
    one (an equal ``str`` subclass counts as the ``str``); unhashable entries are refused.
    ``trusted`` sets (a store's, see :func:`resolve_state`) are only checked to be mappings.
    """
    # (a list or tuple, and dicts below, pass without the ABC checks: each is a Python call)
    if (
        type(state_sets) is not list
        and type(state_sets) is not tuple
        and (isinstance(state_sets, (str, bytes, Mapping)) or not isinstance(state_sets, Iterable))
    ):
        msg = "state_sets must be a sequence of mappings"
        raise InvalidRequestError(msg)
    sets: list[Mapping[StateKey, str]] = []
    split: _Split | None = None
    for s in state_sets:
        if type(s) is not dict and not isinstance(s, Mapping):
            msg = "each state set must be a mapping of (type, state_key) to an event ID"
            raise InvalidRequestError(msg)
        if trusted:
            pass
        elif not sets:
            _check_mapping(s)
        else:
            first = sets[0]
            try:
                entries = s.items() ^ first.items()
            except TypeError:  # an unhashable entry
                _check_entries(s.items())
                raise  # pragma: no cover (an unhashable entry is never (str, str) -> str)
            split = _checked_split(entries, first)
        sets.append(s)
    return sets, split if len(sets) == 2 else None


def _checked_split(
    entries: Iterable[tuple[object, object]], first: Mapping[StateKey, str]
) -> _Split:
    """The entries of two state sets that differ (``entries``: the symmetric difference of
    their items views, the first set's already checked), each refused if it is not
    ``(str, str) -> str`` (the first bad entry first; :func:`_check_entries` is these checks
    alone); their keys, and the values of the first set's entries and of the other's.

    One loop, the checks inline (the entries that differ are few: cheaper than the passes at C
    speed of :func:`_check_keys_values`, whose setup dominates for a few entries). An entry is
    the first set's when the first set holds its value at its key: two sets' entries at one key
    are not equal (else neither is in the difference), and checked values are exact ``str``.
    """
    keys: set[StateKey] = set()
    mine: set[str] = set()
    theirs: set[str] = set()
    first_get = first.get
    for key, value in entries:
        if type(value) is not str or type(key) is not tuple:
            _bad_entry(key, value)
        try:
            k0, k1 = key  # (a tuple of another length raises: cheaper than a len() call)
        except ValueError:
            _bad_entry(key, value)
        if type(k0) is not str or type(k1) is not str:
            _bad_entry(key, value)
        keys.add(key)
        if first_get(key) == value:
            mine.add(value)
        else:
            theirs.add(value)
    return keys, [mine, theirs]


def _check_mapping(s: Mapping[object, object]) -> None:
    """Refuse any entry of ``s`` that is not ``(str, str) -> str`` (see
    :func:`_check_keys_values`)."""
    if type(s) is dict:
        _check_keys_values(s.keys(), s.values(), s.items())
        return
    # Another mapping: its views are copied, so that the counts compared are of what was
    # checked (a dict's views cannot disagree in length).
    keys, values = list(s.keys()), list(s.values())
    if len(values) != len(keys):
        _check_entries(s.items())
    else:
        _check_keys_values(keys, values, s.items())


def _check_keys_values(
    keys: Collection[object], values: Iterable[object], entries: Iterable[tuple[object, object]]
) -> None:
    """Refuse any of ``entries`` (whose keys and values are given apart, as many values as
    keys) that is not ``(str, str) -> str``.

    Four passes at C speed, none a Python step per entry (a state set has up to one entry per
    room member): the types of the values counted (``countOf``: no set or list is built), the
    types of the keys, ``dict(keys)`` — which refuses any key of another length than 2 and
    leaves the few distinct first elements (event types) as its keys, whose types are then
    checked — and the types of the keys' second elements. A first element equal to an earlier
    key's is taken as that one, as entries of later sets equal to the first set's are (an
    equal ``str`` subclass counts as the ``str``). Only when something is off are the entries
    walked one by one, to name the first bad one.
    """
    n = len(keys)
    if countOf(map(type, values), str) == n and countOf(map(type, keys), tuple) == n:
        try:
            types: dict[object, object] = dict(keys)  # type: ignore[arg-type]  # tuples
        except (TypeError, ValueError):  # a key of another length, or unhashable
            pass
        else:
            if (
                countOf(map(type, types), str) == len(types)
                and countOf(map(type, map(_second, keys)), str) == n  # type: ignore[arg-type]
            ):
                return
    _check_entries(entries)


_first, _second = itemgetter(0), itemgetter(1)


def _check_entries(entries: Iterable[tuple[object, object]]) -> None:
    """Refuse any entry that is not ``(str, str) -> str``, the first bad one first: the checks
    of :func:`_checked_split` (one place for them), its split unused."""
    _checked_split(entries, _NO_ENTRIES)


_NO_ENTRIES: Mapping[StateKey, str] = {}


def _bad_entry(key: object, value: object) -> NoReturn:
    msg = f"state set entry {key!r} -> {value!r} is not (str, str) -> str"
    raise InvalidRequestError(msg)


# -- the store, a batch at a time -------------------------------------------------------------


class _Events:
    """The events of one resolution, loaded from the store a batch at a time (rule 3).

    Events of another room than ``room_id`` (once known) are treated as unknown (rule 5).
    """

    __slots__ = ("_absent", "_flags", "events", "rejected", "room_id", "store")

    def __init__(self, store: EventReader) -> None:
        self.store = store
        # The store's reader of the few outlier or rejected events, if it has one: the rejected
        # flags of a batch without a fact for each of the others.
        self._flags: FlaggedEventsReader | None = (
            cast(FlaggedEventsReader, store) if _provides(store, FlaggedEventsReader) else None
        )
        self.events: dict[str, Event] = {}
        self.rejected: set[str] = set()
        self._absent: set[str] = set()
        self.room_id: str | None = None

    def load(self, event_ids: Iterable[str]) -> None:
        """Fetch the events among ``event_ids`` not fetched yet: one batch, with their facts."""
        events, absent = self.events, self._absent
        # set.difference walks the smaller side (difference_update would walk ``events``).
        want = set(event_ids).difference(events)
        if absent and want:
            want = want.difference(absent)
        if not want:
            return
        got = self.store.get_events(want)
        flags = self._flags
        facts = self.store.get_facts(want) if flags is None else flags.get_flagged_facts(want)
        room_id = self.room_id
        if len(got) < len(want):
            absent.update(want.difference(got))
        if room_id is not None:
            for ev in got.values():  # (plain loops: cheaper than generators)
                if ev.room_id != room_id:
                    got = {i: ev for i, ev in got.items() if ev.room_id == room_id}
                    absent.update(want.difference(got))
                    break
        events.update(got)
        rejected = self.rejected
        for i, fact in facts.items():
            if fact.rejected is not None and i in got:
                rejected.add(i)

    @property
    def absent(self) -> Collection[str]:
        """The events known not to be stored events of the room (rule 5)."""
        return self._absent

    def mark_absent(self, event_id: str) -> None:
        """Treat ``event_id`` as unknown from now on (an event of another room, rule 5)."""
        self._absent.add(event_id)

    def load_auth_events(self, event_ids: Iterable[str]) -> None:
        """Fetch, in one batch, the auth events of the (loaded) events ``event_ids``."""
        events = self.events
        wanted: set[str] = set()
        for event_id in event_ids:
            ev = events.get(event_id)
            if ev is not None:
                wanted.update(ev.auth_event_ids)
        self.load(wanted)

    def pl_parent(self, ev: Event) -> str | None:
        """The ``m.room.power_levels`` event among ``ev``'s auth events (first listed), if any.

        Spec: v2 "Mainline ordering": "the ``m.room.power_levels`` event in the
        ``auth_events``".
        """
        return self.pl_parents((ev,))[ev.event_id]

    def pl_parents(self, evs: Iterable[Event]) -> dict[str, str | None]:
        """:meth:`pl_parent` of each of ``evs``, by event ID, in one loop (mainline ordering
        asks for all its events at once: a call per event cost more than the loop)."""
        events_get = self.events.get
        out: dict[str, str | None] = {}
        for ev in evs:
            first = None
            for a in ev.auth_event_ids:
                auth = events_get(a)
                if auth is not None and auth.type == "m.room.power_levels" and a != ev.event_id:
                    first = a
                    break
            out[ev.event_id] = first
        return out


# -- partitioning --------------------------------------------------------------------------------


def _partition_v2(
    sets: Sequence[Mapping[StateKey, str]],
    differing: set[StateKey] | None = None,
    values: list[set[str]] | None = None,
) -> tuple[dict[StateKey, str], set[StateKey], list[set[str]]]:
    """Split into the unconflicted state map and the conflicted state set.

    Spec: v2 "Unconflicted state map and conflicted state set": "(K, V) is unconflicted if K is
    present in every Sᵢ with the same value V" — a key missing from any set is conflicted.

    Args:
        sets: the state sets.
        differing: for two sets, the keys whose entries are not equal in both, if known.
        values: with ``differing``, each set's values at those keys, if known (returned as
            they are).

    Returns:
        The unconflicted state map (a new dict), the conflicted keys, and for each state set
        its values at the conflicted keys; the conflicted state set is their union.

    Complexity: O(total number of entries) at C speed (items views, set operations), plus
    O(conflicted keys × state sets).
    """
    if len(sets) == 2:
        # The entries not equal in both, from the symmetric difference of the items views
        # (the usual case: two large sets that differ in a few entries).
        first, second = sets
        if differing is None:
            differing = set(map(_first, first.items() ^ second.items()))
        unconflicted = dict(first)
        pop = unconflicted.pop
        for key in differing:
            pop(key, None)
        conflicted_keys = differing
    else:
        # The entries present, equal, in every set — set operations on the items views.
        common = sets[0].items() & sets[1].items()
        for s in sets[2:]:
            common &= s.items()
        unconflicted = dict(common)
        conflicted_keys = set()
        for s in sets:
            conflicted_keys.update(s.keys() - unconflicted.keys())
    if values is None:
        values = [{s[k] for k in s.keys() & conflicted_keys} for s in sets]
    return unconflicted, conflicted_keys, values


def _partition_v1(
    sets: Sequence[Mapping[StateKey, str]],
) -> tuple[dict[StateKey, str], dict[StateKey, frozenset[str]]]:
    """Split into the unconflicted entries and the conflicting events, by key.

    Spec: ``rooms/v1.md``: "A *conflict* occurs between states where those states have
    different ``event_ids`` for the same ``(event_type, state_key)``" — only states that have the
    key take part, so a key missing from some states is not a conflict.

    Complexity: O(total number of entries).
    """
    values: dict[StateKey, set[str]] = {}
    for s in sets:
        for key, value in s.items():
            found = values.get(key)
            if found is None:
                values[key] = {value}
            else:
                found.add(value)
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, frozenset[str]] = {}
    for key, found in values.items():
        if len(found) == 1:
            (unconflicted[key],) = found
        else:
            conflicted[key] = frozenset(found)
    return unconflicted, conflicted


# -- definitions of v2 ------------------------------------------------------------------------


def _is_power_event(ev: Event) -> bool:
    """Spec: v2 "Power events": a state event of type ``m.room.power_levels`` or
    ``m.room.join_rules``, or an ``m.room.member`` whose ``membership`` is ``leave`` or ``ban``
    and whose ``sender`` does not match its ``state_key``."""
    if ev.state_key is None:
        return False
    if ev.type in ("m.room.power_levels", "m.room.join_rules"):
        return True
    return (
        ev.type == _MEMBER
        and ev.content.get("membership") in ("leave", "ban")
        and ev.sender != ev.state_key
    )


def _power_events_with_ancestors(
    store: EventReader,
    events: Mapping[str, Event],
    power: Collection[str],
    full: Collection[str],
    full_ids: Collection[str],
    difference: Collection[str],
    absent: Collection[str] = (),
) -> set[str]:
    """The power events and the events of their auth chains that are in the full conflicted
    set: ``power`` ∪ (``full_ids`` ∩ auth chains of ``power``).

    Spec: v2 "Reverse topological power ordering" of "the power events ... along with the
    events in their auth chains that are in the full conflicted set"; step 1 of the algorithm.

    Most of the answer is found in memory, following the (loaded) auth events of the full
    conflicted set ``full`` from ``power``. A path that leaves the full set at an event Y and
    comes back to X cannot reach anything else: the start lies in some Cᵢ (a conflicted event
    is in its own set's Cᵢ, a difference or subgraph event is in, or below, one), the Cᵢ are
    closed under auth edges, so Y is in some Cᵢ but not in the auth difference, hence in every
    Cᵢ, and so is X below it — X is not in the difference either. So only events of the full
    set outside the difference and not reached in memory can be reached that way, and only
    through the auth events where walks leave the full set; their auth chains are needed only
    when such candidates exist. They are walked in ``events`` first: when every event reached
    is loaded, or in ``absent`` (known not to be a stored event of the room: no edges), that
    walk is the whole auth chain (the edges :mod:`~eventgraph.graph.auth_chain` follows);
    otherwise the store is asked.

    Complexity: O(auth edges of the full set) in memory, plus the exits' auth chains in memory
    or, from the store, one walk of the chains and links below the exits that places the
    candidates by position (:func:`~eventgraph.graph.auth_chain.auth_chains_hold`).
    """
    if not power:
        return set()
    full_set = full if isinstance(full, (set, frozenset)) else set(full)
    reached = set(power)
    stack = list(power)
    exits: set[str] = set()
    while stack:
        ev = events.get(stack.pop())
        if ev is None:
            continue
        for a in ev.auth_event_ids:
            if a not in full_set:
                exits.add(a)
            elif a not in reached:
                reached.add(a)
                stack.append(a)
    candidates: list[str] = []
    for e in full_ids:  # (a plain loop: cheaper than a comprehension for a few items)
        if e not in reached and e not in difference:
            candidates.append(e)  # noqa: PERF401
    if candidates and exits:
        below = _loaded_auth_chain(events, exits, absent)
        if below is None:
            # Only whether each candidate is in the exits' auth chains matters: placed by
            # position, without reading those chains (a room's whole power-levels history).
            reached.update(auth_chains_hold(store, exits, candidates))
        else:
            for e in candidates:
                if e in below:
                    reached.add(e)
    return reached.intersection(full_ids)


def _loaded_auth_chain(
    events: Mapping[str, Event], event_ids: Iterable[str], absent: Collection[str]
) -> set[str] | None:
    """The union of the auth chains of ``event_ids`` (loaded events), walked in memory, or
    ``None`` if the walk meets an event neither loaded nor in ``absent``. Events of ``absent``
    may be in the answer; they have no edges. Iterative; ends on cycles."""
    below: set[str] = set()
    stack: list[Event] = []
    for e in event_ids:
        ev = events.get(e)
        if ev is not None:
            stack.append(ev)
        elif e not in absent:
            return None
    while stack:
        for a in stack.pop().auth_event_ids:
            if a not in below:
                below.add(a)
                ev = events.get(a)
                if ev is not None:
                    stack.append(ev)
                elif a not in absent:
                    return None
    return below


def _reverse_topological_power_order(
    event_ids: Collection[str],
    events: Mapping[str, Event],
    sort_key: Mapping[str, tuple[float, int, str]],
) -> list[str]:
    """Kahn's algorithm choosing the smallest candidate at each step: auth events first.

    Args:
        event_ids: the events to order (all in ``events``).
        events: the events, for their auth events (edges to events outside ``event_ids``
            ignored).
        sort_key: each event's comparison key, ``(-sender power, origin_server_ts, event_id)``.

    Spec: v2 "Reverse topological power ordering": "the lexicographically smallest topological
    ordering based on the DAG formed by auth events ... found by sorting the events using Kahn's
    algorithm ... selecting, among all the candidate vertices, the smallest vertex".

    Raises:
        CycleError: the auth edges among ``event_ids`` form a cycle.

    Complexity: O(k log k + edges) for k events.

    >>> from eventgraph.testing import make_event
    >>> edges = {"$l": ["$o"], "$m": ["$n", "$o"], "$n": ["$o"], "$o": [], "$p": ["$o"]}
    >>> evs = {e: make_event(e, auth=a, state_key="") for e, a in edges.items()}
    >>> keys = {e: (0, 0, e) for e in edges}
    >>> _reverse_topological_power_order(list(edges), evs, keys)
    ['$o', '$l', '$n', '$m', '$p']
    """
    waiting: dict[str, int] = dict.fromkeys(event_ids, 0)
    dependants: dict[str, list[str]] = {}
    heap = []
    for event_id in waiting:
        # An auth event listed twice counts twice here and is released twice below.
        n = 0
        for a in events[event_id].auth_event_ids:
            if a in waiting:
                if a == event_id:
                    msg = f"event {event_id} lists itself in its auth events"
                    raise CycleError(msg)
                n += 1
                found = dependants.get(a)
                if found is None:
                    dependants[a] = [event_id]
                else:
                    found.append(event_id)
        if n:
            waiting[event_id] = n
        else:
            heap.append(sort_key[event_id])
    heapq.heapify(heap)
    order: list[str] = []
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        event_id = pop(heap)[2]
        order.append(event_id)
        for child in dependants.get(event_id, ()):
            left = waiting[child] - 1
            waiting[child] = left
            if left == 0:
                push(heap, sort_key[child])
    if len(order) != len(waiting):
        msg = "the auth events of the conflicted power events form a cycle"
        raise CycleError(msg)
    return order


# -- v2 and v2.1 -----------------------------------------------------------------------------


def _resolve_v2(
    rv: RoomVersion,
    sets: Sequence[Mapping[StateKey, str]],
    store: EventReader,
    stats: _Stats,
    split: _Split | None = None,
    auth_difference: Collection[str] | None = None,
) -> dict[StateKey, str]:
    """State resolution v2 (room versions 2–11) and v2.1 (room version 12); ``split``: the
    differing keys and values of two sets if known (:func:`_checked`); the auth difference is
    computed unless given (exact, by :func:`_resolve`'s caller)."""
    if split is None:
        unconflicted, conflicted_keys, extras = _partition_v2(sets)
    else:
        unconflicted, conflicted_keys, extras = _partition_v2(sets, *split)
    if not conflicted_keys:
        return unconflicted
    is_v21 = rv.state_res is StateResAlgorithm.V2_1
    conflicted_ids = set().union(*extras)

    # Spec: "Full conflicted set": the conflicted state set ∪ the auth difference
    # (v2.1: ∪ the conflicted state subgraph).
    # The auth difference counts each state set's own events as part of its full auth chain
    # (``inclusive=True``), as Synapse does, although the spec's wording ("the union of the auth
    # chains for each event in Sᵢ", each chain excluding its event) reads as exclusive. The two
    # differ only on unconflicted state events that are auth ancestors of some sets but not all:
    # the letter would replay them as conflicted. On the real room of three federating Synapse
    # servers (shared/fixtures/synapse-federated) the inclusive reading reproduces all 2,589
    # stored states, the exclusive one misses 3 (four-way merges); every ruma fixture and Synapse
    # vector passes either way. Agreeing with the network's states is what resolution is for.
    # Each state set's events are the unconflicted values plus its own values of the conflicted
    # keys, so the difference is handed that split (no set of every state set's events).
    if auth_difference is None:
        shared = set(unconflicted.values())
        difference = auth_chain_difference_split(store, shared, extras, inclusive=True)
    else:
        difference = frozenset(auth_difference)
    full = conflicted_ids | difference
    if is_v21:
        full.update(conflicted_subgraph(store, conflicted_ids))
    loaded = _Events(store)
    _load_conflicted(loaded, conflicted_ids, sets, full)
    events = loaded.events
    # Only state events of this room take part ("a sorted list of state events").
    # (no order needed: every ordering below is total, rule 2)
    # One pass over the full set: the auth events and, in v2, the keys of its events (whose
    # unconflicted values the checks may overwrite: step 5 writes them back); then the state
    # keys its checks read (their unconflicted entries loaded with the auth events, in one
    # batch) and its power events (Spec: v2 "Power events", found by ``select_all``).
    full_ids: list[str] = []
    full_events: list[Event] = []
    wanted: set[str] = set()
    own_keys: set[StateKey] = set()
    events_get = events.get
    for e in full:  # (a plain loop: cheaper than comprehensions and maps)
        ev = events_get(e)
        if ev is not None:
            state_key = ev.state_key
            if state_key is not None:
                full_ids.append(e)
                full_events.append(ev)
                wanted.update(ev.auth_event_ids)
                own_keys.add((ev.type, state_key))
    checker = AuthChecker(rv, events, loaded.rejected)
    power: list[str] = []
    needed = checker.select_all(full_events, power)
    # (keys view & set walks the set, however large the state: set & keys view would not)
    value_of = unconflicted.__getitem__
    wanted.update(map(value_of, unconflicted.keys() & needed))
    kept: dict[StateKey, str] = {}
    if not is_v21:
        for k in unconflicted.keys() & own_keys:
            kept[k] = value_of(k)
    loaded.load(wanted)

    # Step 1: the power events of the full conflicted set, with the events of their auth chains
    # that are in the full conflicted set, in reverse topological power ordering.
    selected = _power_events_with_ancestors(
        store, events, power, full, full_ids, difference, loaded.absent
    )
    sort_key = checker.power_sort_keys(map(events.__getitem__, selected))
    ordered = _reverse_topological_power_order(selected, events, sort_key)

    # Step 2: iterative auth checks from the unconflicted state map (v2.1: from an empty map).
    # In v2 the unconflicted map (a new dict) is the partial state itself.
    partial: dict[StateKey, str] = {} if is_v21 else unconflicted
    checker.apply(partial, ordered)

    # Step 3: the remaining events, in mainline ordering based on the resolved power levels.
    # (plain loops here and below: a comprehension is a function call, dearer for a few items)
    remaining: list[str] = []
    for e in full_ids:
        if e not in selected:
            remaining.append(e)  # noqa: PERF401
    if remaining:
        positions = mainline_positions(loaded, partial.get(_POWER_LEVELS), remaining)
        # (the keys made in one loop, not by a key function called per event; each ends in
        # its distinct event ID, so the order is the same)
        keyed: list[tuple[float, int, str]] = []
        for e in remaining:
            keyed.append((-positions[e], events[e].origin_server_ts, e))  # noqa: PERF401
        keyed.sort()
        remaining = []
        for item in keyed:
            remaining.append(item[2])
        # Step 4: iterative auth checks on the partially resolved state.
        checker.apply(partial, remaining)

    # Step 5: every key of the unconflicted state map takes its unconflicted value.
    # Only keys of the full conflicted set were written (``AuthChecker.apply`` writes an applied
    # event's own key), so in v2 only those need their unconflicted value back; v2.1 started
    # from the empty map, so its answer is the unconflicted map with the resolved keys added.
    if is_v21:
        for key, value in partial.items():
            if key not in unconflicted:
                unconflicted[key] = value
    else:
        unconflicted.update(kept)
    stats.conflicted_keys = len(conflicted_keys)
    stats.conflicted_events = len(conflicted_ids)
    stats.auth_difference = len(difference)
    stats.full_conflicted = len(full_ids)
    stats.power_events = len(selected)
    stats.auth_checks = checker.checks
    stats.known_from_receipt = checker.known
    return unconflicted


def _load_conflicted(
    loaded: _Events,
    conflicted_ids: Collection[str],
    sets: Sequence[Mapping[StateKey, str]],
    others: Collection[str] = (),
) -> None:
    """Load the conflicted events and ``others`` in one batch; the conflicted events must all
    be stored, and of one room with the state sets' create events (rule 5). Events of
    ``others`` of another room are then treated as unknown."""
    # (plain loops: cheaper than comprehensions, each a function call, for a few items)
    creates: set[str] = set()
    for s in sets:
        if _CREATE in s:
            creates.add(s[_CREATE])
    loaded.load(itertools.chain(conflicted_ids, creates, others))
    events = loaded.events
    missing: list[str] = []
    for e in conflicted_ids:
        if e not in events:
            missing.append(e)  # noqa: PERF401
    if missing:
        missing.sort()
        msg = f"conflicted state events not in the store: {', '.join(missing[:5])}"
        raise EventNotFoundError(msg)
    first_room: str | None = None
    for ev in events.values():  # (a plain loop: cheaper than a map of an attribute getter)
        if first_room is None:
            first_room = ev.room_id
        elif ev.room_id != first_room:
            break
    else:
        loaded.room_id = first_room  # the usual case: nothing of another room
        return
    present = [e for e in creates if e in events]
    rooms = {events[e].room_id for e in itertools.chain(conflicted_ids, present)}
    if len(rooms) > 1:
        named = sorted(rooms)
        msg = f"the state sets hold events of several rooms: {', '.join(named[:3])}"
        raise InvalidRequestError(msg)
    room_id = loaded.room_id = rooms.pop()
    foreign = [e for e in others if e in events and events[e].room_id != room_id]
    for e in foreign:
        del events[e]
        loaded.rejected.discard(e)
        loaded.mark_absent(e)


def _load_state_entries(
    loaded: _Events,
    checker: AuthChecker,
    unconflicted: Mapping[StateKey, str],
    event_ids: Iterable[str],
) -> None:
    """Load, in one batch, the unconflicted events the checks of ``event_ids`` may read."""
    keys = checker.needed_keys(event_ids)
    loaded.load(unconflicted[k] for k in keys if k in unconflicted)


# -- v1 --------------------------------------------------------------------------------------


def _sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode("utf-8"), usedforsecurity=False).hexdigest()


def _resolve_v1(
    rv: RoomVersion, sets: Sequence[Mapping[StateKey, str]], store: EventReader, stats: _Stats
) -> dict[StateKey, str]:
    """State resolution v1 (room version 1)."""
    unconflicted, conflicted = _partition_v1(sets)
    if not conflicted:
        return unconflicted
    loaded = _Events(store)
    conflicted_ids = sorted({e for ids in conflicted.values() for e in ids})
    _load_conflicted(loaded, conflicted_ids, sets)
    events = loaded.events
    checker = AuthChecker(rv, events, loaded.rejected, fallback_to_own_auth_events=False)
    _load_state_entries(loaded, checker, unconflicted, conflicted_ids)
    # "Start by setting R to the union of the states to be resolved, excluding any
    # conflicting events."
    resolved = dict(unconflicted)

    def ascending(ids: Iterable[str]) -> list[str]:
        # "Sort the list by ascending depth then descending sha1(event_id)."
        by_hash = sorted(ids, key=_sha1, reverse=True)
        return sorted(by_hash, key=lambda e: events[e].depth)

    # "First we resolve conflicts between m.room.power_levels events ... Repeat the above
    # process for conflicts between m.room.join_rules events ... for conflicts between
    # m.room.member events." (member keys in state_key order, for determinism.)
    auth_keys = [k for k in (_POWER_LEVELS, _JOIN_RULES) if k in conflicted]
    auth_keys += sorted(k for k in conflicted if k[0] == _MEMBER)
    for key in auth_keys:
        candidates = ascending(conflicted[key])
        # "Add the first event in the list to R."
        resolved[key] = candidates[0]
        for event_id in candidates[1:]:
            # "check that the event would be allowed by the authorization rules for a room in
            # state R. If [so], update R with the event and continue ... If it would not be
            # allowed, stop."
            if not checker.allowed(resolved, event_id):
                break
            resolved[key] = event_id
    # "for all other conflicts, just pick the event with the highest depth and lowest
    # sha1(event_id) that passes authentication in R and add it to R."
    others = sorted(k for k in conflicted if k not in set(auth_keys))
    for key in others:
        candidates = sorted(conflicted[key], key=lambda e: (-events[e].depth, _sha1(e)))
        chosen = candidates[-1]  # spec silent when none passes: the last one (as Synapse)
        for event_id in candidates:
            if checker.allowed(resolved, event_id):
                chosen = event_id
                break
        resolved[key] = chosen
    stats.conflicted_keys = len(conflicted)
    stats.conflicted_events = stats.full_conflicted = len(conflicted_ids)
    stats.auth_checks = checker.checks
    stats.known_from_receipt = checker.known
    return resolved
