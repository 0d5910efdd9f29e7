"""State groups in SQLite: the tables, reads and writes behind :class:`~eventgraph.SqliteStore`'s
:class:`~eventgraph.protocols.StateGroupReader` and ``StateGroupWriter``.

Rules of this module:

1. Groups have the shape of :mod:`eventgraph.stores.memory_state` rule 1 (snapshots,
   compactions, deltas, at most ``MAX_DELTA_HOPS`` deltas deep) and are built by its
   ``_make_group``, fed with the part of the parent chain that function reads: the entries of
   the keys the write changes, or the whole chain when a draft may be rebased. So both stores
   keep identical group shapes and sizes.
2. A read of any number of groups is two statements per chunk: the chains (a recursive CTE over
   ``state_groups``, at most ``MAX_DELTA_HOPS + 2`` groups deep) and the entries of the distinct
   groups on them (filtered by key in SQL when keys are given).
3. Validation (:func:`validate_write`) reads and never writes; :func:`apply_write` only inserts,
   inside the caller's transaction, so a failure anywhere rolls everything back.

Tables (schema version 2)::

    state_groups(group_id PK, room_id, kind, parent, hops, size)
    state_group_entries(group_id, type, state_key, event_id NULL = removed) PK (group, type, key)
    event_state_groups(event_nid PK, before_group, after_group)
    state_resolutions(inputs PK: sorted group IDs joined by ',', group_id)
    parked_events(event_nid PK)
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from ..errors import StoreError
from ..protocols import EventStateGroups, StateWrite
from .memory_state import (
    MAX_DELTA_HOPS,
    PartialSnapshotError,
    StateGroupStats,
    _Group,
    _make_group,
    check_state_write,
)

__all__ = [
    "MIGRATION_SQL",
    "apply_write",
    "changed_keys",
    "check",
    "get_state",
    "resolution_key",
    "stats",
    "validate_write",
]

_Key = tuple[str, str]

#: The DDL of schema version 2.
MIGRATION_SQL: Final = """
    CREATE TABLE state_groups (
        group_id INTEGER PRIMARY KEY,
        room_id TEXT NOT NULL,
        kind INTEGER NOT NULL,
        parent INTEGER,
        hops INTEGER NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE TABLE state_group_entries (
        group_id INTEGER NOT NULL,
        type TEXT NOT NULL,
        state_key TEXT NOT NULL,
        event_id TEXT,
        PRIMARY KEY (group_id, type, state_key)
    ) WITHOUT ROWID;
    CREATE TABLE event_state_groups (
        event_nid INTEGER PRIMARY KEY,
        before_group INTEGER NOT NULL,
        after_group INTEGER NOT NULL
    );
    CREATE TABLE state_resolutions (
        inputs TEXT NOT NULL PRIMARY KEY,
        group_id INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE parked_events (
        event_nid INTEGER PRIMARY KEY
    );
"""

_SNAPSHOT, _COMPACTION, _DELTA = 0, 1, 2


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def resolution_key(inputs: Iterable[int]) -> str:
    """The stored form of a set of input groups."""
    return ",".join(str(g) for g in sorted(inputs))


# -- reads -------------------------------------------------------------------------------------


_Chain = list[tuple[int, int, str, int | None, int, int]]

#: How many groups' chains a store's read cache keeps (see :func:`chains`).
CHAIN_CACHE_SIZE: Final = 4096


def chains(
    conn: sqlite3.Connection,
    group_ids: Sequence[int],
    chunk: int,
    cache: dict[int, _Chain] | None = None,
) -> dict[int, _Chain]:
    """For each stored group, its chain newest first: (group, kind, room, parent, hops, size).

    With ``cache`` (for reads of committed groups only: a committed group and its ancestors
    never change), known chains are taken from it and the ones read are added to it, the
    oldest dropped past :data:`CHAIN_CACHE_SIZE`.
    """
    out: dict[int, _Chain] = {}
    if cache is not None:
        out = {g: chain for g in group_ids if (chain := cache.get(g)) is not None}
        if len(out) == len(group_ids):
            return out
        missing = [g for g in group_ids if g not in out]
        read = chains(conn, missing, chunk)
        out.update(read)
        cache.update(read)
        excess = len(cache) - CHAIN_CACHE_SIZE
        if excess > 0:
            for stale in list(itertools.islice(cache, excess)):
                del cache[stale]
        return out
    for part in _chunks(group_ids, chunk):
        marks = ",".join("?" * len(part))
        rows = conn.execute(
            "WITH RECURSIVE chain(start, gid, n) AS ("
            f" SELECT group_id, group_id, 0 FROM state_groups WHERE group_id IN ({marks})"
            " UNION ALL SELECT c.start, g.parent, c.n + 1 FROM chain c"
            " JOIN state_groups g ON g.group_id = c.gid WHERE g.parent IS NOT NULL)"
            " SELECT c.start, c.n, g.group_id, g.kind, g.room_id, g.parent, g.hops, g.size"
            " FROM chain c JOIN state_groups g ON g.group_id = c.gid ORDER BY c.start, c.n",
            list(part),
        )
        for start, _, gid, kind, room_id, parent, hops, size in rows:
            out.setdefault(start, []).append((gid, kind, room_id, parent, hops, size))
    return out


def entries(
    conn: sqlite3.Connection, group_ids: Sequence[int], keys: Sequence[_Key] | None, chunk: int
) -> dict[int, dict[_Key, str | None]]:
    """The stored entries of ``group_ids`` (only ``keys`` when given)."""
    out: dict[int, dict[_Key, str | None]] = {g: {} for g in group_ids}
    key_params: list[str] = []
    keyed = False
    if keys is not None:
        if not keys:
            return out
        if 2 * len(keys) < chunk // 2:
            key_params = [part for key in keys for part in key]
            keyed = True
    wanted = None if keys is None or keyed else set(keys)
    for part in _chunks(group_ids, max(1, chunk - len(key_params))):
        marks = ",".join("?" * len(part))
        if keyed:
            # Keys joined from a VALUES list: each (group, type, state_key) is a primary-key
            # search. (A row-value ``IN (VALUES ...)`` filter searches by group only and
            # scans the whole snapshot.)
            rows = conn.execute(
                "WITH k(t, s) AS (VALUES " + ",".join(["(?,?)"] * len(keys or ())) + ")"
                " SELECT e.group_id, e.type, e.state_key, e.event_id FROM k"
                " JOIN state_group_entries e ON e.type = k.t AND e.state_key = k.s"
                f" WHERE e.group_id IN ({marks})",
                [*key_params, *part],
            )
        else:
            rows = conn.execute(
                "SELECT group_id, type, state_key, event_id FROM state_group_entries"
                f" WHERE group_id IN ({marks})",
                list(part),
            )
        for gid, event_type, state_key, event_id in rows:
            key = (event_type, state_key)
            if wanted is None or key in wanted:
                out[gid][key] = event_id
    return out


def get_state(
    conn: sqlite3.Connection,
    group_ids: Sequence[int],
    keys: Collection[_Key] | None,
    chunk: int,
    cache: dict[int, _Chain] | None = None,
) -> dict[int, dict[_Key, str]]:
    """The full state (or the ``keys`` part) of each stored group among ``group_ids``
    (``cache``: see :func:`chains`)."""
    found = chains(conn, group_ids, chunk, cache)
    members = sorted({link[0] for chain in found.values() for link in chain})
    key_list = None if keys is None else list(dict.fromkeys(keys))
    stored = entries(conn, members, key_list, chunk)
    out: dict[int, dict[_Key, str]] = {}
    for gid in group_ids:
        chain = found.get(gid)
        if chain is None or gid in out:
            continue
        state: dict[_Key, str] = {}
        for link in reversed(chain):  # the snapshot first, the group itself last
            for key, value in stored[link[0]].items():
                if value is None:
                    state.pop(key, None)
                else:
                    state[key] = value
        out[gid] = state
    return out


def changed_keys(
    conn: sqlite3.Connection,
    first: int,
    second: int,
    chunk: int,
    cache: dict[int, _Chain] | None = None,
) -> frozenset[_Key] | None:
    """The keys changed on the way from the two groups' closest common ancestor to each, as
    :meth:`MemoryStateGroups.get_changed_keys <eventgraph.stores.memory_state.MemoryStateGroups.
    get_changed_keys>` (``None``: they share no ancestor, or a group is unknown).

    Complexity: the two bounded delta chains (one statement) and the entries of the groups
    between them and their common ancestor (one statement per chunk); never a snapshot's.
    """
    found = chains(conn, [first, second], chunk, cache)
    a, b = found.get(first), found.get(second)
    if a is None or b is None:
        return None
    on_a = [link[0] for link in a]
    above_a = set(on_a)
    path: list[int] = []
    common: int | None = None
    for link in b:
        if link[0] in above_a:
            common = link[0]
            break
        path.append(link[0])
    if common is None:
        return None
    path.extend(on_a[: on_a.index(common)])
    keys: set[_Key] = set()
    for changes in entries(conn, path, None, chunk).values():
        keys.update(changes)
    return frozenset(keys)


# -- writes ------------------------------------------------------------------------------------


def validate_write(
    conn: sqlite3.Connection,
    write: StateWrite,
    *,
    connected: Callable[[str], bool],
    outlier_of_write: Callable[[str], bool],
    chunk: int,
) -> dict[int, str]:
    """Check ``write`` as ``MemoryStateGroups.prepare`` does; the rooms of the stored groups
    it names. Reads only.

    Raises:
        StoreError: the write is inconsistent.
    """
    if not isinstance(write, StateWrite):
        msg = f"a state write must be a StateWrite, not {type(write).__name__}"
        raise StoreError(msg)
    named: set[int] = set()
    for draft in write.groups:
        if draft.prev_group is not None:
            named.add(draft.prev_group)
    for pair in write.event_groups.values():
        if isinstance(pair, EventStateGroups):
            named.update((pair.before, pair.after))
    for inputs, result in write.resolutions.items():
        named.add(result)
        if isinstance(inputs, frozenset):
            named.update(inputs)
    stored_ids = sorted(g for g in named if type(g) is int and g > 0)
    rooms: dict[int, str] = {}
    for part in _chunks(stored_ids, chunk):
        marks = ",".join("?" * len(part))
        rooms.update(
            conn.execute(
                f"SELECT group_id, room_id FROM state_groups WHERE group_id IN ({marks})",
                list(part),
            )
        )
    check_state_write(
        write, stored_room=rooms.get, connected=connected, parked_outlier=outlier_of_write
    )
    return rooms


def apply_write(
    conn: sqlite3.Connection,
    write: StateWrite,
    nid_of: Mapping[str, int],
    chunk: int,
) -> dict[int, int]:
    """Insert a validated ``write`` (rule 3); the stored ID of each draft.

    ``nid_of`` maps every event the write names (event groups, parked, unparked) that is stored
    to its row number.
    """
    ids: dict[int, int] = {}
    if write.groups:
        ids = _insert_groups(conn, write, chunk)
    conn.executemany(
        "INSERT OR REPLACE INTO event_state_groups (event_nid, before_group, after_group) "
        "VALUES (?, ?, ?)",
        [
            (nid_of[event_id], ids.get(pair.before, pair.before), ids.get(pair.after, pair.after))
            for event_id, pair in write.event_groups.items()
        ],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO state_resolutions (inputs, group_id) VALUES (?, ?)",
        [
            (resolution_key(ids.get(g, g) for g in inputs), ids.get(result, result))
            for inputs, result in write.resolutions.items()
        ],
    )
    conn.executemany(
        "DELETE FROM parked_events WHERE event_nid = ?",
        [(nid_of[e],) for e in sorted(write.unparked) if e in nid_of],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO parked_events (event_nid) VALUES (?)",
        [(nid_of[e],) for e in sorted(write.parked)],
    )
    return ids


def _insert_groups(conn: sqlite3.Connection, write: StateWrite, chunk: int) -> dict[int, int]:
    """Build the drafts with ``memory_state._make_group`` over the chains they read (rule 1)."""
    drafts = write.groups
    stored_parents = sorted(
        {d.prev_group for d in drafts if d.prev_group is not None and d.prev_group > 0}
    )
    found = chains(conn, stored_parents, chunk)
    # _make_group reads the whole chain only when it rebases a draft whose parent is
    # MAX_DELTA_HOPS deep; a write's drafts add at most len(drafts) hops on a stored parent.
    deepest = max((found[p][0][4] for p in stored_parents), default=0)
    full = deepest + len(drafts) >= MAX_DELTA_HOPS
    members = sorted({link[0] for chain in found.values() for link in chain})
    draft_keys = sorted({k for d in drafts for k in d.changes})
    if not full:
        stored = entries(conn, members, draft_keys, chunk)
        return _build_groups(conn, write, found, stored, partial=False)
    # A rebase reads every group above the snapshot whole, but of the snapshot (10^5 entries
    # in a large room) only the keys those groups and the drafts touch: all a compaction
    # compares with it. A draft that becomes a new snapshot needs it all: read it then.
    above = sorted({link[0] for chain in found.values() for link in chain if link[1] != _SNAPSHOT})
    snapshots = sorted(set(members) - set(above))
    stored = entries(conn, above, None, chunk)
    touched = sorted({k for changes in stored.values() for k in changes} | set(draft_keys))
    if snapshots:
        stored.update(entries(conn, snapshots, touched, chunk))
    try:
        return _build_groups(conn, write, found, stored, partial=bool(snapshots))
    except PartialSnapshotError:
        stored.update(entries(conn, snapshots, None, chunk))
        return _build_groups(conn, write, found, stored, partial=False)


def _build_groups(
    conn: sqlite3.Connection,
    write: StateWrite,
    found: Mapping[int, _Chain],
    stored: Mapping[int, dict[_Key, str | None]],
    *,
    partial: bool,
) -> dict[int, int]:
    """Make and insert the drafts' groups over the stored chains ``found`` with their entries
    ``stored`` (snapshots possibly only in part: ``partial``)."""
    drafts = write.groups
    objects: dict[int, _Group] = {}
    gid_of: dict[int, int] = {}  # id(object) -> group ID
    for chain in found.values():
        for gid, kind, room_id, parent, hops, size in reversed(chain):
            if gid in objects:
                continue
            parent_obj = None if parent is None else objects[parent]
            obj = _Group(room_id, kind, parent_obj, stored[gid], hops, size)
            objects[gid] = obj
            gid_of[id(obj)] = gid
    top: int = conn.execute("SELECT coalesce(max(group_id), 0) FROM state_groups").fetchone()[0]
    ids: dict[int, int] = {}
    group_rows: list[tuple[int, str, int, int | None, int, int]] = []
    entry_rows: list[tuple[int, str, str, str | None]] = []
    for n, draft in enumerate(drafts, start=top + 1):
        parent_obj = None
        if draft.prev_group is not None:
            parent_obj = objects[ids.get(draft.prev_group, draft.prev_group)]
        obj = _make_group(draft.room_id, parent_obj, draft.changes, partial_snapshots=partial)
        objects[n] = obj
        gid_of[id(obj)] = n
        ids[draft.group_id] = n
        parent_gid = None if obj.parent is None else gid_of[id(obj.parent)]
        group_rows.append((n, obj.room_id, obj.kind, parent_gid, obj.hops, obj.size))
        entry_rows.extend((n, k[0], k[1], v) for k, v in obj.changes.items())
    conn.executemany(
        "INSERT INTO state_groups (group_id, room_id, kind, parent, hops, size) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        group_rows,
    )
    conn.executemany(
        "INSERT INTO state_group_entries (group_id, type, state_key, event_id) VALUES (?, ?, ?, ?)",
        entry_rows,
    )
    return ids


# -- invariants and statistics -----------------------------------------------------------------


def check(conn: sqlite3.Connection, chunk: int) -> None:
    """The shape rules of every group (``memory_state`` rule 1) and the links' targets.

    Raises:
        StoreError: a row breaks a rule.
    """
    groups = {
        gid: (room_id, kind, parent, hops, size)
        for gid, room_id, kind, parent, hops, size in conn.execute(
            "SELECT group_id, room_id, kind, parent, hops, size FROM state_groups"
        )
    }
    removals = {
        gid
        for (gid,) in conn.execute(
            "SELECT DISTINCT group_id FROM state_group_entries WHERE event_id IS NULL"
        )
    }
    for gid, (room_id, kind, parent, hops, _) in groups.items():
        up = groups.get(parent) if parent is not None else None
        if kind == _SNAPSHOT:
            ok = parent is None and hops == 0 and gid not in removals
        elif kind == _COMPACTION:
            ok = up is not None and up[1] == _SNAPSHOT and hops == 0
        elif kind == _DELTA:
            ok = up is not None and hops == up[3] + 1 and hops <= MAX_DELTA_HOPS
        else:
            ok = False
        if not ok:
            msg = f"state group {gid} breaks the shape rules"
            raise StoreError(msg)
        if up is not None and up[0] != room_id:
            msg = f"state group {gid} builds on another room's group"
            raise StoreError(msg)
    states = get_state(conn, sorted(groups), None, chunk)
    for gid, (_, _, _, _, size) in groups.items():
        if len(states[gid]) != size:
            msg = f"state group {gid} has a wrong size"
            raise StoreError(msg)
    for nid, before, after in conn.execute(
        "SELECT event_nid, before_group, after_group FROM event_state_groups"
    ):
        if before not in groups or after not in groups:
            msg = f"the state groups of event row {nid} are not stored"
            raise StoreError(msg)
    dangling = conn.execute(
        "SELECT count(*) FROM event_state_groups s LEFT JOIN events e ON e.arrival = s.event_nid "
        "WHERE e.arrival IS NULL OR e.outlier != 0"
    ).fetchone()[0]
    if dangling:
        msg = "state groups are recorded for unknown or outlier events"
        raise StoreError(msg)
    orphans = conn.execute(
        "SELECT count(*) FROM parked_events p LEFT JOIN events e ON e.arrival = p.event_nid "
        "WHERE e.arrival IS NULL"
    ).fetchone()[0]
    if orphans:
        msg = "parked events are not stored"
        raise StoreError(msg)
    for inputs, result in conn.execute("SELECT inputs, group_id FROM state_resolutions"):
        if result not in groups or any(int(g) not in groups for g in inputs.split(",")):
            msg = f"the cached resolution {inputs} names unknown groups"
            raise StoreError(msg)


def stats(conn: sqlite3.Connection) -> StateGroupStats:
    """Counts of the stored groups, as ``MemoryStateGroups.stats`` gives them."""
    kinds = dict(conn.execute("SELECT kind, count(*) FROM state_groups GROUP BY kind").fetchall())
    return StateGroupStats(
        groups=sum(kinds.values()),
        snapshots=kinds.get(_SNAPSHOT, 0),
        compactions=kinds.get(_COMPACTION, 0),
        deltas=kinds.get(_DELTA, 0),
        entries=conn.execute("SELECT count(*) FROM state_group_entries").fetchone()[0],
        event_links=conn.execute("SELECT count(*) FROM event_state_groups").fetchone()[0],
        resolutions=conn.execute("SELECT count(*) FROM state_resolutions").fetchone()[0],
    )
