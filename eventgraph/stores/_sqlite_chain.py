"""The chain cover index in SQLite: tables, batch reads, and the write-path upkeep behind
:class:`~eventgraph.SqliteStore`'s :class:`~eventgraph.protocols.ChainIndexReader`.

Rules of this module:

1. The index is computed by :class:`eventgraph.chain_cover.ChainCoverIndex`, the pure
   maintenance logic every store shares, fed the same events in the same order as
   ``MemoryStore`` feeds it (each event once, when first stored, in arrival order; an auth event's
   room known only once it is stored). So both stores build the same chains and links.
2. Reads never touch that object: positions, links and members are read from the tables, one
   statement per chunk, from the reader's snapshot.
3. The write path keeps a :class:`ChainCache`: a ``ChainCoverIndex`` matching the tables at a
   *generation* (a counter bumped by every write that stores events, in the same transaction)
   and the highest arrival number it was fed. When another connection has written since (the
   counter moved), the cache catches up by feeding it the events stored after that arrival, in
   arrival order (arrival numbers only grow, and a write only adds events): O(events written
   by others). Only when it has none (first write) or a write was rolled back (the object saw
   events never stored) is it rebuilt by replaying the stored state events (and the events they
   name as auth events) in arrival order: O(state events). After each batch the new positions
   (of the batch's state events and of those that waited) and the new links (of the chains
   those landed on) are inserted.
4. ``chain_waiting`` lists the stored state events not yet indexed (waiting for an auth event).
   A write looks only at the waiting events above its new events (a recursive query over
   ``auth_edges`` restricted to waiting events), so its cost follows what the batch can
   release, never the number of events waiting.

5. ``chain_disordered`` lists the rooms the index found disordered
   (:mod:`eventgraph.chain_cover` rule 6: an indexed event not deeper than one of its same-room
   auth events), written in the same transaction as the events that made them so; a room is
   never taken out (events are never deleted). It answers
   :class:`~eventgraph.protocols.ChainIndexDepthReader` from the reader's snapshot.

Tables (schema version 3; version 4 adds the index ``chain_links_target``, version 6
``chain_disordered``)::

    chain_positions(event_nid PK, chain_id, sequence)  unique (chain_id, sequence)
    chain_links(origin_chain, origin_sequence, target_chain, target_sequence)  PK all four
        index chain_links_target (target_chain, target_sequence)  -- the links read backwards
    chain_waiting(event_nid PK)
    chain_generation(id = 1, generation)
    chain_disordered(room_nid PK)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, Final

from ..chain_cover import ChainCoverIndex, IndexedEvent
from ..errors import StoreError
from ..protocols import ChainLink, ChainPosition, ChainReverseLink

__all__ = [
    "DISORDERED_SQL",
    "MIGRATION_SQL",
    "REVERSE_LINKS_SQL",
    "ChainCache",
    "check",
    "populate",
    "populate_disordered",
]

#: The DDL of schema version 3.
MIGRATION_SQL: Final = """
    CREATE TABLE chain_positions (
        event_nid INTEGER PRIMARY KEY,
        chain_id INTEGER NOT NULL,
        sequence INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX chain_positions_chain ON chain_positions (chain_id, sequence);
    CREATE TABLE chain_links (
        origin_chain INTEGER NOT NULL,
        origin_sequence INTEGER NOT NULL,
        target_chain INTEGER NOT NULL,
        target_sequence INTEGER NOT NULL,
        PRIMARY KEY (origin_chain, origin_sequence, target_chain, target_sequence)
    ) WITHOUT ROWID;
    CREATE TABLE chain_waiting (
        event_nid INTEGER PRIMARY KEY
    );
    CREATE TABLE chain_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO chain_generation (id, generation) VALUES (1, 0)
"""


#: The DDL of schema version 4: links found by their target, for the reads that walk upwards
#: (:class:`~eventgraph.protocols.ChainIndexReverseReader`).
REVERSE_LINKS_SQL: Final = """
    CREATE INDEX chain_links_target ON chain_links (target_chain, target_sequence)
"""


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class _Feed:
    """The ``room_of`` a ``ChainCoverIndex`` sees: rooms of stored events, as of ``now``."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[str, int]] = {}  # event ID -> (room, arrival)
        self.now = 0

    def room_of(self, event_id: str) -> str | None:
        got = self.known.get(event_id)
        return None if got is None or got[1] > self.now else got[0]


class ChainCache:
    """A ``ChainCoverIndex`` matching the tables at a generation (rule 3)."""

    def __init__(self) -> None:
        self._index: ChainCoverIndex | None = None
        self._feed = _Feed()
        self._generation = -1
        self._top = 0  # every stored event up to this arrival has been fed to the index
        self.replays = 0  # how many times the index was rebuilt from every stored event

    def invalidate(self) -> None:
        """Forget the cached index (after a rollback: the object saw events never stored)."""
        self._index = None
        self._generation = -1

    def update(self, conn: sqlite3.Connection, new: Sequence[_Row], chunk: int) -> None:
        """Index the newly stored events ``new`` — (arrival, event ID, room, state key, auth
        IDs, depth), in arrival order — and write the rows that changed, inside the caller's
        write transaction."""
        generation: int = conn.execute(
            "SELECT generation FROM chain_generation WHERE id = 1"
        ).fetchone()[0]
        if self._index is None:
            self._index, self._feed = _replay(conn, chunk)  # (this batch included)
            self._top = conn.execute("SELECT coalesce(max(arrival), 0) FROM events").fetchone()[0]
            self.replays += 1
        elif self._generation != generation and new:
            # Another connection wrote since: feed what it stored, below this batch.
            _feed(conn, self._index, self._feed, _stored_between(conn, self._top, new[0][0]), chunk)
        index, feed = self._index, self._feed
        # Only waiting events above the new ones (by auth edges, through waiting events) can be
        # released by this batch: find them with one recursive query per chunk (rule 4).
        waiting: list[str] = []
        new_ids = [event_id for _, event_id, *_ in new]
        for part in _chunks(new_ids, chunk):
            waiting.extend(
                row[0]
                for row in conn.execute(
                    "WITH RECURSIVE up (nid) AS ("
                    " SELECT a.event_nid FROM auth_edges a"
                    " JOIN chain_waiting w ON w.event_nid = a.event_nid"
                    f" WHERE a.auth_id IN ({_marks(len(part))})"
                    " UNION"
                    " SELECT a.event_nid FROM up JOIN events e ON e.arrival = up.nid"
                    " JOIN auth_edges a ON a.auth_id = e.event_id"
                    " JOIN chain_waiting w ON w.event_nid = a.event_nid)"
                    " SELECT e.event_id FROM up JOIN events e ON e.arrival = up.nid",
                    list(part),
                )
            )
        waiting = list(dict.fromkeys(waiting))
        _feed(conn, index, feed, new, chunk)
        candidates = waiting + [event_id for _, event_id, _, key, *_ in new if key is not None]
        placed = index.positions(candidates)
        nid_of = {event_id: arrival for arrival, event_id, *_ in new}
        missing = [e for e in placed if e not in nid_of]
        for part in _chunks(missing, chunk):
            nid_of.update(
                conn.execute(
                    f"SELECT event_id, arrival FROM events WHERE event_id IN ({_marks(len(part))})",
                    list(part),
                )
            )
        conn.executemany(
            "INSERT INTO chain_positions (event_nid, chain_id, sequence) VALUES (?, ?, ?)",
            [(nid_of[e], p.chain_id, p.sequence) for e, p in placed.items()],
        )
        conn.executemany(
            "DELETE FROM chain_waiting WHERE event_nid = ?",
            [(nid_of[e],) for e in waiting if e in placed],
        )
        conn.executemany(
            "INSERT INTO chain_waiting (event_nid) VALUES (?)",
            [(a,) for a, e, _, key, *_ in new if key is not None and e not in placed],
        )
        chains = sorted({p.chain_id for p in placed.values()})
        links = index.links(chains)
        stored: set[tuple[int, int, int, int]] = set()
        for part in _chunks(chains, chunk):
            stored.update(
                conn.execute(
                    "SELECT origin_chain, origin_sequence, target_chain, target_sequence "
                    f"FROM chain_links WHERE origin_chain IN ({_marks(len(part))})",
                    list(part),
                )
            )
        conn.executemany(
            "INSERT INTO chain_links (origin_chain, origin_sequence, target_chain, "
            "target_sequence) VALUES (?, ?, ?, ?)",
            [
                row
                for chain, chain_links in links.items()
                for link in chain_links
                if (
                    row := (chain, link.origin_sequence, link.target_chain_id, link.target_sequence)
                )
                not in stored
            ],
        )
        # Rule 5: only a room of an event indexed now can have become disordered (the rooms
        # of events indexed before are recorded already, by the writes that indexed them).
        _record_disordered(conn, index, {feed.known[e][0] for e in placed})
        conn.execute("UPDATE chain_generation SET generation = ? WHERE id = 1", (generation + 1,))
        self._generation = generation + 1
        if new:
            self._top = max(self._top, new[-1][0])


#: One event as the index is fed it: (arrival, event ID, room, state key, auth IDs, depth).
_Row = tuple[int, str, str, tuple[str, str] | None, tuple[str, ...], int | None]


def _record_disordered(
    conn: sqlite3.Connection, index: ChainCoverIndex, rooms: Collection[str]
) -> None:
    """Add those of ``rooms`` the index found disordered (chain_cover rule 6) to
    ``chain_disordered`` (rule 5: a room is never taken out)."""
    rooms = sorted(r for r in rooms if not index.depths_descend((r,)))
    if rooms:
        conn.executemany(
            "INSERT OR IGNORE INTO chain_disordered (room_nid) "
            "SELECT room_nid FROM rooms WHERE room_id = ?",
            [(r,) for r in rooms],
        )


def _feed(
    conn: sqlite3.Connection, index: ChainCoverIndex, feed: _Feed, rows: Sequence[_Row], chunk: int
) -> None:
    """Feed ``rows`` (stored events, in arrival order) to the index, as it was fed them when they
    were first stored: the rooms it may ask about (the events and their auth events) are looked
    up first, and each event sees only the events stored before it."""
    for arrival, event_id, room_id, *_ in rows:
        feed.known[event_id] = (room_id, arrival)
    auth_ids = sorted({a for row in rows for a in row[4] if a not in feed.known})
    for event_id, room_id, arrival in _rooms_and_arrivals(conn, auth_ids, chunk):
        feed.known[event_id] = (room_id, arrival)
    _add_in_order(index, feed, rows)


def _rooms_and_arrivals(
    conn: sqlite3.Connection, event_ids: Sequence[str], chunk: int
) -> Iterator[tuple[str, str, int]]:
    """``(event ID, room ID, arrival)`` of the stored events among ``event_ids``, ``chunk``
    IDs per query."""
    for part in _chunks(event_ids, chunk):
        yield from conn.execute(
            "SELECT e.event_id, r.room_id, e.arrival FROM events e JOIN rooms r "
            f"ON r.room_nid = e.room_nid WHERE e.event_id IN ({_marks(len(part))})",
            list(part),
        )


def _add_in_order(index: ChainCoverIndex, feed: _Feed, rows: Sequence[_Row]) -> None:
    """Add ``rows`` (in arrival order) to the index, each seeing only what was stored before
    it (``feed.now``)."""
    for arrival, event_id, room_id, state_key, auth, depth in rows:
        feed.now = arrival
        index.add(IndexedEvent(event_id, room_id, state_key, auth, depth))
    feed.now = 1 << 62


def _stored_between(conn: sqlite3.Connection, low: int, high: int) -> list[_Row]:
    """The events stored with ``low < arrival < high``, in arrival order, as the index is fed
    them. Every event is fed: an event no state event names changes nothing in the index (a
    replay leaves those out), but one a stored state event waits for releases it."""
    rows: list[_Row] = []
    for arrival, event_id, room_id, is_state, auth_ids, depth, pdu in conn.execute(
        "SELECT e.arrival, e.event_id, r.room_id, e.is_state, e.auth_ids, e.depth, "
        "CASE WHEN e.is_state THEN e.pdu END FROM events e "
        "JOIN rooms r ON r.room_nid = e.room_nid "
        "WHERE e.arrival > ? AND e.arrival < ? ORDER BY e.arrival",
        (low, high),
    ):
        if is_state:
            body = json.loads(pdu)
            rows.append(
                (
                    arrival,
                    event_id,
                    room_id,
                    (body["type"], body["state_key"]),
                    tuple(json.loads(auth_ids)),
                    depth,
                )
            )
        else:
            rows.append((arrival, event_id, room_id, None, (), depth))
    return rows


def _replay(conn: sqlite3.Connection, chunk: int) -> tuple[ChainCoverIndex, _Feed]:
    """Rebuild the index from the stored events, as they were first stored (rule 1)."""
    feed = _Feed()
    index = ChainCoverIndex(feed.room_of)
    state: list[_Row] = []
    for arrival, event_id, room_id, auth_ids, depth, pdu in conn.execute(
        "SELECT e.arrival, e.event_id, r.room_id, e.auth_ids, e.depth, e.pdu FROM events e "
        "JOIN rooms r ON r.room_nid = e.room_nid WHERE e.is_state = 1"
    ):
        body = json.loads(pdu)
        key = (body["type"], body["state_key"])
        state.append((arrival, event_id, room_id, key, tuple(json.loads(auth_ids)), depth))
        feed.known[event_id] = (room_id, arrival)
    # Non-state events matter to the index only as auth events (as edges into other rooms;
    # their depths are never compared: only indexed events' are, chain_cover rule 6).
    named = sorted({a for row in state for a in row[4] if a not in feed.known})
    feeds: list[_Row] = [*state]
    for event_id, room_id, arrival in _rooms_and_arrivals(conn, named, chunk):
        feed.known[event_id] = (room_id, arrival)
        feeds.append((arrival, event_id, room_id, None, (), None))
    feeds.sort()
    _add_in_order(index, feed, feeds)
    return index, feed


#: The DDL of schema version 6 (rule 5).
DISORDERED_SQL: Final = "CREATE TABLE chain_disordered (room_nid INTEGER PRIMARY KEY)"


def populate_disordered(conn: sqlite3.Connection, chunk: int) -> None:
    """Fill the (empty) ``chain_disordered`` table from the stored events: the migration to
    version 6 (a replay of the index, as :func:`populate`)."""
    index, _ = _replay(conn, chunk)
    _record_disordered(conn, index, index.disordered_rooms)


def populate(conn: sqlite3.Connection, chunk: int) -> None:
    """Fill the (empty) index tables from the stored events: the migration to version 3."""
    index, _ = _replay(conn, chunk)
    positions, waiting = _all_positions(conn, index)
    conn.executemany(
        "INSERT INTO chain_positions (event_nid, chain_id, sequence) VALUES (?, ?, ?)",
        [(nid, p.chain_id, p.sequence) for nid, p in positions.items()],
    )
    conn.executemany("INSERT INTO chain_waiting (event_nid) VALUES (?)", [(n,) for n in waiting])
    chains = sorted({p.chain_id for p in positions.values()})
    conn.executemany(
        "INSERT INTO chain_links (origin_chain, origin_sequence, target_chain, "
        "target_sequence) VALUES (?, ?, ?, ?)",
        [
            (chain, link.origin_sequence, link.target_chain_id, link.target_sequence)
            for chain, links in index.links(chains).items()
            for link in links
        ],
    )


def _all_positions(
    conn: sqlite3.Connection, index: ChainCoverIndex
) -> tuple[dict[int, ChainPosition], list[int]]:
    """Positions by event row of every stored state event, and the rows of those waiting."""
    rows = conn.execute("SELECT arrival, event_id FROM events WHERE is_state = 1").fetchall()
    placed = index.positions([event_id for _, event_id in rows])
    positions = {nid: placed[e] for nid, e in rows if e in placed}
    waiting = sorted(nid for nid, e in rows if e not in placed)
    return positions, waiting


# -- reads -------------------------------------------------------------------------------------


def positions(
    conn: sqlite3.Connection, event_ids: Sequence[str], chunk: int
) -> dict[str, ChainPosition]:
    """The positions of the indexed events among ``event_ids``."""
    out: dict[str, ChainPosition] = {}
    for part in _chunks(event_ids, chunk):
        for event_id, chain_id, sequence in conn.execute(
            "SELECT e.event_id, p.chain_id, p.sequence FROM events e "
            "JOIN chain_positions p ON p.event_nid = e.arrival "
            f"WHERE e.event_id IN ({_marks(len(part))})",
            list(part),
        ):
            out[event_id] = ChainPosition(chain_id, sequence)
    return out


def links(
    conn: sqlite3.Connection, chain_ids: Sequence[int], chunk: int
) -> dict[int, tuple[ChainLink, ...]]:
    """The links leaving each chain, sorted."""
    got: dict[int, list[ChainLink]] = {}
    for part in _chunks(chain_ids, chunk):
        for origin, origin_seq, target, target_seq in conn.execute(
            "SELECT origin_chain, origin_sequence, target_chain, target_sequence FROM chain_links "
            f"WHERE origin_chain IN ({_marks(len(part))})",
            list(part),
        ):
            got.setdefault(origin, []).append(ChainLink(origin_seq, target, target_seq))
    return {c: tuple(sorted(got[c])) for c in chain_ids if c in got}


def members(
    conn: sqlite3.Connection, ranges: Mapping[int, tuple[int, int]], chunk: int
) -> dict[int, tuple[str, ...]]:
    """For each ``chain: (low, high)``, its events with ``low < sequence <= high``, in order."""
    items = sorted(ranges.items())
    got: dict[int, list[str]] = {}
    for part in _chunks(items, max(1, chunk // 3)):
        values = ",".join(["(?, ?, ?)"] * len(part))
        params = [x for chain, (low, high) in part for x in (chain, low, high)]
        for chain, event_id in conn.execute(
            f"WITH r (chain, low, high) AS (VALUES {values}) "
            "SELECT p.chain_id, e.event_id FROM r "
            "JOIN chain_positions p ON p.chain_id = r.chain "
            "AND p.sequence > r.low AND p.sequence <= r.high "
            "JOIN events e ON e.arrival = p.event_nid ORDER BY p.chain_id, p.sequence",
            params,
        ):
            got.setdefault(chain, []).append(event_id)
    return {c: tuple(v) for c, v in got.items()}


def reverse_links(
    conn: sqlite3.Connection, ranges: Mapping[int, tuple[int, int]], chunk: int
) -> dict[int, tuple[ChainReverseLink, ...]]:
    """For each ``chain: (low, high)``, the links into it with ``low < target <= high``, sorted.

    One statement per chunk of ranges, each range a search of ``chain_links_target``.
    """
    items = sorted((c, r) for c, r in ranges.items() if r[1] > r[0])
    got: dict[int, list[ChainReverseLink]] = {}
    for part in _chunks(items, max(1, chunk // 3)):
        values = ",".join(["(?, ?, ?)"] * len(part))
        params = [x for chain, (low, high) in part for x in (chain, low, high)]
        for target, target_seq, origin, origin_seq in conn.execute(
            f"WITH r (chain, low, high) AS (VALUES {values}) "
            "SELECT l.target_chain, l.target_sequence, l.origin_chain, l.origin_sequence "
            "FROM r JOIN chain_links l ON l.target_chain = r.chain "
            "AND l.target_sequence > r.low AND l.target_sequence <= r.high",
            params,
        ):
            got.setdefault(target, []).append(ChainReverseLink(target_seq, origin, origin_seq))
    return {c: tuple(sorted(v)) for c, v in got.items()}


def unindexed(conn: sqlite3.Connection, event_ids: Sequence[str], chunk: int) -> set[str]:
    """The stored events among ``event_ids`` without a chain position."""
    out: set[str] = set()
    for part in _chunks(event_ids, chunk):
        out.update(
            row[0]
            for row in conn.execute(
                "SELECT e.event_id FROM events e "
                "LEFT JOIN chain_positions p ON p.event_nid = e.arrival "
                f"WHERE e.event_id IN ({_marks(len(part))}) AND p.event_nid IS NULL",
                list(part),
            )
        )
    return out


# -- invariants --------------------------------------------------------------------------------


def check(conn: sqlite3.Connection, chunk: int) -> None:
    """Replay the index from the events, check it, and compare it with the tables.

    Raises:
        StoreError: the tables disagree with the replayed index (or it breaks its own rules).
    """
    index, _ = _replay(conn, chunk)
    index.check()
    want_positions, want_waiting = _all_positions(conn, index)
    got_positions = {
        nid: ChainPosition(chain, seq)
        for nid, chain, seq in conn.execute(
            "SELECT event_nid, chain_id, sequence FROM chain_positions"
        )
    }
    if got_positions != want_positions:
        msg = "the chain positions disagree with the events"
        raise StoreError(msg)
    got_waiting = sorted(n for (n,) in conn.execute("SELECT event_nid FROM chain_waiting"))
    if got_waiting != want_waiting:
        msg = "the chain index's waiting list disagrees with the events"
        raise StoreError(msg)
    chains = sorted({p.chain_id for p in want_positions.values()})
    want_links = {
        (chain, link.origin_sequence, link.target_chain_id, link.target_sequence)
        for chain, chain_links in index.links(chains).items()
        for link in chain_links
    }
    got_links = set(
        conn.execute(
            "SELECT origin_chain, origin_sequence, target_chain, target_sequence FROM chain_links"
        )
    )
    if got_links != want_links:
        msg = "the chain links disagree with the events"
        raise StoreError(msg)
    got_disordered = {
        r
        for (r,) in conn.execute(
            "SELECT r.room_id FROM chain_disordered d JOIN rooms r ON r.room_nid = d.room_nid"
        )
    }
    if got_disordered != set(index.disordered_rooms):
        msg = "the chain index's disordered rooms disagree with the events"
        raise StoreError(msg)
