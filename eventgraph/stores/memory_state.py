"""In-memory state groups: the state at events as snapshots and short delta chains.

Rules of this module:

1. A state group is one of three kinds. A **snapshot** holds a full state. A **compaction**
   holds every change since its snapshot (at most a bounded number of keys). A **delta** holds
   the changes made on top of its parent group (usually one key: the state event that created
   it). A delta chain is at most :data:`MAX_DELTA_HOPS` deltas long; the group that would exceed
   it is stored as a compaction on the snapshot below, or as a new snapshot once the compaction
   would grow past ``sqrt(2 * MAX_DELTA_HOPS * state size)`` keys (the size that minimises
   snapshot plus compaction memory per state change). So a single-key lookup visits at most
   ``MAX_DELTA_HOPS + 2`` dicts at any depth of the room, a full state costs one dict copy plus
   bounded patching, and memory grows with the number of state *changes* (about
   ``sqrt(2 * state size / MAX_DELTA_HOPS)`` entries per change), never with events x state size.
   (Synapse stores a full snapshot every 100 hops: O(state size / 100) per change.)
2. Writes go through :meth:`MemoryStateGroups.prepare` (validates everything, changes nothing)
   then :meth:`MemoryStateGroups.apply` (only adds to dicts: cannot fail half-way), so the
   composing store can make one atomic write of events and state.
3. Resolution results are cached by the frozenset of input groups; parked outliers (events
   whose ``prev_events`` have no state yet) are indexed by each of their ``prev_events``.
   The groups of an event are kept as one group ID when the state before and after it are the
   same group (every non-state event: no tuple per event), as a pair otherwise.
4. This module never imports an algorithm (DESIGN "Layers"): how groups are chosen is the
   pipeline's business; how they are represented is the store's.
5. A read of a few keys (the pipeline's reads for each event: the create event, the power
   levels, the sender's membership) looks each key up in the group's *view*: the changes of
   the deltas between the group and its compaction or snapshot, merged into one dict (the
   newer delta wins), with that base group. So a key costs at most three dictionary steps
   (the view, the compaction, the snapshot) instead of one per group of the chain (up to
   ``MAX_DELTA_HOPS + 2``); building a view on its parent's costs one dict copy of at most
   the changes of ``MAX_DELTA_HOPS`` deltas, at C speed. Views are kept only for the groups
   read lately (two generations of :data:`_VIEW_CACHE_SIZE`, a view found in the old one is
   kept again): bounded memory, nothing per group. A group never changes once made, so a
   view never goes stale. Writes look up the keys they change in the parent's view too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import cast

import attrs

from ..errors import StoreError
from ..protocols import EventStateGroups, StateWrite

__all__ = ["MAX_DELTA_HOPS", "MemoryStateGroups", "StateGroupStats", "check_state_write"]

#: The longest chain of deltas between a group and its compaction or snapshot.
MAX_DELTA_HOPS = 32
#: A compaction never needs to be smaller than this to be worth keeping.
_MIN_COMPACTION = 64
#: Up to this many keys, a read of some keys looks each up in the group's view (rule 5)
#: rather than in one walk down the chain (_some_state).
_FEW_KEYS = 48
#: How many views (rule 5) each of the two generations of the view cache holds.
_VIEW_CACHE_SIZE = 512

_SNAPSHOT = 0
_COMPACTION = 1
_DELTA = 2

_Key = tuple[str, str]
#: The changes of the deltas above a base group, merged, and that base group (rule 5).
_View = tuple[dict[_Key, str | None], "_Group"]
#: The merged changes of a group that is its own base (no deltas): never written to.
_NO_CHANGES: dict[_Key, str | None] = {}


class _Group:
    """One stored group (private, mutable-free after construction; slots for memory)."""

    __slots__ = ("changes", "hops", "kind", "parent", "room_id", "size")

    def __init__(
        self,
        room_id: str,
        kind: int,
        parent: _Group | None,
        changes: dict[_Key, str | None],
        hops: int,
        size: int,
    ) -> None:
        self.room_id = room_id
        self.kind = kind
        self.parent = parent
        self.changes = changes
        self.hops = hops  # deltas between this group and its compaction/snapshot
        self.size = size  # number of keys in the full state


@attrs.frozen
class StateGroupStats:
    """Counts describing the stored state groups (for benchmarks and tools).

    Attributes:
        groups: stored groups.
        snapshots: groups holding a full state.
        compactions: groups holding the changes since their snapshot.
        deltas: groups holding the changes on their parent.
        entries: dict entries held by all groups together.
        event_links: events with state groups.
        resolutions: cached resolutions.
    """

    groups: int
    snapshots: int
    compactions: int
    deltas: int
    entries: int
    event_links: int
    resolutions: int


@attrs.frozen
class _Plan:
    """A validated state write, ready to apply."""

    write: StateWrite


def check_state_write(
    write: StateWrite,
    *,
    stored_room: Callable[[int], str | None],
    connected: Callable[[str], bool],
    parked_outlier: Callable[[str], bool],
    connected_ids: Collection[str] = (),
) -> dict[int, str]:
    """Check a state write against itself and the stored groups; nothing is changed.

    Every store runs this one check (rule 2), so all refuse the same writes.

    Args:
        write: the state write.
        stored_room: the room of a stored group (positive ID), or ``None`` if unknown.
        connected: whether an event will be stored as a non-outlier once the write is done.
        parked_outlier: whether an event will be stored as an outlier by the same write.
        connected_ids: events known to be connected once the write is done (``connected`` is
            asked about the others only): the non-outliers of the write, say.

    Returns:
        The room of each draft group, by its (negative) draft ID.

    Raises:
        StoreError: the write is inconsistent.

    Complexity: O(size of the write) plus one ``stored_room`` call per group it names (an
    event whose groups are one group already checked for an earlier event, as most events of a
    batch, costs no call beyond ``connected``).
    """
    if not isinstance(write, StateWrite):
        msg = f"a state write must be a StateWrite, not {type(write).__name__}"
        raise StoreError(msg)
    drafts: dict[int, str] = {}

    def room_of(group_id: object) -> str | None:
        if type(group_id) is not int:
            return None
        return drafts.get(group_id) if group_id < 0 else stored_room(group_id)

    for draft in write.groups:
        if type(draft.group_id) is not int or draft.group_id >= 0:
            msg = f"draft group IDs must be negative integers, not {draft.group_id!r}"
            raise StoreError(msg)
        if draft.group_id in drafts:
            msg = f"draft group {draft.group_id} appears twice"
            raise StoreError(msg)
        if draft.prev_group is not None:
            prev_room = room_of(draft.prev_group)
            if prev_room is None:
                msg = f"draft {draft.group_id} builds on unknown group {draft.prev_group}"
                raise StoreError(msg)
            if prev_room != draft.room_id:
                msg = f"draft {draft.group_id} builds on a group of room {prev_room}"
                raise StoreError(msg)
        if type(draft.room_id) is not str:
            msg = f"draft {draft.group_id} has a non-string room"
            raise StoreError(msg)
        for key, value in draft.changes.items():
            if not (
                type(key) is tuple and len(key) == 2 and type(key[0]) is str and type(key[1]) is str
            ):
                msg = f"draft {draft.group_id} has a malformed state key {key!r}"
                raise StoreError(msg)
            if value is not None and type(value) is not str:
                msg = f"draft {draft.group_id} maps {key} to a non-ID {value!r}"
                raise StoreError(msg)
        drafts[draft.group_id] = draft.room_id
    # The rooms of the groups found so far (a group's room does not change during the check):
    # most events have the group of an event before them, checked then.
    known: dict[int, str] = {}
    for event_id, pair in write.event_groups.items():
        if type(pair) is not EventStateGroups and not isinstance(pair, EventStateGroups):
            msg = f"the groups of {event_id} must be EventStateGroups"
            raise StoreError(msg)
        if event_id not in connected_ids and not connected(event_id):
            msg = f"state groups given for {event_id}, which is not a connected event"
            raise StoreError(msg)
        first, second = pair.before, pair.after
        if type(first) is int and type(second) is int:
            before = known.get(first)
            if before is None:
                before = room_of(first)
            if second == first:
                after = before
            else:
                after = known.get(second)
                if after is None:
                    after = room_of(second)
            if before is None or after is None or before != after:
                msg = f"the state groups of {event_id} are unknown or of two rooms"
                raise StoreError(msg)
            known[first] = known[second] = before
            continue
        before, after = room_of(first), room_of(second)
        if before is None or after is None or before != after:
            msg = f"the state groups of {event_id} are unknown or of two rooms"
            raise StoreError(msg)
    for inputs, result in write.resolutions.items():
        if (
            not isinstance(inputs, frozenset)
            or len(inputs) < 2
            or room_of(result) is None
            or any(room_of(g) is None for g in inputs)
        ):
            shown = sorted(inputs) if isinstance(inputs, frozenset) else inputs
            msg = f"the cached resolution {shown} -> {result} names unknown groups"
            raise StoreError(msg)
    for event_id in write.parked:
        if not parked_outlier(event_id):
            msg = f"{event_id} is parked but is not an outlier of the write"
            raise StoreError(msg)
    for event_id in write.unparked:
        if type(event_id) is not str:
            msg = f"unparked names a non-ID {event_id!r}"
            raise StoreError(msg)
    return drafts


class MemoryStateGroups:
    """State groups, event-to-group links, the resolution cache and the parked index, in memory.

    A store composes one (``MemoryStore`` does) and forwards the
    :class:`~eventgraph.protocols.StateGroupReader` calls to it.

    >>> from eventgraph.protocols import StateGroupDraft, StateWrite
    >>> groups = MemoryStateGroups()
    >>> w = StateWrite(groups=(
    ...     StateGroupDraft(-1, "!r:a", None, {("m.room.create", ""): "$c"}),
    ...     StateGroupDraft(-2, "!r:a", -1, {("m.room.member", "@u:a"): "$j"}),
    ... ))
    >>> ids = groups.apply(groups.prepare(w, connected=lambda event_id: True))
    >>> groups.get_state([ids[-2]])[ids[-2]] == {("m.room.create", ""): "$c",
    ...                                           ("m.room.member", "@u:a"): "$j"}
    True
    """

    def __init__(self) -> None:
        self._groups: dict[int, _Group] = {}
        self._next_id = 1
        self._events: dict[str, int | tuple[int, int]] = {}  # before == after: one ID (rule 3)
        self._resolutions: dict[frozenset[int], int] = {}
        self._parked: dict[str, tuple[str, ...]] = {}  # parked event -> its prev_events
        self._parked_children: dict[str, set[str]] = {}
        # The views of the groups read lately (rule 5), young and old generations.
        self._views: dict[_Group, _View] = {}
        self._old_views: dict[_Group, _View] = {}

    # -- reads ----------------------------------------------------------------------------------

    def get_event_state_groups(
        self, event_ids: Collection[str], /
    ) -> Mapping[str, EventStateGroups]:
        """See :meth:`eventgraph.protocols.StateGroupReader.get_event_state_groups`."""
        events = self._events
        out: dict[str, EventStateGroups] = {}
        for event_id in event_ids:
            pair = events.get(event_id)
            if pair is not None:
                if isinstance(pair, int):
                    out[event_id] = EventStateGroups(pair, pair)
                else:
                    out[event_id] = EventStateGroups(*pair)
        return out

    def get_state(
        self, group_ids: Collection[int], /, keys: Collection[_Key] | None = None
    ) -> Mapping[int, Mapping[_Key, str]]:
        """See :meth:`eventgraph.protocols.StateGroupReader.get_state` (rule 1 for costs)."""
        out: dict[int, Mapping[_Key, str]] = {}
        groups = self._groups
        if keys is None:
            for group_id in group_ids:
                group = groups.get(group_id)
                if group is not None:
                    out[group_id] = _full_state(group)
        elif len(keys) <= _FEW_KEYS:
            # Each key looked up in the group's view (rule 5).
            views = self._views
            for group_id in group_ids:
                group = groups.get(group_id)
                if group is None:
                    continue
                view = views.get(group)
                out[group_id] = _in_view(self._view(group) if view is None else view, keys)
        else:
            for group_id in group_ids:
                group = groups.get(group_id)
                if group is not None:
                    out[group_id] = _some_state(group, keys)
        return out

    def _view(self, group: _Group) -> _View:
        """The view of ``group`` (rule 5): from the cache, else built on the closest view
        cached below it in its delta chain (or on nothing, at the base), and kept.

        Complexity: one dictionary step when cached; else one dict copy plus an update per
        delta above the view it is built on (at most ``MAX_DELTA_HOPS``).
        """
        views = self._views
        got = views.get(group)
        if got is not None:
            return got
        got = self._old_views.get(group)
        if got is None:
            if group.kind != _DELTA:
                return (_NO_CHANGES, group)  # (its own base: nothing to keep)
            old_views = self._old_views
            deltas = [group]
            below: _View | None = None
            g = group.parent
            while g is not None and g.kind == _DELTA:
                below = views.get(g) or old_views.get(g)
                if below is not None:
                    break
                deltas.append(g)
                g = g.parent
            if below is not None:
                merged = below[0].copy()
                base = below[1]
            else:
                assert g is not None  # (a delta always has a parent)
                merged = {}
                base = g
            for d in reversed(deltas):
                merged.update(d.changes)
            got = (merged, base)
        if len(views) >= _VIEW_CACHE_SIZE:
            self._old_views = views
            views = self._views = {}
        views[group] = got
        return got

    def _pass_view(self, parent: _Group, child: _Group) -> None:
        """Give the view of ``parent`` (if kept) to its delta ``child``, updated with the
        child's changes, without a copy: for a parent made by the same write as the child
        (nobody read it yet; the write looked its keys up in its view), whose view would
        otherwise be copied when the child is read (rule 5). A later read of ``parent``
        builds its view again."""
        views, old_views = self._views, self._old_views
        view = views.pop(parent, None)
        old = old_views.pop(parent, None)  # (the same view, when kept again from the old)
        view = view or old
        if view is None:
            return
        merged = view[0]
        merged.update(child.changes)
        if len(views) >= _VIEW_CACHE_SIZE:
            self._old_views = views
            views = self._views = {}
        views[child] = (merged, view[1])

    def _lookup(self, group: _Group, key: _Key) -> str | None:
        """The value at ``key`` in the state at ``group`` (``None``: absent), by its view."""
        return _in_view(self._view(group), (key,)).get(key)

    def get_resolutions(
        self, input_sets: Collection[frozenset[int]], /
    ) -> Mapping[frozenset[int], int]:
        """See :meth:`eventgraph.protocols.StateGroupReader.get_resolutions`."""
        cache = self._resolutions
        return {s: cache[s] for s in input_sets if s in cache}

    def get_parked_children(self, event_ids: Collection[str], /) -> Mapping[str, tuple[str, ...]]:
        """See :meth:`eventgraph.protocols.StateGroupReader.get_parked_children`."""
        index = self._parked_children
        return {i: tuple(sorted(index[i])) for i in event_ids if index.get(i)}

    def get_changed_keys(self, first: int, second: int, /) -> frozenset[_Key] | None:
        """See :meth:`eventgraph.protocols.StateGroupChangesReader.get_changed_keys`: the keys
        changed on the way from the two groups' closest common ancestor to each (``None`` when
        they share none, or a group is unknown).

        Complexity: O(the two delta chains and their compactions), never O(state size).

        >>> from eventgraph.protocols import StateGroupDraft, StateWrite
        >>> groups = MemoryStateGroups()
        >>> w = StateWrite(groups=(
        ...     StateGroupDraft(-1, "!r:a", None, {("m.room.create", ""): "$c"}),
        ...     StateGroupDraft(-2, "!r:a", -1, {("m.room.topic", ""): "$t"}),
        ...     StateGroupDraft(-3, "!r:a", -1, {("m.room.name", ""): "$n"}),
        ... ))
        >>> ids = groups.apply(groups.prepare(w, connected=lambda event_id: True))
        >>> sorted(groups.get_changed_keys(ids[-2], ids[-3]))
        [('m.room.name', ''), ('m.room.topic', '')]
        """
        a = self._groups.get(first)
        b = self._groups.get(second)
        if a is None or b is None:
            return None
        above_a: set[int] = set()
        g: _Group | None = a
        while g is not None:
            above_a.add(id(g))
            g = g.parent
        keys: set[_Key] = set()
        g = b
        while g is not None and id(g) not in above_a:
            keys.update(g.changes)
            g = g.parent
        if g is None:
            return None
        common = g
        g = a
        while g is not common:
            assert g is not None
            keys.update(g.changes)
            g = g.parent
        return frozenset(keys)

    def is_parked(self, event_id: str) -> bool:
        """Whether ``event_id`` is a parked outlier."""
        return event_id in self._parked

    def group_room(self, group_id: int) -> str | None:
        """The room of a stored group, or ``None``."""
        group = self._groups.get(group_id)
        return None if group is None else group.room_id

    def stats(self) -> StateGroupStats:
        """Counts of groups by kind and of the entries they hold. Complexity: O(groups)."""
        kinds = [0, 0, 0]
        entries = 0
        for group in self._groups.values():
            kinds[group.kind] += 1
            entries += len(group.changes)
        return StateGroupStats(
            groups=len(self._groups),
            snapshots=kinds[_SNAPSHOT],
            compactions=kinds[_COMPACTION],
            deltas=kinds[_DELTA],
            entries=entries,
            event_links=len(self._events),
            resolutions=len(self._resolutions),
        )

    # -- writes ---------------------------------------------------------------------------------

    def prepare(
        self,
        write: StateWrite,
        *,
        connected: Callable[[str], bool],
        parkable: Callable[[str], tuple[str, ...] | None] | None = None,
        connected_ids: Collection[str] = (),
    ) -> _Plan:
        """Validate ``write`` without changing anything (rule 2).

        Args:
            write: the state write.
            connected: whether an event will be stored as a non-outlier once the write is done.
            parkable: the ``prev_events`` of an event that will be stored as an outlier, or
                ``None`` if it will not be (only needed when ``write.parked`` is not empty).
            connected_ids: events known to be connected once the write is done (see
                :func:`check_state_write`).

        Raises:
            StoreError: the write is inconsistent; nothing changed.
        """
        check_state_write(
            write,
            stored_room=self._stored_room,
            connected=connected,
            parked_outlier=lambda e: parkable is not None and parkable(e) is not None,
            connected_ids=connected_ids,
        )
        return _Plan(write)

    def apply(
        self,
        plan: _Plan,
        *,
        prev_events: Callable[[str], tuple[str, ...]] | None = None,
    ) -> dict[int, int]:
        """Apply a prepared write (rule 2): only additions, no validation left to fail.

        Args:
            plan: what :meth:`prepare` returned, with nothing written in between.
            prev_events: the ``prev_events`` of each parked event (needed for ``parked``).

        Returns:
            The stored group ID of each draft.
        """
        write = plan.write
        ids: dict[int, int] = {}
        made: set[int] = set()  # the groups made by this write
        for draft in write.groups:
            parent = None
            if draft.prev_group is not None:
                parent_id = ids.get(draft.prev_group, draft.prev_group)
                parent = self._groups[parent_id]
            group_id = self._next_id
            self._next_id += 1
            group = self._groups[group_id] = _make_group(
                draft.room_id, parent, draft.changes, lookup=self._lookup
            )
            ids[draft.group_id] = group_id
            if parent is not None and group.kind == _DELTA and parent_id in made:
                self._pass_view(parent, group)
            made.add(group_id)
        events = self._events
        for event_id, pair in write.event_groups.items():
            before = ids.get(pair.before, pair.before)
            after = pair.after
            if after == pair.before:
                events[event_id] = before  # (the usual event: one group, rule 3)
            else:
                after = ids.get(after, after)
                events[event_id] = before if before == after else (before, after)
        for inputs, result in write.resolutions.items():
            key = frozenset(ids.get(g, g) for g in inputs)
            self._resolutions[key] = ids.get(result, result)
        for event_id in write.unparked:
            prevs = self._parked.pop(event_id, ())
            for prev in prevs:
                children = self._parked_children.get(prev)
                if children is not None:
                    children.discard(event_id)
                    if not children:
                        del self._parked_children[prev]
        if write.parked:
            assert prev_events is not None
            for event_id in sorted(write.parked):
                prevs = prev_events(event_id)
                self._parked[event_id] = prevs
                for prev in prevs:
                    self._parked_children.setdefault(prev, set()).add(event_id)
        return ids

    def _stored_room(self, group_id: int) -> str | None:
        group = self._groups.get(group_id)
        return None if group is None else group.room_id

    # -- invariants -----------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Check the shape rules of every group (rule 1). Complexity: O(stored entries).

        Raises:
            StoreError: a group breaks a rule (a bug).
        """
        for group_id, group in self._groups.items():
            if group.kind == _SNAPSHOT:
                ok = group.parent is None and group.hops == 0
                ok = ok and None not in group.changes.values()
            elif group.kind == _COMPACTION:
                ok = group.parent is not None and group.parent.kind == _SNAPSHOT
                ok = ok and group.hops == 0
            else:
                parent = group.parent
                ok = parent is not None and group.hops == parent.hops + 1
                ok = ok and group.hops <= MAX_DELTA_HOPS
            if not ok:
                raise StoreError(f"state group {group_id} breaks the shape rules")
            if len(_full_state(group)) != group.size:
                raise StoreError(f"state group {group_id} has a wrong size")
            if group.parent is not None and group.parent.room_id != group.room_id:
                raise StoreError(f"state group {group_id} builds on another room's group")
        for event_id, pair in self._events.items():
            before, after = (pair, pair) if isinstance(pair, int) else pair
            if before not in self._groups or after not in self._groups:
                raise StoreError(f"the state groups of {event_id} are not stored")


def _chain(group: _Group) -> list[_Group]:
    """The group and its ancestors down to (and including) the snapshot, newest first."""
    chain = [group]
    while group.parent is not None:
        group = group.parent
        chain.append(group)
    return chain


def _full_state(group: _Group) -> dict[_Key, str]:
    chain = _chain(group)
    # (``.copy()``, not ``dict()``: it clones the table at C speed even when it has holes left
    # by removed keys, where ``dict()`` re-inserts every entry, ~8x slower.)
    state = cast(dict[_Key, str], chain[-1].changes.copy())
    for g in reversed(chain[:-1]):
        for key, value in g.changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def _some_state(group: _Group, keys: Collection[_Key]) -> dict[_Key, str]:
    """The entries of the state at ``group`` at ``keys`` (in the order of ``keys``), found in
    one walk down the chain: for many keys (a few are looked up in the group's view, rule 5).

    The walk goes to the snapshot or until every key is found: a group with fewer changes
    than keys still wanted (a delta: usually one) is read whole, a bigger one (a compaction,
    a snapshot) is asked for each key still wanted; so about one step per delta, not one per
    key and delta.
    """
    out: dict[_Key, str] = {}
    g: _Group | None
    wanted = set(keys)
    found: dict[_Key, str | None] = {}
    g = group
    while g is not None and wanted:
        changes = g.changes
        if len(changes) < len(wanted):
            hits = [key for key in changes if key in wanted]
        else:
            hits = [key for key in wanted if key in changes]
        for key in hits:
            found[key] = changes[key]
            wanted.discard(key)
        g = g.parent
    for key in keys:
        value = found.get(key)
        if value is not None:
            out[key] = value
    return out


class PartialSnapshotError(Exception):
    """:func:`_make_group` was handed a snapshot holding only some of its entries and needs
    all of them (it makes a new snapshot). Internal: the SQLite store then reads the whole
    snapshot and builds again."""


def _make_group(
    room_id: str,
    parent: _Group | None,
    changes: Mapping[_Key, str | None],
    *,
    partial_snapshots: bool = False,
    lookup: Callable[[_Group, _Key], str | None] | None = None,
) -> _Group:
    """Store ``changes`` on ``parent`` as a delta, a compaction or a snapshot (rule 1).

    With ``partial_snapshots``, the snapshot at the bottom of ``parent``'s chain may hold only
    the entries at the keys of the groups above it and of ``changes`` — all a delta or a
    compaction reads of it; making a new snapshot raises :class:`PartialSnapshotError`.
    ``lookup`` reads the value at a key in the state at ``parent`` (the plain walk down the
    chain by default; the memory store's reads it in ``parent``'s view, rule 5).
    """
    if parent is None:
        full: dict[_Key, str | None] = {k: v for k, v in changes.items() if v is not None}
        return _Group(room_id, _SNAPSHOT, None, full, 0, len(full))
    size = parent.size
    own: dict[_Key, str | None] = {}
    if lookup is None:
        lookup = _lookup
    for key, value in changes.items():
        old = lookup(parent, key)
        if old == value:
            continue  # not a change
        own[key] = value
        size += (value is not None) - (old is not None)
    if parent.hops < MAX_DELTA_HOPS:
        return _Group(room_id, _DELTA, parent, own, parent.hops + 1, size)
    # Too many hops: rebase on the snapshot below as a compaction, or snapshot.
    chain = _chain(parent)
    snapshot = chain[-1]
    base = snapshot.changes
    # The compaction below the deltas (if any) already holds only entries that differ from
    # the snapshot: copy it whole (C speed) and check against the snapshot just the keys the
    # deltas above it and this write touch.
    lower = chain[-2] if len(chain) > 1 and chain[-2].kind == _COMPACTION else None
    merged: dict[_Key, str | None] = lower.changes.copy() if lower is not None else {}
    touched: set[_Key] = set()
    for g in reversed(chain[:-2] if lower is not None else chain[:-1]):
        merged.update(g.changes)
        touched.update(g.changes)
    merged.update(own)
    touched.update(own)
    for k in touched:
        if base.get(k) == merged[k]:
            del merged[k]
    compacted = merged
    limit = max(_MIN_COMPACTION, math.isqrt(2 * MAX_DELTA_HOPS * max(size, 1)))
    if len(compacted) <= limit:
        return _Group(room_id, _COMPACTION, snapshot, compacted, 0, size)
    if partial_snapshots:
        raise PartialSnapshotError
    new = base.copy()  # (cloned at C speed, see _full_state)
    for key, value in compacted.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return _Group(room_id, _SNAPSHOT, None, new, 0, len(new))


def _in_view(view: _View, keys: Iterable[_Key]) -> dict[_Key, str]:
    """The entries at ``keys`` of the state a view stands for (rule 5), in the order of
    ``keys``: each key is found in the merged changes, else in the base group, else in the
    base's snapshot (a compaction's parent; ``None`` under a snapshot)."""
    merged, base = view
    first = base.changes
    snapshot = base.parent
    found: dict[_Key, str] = {}
    value: str | None
    for key in keys:
        if key in merged:
            value = merged[key]
        elif key in first:
            value = first[key]
        elif snapshot is not None:
            value = snapshot.changes.get(key)
        else:
            continue
        if value is not None:
            found[key] = value
    return found


def _lookup(group: _Group, key: _Key) -> str | None:
    g: _Group | None = group
    while g is not None:
        changes = g.changes
        if key in changes:
            return changes[key]
        g = g.parent
    return None
