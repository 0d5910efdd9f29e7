"""SqliteStore: every storage protocol on the standard library's ``sqlite3``.

Rules of this module:

1. It answers the same batch questions as :class:`~eventgraph.MemoryStore`, with the same
   results (the store contract of :mod:`eventgraph.testing.contract` holds both to it). Every
   batch call is a fixed number of SQL statements per chunk of IDs (a chunk is as many IDs as
   SQLite binds in one statement: its variable limit, capped at 32 766): never one statement
   per event.
2. A write is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction. The batch is validated before
   anything is written; any error (a refused batch, a SQLite error, an interrupt) rolls the
   transaction back, so the database is exactly as before the call. The journal is a write-ahead
   log (WAL) with ``synchronous=NORMAL``: a process killed at any point loses at most the batch
   in flight, never part of one.
3. Reads that need more than one statement run in one read transaction, so every answer comes
   from one snapshot of the database, whatever another connection writes meanwhile.
4. Events are stored as their canonical PDU bytes plus their room version, and rebuilt with
   :meth:`~eventgraph.Event.from_trusted_pdu` (their IDs were validated when they were stored).
   The graph facts the walks need live in columns beside them, so a walk never parses a PDU.
5. Derived tables (children edges, forward and backward extremities, per-room counts) follow
   from the stored events alone, by the definitions of :mod:`eventgraph.stores.memory` rule 3
   (a ``prev_events`` edge from another room is not a child for forward extremities);
   :meth:`SqliteStore.check_invariants` recomputes them and compares.
6. Orders that the protocols define (sorted children, sorted extremities) are produced in Python;
   SQL only selects rows. The store never imports an algorithm.
7. The schema is versioned with ``PRAGMA user_version`` and upgraded by the ordered
   ``_MIGRATIONS`` list when an older database is opened; a newer or foreign database is refused.

Schema (version 1)::

    rooms(room_nid PK, room_id UNIQUE, room_version, event_count)
    events(arrival PK, event_id UNIQUE, room_nid, depth, is_state, outlier, rejected,
           soft_failed, prev_ids JSON, auth_ids JSON, pdu BLOB)   index (room_nid, depth)
    prev_edges(prev_id, event_nid) PK both        -- children: who lists prev_id
    auth_edges(auth_id, event_nid) PK both        -- who lists auth_id (chain index upkeep)
    forward_extremities(event_id PK, room_nid)    index (room_nid)
    backward_extremities(event_id, room_nid, depth) PK (event_id, room_nid), index (room_nid)

Schema version 2 adds the state groups (:mod:`eventgraph.stores._sqlite_state`), version 3 the
chain cover index (:mod:`eventgraph.stores._sqlite_chain`), version 4 an index of its links by
target (the index read backwards: :class:`~eventgraph.protocols.ChainIndexReverseReader`),
version 5 the state keys each room has a stored state event for
(:class:`~eventgraph.protocols.StateKeyPresenceReader`)::

    room_state_keys(room_nid, type, state_key) PK all   -- any stored state event, any flags

A key SQLite cannot bind (a lone surrogate) is not recorded, and is always reported present
(the conservative answer). Version 6 records the rooms whose depths do not descend along auth
edges (:class:`~eventgraph.protocols.ChainIndexDepthReader`; ``chain_disordered``, see
:mod:`eventgraph.stores._sqlite_chain` rule 5).

The forward direction of an edge (an event's ``prev_events`` and ``auth_events`` in PDU order)
is the JSON column of the event's row, read with its other facts in the same statement; the edge
tables hold the reverse direction, keyed by the target ID (which need not be stored).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from ..errors import StoreError
from ..events.event import Event, StateKey
from ..events.room_versions import RoomVersion, room_version
from ..protocols import (
    ChainLink,
    ChainPosition,
    ChainReverseLink,
    EventFacts,
    EventStateGroups,
    StateWrite,
)
from . import _sqlite_chain, _sqlite_state
from ._batch import check_batch
from .memory_state import StateGroupStats

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

#: ``PRAGMA application_id`` of an eventgraph database ("EvGr").
APPLICATION_ID: Final = 0x45764772

_Migration = Callable[[sqlite3.Connection], None]


def _run_ddl(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated DDL inside the caller's transaction (``executescript`` would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    """Version 1: events, edges, extremities."""
    _run_ddl(
        conn,
        """
        CREATE TABLE rooms (
            room_nid INTEGER PRIMARY KEY,
            room_id TEXT NOT NULL UNIQUE,
            room_version TEXT NOT NULL,
            event_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE events (
            arrival INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            room_nid INTEGER NOT NULL,
            depth INTEGER NOT NULL,
            is_state INTEGER NOT NULL,
            outlier INTEGER NOT NULL,
            rejected TEXT,
            soft_failed INTEGER NOT NULL,
            prev_ids TEXT NOT NULL,
            auth_ids TEXT NOT NULL,
            pdu BLOB NOT NULL
        );
        CREATE INDEX events_room_depth ON events (room_nid, depth);
        CREATE TABLE prev_edges (
            prev_id TEXT NOT NULL,
            event_nid INTEGER NOT NULL,
            PRIMARY KEY (prev_id, event_nid)
        ) WITHOUT ROWID;
        CREATE TABLE auth_edges (
            auth_id TEXT NOT NULL,
            event_nid INTEGER NOT NULL,
            PRIMARY KEY (auth_id, event_nid)
        ) WITHOUT ROWID;
        CREATE TABLE forward_extremities (
            event_id TEXT NOT NULL PRIMARY KEY,
            room_nid INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX forward_extremities_room ON forward_extremities (room_nid);
        CREATE TABLE backward_extremities (
            event_id TEXT NOT NULL,
            room_nid INTEGER NOT NULL,
            depth INTEGER NOT NULL,
            PRIMARY KEY (event_id, room_nid)
        ) WITHOUT ROWID;
        CREATE INDEX backward_extremities_room ON backward_extremities (room_nid);
        """,
    )


#: ``_MIGRATIONS[n]`` upgrades a database from schema version ``n`` to ``n + 1``. Each runs
#: inside the opening transaction; append, never edit, once a version has shipped.
def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Version 2: state groups (see :mod:`eventgraph.stores._sqlite_state`)."""
    _run_ddl(conn, _sqlite_state.MIGRATION_SQL)


def _chunk_size(conn: sqlite3.Connection) -> int:
    """How many IDs one statement binds: SQLite's variable limit (at most 32 766)."""
    return max(1, min(conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 32766))


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Version 3: the chain cover index (see :mod:`eventgraph.stores._sqlite_chain`), built for
    the events already stored."""
    _run_ddl(conn, _sqlite_chain.MIGRATION_SQL)
    _sqlite_chain.populate(conn, _chunk_size(conn))


def _migrate_3_to_4(conn: sqlite3.Connection) -> None:
    """Version 4: the chain links indexed by target (reverse reads of the chain index)."""
    _run_ddl(conn, _sqlite_chain.REVERSE_LINKS_SQL)


def _migrate_4_to_5(conn: sqlite3.Connection) -> None:
    """Version 5: the state keys of each room's stored state events, filled in for the events
    already stored."""
    _run_ddl(
        conn,
        """
        CREATE TABLE room_state_keys (
            room_nid INTEGER NOT NULL,
            type TEXT NOT NULL,
            state_key TEXT NOT NULL,
            PRIMARY KEY (room_nid, type, state_key)
        ) WITHOUT ROWID
        """,
    )
    rows: set[tuple[int, str, str]] = set()
    for room_nid, pdu in conn.execute("SELECT room_nid, pdu FROM events WHERE is_state = 1"):
        decoded = json.loads(pdu)
        key = (decoded["type"], decoded["state_key"])
        if _bindable_key(key):
            rows.add((room_nid, *key))
    conn.executemany(
        "INSERT INTO room_state_keys (room_nid, type, state_key) VALUES (?, ?, ?)", sorted(rows)
    )


def _bindable_key(key: tuple[str, str]) -> bool:
    """Whether SQLite can bind both strings of a state key (no lone surrogates)."""
    try:
        key[0].encode("utf-8")
        key[1].encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _migrate_5_to_6(conn: sqlite3.Connection) -> None:
    """Version 6: the rooms whose depths do not descend along auth edges (the chain index's
    rule 6), found for the events already stored."""
    _run_ddl(conn, _sqlite_chain.DISORDERED_SQL)
    _sqlite_chain.populate_disordered(conn, _chunk_size(conn))


_MIGRATIONS: Final[tuple[_Migration, ...]] = (
    _migrate_0_to_1,
    _migrate_1_to_2,
    _migrate_2_to_3,
    _migrate_3_to_4,
    _migrate_4_to_5,
    _migrate_5_to_6,
)

#: The schema version this code writes.
SCHEMA_VERSION: Final = len(_MIGRATIONS)

#: How many parsed events a :class:`SqliteStore` keeps by default for later reads.
EVENT_CACHE_SIZE: Final = 20_000


_json_ids: Final = json.JSONEncoder(separators=(",", ":")).encode


def _encode_ids(ids: tuple[str, ...]) -> str:
    """An edge list as a JSON array for the ``prev_ids``/``auth_ids`` columns.

    The usual IDs (printable ASCII without quotes or backslashes) need no escaping, so they are
    joined directly; anything else goes through the JSON encoder. Both are the same JSON.
    """
    joined = '","'.join(ids)
    if joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined:
        return f'["{joined}"]' if ids else "[]"
    return _json_ids(ids)


_raw_decode: Final = json.JSONDecoder().raw_decode


def _decode_ids(text: str) -> tuple[str, ...]:
    """Decode what :data:`_encode_ids` wrote (no whitespace to skip: ``raw_decode`` suffices)."""
    return tuple(_raw_decode(text)[0])


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _group_sorted(
    rows: Iterable[tuple[str, str]], ids: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """``(parent, child)`` rows as ``{parent: sorted children}``, for the asked IDs in order."""
    grouped: dict[str, set[str]] = {}
    for parent, child in rows:
        grouped.setdefault(parent, set()).add(child)
    return {i: tuple(sorted(grouped[i])) for i in ids if i in grouped}


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def _string_ids(ids: Iterable[object]) -> list[str]:
    """The distinct string IDs of ``ids``, in first-seen order (others can never be stored)."""
    return list(dict.fromkeys(i for i in ids if type(i) is str))


def _encodable(ids: Sequence[str]) -> list[str]:
    """Drop IDs SQLite cannot bind (lone surrogates): no stored ID is one of them."""
    out = []
    for i in ids:
        try:
            i.encode("utf-8")
        except UnicodeEncodeError:
            continue
        out.append(i)
    return out


class SqliteStore:
    """Every storage protocol of :mod:`eventgraph.protocols`, in one SQLite database: events,
    graph facts, children and extremities, and state groups (the ingest pipeline's
    :class:`~eventgraph.protocols.RoomStore`).

    Args:
        path: a file path, or ``":memory:"`` for a private in-memory database.
        timeout: seconds to wait for another connection's write lock before failing.
        event_cache_size: how many parsed events to keep for later reads (0: none). Stored
            events never change, so the cache is always right; it only saves re-parsing.

    Raises:
        StoreError: the file is not an eventgraph database, was written by a newer eventgraph
            (its schema version is higher than :data:`SCHEMA_VERSION`), or cannot be opened.

    One store object may be shared by threads (calls are serialised by a lock); several store
    objects, in threads or processes, may open the same file: one writes at a time, readers
    never block and each read sees one committed snapshot (rule 3).

    >>> from eventgraph.testing.contract import contract_event
    >>> with SqliteStore(":memory:") as store:
    ...     store.add_events([contract_event("$a"), contract_event("$b", ["$a"], depth=2)])
    ...     store.forward_extremities("!contract:test")
    ('$b',)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        event_cache_size: int = EVENT_CACHE_SIZE,
    ) -> None:
        self._path = os.fspath(path)
        # Parsed events by ID (events never change once stored): most reads of the pipeline
        # and of the algorithms ask for recent events again and again. Filled from committed
        # reads only, so a rolled-back write can never be served from it.
        self._events: dict[str, Event] = {}
        self._event_cache_size = max(0, event_cache_size)
        # Committed state groups' delta chains by group (a committed group never changes).
        self._chains: dict[int, _sqlite_state._Chain] = {}
        self._lock = threading.RLock()
        self._in_snapshot = 0
        try:
            conn = sqlite3.connect(
                self._path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            msg = f"cannot open the database {self._path!r}: {err}"
            raise StoreError(msg) from err
        self._conn: sqlite3.Connection | None = conn
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA cache_size=-65536")
            self._chunk = _chunk_size(conn)
            self._upgrade(conn)
        except BaseException:
            conn.close()
            self._conn = None
            raise
        self._versions: dict[str, RoomVersion] = {}
        self._chain = _sqlite_chain.ChainCache()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The path the store was opened with."""
        return self._path

    def close(self) -> None:
        """Close the database. Idempotent; any later call raises :class:`StoreError`."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _db(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            msg = "the store is closed"
            raise StoreError(msg)
        return conn

    @staticmethod
    def _upgrade(conn: sqlite3.Connection) -> None:
        """Create or migrate the schema in one transaction (rule 7)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id != APPLICATION_ID:
                has_tables = conn.execute(
                    "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
                ).fetchone()[0]
                if app_id != 0 or has_tables:
                    msg = "the database is not an eventgraph database"
                    raise StoreError(msg)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            if version > SCHEMA_VERSION:
                msg = (
                    f"the database has schema version {version}, newer than this eventgraph "
                    f"understands ({SCHEMA_VERSION}); upgrade eventgraph to open it"
                )
                raise StoreError(msg)
            for n in range(version, SCHEMA_VERSION):
                _MIGRATIONS[n](conn)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException as err:
            conn.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                msg = f"cannot open the database: {err}"
                raise StoreError(msg) from err
            raise

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Hold one read transaction: every read inside sees the same committed snapshot.

        Reads outside it are each consistent on their own; this makes several calls consistent
        with each other (e.g. forward extremities and then their events). Writes through this
        store object are refused inside it. Other store objects keep writing meanwhile (WAL).

        Raises:
            StoreError: the store is closed.
        """
        with self._lock:
            conn = self._db()
            if self._in_snapshot:
                self._in_snapshot += 1
                try:
                    yield
                finally:
                    self._in_snapshot -= 1
                return
            conn.execute("BEGIN")
            self._in_snapshot = 1
            try:
                yield
            finally:
                self._in_snapshot = 0
                conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction for a multi-statement read, unless one is already open."""
        with self._lock:
            conn = self._db()
            if self._in_snapshot:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any exception rolls it back (rule 2)."""
        with self._lock:
            conn = self._db()
            if self._in_snapshot:
                msg = "cannot write inside read_snapshot()"
                raise StoreError(msg)
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                msg = f"cannot start a write: {err}"
                raise StoreError(msg) from err
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as err:
                self._chain.invalidate()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(err, sqlite3.Error):
                    msg = f"the database refused the write: {err}"
                    raise StoreError(msg) from err
                raise

    def _read_in(self, sql: str, ids: Sequence[str]) -> list[Any]:
        """:meth:`_select_in` in a read transaction of its own; no statement for no IDs."""
        if not ids:
            return []
        with self._read() as conn:
            return self._select_in(conn, sql, ids)

    def _select_in(self, conn: sqlite3.Connection, sql: str, ids: Sequence[str]) -> list[Any]:
        """Run ``sql``, whose ``{ids}`` is a placeholder list, once per chunk of ``ids``."""
        rows: list[Any] = []
        for chunk in _chunks(ids, self._chunk):
            try:
                rows.extend(conn.execute(sql.format(ids=_placeholders(len(chunk))), chunk))
            except UnicodeEncodeError:
                ok = _encodable(chunk)
                if ok:
                    rows.extend(conn.execute(sql.format(ids=_placeholders(len(ok))), ok))
        return rows

    def _version(self, identifier: str) -> RoomVersion:
        rv = self._versions.get(identifier)
        if rv is None:
            rv = self._versions[identifier] = room_version(identifier)
        return rv

    # -- EventReader --------------------------------------------------------------------------

    def get_events(self, event_ids: Collection[str], /) -> Mapping[str, Event]:
        """The stored events among ``event_ids``, rebuilt from their stored bytes.

        Complexity: one statement per chunk of IDs; O(size of the PDUs) to rebuild them.
        """
        ids = _string_ids(event_ids)
        cache = self._events
        out = {i: ev for i in ids if (ev := cache.get(i)) is not None}
        if len(out) == len(ids):
            return out
        rows = self._read_in(
            "SELECT e.event_id, e.pdu, r.room_version FROM events e "
            "JOIN rooms r ON r.room_nid = e.room_nid WHERE e.event_id IN ({ids})",
            [i for i in ids if i not in out] if out else ids,
        )
        loads = json.loads
        trusted = Event.from_trusted_pdu
        version = self._version
        read = {
            event_id: trusted(loads(pdu), version(rv), event_id=event_id, backfilled=True)
            for event_id, pdu, rv in rows
        }
        limit = self._event_cache_size
        if limit:
            with self._lock:
                cache.update(read)
                # Oldest entries out first (dicts keep insertion order).
                excess = len(cache) - limit
                if excess > 0:
                    for stale in list(itertools.islice(cache, excess)):
                        del cache[stale]
        out.update(read)
        return out

    def get_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        """The graph facts of the stored events among ``event_ids``.

        Complexity: one statement per chunk of IDs; no PDU is parsed.
        """
        return self._facts_where(event_ids, "")

    def _facts_where(self, event_ids: Collection[str], condition: str) -> dict[str, EventFacts]:
        """The facts of the stored events among ``event_ids`` whose row meets ``condition``
        (SQL added to the WHERE clause, on the ``events`` table as ``e``)."""
        ids = _string_ids(event_ids)
        rows = self._read_in(
            "SELECT e.event_id, r.room_id, e.depth, e.prev_ids, e.auth_ids, e.is_state, "
            "e.outlier, e.rejected, e.soft_failed, e.arrival FROM events e "
            "JOIN rooms r ON r.room_nid = e.room_nid WHERE e.event_id IN ({ids})" + condition,
            ids,
        )
        ids_of = _decode_ids
        return {
            row[0]: EventFacts(
                event_id=row[0],
                room_id=row[1],
                depth=row[2],
                prev_event_ids=ids_of(row[3]),
                auth_event_ids=ids_of(row[4]),
                is_state=bool(row[5]),
                outlier=bool(row[6]),
                rejected=row[7],
                soft_failed=bool(row[8]),
                arrival=row[9],
            )
            for row in rows
        }

    # -- FlaggedEventsReader -------------------------------------------------------------------

    def get_flagged_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        """The facts of the outliers and rejected events among ``event_ids``.

        Complexity: one statement per chunk of IDs (each ID one primary-key probe, as
        :meth:`get_facts`), rows decoded only for the flagged events (few).
        """
        return self._facts_where(event_ids, " AND (e.outlier = 1 OR e.rejected IS NOT NULL)")

    # -- GraphReader --------------------------------------------------------------------------

    def get_children(self, event_ids: Collection[str], /) -> Mapping[str, tuple[str, ...]]:
        """For each ID, the non-outlier stored events listing it in ``prev_events``, sorted.

        Complexity: one statement per chunk of IDs, O(answer) rows.
        """
        ids = _string_ids(event_ids)
        rows = self._read_in(
            "SELECT p.prev_id, e.event_id FROM prev_edges p "
            "JOIN events e ON e.arrival = p.event_nid "
            "WHERE p.prev_id IN ({ids}) AND e.outlier = 0",
            ids,
        )
        return _group_sorted(rows, ids)

    def forward_extremities(self, room_id: str, /) -> tuple[str, ...]:
        """The room's forward extremities, sorted. Complexity: one statement, O(answer) rows."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT f.event_id FROM forward_extremities f "
                "JOIN rooms r ON r.room_nid = f.room_nid WHERE r.room_id = ?",
                (room_id,),
            ).fetchall()
        return tuple(sorted(r[0] for r in rows))

    def get_present_state_keys(
        self, room_id: str, keys: Collection[StateKey], /
    ) -> Collection[StateKey]:
        """The keys among ``keys`` the room has a stored state event for (any flags; a key
        SQLite cannot bind counts as present). Complexity: one statement per chunk of keys,
        each key a primary-key lookup."""
        wanted = sorted(set(keys))
        present = {k for k in wanted if not _bindable_key(k)}
        bindable = [k for k in wanted if k not in present]
        if not bindable:
            return present
        with self._read() as conn:
            row = conn.execute(
                "SELECT room_nid FROM rooms WHERE room_id = ?", (room_id,)
            ).fetchone()
            if row is None:
                return present
            step = max(1, (self._chunk - 1) // 2)
            for start in range(0, len(bindable), step):
                chunk = bindable[start : start + step]
                params: list[object] = [row[0]]
                for k in chunk:
                    params.extend(k)
                present.update(
                    (t, sk)
                    for t, sk in conn.execute(
                        "SELECT type, state_key FROM room_state_keys WHERE room_nid = ? "
                        "AND (type, state_key) IN (VALUES "
                        + ",".join(["(?,?)"] * len(chunk))
                        + ")",
                        params,
                    )
                )
        return present

    def backward_extremities(self, room_id: str, /) -> Mapping[str, int]:
        """The room's backward extremities with their depths, sorted by ID.

        Complexity: one statement, O(answer) rows.
        """
        with self._read() as conn:
            rows = conn.execute(
                "SELECT b.event_id, b.depth FROM backward_extremities b "
                "JOIN rooms r ON r.room_nid = b.room_nid WHERE r.room_id = ?",
                (room_id,),
            ).fetchall()
        return dict(sorted(rows))

    def room_version_of(self, room_id: str, /) -> RoomVersion | None:
        """The room's version, if the store holds events of that room. One statement."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT room_version FROM rooms WHERE room_id = ?", (room_id,)
            ).fetchone()
        return None if row is None else self._version(row[0])

    # -- ChainIndexReader ---------------------------------------------------------------------

    def get_chain_positions(self, event_ids: Collection[str], /) -> Mapping[str, ChainPosition]:
        """The chain cover positions of the indexed events among ``event_ids``.

        Complexity: one statement per chunk of IDs.
        """
        ids = _string_ids(event_ids)
        if not ids:
            return {}
        with self._read() as conn:
            return _sqlite_chain.positions(conn, ids, self._chunk)

    def get_chain_links(self, chain_ids: Collection[int], /) -> Mapping[int, tuple[ChainLink, ...]]:
        """For each chain, the links leaving it, sorted. One statement per chunk of chains."""
        chains = list(dict.fromkeys(c for c in chain_ids if type(c) is int))
        if not chains:
            return {}
        with self._read() as conn:
            return _sqlite_chain.links(conn, chains, self._chunk)

    def get_chain_members(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[str, ...]]:
        """For each ``chain_id: (low, high)``, its events with ``low < sequence <= high``, in
        sequence order. One statement per chunk of ranges, O(answer) rows."""
        if not ranges:
            return {}
        with self._read() as conn:
            return _sqlite_chain.members(conn, ranges, self._chunk)

    # -- ChainIndexReverseReader --------------------------------------------------------------

    def get_chain_reverse_links(
        self, ranges: Mapping[int, tuple[int, int]], /
    ) -> Mapping[int, tuple[ChainReverseLink, ...]]:
        """For each ``chain_id: (low, high)``, the links into it with ``low < target_sequence <=
        high``, sorted. One statement per chunk of ranges, O(answer) rows (schema version 4
        indexes the links by target)."""
        wanted = {c: r for c, r in ranges.items() if type(c) is int}
        if not wanted:
            return {}
        with self._read() as conn:
            return _sqlite_chain.reverse_links(conn, wanted, self._chunk)

    def get_unindexed(self, event_ids: Collection[str], /) -> Collection[str]:
        """The stored events among ``event_ids`` the chain index does not hold.

        Complexity: one statement per chunk of IDs (a lookup per ID in SQLite).
        """
        ids = _string_ids(event_ids)
        if not ids:
            return set()
        with self._read() as conn:
            return _sqlite_chain.unindexed(conn, ids, self._chunk)

    # -- ChainIndexDepthReader ----------------------------------------------------------------

    def auth_depths_descend(self, room_ids: Collection[str], /) -> bool:
        """Whether no room of ``room_ids`` is recorded as disordered (``_sqlite_chain`` rule 5;
        a room never stored qualifies: it holds no event).

        Complexity: one statement per chunk of room IDs.
        """
        ids = _string_ids(room_ids)
        if not ids:
            return True
        rows = self._read_in(
            "SELECT 1 FROM chain_disordered d JOIN rooms r ON r.room_nid = d.room_nid "
            "WHERE r.room_id IN ({ids}) LIMIT 1",
            ids,
        )
        return not rows

    def greatest_depth(self, event_ids: Collection[str], /) -> int | None:
        """The greatest depth of the stored events among ``event_ids`` (``None`` if none is).

        Complexity: one statement per chunk of IDs (a lookup per ID in SQLite).
        """
        rows = self._read_in(
            "SELECT max(depth) FROM events WHERE event_id IN ({ids})", _string_ids(event_ids)
        )
        depths = [row[0] for row in rows if row[0] is not None]
        return max(depths) if depths else None

    # -- conveniences for tools ---------------------------------------------------------------

    def __len__(self) -> int:
        with self._read() as conn:
            n: int = conn.execute("SELECT coalesce(sum(event_count), 0) FROM rooms").fetchone()[0]
        return n

    def __contains__(self, event_id: object) -> bool:
        return type(event_id) is str and bool(self.get_facts([event_id]))

    def room_ids(self) -> tuple[str, ...]:
        """The rooms the store holds events of, sorted."""
        with self._read() as conn:
            rows = conn.execute("SELECT room_id FROM rooms").fetchall()
        return tuple(sorted(r[0] for r in rows))

    def room_event_count(self, room_id: str) -> int:
        """How many events of ``room_id`` are stored. One statement."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT event_count FROM rooms WHERE room_id = ?", (room_id,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    # -- EventWriter --------------------------------------------------------------------------

    def add_events(
        self,
        events: Iterable[Event],
        /,
        *,
        outliers: Collection[str] = (),
        rejected: Mapping[str, str] | None = None,
        soft_failed: Collection[str] = (),
    ) -> None:
        """Store ``events`` atomically (see :class:`eventgraph.protocols.EventWriter`).

        Storing a stored event again is a no-op, except that an outlier stored again as a
        non-outlier is connected into the DAG with the flags of this call.

        Complexity: about a dozen statements per chunk of the batch (reads of the stored rows,
        multi-row inserts of events and edges, extremity updates); no statement depends on the
        room's size beyond an index lookup.

        Raises:
            StoreError: the batch is inconsistent, or SQLite refused the write (disk full, the
                database locked longer than ``timeout``); the store is unchanged.
        """
        batch, versions = check_batch(events, outliers, rejected or {}, soft_failed)
        if not batch:
            return
        outlier_set = frozenset(outliers)
        rejected_map = dict(rejected or {})
        soft_set = frozenset(soft_failed)
        ids = [e.event_id for e in batch]
        try:
            with self._write() as conn:
                self._insert(conn, batch, ids, versions, outlier_set, rejected_map, soft_set)
        except UnicodeEncodeError as err:
            msg = f"the batch holds a string SQLite cannot store: {err}"
            raise StoreError(msg) from err

    def _insert(
        self,
        conn: sqlite3.Connection,
        batch: list[Event],
        ids: list[str],
        versions: dict[str, RoomVersion],
        outlier_set: frozenset[str],
        rejected_map: dict[str, str],
        soft_set: frozenset[str],
    ) -> None:
        # 1. What is stored already: refuse a different event under a stored ID, or a room
        #    version that disagrees with the stored room's.
        stored: dict[str, tuple[bytes, bool]] = {
            row[0]: (row[1], bool(row[2]))
            for row in self._select_in(
                conn, "SELECT event_id, pdu, outlier FROM events WHERE event_id IN ({ids})", ids
            )
        }
        for event in batch:
            old = stored.get(event.event_id)
            if old is not None and old[0] != event.pdu_json:
                msg = f"a different event is already stored as {event.event_id}"
                raise StoreError(msg)
        room_ids = list(versions)
        rooms: dict[str, int] = {}
        for room_nid, room_id, identifier in self._select_in(
            conn,
            "SELECT room_nid, room_id, room_version FROM rooms WHERE room_id IN ({ids})",
            room_ids,
        ):
            if identifier != versions[room_id].identifier:
                msg = (
                    f"room {room_id} has room version {identifier}, "
                    f"not {versions[room_id].identifier}"
                )
                raise StoreError(msg)
            rooms[room_id] = room_nid
        # Validation is over: from here on only SQLite itself can fail, and rolls back.

        # 2. The plan: new events, outliers being connected, and the rest (no-ops).
        new = [e for e in batch if e.event_id not in stored]
        connect = [
            e
            for e in batch
            if stored.get(e.event_id, (b"", False))[1] and e.event_id not in outlier_set
        ]
        if not new and not connect:
            return
        new_rooms = [r for r in room_ids if r not in rooms]
        conn.executemany(
            "INSERT INTO rooms (room_id, room_version) VALUES (?, ?)",
            [(r, versions[r].identifier) for r in new_rooms],
        )
        if new_rooms:
            rooms.update(
                self._select_in(
                    conn, "SELECT room_id, room_nid FROM rooms WHERE room_id IN ({ids})", new_rooms
                )
            )

        # 3. Rows of the new events (arrival numbers continue the stored ones), their edges.
        top = conn.execute("SELECT coalesce(max(arrival), 0) FROM events").fetchone()[0]
        dumps = _encode_ids
        event_rows = []
        prev_rows: list[tuple[str, int]] = []
        auth_rows: list[tuple[str, int]] = []
        nid_of: dict[str, int] = {}
        for n, e in enumerate(new, start=top + 1):
            nid_of[e.event_id] = n
            event_rows.append(
                (
                    n,
                    e.event_id,
                    rooms[e.room_id],
                    e.depth,
                    e.state_key is not None,
                    e.event_id in outlier_set,
                    rejected_map.get(e.event_id),
                    e.event_id in soft_set,
                    dumps(e.prev_event_ids),
                    dumps(e.auth_event_ids),
                    e.pdu_json,
                )
            )
            prev_rows.extend([(p, n) for p in dict.fromkeys(e.prev_event_ids)])
            auth_rows.extend([(a, n) for a in dict.fromkeys(e.auth_event_ids)])
        conn.executemany(
            "INSERT INTO events (arrival, event_id, room_nid, depth, is_state, outlier, rejected, "
            "soft_failed, prev_ids, auth_ids, pdu) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            event_rows,
        )
        conn.executemany("INSERT INTO prev_edges (prev_id, event_nid) VALUES (?, ?)", prev_rows)
        conn.executemany("INSERT INTO auth_edges (auth_id, event_nid) VALUES (?, ?)", auth_rows)
        conn.executemany(
            "INSERT OR IGNORE INTO room_state_keys (room_nid, type, state_key) VALUES (?, ?, ?)",
            [
                (rooms[e.room_id], *key)
                for e in new
                if (key := e.state_tuple) is not None and _bindable_key(key)
            ],
        )
        conn.executemany(
            "UPDATE events SET outlier = 0, rejected = ?, soft_failed = ? WHERE event_id = ?",
            [(rejected_map.get(e.event_id), e.event_id in soft_set, e.event_id) for e in connect],
        )
        if new:
            self._chain.update(
                conn,
                [
                    (
                        nid_of[e.event_id],
                        e.event_id,
                        e.room_id,
                        e.state_tuple,
                        e.auth_event_ids,
                        e.depth,
                    )
                    for e in new
                ],
                self._chunk,
            )
        counts: dict[int, int] = {}
        for e in new:
            nid = rooms[e.room_id]
            counts[nid] = counts.get(nid, 0) + 1
        conn.executemany(
            "UPDATE rooms SET event_count = event_count + ? WHERE room_nid = ?",
            [(c, nid) for nid, c in counts.items()],
        )

        # 4. Extremities of the events joining the DAG (rule 5; memory.py rule 3).
        joining = [e for e in new if e.event_id not in outlier_set] + connect
        if joining:
            self._update_extremities(conn, joining, rooms, rejected_map, soft_set)

    def _update_extremities(
        self,
        conn: sqlite3.Connection,
        joining: list[Event],
        rooms: dict[str, int],
        rejected_map: dict[str, str],
        soft_set: frozenset[str],
    ) -> None:
        joining_ids = [e.event_id for e in joining]
        # Backward: the joining events are no longer missing from any room; their prevs that
        # are not stored as non-outliers are, at the smallest depth among their children.
        for chunk in _chunks(joining_ids, self._chunk):
            conn.execute(
                f"DELETE FROM backward_extremities WHERE event_id IN ({_placeholders(len(chunk))})",
                chunk,
            )
        prevs = _string_ids(p for e in joining for p in e.prev_event_ids)
        in_dag = {
            row[0]
            for row in self._select_in(
                conn,
                "SELECT event_id FROM events WHERE event_id IN ({ids}) AND outlier = 0",
                prevs,
            )
        }
        missing: dict[tuple[str, int], int] = {}
        for e in joining:
            nid = rooms[e.room_id]
            for p in e.prev_event_ids:
                if p not in in_dag:
                    key = (p, nid)
                    depth = missing.get(key)
                    if depth is None or e.depth < depth:
                        missing[key] = e.depth
        conn.executemany(
            "INSERT INTO backward_extremities (event_id, room_nid, depth) VALUES (?, ?, ?) "
            "ON CONFLICT (event_id, room_nid) DO UPDATE SET depth = min(depth, excluded.depth)",
            [(p, nid, d) for (p, nid), d in missing.items()],
        )
        # Forward: an accepted joining event retires its prevs of its own room (an edge from
        # another room is not a child), and is an extremity itself unless an accepted child of
        # its room is already stored.
        accepted = [
            e for e in joining if e.event_id not in rejected_map and e.event_id not in soft_set
        ]
        if not accepted:
            return
        conn.executemany(
            "DELETE FROM forward_extremities WHERE event_id = ? AND room_nid = ?",
            list(dict.fromkeys((p, rooms[e.room_id]) for e in accepted for p in e.prev_event_ids)),
        )
        with_children = {
            row[0]
            for row in self._select_in(
                conn,
                "SELECT DISTINCT p.prev_id FROM prev_edges p "
                "JOIN events e ON e.arrival = p.event_nid "
                "JOIN events parent ON parent.event_id = p.prev_id "
                "WHERE p.prev_id IN ({ids}) AND e.room_nid = parent.room_nid "
                "AND e.outlier = 0 AND e.rejected IS NULL AND e.soft_failed = 0",
                [e.event_id for e in accepted],
            )
        }
        conn.executemany(
            "INSERT INTO forward_extremities (event_id, room_nid) VALUES (?, ?)",
            [(e.event_id, rooms[e.room_id]) for e in accepted if e.event_id not in with_children],
        )

    # -- StateGroupReader ---------------------------------------------------------------------

    def get_event_state_groups(
        self, event_ids: Collection[str], /
    ) -> Mapping[str, EventStateGroups]:
        """The state groups of the connected events among ``event_ids``.

        Complexity: one statement per chunk of IDs.
        """
        ids = _string_ids(event_ids)
        rows = self._read_in(
            "SELECT e.event_id, s.before_group, s.after_group FROM event_state_groups s "
            "JOIN events e ON e.arrival = s.event_nid WHERE e.event_id IN ({ids})",
            ids,
        )
        return {event_id: EventStateGroups(before, after) for event_id, before, after in rows}

    def get_state(
        self, group_ids: Collection[int], /, keys: Collection[tuple[str, str]] | None = None
    ) -> Mapping[int, Mapping[tuple[str, str], str]]:
        """The full state (or its ``keys`` part) of each known group; unknown groups are absent.

        Complexity: two statements per chunk of groups (their delta chains, then the entries of
        the groups on them, filtered by key in SQL when ``keys`` is given); O(answer + bounded
        delta chain) rows.
        """
        gids = list(dict.fromkeys(g for g in group_ids if type(g) is int))
        if not gids:
            return {}
        with self._read() as conn:
            return _sqlite_state.get_state(conn, gids, keys, self._chunk, self._chains)

    def get_changed_keys(self, first: int, second: int, /) -> Collection[StateKey] | None:
        """See :class:`~eventgraph.protocols.StateGroupChangesReader`: the keys changed on the
        way from the two groups' closest common ancestor to each (``None`` when they share
        none, or a group is unknown).

        Complexity: two statements (the delta chains, the entries on the two paths); never
        O(state size).
        """
        if type(first) is not int or type(second) is not int:
            return None
        with self._read() as conn:
            return _sqlite_state.changed_keys(conn, first, second, self._chunk, self._chains)

    def get_resolutions(
        self, input_sets: Collection[frozenset[int]], /
    ) -> Mapping[frozenset[int], int]:
        """The cached resolved group of each known set of input groups.

        Complexity: one statement per chunk of sets.
        """
        by_key: dict[str, frozenset[int]] = {}
        for inputs in input_sets:
            if isinstance(inputs, frozenset) and all(type(g) is int for g in inputs):
                by_key[_sqlite_state.resolution_key(inputs)] = inputs
        if not by_key:
            return {}
        with self._read() as conn:
            rows = self._select_in(
                conn,
                "SELECT inputs, group_id FROM state_resolutions WHERE inputs IN ({ids})",
                list(by_key),
            )
        return {by_key[key]: group_id for key, group_id in rows}

    def get_parked_children(self, event_ids: Collection[str], /) -> Mapping[str, tuple[str, ...]]:
        """For each ID, the parked outliers listing it in ``prev_events``, sorted.

        Complexity: one statement per chunk of IDs.
        """
        ids = _string_ids(event_ids)
        rows = self._read_in(
            "SELECT p.prev_id, e.event_id FROM prev_edges p "
            "JOIN parked_events k ON k.event_nid = p.event_nid "
            "JOIN events e ON e.arrival = p.event_nid WHERE p.prev_id IN ({ids})",
            ids,
        )
        return _group_sorted(rows, ids)

    def state_group_stats(self) -> StateGroupStats:
        """Counts of the stored state groups (as ``MemoryStateGroups.stats``). Four statements."""
        with self._read() as conn:
            return _sqlite_state.stats(conn)

    # -- StateGroupWriter ---------------------------------------------------------------------

    def add_events_with_state(
        self,
        events: Iterable[Event],
        /,
        *,
        outliers: Collection[str] = (),
        rejected: Mapping[str, str] | None = None,
        soft_failed: Collection[str] = (),
        state: StateWrite,
    ) -> Mapping[int, int]:
        """Store ``events`` as :meth:`add_events` does and ``state`` with them, in one
        transaction (see :class:`eventgraph.protocols.StateGroupWriter`).

        Returns:
            The stored group ID of every draft group of ``state``.

        Complexity: that of :meth:`add_events`, plus a few statements for the state: the
        chains the drafts build on (the keys they change, or whole chains when a draft is
        rebased), multi-row inserts of groups, entries, links, resolutions and parked events.

        Raises:
            StoreError: the events or the state write are inconsistent, or SQLite refused the
                write; the store is unchanged.
        """
        batch, versions = check_batch(events, outliers, rejected or {}, soft_failed)
        outlier_set = frozenset(outliers)
        rejected_map = dict(rejected or {})
        soft_set = frozenset(soft_failed)
        in_batch = {e.event_id for e in batch}
        ids = [e.event_id for e in batch]
        named = _string_ids(
            [*ids, *state.event_groups, *state.unparked] if isinstance(state, StateWrite) else ids
        )
        try:
            with self._write() as conn:
                flags = {
                    event_id: bool(outlier)
                    for event_id, outlier in self._select_in(
                        conn,
                        "SELECT event_id, outlier FROM events WHERE event_id IN ({ids})",
                        named,
                    )
                }

                def stored_connected(event_id: str) -> bool:
                    return flags.get(event_id) is False

                def connected(event_id: str) -> bool:
                    if event_id in in_batch:
                        return event_id not in outlier_set or stored_connected(event_id)
                    return stored_connected(event_id)

                _sqlite_state.validate_write(
                    conn,
                    state,
                    connected=connected,
                    outlier_of_write=lambda event_id: (
                        event_id in in_batch and event_id in outlier_set
                    ),
                    chunk=self._chunk,
                )
                if batch:
                    self._insert(conn, batch, ids, versions, outlier_set, rejected_map, soft_set)
                nid_of = dict(
                    self._select_in(
                        conn,
                        "SELECT event_id, arrival FROM events WHERE event_id IN ({ids})",
                        _string_ids([*named, *state.parked]),
                    )
                )
                return _sqlite_state.apply_write(conn, state, nid_of, self._chunk)
        except UnicodeEncodeError as err:
            msg = f"the batch holds a string SQLite cannot store: {err}"
            raise StoreError(msg) from err

    # -- invariants ---------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Recompute every derived table from the stored events and compare (rule 5).

        Also runs SQLite's ``PRAGMA quick_check`` and rebuilds every stored event from its bytes.

        Complexity: O(size of the database): for tests and tools, never for serving.

        Raises:
            StoreError: a table disagrees with the events (a bug in the store, or a damaged
                file). The store is unchanged.
        """
        with self._read() as conn:
            _check(conn, self._version)
            _sqlite_state.check(conn, self._chunk)
            _sqlite_chain.check(conn, self._chunk)


def _check(conn: sqlite3.Connection, version: Callable[[str], RoomVersion]) -> None:
    """The body of :meth:`SqliteStore.check_invariants`, inside one read transaction."""

    def fail(msg: str) -> StoreError:
        return StoreError(msg)

    problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise fail(f"SQLite reports a damaged database: {problems[:5]}")
    rooms = {
        nid: (room_id, identifier, count)
        for nid, room_id, identifier, count in conn.execute(
            "SELECT room_nid, room_id, room_version, event_count FROM rooms"
        )
    }
    # Every event: its row agrees with its bytes.
    by_id: dict[str, tuple[int, int, int, bool, bool]] = {}  # id -> nid, room, depth, out, acc
    prev_of: dict[int, tuple[str, ...]] = {}
    auth_of: dict[int, tuple[str, ...]] = {}
    counts: dict[int, int] = dict.fromkeys(rooms, 0)
    state_keys: set[tuple[int, str, str]] = set()
    for row in conn.execute(
        "SELECT arrival, event_id, room_nid, depth, is_state, outlier, rejected, soft_failed, "
        "prev_ids, auth_ids, pdu FROM events ORDER BY arrival"
    ):
        nid, event_id, room_nid, depth, is_state, outlier, rej, soft, prev_ids, auth_ids, pdu = row
        if room_nid not in rooms:
            raise fail(f"event {event_id} names an unknown room")
        room_id, identifier, _ = rooms[room_nid]
        try:
            event = Event.from_trusted_pdu(
                json.loads(pdu), version(identifier), event_id=event_id, backfilled=True
            )
        except (ValueError, StoreError) as err:
            raise fail(f"the stored bytes of {event_id} are not an event: {err}") from err
        if (
            event.room_id != room_id
            or event.depth != depth
            or bool(is_state) != event.is_state
            or _decode_ids(prev_ids) != event.prev_event_ids
            or _decode_ids(auth_ids) != event.auth_event_ids
            or event.pdu_json != pdu
        ):
            raise fail(f"the facts of {event_id} disagree with the event")
        counts[room_nid] += 1
        if event.state_tuple is not None and _bindable_key(event.state_tuple):
            state_keys.add((room_nid, *event.state_tuple))
        accepted = not outlier and rej is None and not soft
        by_id[event_id] = (nid, room_nid, depth, bool(outlier), accepted)
        prev_of[nid] = event.prev_event_ids
        auth_of[nid] = event.auth_event_ids
    for nid, (room_id, _, count) in rooms.items():
        if counts[nid] != count:
            raise fail(f"the event count of {room_id} disagrees with the events")
    if set(conn.execute("SELECT room_nid, type, state_key FROM room_state_keys")) != state_keys:
        raise fail("the room_state_keys table disagrees with the events")
    # Edge tables: exactly the edges of the events, in reverse.
    for table, column, edges in (
        ("prev_edges", "prev_id", prev_of),
        ("auth_edges", "auth_id", auth_of),
    ):
        want = {(target, nid) for nid, targets in edges.items() for target in targets}
        got = set(conn.execute(f"SELECT {column}, event_nid FROM {table}"))
        if got != want:
            raise fail(f"the {table} table disagrees with the events")
    # Extremities, recomputed from their definitions.
    accepted_parents: set[tuple[str, int]] = set()  # (parent, room of an accepted child)
    backward: dict[tuple[str, int], int] = {}
    for nid, room_nid, depth, outlier, accepted in by_id.values():
        if outlier:
            continue
        for prev in prev_of[nid]:
            if accepted:
                accepted_parents.add((prev, room_nid))
            known = by_id.get(prev)
            if known is None or known[3]:
                key = (prev, room_nid)
                backward[key] = min(backward.get(key, depth), depth)
    forward = {
        (event_id, room_nid)
        for event_id, (_, room_nid, _, _, accepted) in by_id.items()
        if accepted and (event_id, room_nid) not in accepted_parents
    }
    if set(conn.execute("SELECT event_id, room_nid FROM forward_extremities")) != forward:
        raise fail("the forward extremities disagree with the events")
    got_backward = {
        (event_id, room_nid): depth
        for event_id, room_nid, depth in conn.execute(
            "SELECT event_id, room_nid, depth FROM backward_extremities"
        )
    }
    if got_backward != backward:
        raise fail("the backward extremities disagree with the events")
