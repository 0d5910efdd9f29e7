"""SqliteStore runs the store contract (in memory and on disk), plus its own durability tests."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph import Event, MemoryStore, StoreError
from eventgraph.graph.auth_chain import (
    auth_chain_difference_split,
    auth_chain_ids,
    bfs_auth_chain_ids,
)
from eventgraph.protocols import EventStateGroups, StateGroupDraft, StateWrite
from eventgraph.room import NoSignatureChecks, ingest
from eventgraph.stores.memory_state import MemoryStateGroups
from eventgraph.stores.sqlite import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    SqliteStore,
    _decode_ids,
    _encode_ids,
)
from eventgraph.synth import SynthConfig, generate_room
from eventgraph.testing.contract import StoreContract, contract_event
from eventgraph.testing.rooms import room_memory_store
from eventgraph.testing.strategies import RoomDag, make_event, room_dags
from tests.sqlite_crash_writer import crash_batches
from tests.stores import ROOMS, Batch, random_batches
from tests.test_auth_chain import ref_difference


class TestSqliteStoreInMemory(StoreContract):
    def make_store(self) -> SqliteStore:
        return SqliteStore(":memory:")


class TestSqliteStoreOnDisk(StoreContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self._tmp = tmp_path
        self._n = 0

    def make_store(self) -> SqliteStore:
        self._n += 1
        return SqliteStore(self._tmp / f"store{self._n}.db")


def test_check_invariants_detects_corruption() -> None:
    """The invariant check can fail: corrupt a derived table by hand and it must notice."""
    store = SqliteStore(":memory:")
    store.add_events([contract_event("$a"), contract_event("$b", ["$a"], depth=2)])
    store.check_invariants()
    store._db().execute("INSERT INTO forward_extremities VALUES ('$a', 1)")
    with pytest.raises(StoreError, match="forward extremities"):
        store.check_invariants()


# -- differential: the same batches give the same answers as MemoryStore ---------------------


def _answers(store: Any, ids: Sequence[str]) -> tuple[object, ...]:
    """Everything the read protocols say about ``ids`` and the two test rooms."""
    return (
        dict(store.get_events(ids)),
        dict(store.get_facts(ids)),
        dict(store.get_children(ids)),
        [store.forward_extremities(r) for r in ROOMS],
        [dict(store.backward_extremities(r)) for r in ROOMS],
        [store.room_version_of(r) for r in ROOMS],
        [store.room_event_count(r) for r in ROOMS],
    )


def _all_ids(batches: Sequence[Batch]) -> list[str]:
    ids = {i for b in batches for i in b.event_ids}
    # Also ask about IDs only named as edges (gaps), and one never named at all.
    for b in batches:
        for e in b.events:
            ids.update(e.prev_event_ids)
    return [*sorted(ids), "$never"]


@pytest.mark.parametrize("seed", range(12))
def test_same_answers_as_memory_store(seed: int) -> None:
    """Batch by batch, SqliteStore answers exactly as MemoryStore, arrival numbers included."""
    batches = random_batches(seed)
    ids = _all_ids(batches)
    memory = MemoryStore()
    with SqliteStore(":memory:") as sqlite:
        for batch in batches:
            batch.add_to(memory)
            batch.add_to(sqlite)
            sqlite.check_invariants()
            assert _answers(sqlite, ids) == _answers(memory, ids)
        assert len(sqlite) == len(memory)
        assert sqlite.room_ids() == memory.room_ids()


# -- persistence ----------------------------------------------------------------------------


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    """Everything written is read back by a new store on the same file."""
    batches = random_batches(3)
    ids = _all_ids(batches)
    path = tmp_path / "room.db"
    with SqliteStore(path) as store:
        for batch in batches:
            batch.add_to(store)
        before = _answers(store, ids)
    with SqliteStore(path) as store:
        store.check_invariants()
        assert _answers(store, ids) == before
        # And the reopened store keeps going: arrival numbers continue.
        top = max(f.arrival for f in store.get_facts(ids).values())
        store.add_events([contract_event("$late", depth=99)])
        assert store.get_facts(["$late"])["$late"].arrival == top + 1


def test_closed_store_refuses_calls() -> None:
    store = SqliteStore(":memory:")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.get_events(["$a"])
    with pytest.raises(StoreError, match="closed"):
        store.add_events([contract_event("$a")])


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_newer_database_is_refused_unchanged(tmp_path: Path) -> None:
    """A database from a future eventgraph is refused with a clear error and left alone."""
    path = tmp_path / "future.db"
    with SqliteStore(path) as store:
        store.add_events([contract_event("$a")])
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        SqliteStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    conn.close()


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not an eventgraph database"):
        SqliteStore(path)


# -- atomicity ------------------------------------------------------------------------------


def test_a_sqlite_error_mid_batch_changes_nothing() -> None:
    """A failure after rows were written (here a trigger refusing one extremity) rolls back."""
    with SqliteStore(":memory:") as store:
        store.add_events([contract_event("$a")])
        store._db().execute(
            "CREATE TRIGGER boom BEFORE INSERT ON forward_extremities "
            "WHEN NEW.event_id = '$boom' BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
        ids = ["$a", "$b", "$boom"]
        before = _answers(store, ids)
        batch = [contract_event("$b", ["$a"], depth=2), contract_event("$boom", ["$b"], depth=3)]
        with pytest.raises(StoreError, match="boom"):
            store.add_events(batch)
        assert _answers(store, ids) == before
        store.check_invariants()
        store._db().execute("DROP TRIGGER boom")
        store.add_events(batch)
        assert store.forward_extremities(ROOMS[0]) == ("$boom",)


@pytest.mark.parametrize("steps", [1, 3, 10, 30, 100, 300, 1000])
def test_an_interrupted_write_is_all_or_nothing(steps: int) -> None:
    """SQLite interrupted after ``steps`` progress callbacks: either the batch or nothing."""
    first, second = random_batches(11, batches=2, size=40)
    ids = _all_ids([first, second])
    with SqliteStore(":memory:") as store:
        first.add_to(store)
        before = _answers(store, ids)
        full = MemoryStore()
        first.add_to(full)
        second.add_to(full)
        calls = 0

        def progress() -> int:
            nonlocal calls
            calls += 1
            return int(calls >= steps)

        store._db().set_progress_handler(progress, 10)
        try:
            second.add_to(store)
            interrupted = False
        except StoreError:
            interrupted = True
        store._db().set_progress_handler(None, 0)
        store.check_invariants()
        assert _answers(store, ids) == (before if interrupted else _answers(full, ids))
    if steps <= 3:
        assert interrupted


# -- crash: a writer process killed with SIGKILL --------------------------------------------


def _prefix_length(store: SqliteStore, batches: Sequence[Batch]) -> int:
    """The k such that the store holds exactly the events of ``batches[:k]`` (else fail)."""
    ids = _all_ids(batches)
    stored = set(store.get_facts(ids))
    seen: set[str] = set()
    for k in range(len(batches) + 1):
        if stored == seen:
            return k
        if k < len(batches):
            seen |= set(batches[k].event_ids)
    pytest.fail(f"the store holds {len(stored)} events: no prefix of whole batches")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_writer_leaves_a_prefix_of_whole_batches(tmp_path: Path) -> None:
    """A writer killed at random points leaves exactly the batches it committed (or one more,
    if the kill landed after COMMIT but before it printed), and a consistent database."""
    rng = random.Random(20240)
    root = Path(__file__).resolve().parent.parent
    deadline = time.monotonic() + 14.0
    outcomes: list[tuple[int, int]] = []
    for iteration in range(12):
        if iteration >= 4 and time.monotonic() > deadline:
            break
        seed = rng.randrange(1 << 30)
        batches = crash_batches(seed)
        path = tmp_path / f"crash{iteration}.db"
        if iteration % 3 == 2:  # also crash on top of an existing database
            with SqliteStore(path) as store:
                store.add_events([contract_event("$pre", room_id="!pre:test")])
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sqlite_crash_writer", str(path), str(seed)],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
        acknowledged = max(
            (int(line.split()[1]) for line in rest.splitlines() if line.startswith("committed")),
            default=0,
        )
        with SqliteStore(path) as store:
            store.check_invariants()
            k = _prefix_length(store, batches)
            assert acknowledged <= k <= acknowledged + 1
            expected = MemoryStore()
            if iteration % 3 == 2:
                expected.add_events([contract_event("$pre", room_id="!pre:test")])
            for batch in batches[:k]:
                batch.add_to(expected)
            ids = _all_ids(batches)
            assert _answers(store, ids) == _answers(expected, ids)
            # The database takes writes again after the crash.
            for batch in batches[k:]:
                batch.add_to(store)
            store.check_invariants()
        outcomes.append((acknowledged, k))
    # Honesty: the kills must have landed at different points, some mid-run.
    assert len({k for _, k in outcomes}) >= 3, outcomes
    assert any(0 < k < len(crash_batches(0)) for _, k in outcomes), outcomes


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_readers_see_whole_batches(tmp_path: Path) -> None:
    """While one connection writes batches, another reads snapshots: every snapshot holds
    a prefix of whole batches, with the extremities that prefix has."""
    batches = random_batches(5, batches=25, size=60)
    ids = _all_ids(batches)
    expected: dict[frozenset[str], tuple[object, ...]] = {}
    memory = MemoryStore()
    stored: set[str] = set()
    expected[frozenset()] = _graph_answers(memory)
    for batch in batches:
        batch.add_to(memory)
        stored |= set(batch.event_ids)
        expected[frozenset(stored)] = _graph_answers(memory)
    path = tmp_path / "shared.db"
    SqliteStore(path).close()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with SqliteStore(path) as writer:
                for batch in batches:
                    batch.add_to(writer)
                    time.sleep(0.002)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    seen: set[frozenset[str]] = set()
    thread = threading.Thread(target=write)
    with SqliteStore(path) as reader:
        thread.start()
        while thread.is_alive() or not seen:
            with reader.read_snapshot():
                now = frozenset(reader.get_facts(ids))
                answers = _graph_answers(reader)
            assert now in expected, "a snapshot holds part of a batch"
            assert answers == expected[now]
            seen.add(now)
            # Outside a snapshot each call is consistent on its own: extremities are stored.
            forward = reader.forward_extremities(ROOMS[0])
            assert set(reader.get_facts(forward)) == set(forward)
        thread.join()
    assert not errors, errors
    assert len(seen) >= 3, "the reader never overlapped the writer"


def _graph_answers(store: Any) -> tuple[object, ...]:
    return (
        [store.forward_extremities(r) for r in ROOMS],
        [dict(store.backward_extremities(r)) for r in ROOMS],
    )


def test_one_store_shared_by_threads() -> None:
    """One store object used by several threads at once serialises its calls."""
    batches = random_batches(8, batches=16, size=20)
    with SqliteStore(":memory:") as store:
        errors: list[BaseException] = []

        def work(mine: Sequence[Batch]) -> None:
            try:
                for batch in mine:
                    batch.add_to(store)
                    store.get_facts(batch.event_ids)
                    store.forward_extremities(ROOMS[0])
            except BaseException as err:  # reported by the main thread
                errors.append(err)

        threads = [threading.Thread(target=work, args=(batches[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        store.check_invariants()
        assert len(store) == len({i for b in batches for i in b.event_ids})


@given(st.lists(st.text(max_size=8).map(lambda s: "$" + s), max_size=4))
def test_edge_columns_round_trip_any_ids(ids: list[str]) -> None:
    """The edge-list encoding is JSON for every ID (its fast path included)."""
    encoded = _encode_ids(tuple(ids))
    assert json.loads(encoded) == ids
    assert _decode_ids(encoded) == tuple(ids)


# -- state groups: the ingest pipeline gives the same states on both stores -----------------


def _state_answers(store: Any, event_ids: Sequence[str]) -> tuple[object, ...]:
    groups = store.get_event_state_groups(event_ids)
    ids = sorted({g for pair in groups.values() for g in (pair.before, pair.after)})
    states = store.get_state(ids)
    some = store.get_state(ids, [("m.room.member", "@u1:hs1.example"), ("m.room.topic", "")])
    return (
        {e: (dict(states[p.before]), dict(states[p.after])) for e, p in groups.items()},
        {e: (dict(some[p.before]), dict(some[p.after])) for e, p in groups.items()},
        dict(store.get_parked_children(event_ids)),
        store.state_group_stats(),
    )


@pytest.mark.parametrize(("version", "seed"), [("11", 1), ("12", 2), ("3", 3)])
def test_ingest_gives_the_same_states_as_memory(version: str, seed: int) -> None:
    """The ingest pipeline on SqliteStore and on the in-memory room store: same outcomes, same
    states before and after every event, same group shapes (deltas, compactions, snapshots),
    with parked events (PDUs arriving before their prev events) connected later."""
    config = SynthConfig(
        room_version=version, events=260, members=12, seed=seed, state_rate=0.5, fork_rate=0.05
    )
    pdus = [e.to_pdu() for e in config.stream()]
    rng = random.Random(seed)
    # Hold back some messages (never anyone's auth event) to the end: their children arrive
    # first and are parked until the held-back messages connect them.
    held = [p for p in pdus if p["type"] == "m.room.message" and rng.random() < 0.1]
    rest = [p for p in pdus if not any(p is h for h in held)]
    chunks = [rest[i : i + 40] for i in range(0, len(rest), 40)] + [held]
    memory = room_memory_store()
    answers = []
    with SqliteStore(":memory:") as sqlite:
        for store in (memory, sqlite):
            outcomes = []
            for chunk in chunks:
                report = ingest(store, version, chunk, verifier=NoSignatureChecks())
                outcomes.append(report.outcomes)
                outcomes.append(report.connected)
            ids = [e.event_id for e in config.stream()]
            answers.append((outcomes, _state_answers(store, ids), _answers(store, ids)))
        sqlite.check_invariants()
        stats = sqlite.state_group_stats()
        assert stats.deltas > 0
        assert stats.compactions + stats.snapshots > 1, stats
    statuses = {o.status.value for chunk in answers[0][0] for o in chunk}
    assert {"outlier", "accepted"} <= statuses, statuses
    assert answers[0] == answers[1]


# -- migrations -----------------------------------------------------------------------------


def _downgrade_to_v1(path: Path) -> None:
    """Turn a database into what schema version 1 (events only) wrote: drop later tables."""
    conn = sqlite3.connect(path)
    for table in (
        "state_groups",
        "state_group_entries",
        "event_state_groups",
        "state_resolutions",
        "parked_events",
        "chain_positions",
        "chain_links",
        "chain_waiting",
        "chain_generation",
        "room_state_keys",
        "chain_disordered",
    ):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()


def test_opening_a_version_1_database_migrates_it(tmp_path: Path) -> None:
    """A schema-1 database with events is upgraded on open: events kept, state tables made,
    invariants hold, and state writes work."""
    assert SCHEMA_VERSION == 6
    batches = random_batches(4)
    ids = _all_ids(batches)
    path = tmp_path / "old.db"
    with SqliteStore(path) as store:
        for batch in batches:
            batch.add_to(store)
        before = _answers(store, ids)
    _downgrade_to_v1(path)
    with SqliteStore(path) as store:
        store.check_invariants()
        assert _answers(store, ids) == before
        assert store.state_group_stats().groups == 0
        connected = next(i for i, f in store.get_facts(ids).items() if not f.outlier)
        draft = StateGroupDraft(-1, "!contract:test", None, {("m.room.create", ""): "$c"})
        made = store.add_events_with_state(
            [],
            state=StateWrite(groups=(draft,), event_groups={connected: EventStateGroups(-1, -1)}),
        )
        assert store.get_state([made[-1]]) == {made[-1]: {("m.room.create", ""): "$c"}}
        store.check_invariants()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_an_empty_database_of_an_old_version_migrates(tmp_path: Path) -> None:
    """Every older version, from an empty file up, is migrated to the current one."""
    path = tmp_path / "v0.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("CREATE TABLE IF NOT EXISTS probe (x)")  # an eventgraph file mid-creation
    conn.execute("DROP TABLE probe")
    conn.commit()
    conn.close()
    with SqliteStore(path) as store:
        store.add_events([contract_event("$a")])
        store.check_invariants()


@pytest.mark.parametrize(
    "bad",
    ["unknown parent", "positive draft", "outlier groups", "parked non-outlier", "bad key"],
)
def test_a_bad_state_write_changes_nothing(bad: str) -> None:
    """A refused state write leaves the events and the state tables as they were."""
    with SqliteStore(":memory:") as store:
        store.add_events_with_state(
            [contract_event("$a")],
            state=StateWrite(
                groups=(StateGroupDraft(-1, ROOMS[0], None, {("t", ""): "$a"}),),
                event_groups={"$a": EventStateGroups(-1, -1)},
            ),
        )
        ids = ["$a", "$b"]
        before = (_answers(store, ids), _state_answers(store, ids))
        event = contract_event("$b", ["$a"], depth=2)
        outliers: list[str] = []
        draft = StateGroupDraft(-1, ROOMS[0], 1, {("t", ""): "$b"})
        write: dict[str, Any] = {"event_groups": {"$b": EventStateGroups(1, -1)}}
        if bad == "unknown parent":
            draft = StateGroupDraft(-1, ROOMS[0], 99, {("t", ""): "$b"})
        elif bad == "positive draft":
            draft = StateGroupDraft(5, ROOMS[0], 1, {("t", ""): "$b"})
            write = {}
        elif bad == "outlier groups":
            outliers = ["$b"]
        elif bad == "parked non-outlier":
            write["parked"] = frozenset({"$b"})
        else:
            draft = StateGroupDraft(-1, ROOMS[0], 1, {("t",): "$b"})  # type: ignore[dict-item]
        with pytest.raises(StoreError):
            store.add_events_with_state(
                [event], outliers=outliers, state=StateWrite(groups=(draft,), **write)
            )
        assert (_answers(store, ids), _state_answers(store, ids)) == before
        store.check_invariants()


# -- the chain cover index ------------------------------------------------------------------


def _auth_dag_batches(seed: int, *, n: int = 120, batches: int = 6) -> list[list[Event]]:
    """State events with auth edges (chains of one key, fan-in from several keys), a few
    pointing at events of another room or never stored, delivered in shuffled batches."""
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(n):
        room = ROOMS[rng.random() < 0.15]
        earlier = [e for e in events if e.room_id == room][-12:]
        auth = sorted({e.event_id for e in rng.sample(earlier, min(len(earlier), 3))})
        if events and rng.random() < 0.05:
            auth.append(rng.choice(events).event_id)  # maybe another room's event
        if rng.random() < 0.03:
            auth.append(f"$never{i}")  # never stored: the event waits forever
        events.append(
            make_event(
                f"$s{i}",
                room_id=room,
                auth=tuple(dict.fromkeys(auth)),
                state_key=f"k{rng.randrange(4)}",
                type=rng.choice(("m.a", "m.b")),
                depth=i + 1,
            )
        )
    order = list(events)
    rng.shuffle(order)  # auth events often arrive after the events naming them
    size = -(-len(order) // batches)
    return [order[i : i + size] for i in range(0, len(order), size)]


def _chain_answers(store: Any, ids: Sequence[str]) -> tuple[object, ...]:
    positions = store.get_chain_positions(ids)
    chains = sorted({p.chain_id for p in positions.values()})
    return (
        dict(positions),
        dict(store.get_chain_links(chains)),
        dict(store.get_chain_members(dict.fromkeys(chains, (0, 10**6)))),
        dict(store.get_chain_members(dict.fromkeys(chains, (1, 2)))),
        {i: auth_chain_ids(store, [i]) for i in ids},
    )


@pytest.mark.parametrize("seed", range(6))
def test_chain_index_matches_memory_store(seed: int) -> None:
    """Batch by batch, SqliteStore's chain cover index has MemoryStore's positions, links and
    members (one pure logic feeds both), and auth chains through it equal the BFS ones."""
    batches = _auth_dag_batches(seed)
    ids = sorted(e.event_id for b in batches for e in b)
    memory = MemoryStore()
    with SqliteStore(":memory:") as sqlite:
        for batch in batches:
            memory.add_events(batch)
            sqlite.add_events(batch)
            sqlite.check_invariants()
            assert _chain_answers(sqlite, ids) == _chain_answers(memory, ids)
        for i in ids:
            assert auth_chain_ids(sqlite, [i]) == bfs_auth_chain_ids(sqlite, [i])
        assert sqlite.get_chain_positions(ids), "nothing was indexed"


def test_chain_index_follows_another_connections_writes(tmp_path: Path) -> None:
    """Two store objects take turns writing one file: each rebuilds its cached index when the
    other has written, so the tables match a single writer's."""
    batches = _auth_dag_batches(9, batches=8)
    ids = sorted(e.event_id for b in batches for e in b)
    path = tmp_path / "two.db"
    memory = MemoryStore()
    with SqliteStore(path) as one, SqliteStore(path) as two:
        for n, batch in enumerate(batches):
            (one if n % 2 else two).add_events(batch)
            memory.add_events(batch)
        one.check_invariants()
        assert _chain_answers(one, ids) == _chain_answers(memory, ids)
        assert _chain_answers(two, ids) == _chain_answers(memory, ids)


def test_opening_a_version_2_database_builds_the_chain_index(tmp_path: Path) -> None:
    """Migration 2 -> 3 indexes the events already stored, as writing them would have."""
    batches = _auth_dag_batches(4)
    ids = sorted(e.event_id for b in batches for e in b)
    path = tmp_path / "v2.db"
    with SqliteStore(path) as store:
        for batch in batches:
            store.add_events(batch)
        before = _chain_answers(store, ids)
    conn = sqlite3.connect(path)
    for table in (
        "chain_positions",
        "chain_links",
        "chain_waiting",
        "chain_generation",
        "room_state_keys",
        "chain_disordered",
    ):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    with SqliteStore(path) as store:
        store.check_invariants()
        assert _chain_answers(store, ids) == before


def test_opening_a_version_4_database_records_the_state_keys(tmp_path: Path) -> None:
    """Migration 4 -> 5 records the state keys of the events already stored (outliers and
    rejected events included), as writing them would have; later writes keep it up."""
    events = list(generate_room("11", events=60, members=8, seed=3))
    path = tmp_path / "v4.db"
    with SqliteStore(path) as store:
        store.add_events(events[:5], outliers=[events[4].event_id])
        store.add_events(events[5:40], rejected={events[39].event_id: "test"})
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE room_state_keys")
    conn.execute("DROP TABLE chain_disordered")
    conn.execute("PRAGMA user_version=4")
    conn.commit()
    conn.close()
    room_id = events[0].room_id
    probe = sorted({e.state_tuple for e in events if e.state_tuple is not None})
    probe.append(("m.room.member", "@nobody:example"))
    memory = MemoryStore()
    memory.add_events(events[:5], outliers=[events[4].event_id])
    memory.add_events(events[5:40], rejected={events[39].event_id: "test"})
    with SqliteStore(path) as store:
        store.check_invariants()
        assert set(store.get_present_state_keys(room_id, probe)) == set(
            memory.get_present_state_keys(room_id, probe)
        )
        store.add_events(events[40:])
        memory.add_events(events[40:])
        store.check_invariants()
        assert set(store.get_present_state_keys(room_id, probe)) == set(
            memory.get_present_state_keys(room_id, probe)
        )
        assert not store.get_present_state_keys("!other:example", probe)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_event_cache_serves_equal_events_and_stays_bounded(tmp_path: Path) -> None:
    """The parsed-event cache returns the stored events, holds at most its size, and a second
    store on the same file (no cache, or a cold one) reads the same events."""
    events = list(generate_room("11", events=60, members=5, seed=4))
    path = tmp_path / "cache.db"
    with SqliteStore(path, event_cache_size=10) as store:
        store.add_events(events)
        ids = [e.event_id for e in events]
        first = store.get_events(ids)
        again = store.get_events([*ids[:5], "$unknown"])
        assert len(store._events) <= 10
        with SqliteStore(path, event_cache_size=0) as cold:
            plain = cold.get_events(ids)
            assert not cold._events
    assert first == plain == {e.event_id: e for e in events}
    assert again == {i: plain[i] for i in ids[:5]}


def test_event_cache_never_serves_a_rolled_back_write() -> None:
    events = list(generate_room("11", events=5, members=2, seed=4))
    with SqliteStore(":memory:") as store:
        store.add_events(events[:3])
        bad = make_event("$bad", room_id=events[0].room_id, prev=("$missing-room-event",))
        with pytest.raises(StoreError):
            store.add_events([events[3], bad, bad])  # refused as a whole (a duplicate)
        assert store.get_events([events[3].event_id]) == {}
        store.add_events([events[3]])
        assert store.get_events([events[3].event_id]) == {events[3].event_id: events[3]}


def test_chain_cache_reads_equal_cold_reads_and_stay_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State read through the cache of committed groups' delta chains equals a cold store's
    reads of the same file, and the cache keeps at most its size."""
    from eventgraph.stores import _sqlite_state

    monkeypatch.setattr(_sqlite_state, "CHAIN_CACHE_SIZE", 5)
    events = list(generate_room("11", events=120, members=12, fork_rate=0.1, seed=9))
    path = tmp_path / "chains.db"
    with SqliteStore(path) as store:
        ingest(store, "11", [e.to_pdu() for e in events], verifier=NoSignatureChecks())
        groups = sorted(
            {g.after for g in store.get_event_state_groups([e.event_id for e in events]).values()}
        )
        warm = [store.get_state([g]) for g in groups + groups[::-1]]
        assert 0 < len(store._chains) <= 5
        with SqliteStore(path) as cold:
            assert warm == [cold.get_state([g]) for g in groups + groups[::-1]]


@pytest.mark.parametrize("seed", [1, 2])
def test_state_group_shapes_equal_memory_under_branching_multi_draft_writes(seed: int) -> None:
    """The same state writes (branches, removals, writes of up to 8 chained drafts, sizes that
    force compactions and snapshots) give the same group shapes and states in SqliteStore —
    which reads only the touched keys of a snapshot when it rebases — as in memory."""
    sqlite, memory = SqliteStore(":memory:"), MemoryStateGroups()
    rng = random.Random(seed)
    tips_s: list[int | None] = [None]
    tips_m: list[int | None] = [None]
    for i in range(2500):
        changes: dict[tuple[str, str], str | None] = {("m.room.member", f"@u{i}:x"): f"$j{i}"}
        if i > 10 and rng.random() < 0.1:
            changes[("m.room.member", f"@u{rng.randrange(i)}:x")] = None
        k = rng.randrange(len(tips_s)) if rng.random() < 0.05 else -1
        n = rng.choice([1, 1, 1, 2, 3, 8])
        writes = []
        for tips in (tips_s, tips_m):
            drafts = tuple(
                StateGroupDraft(
                    -1 - j,
                    "!r:x",
                    tips[k] if j == 0 else -j,
                    {**changes, ("x", str(j)): f"$v{i}.{j}"},
                )
                for j in range(n)
            )
            writes.append(StateWrite(groups=drafts))
        tips_s.append(sqlite.add_events_with_state([], state=writes[0])[-n])
        tips_m.append(memory.apply(memory.prepare(writes[1], connected=lambda _e: True))[-n])
    assert sqlite.state_group_stats() == memory.stats()
    assert memory.stats().snapshots > 5
    for a, b in list(zip(tips_s, tips_m, strict=True))[1::41]:
        assert a is not None
        assert b is not None
        assert sqlite.get_state([a])[a] == memory.get_state([b])[b]
    sqlite.check_invariants()
    sqlite.close()


def test_flagged_facts_agree_with_memory_store() -> None:
    """``get_flagged_facts``: the outliers and rejected events among the IDs asked, as the
    MemoryStore gives them, through an outlier stored, a rejection, and outliers connected
    later (one rejected when connected, one not)."""
    events = list(generate_room("11", events=40, members=6, seed=5))
    ids = [e.event_id for e in events]
    stores: list[SqliteStore | MemoryStore] = [SqliteStore(":memory:"), MemoryStore()]
    for store in stores:
        store.add_events(events[:20], outliers=[ids[12], ids[15]], rejected={ids[7]: "test"})
        store.add_events(events[12:13], rejected={ids[12]: "connected, rejected"})
        store.add_events(events[15:16])
        store.add_events(events[20:], rejected={ids[30]: "test"})
    asked = [*ids, "$unknown:example"]
    answers = [dict(store.get_flagged_facts(asked)) for store in stores]
    assert answers[0] == answers[1]
    assert set(answers[0]) == {ids[7], ids[12], ids[30]}
    sqlite = stores[0]
    assert isinstance(sqlite, SqliteStore)
    sqlite.close()


# -- ChainIndexDepthReader (_sqlite_chain rule 5) -------------------------------------------------


def test_sqlite_store_records_disordered_rooms_as_memory_store_does(tmp_path: Path) -> None:
    """The hand sequence of the MemoryStore test (test_auth_chain): a room becomes disordered
    when an indexed event is not deeper than a same-room auth event, whichever arrived first,
    and stays so; rooms never seen qualify; the answer survives reopening; a corrupted table
    is noticed."""
    from eventgraph.protocols import ChainIndexDepthReader

    path = tmp_path / "depth.db"
    steps = [
        [make_event("$c", depth=1, state_key="c")],
        [make_event("$b", auth=["$c", "$a"], depth=3, state_key="b")],  # waits for $a
        [make_event("$a", auth=["$c"], depth=5, state_key="a")],  # deeper than $b: disordered
        [make_event("$d", auth=["$c"], depth=9, state_key="d")],
    ]
    memory = MemoryStore()
    with SqliteStore(path) as store:
        assert isinstance(store, ChainIndexDepthReader)
        for batch in steps:
            store.add_events(batch)
            memory.add_events(batch)
            for rooms in (["!room:a.example"], ["!never:a.example"], ["!room:a.example", "!x"]):
                assert store.auth_depths_descend(rooms) == memory.auth_depths_descend(rooms)
        assert not store.auth_depths_descend(["!room:a.example"])
        store.check_invariants()
    with SqliteStore(path) as store:
        assert not store.auth_depths_descend(["!room:a.example"])
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM chain_disordered")
    conn.commit()
    conn.close()
    with SqliteStore(path) as store, pytest.raises(StoreError, match="disordered"):
        store.check_invariants()


def _downgrade_to_v5(path: Path) -> None:
    """Turn a database into what schema version 5 wrote: no ``chain_disordered`` table."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE chain_disordered")
    conn.execute("PRAGMA user_version=5")
    conn.commit()
    conn.close()


def test_opening_a_version_5_database_records_the_disordered_rooms(tmp_path: Path) -> None:
    """Migration 5 -> 6 finds the disordered rooms of the events already stored (a replay of
    the index, with depths); later writes keep the table up."""
    path = tmp_path / "v5.db"
    ordered = [
        make_event("$c", depth=1, state_key="c"),
        make_event("$p", auth=["$c"], depth=2, state_key="p"),
    ]
    liar = make_event("$l", auth=["$c"], depth=1, state_key="l")  # not deeper than $c
    with SqliteStore(path) as store:
        store.add_events(ordered)
    _downgrade_to_v5(path)
    with SqliteStore(path) as store:
        store.check_invariants()
        assert store.auth_depths_descend(["!room:a.example"])
        store.add_events([liar])
        assert not store.auth_depths_descend(["!room:a.example"])
        store.check_invariants()
    with SqliteStore(path) as store:
        store.add_events([make_event("$q", auth=["$c"], depth=3, state_key="q")])
    _downgrade_to_v5(path)
    with SqliteStore(path) as store:
        store.check_invariants()
        assert not store.auth_depths_descend(["!room:a.example"])


@settings(max_examples=40, deadline=None)
@given(dag=room_dags(max_events=18, depth_above_auth=True), data=st.data())
def test_depth_flags_and_colouring_agree_with_memory_store(dag: RoomDag, data: Any) -> None:
    """Generated rooms (honest depths, sometimes with lying ones, foreign events, outliers),
    stored in both stores: the same per-room answers; and the auth difference of sets drawn
    from the state events (the colouring walk where the rooms are ordered) is the spec
    reference's in both."""
    memory = MemoryStore()
    dag.store_into(memory)
    with SqliteStore(":memory:") as store:
        dag.store_into(store)
        for rooms in ([dag.room_id], [dag.other_room_id], [dag.room_id, dag.other_room_id]):
            assert store.auth_depths_descend(rooms) == memory.auth_depths_descend(rooms)
        # The greatest depth of the stored events among some IDs (unknown ones ignored) is the
        # greatest of their facts' depths, in both stores.
        pool = sorted({*dag.event_ids, *dag.missing_ids, "$unknown"})
        ids = data.draw(st.lists(st.sampled_from(pool)))
        for reader in (store, memory):
            depths = [f.depth for f in reader.get_facts(set(ids)).values()]
            assert reader.greatest_depth(ids) == (max(depths) if depths else None)
        state = [e.event_id for e in dag.events if e.state_key is not None]
        if len(state) >= 2:
            sets = data.draw(st.lists(st.lists(st.sampled_from(state), min_size=1), min_size=2))
            shared = set(sets[0]).intersection(*sets[1:])
            expected = ref_difference({e.event_id: e for e in dag.events}, sets, inclusive=True)
            assert auth_chain_difference_split(store, shared, sets, inclusive=True) == expected
            assert auth_chain_difference_split(memory, shared, sets, inclusive=True) == expected
        store.check_invariants()
