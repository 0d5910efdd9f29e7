"""The ingest pipeline's fast paths give the plain path's answers (eventgraph.room rule 7).

Every test ingests the same PDUs twice — with ``_Run.fast_paths`` on and off — and compares
everything a caller can observe: each outcome (status, rule, redaction), the connected events,
the state before and after every connected event, the stored flags and both kinds of
extremities.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventgraph.room as room_module
from eventgraph.events.canonical_json import JsonValue
from eventgraph.events.event import Event
from eventgraph.events.hashes import content_hash, unpadded_base64
from eventgraph.protocols import StateKeyPresenceReader
from eventgraph.room import (
    NoSignatureChecks,
    Room,
    Status,
    _Candidate,
    _kahn,
    _Run,
    _topological,
)
from eventgraph.state.authz import SignaturePresenceVerifier, SignatureVerifier
from eventgraph.state.state_at import state_ids_after, state_ids_before
from eventgraph.stores.memory import MemoryStore
from eventgraph.stores.sqlite import SqliteStore
from eventgraph.synth import generate_room
from eventgraph.testing.rooms import RoomBuilder, room_memory_store

from .test_state_at import random_room

TRUST = NoSignatureChecks()
ALICE = "@alice:a.example"


def _ingest(
    pdus: Sequence[object],
    version: str,
    *,
    fast: bool,
    chunk: int,
    verifier: SignatureVerifier = TRUST,
    **kw: Any,
) -> tuple[MemoryStore, list[tuple[object, ...]], list[tuple[object, ...]]]:
    saved = _Run.fast_paths
    _Run.fast_paths = fast
    try:
        store = room_memory_store()
        room = Room(store, version, verifier=verifier)
        outcomes: list[tuple[object, ...]] = []
        connected: list[tuple[object, ...]] = []
        for start in range(0, len(pdus), chunk):
            report = room.add(pdus[start : start + chunk], **kw)
            outcomes += [(start, *_fields(o)) for o in report.outcomes]
            connected += [_fields(o) for o in report.connected]
    finally:
        _Run.fast_paths = saved
    return store, outcomes, connected


def _fields(o: Any) -> tuple[object, ...]:
    return (o.index, o.event_id, o.status, o.reason, o.redacted)


def _view(store: MemoryStore, ids: Sequence[str]) -> dict[str, object]:
    facts = store.get_facts(ids)
    rooms = sorted({f.room_id for f in facts.values()})
    states = {}
    for i in ids:
        f = facts.get(i)
        if f is not None and not f.outlier:
            states[i] = (state_ids_before(store, i), state_ids_after(store, i))
    return {
        "facts": {i: (f.outlier, f.rejected, f.soft_failed) for i, f in facts.items()},
        "states": states,
        "forward": {r: store.forward_extremities(r) for r in rooms},
        "backward": {r: dict(store.backward_extremities(r)) for r in rooms},
    }


def _ids(outcomes: Sequence[tuple[object, ...]]) -> list[str]:
    return sorted({o[2] for o in outcomes if isinstance(o[2], str)})


def assert_same(pdus: Sequence[object], version: str, *, chunk: int, **kw: Any) -> list[Status]:
    """Ingest with and without the fast paths; return the statuses (equal in both)."""
    fast_store, fast_out, fast_conn = _ingest(pdus, version, fast=True, chunk=chunk, **kw)
    plain_store, plain_out, plain_conn = _ingest(pdus, version, fast=False, chunk=chunk, **kw)
    assert fast_out == plain_out
    assert fast_conn == plain_conn
    ids = _ids(plain_out)
    assert _view(fast_store, ids) == _view(plain_store, ids)
    fast_store.check_invariants()
    return [o[3] for o in plain_out]  # type: ignore[misc]


class _Counting:
    """Counts the auth checks a run makes against state (checks 5 and 6)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original: Callable[..., str | None] = _Run._check_ids

        def counted(run: _Run, event: Event, ids: Sequence[str]) -> str | None:
            self.calls += 1
            return original(run, event, ids)

        monkeypatch.setattr(_Run, "_check_ids", counted)


# -- generated rooms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "version", "chunk"),
    [(s, v, c) for s in range(3) for v in ("10", "11", "12") for c in (1, 7, 1000)],
)
def test_concurrent_state_rooms(seed: int, version: str, chunk: int) -> None:
    """Rooms with bans against power changes, join-rule flips and topic wars, fed in order in
    batches of several sizes (soft failures happen: check 6 runs): same answers."""
    b = random_room(seed, version, n=80)
    assert_same(b.pdus, version, chunk=chunk)


def test_concurrent_state_rooms_exercise_every_outcome() -> None:
    """The rooms above are worth the comparison: rejections and soft failures happen."""
    statuses: list[Status] = []
    for seed in range(3):
        statuses += assert_same(random_room(seed, "11", n=80).pdus, "11", chunk=1000)
    assert Status.REJECTED in statuses
    assert Status.SOFT_FAILED in statuses


@pytest.mark.parametrize("version", ["1", "3", "11", "12"])
def test_synthetic_rooms_with_forks(version: str) -> None:
    """``eventgraph.synth`` rooms with many forks (check 6 against unresolved extremities):
    same answers, with fewer auth checks against state on the fast path."""
    pdus = [e.to_pdu() for e in generate_room(version, events=400, members=30, fork_rate=0.2)]
    statuses = assert_same(pdus, version, chunk=100)
    # synth events pass checks 1–5 (in RV 1, state resolution v1 may soft-fail some).
    assert set(statuses) <= {Status.ACCEPTED, Status.SOFT_FAILED}


def test_fast_paths_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is not vacuous: the fast path skips most auth checks against state."""
    pdus = [e.to_pdu() for e in generate_room("11", events=400, members=30, fork_rate=0.2)]
    counts = []
    for fast in (True, False):
        counting = _Counting(monkeypatch)
        _ingest(pdus, "11", fast=fast, chunk=100)
        counts.append(counting.calls)
        monkeypatch.undo()
    assert counts[0] * 4 < counts[1]


def test_fast_path_reads_auth_events_a_batch_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The auth events a batch names, their flags and the prev events' state groups are read
    once per batch (``_Run._prefetch``), not once per event: a SQL store makes few round
    trips. (Before, each event of a room of many senders read its auth events and the
    sender's membership flags on its own.)"""
    pdus = [e.to_pdu() for e in generate_room("11", events=900, members=60, fork_rate=0.0)]
    store = room_memory_store()
    room = Room(store, "11", verifier=TRUST)
    room.add(pdus[:300])
    calls: dict[str, int] = {}
    for name in ("get_events", "get_facts", "get_flagged_facts", "get_event_state_groups"):
        original = getattr(store, name)

        def counted(*args: Any, _name: str = name, _f: Any = original, **kw: Any) -> Any:
            calls[_name] = calls.get(_name, 0) + 1
            return _f(*args, **kw)

        monkeypatch.setattr(store, name, counted)
    batches = 6
    for start in range(300, 900, 600 // batches):
        report = room.add(pdus[start : start + 600 // batches])
        assert {o.status for o in report.outcomes} == {Status.ACCEPTED}
    assert sum(calls.values()) <= 5 * batches, calls


def test_shuffled_batches_with_gaps() -> None:
    """Out-of-order delivery (parked outliers connected later, missing auth events offered
    again): same answers, backfilled and not."""
    b = random_room(11, "11", n=60)
    pdus = list(b.pdus)
    random.Random(3).shuffle(pdus)
    for backfilled in (False, True):
        assert_same(pdus, "11", chunk=9, backfilled=backfilled)


# -- receipt checks 2 and 3 -----------------------------------------------------------------------


def _signed(pdu: dict[str, JsonValue], *servers: str) -> dict[str, JsonValue]:
    # Signatures are covered by neither the content hash nor the event ID.
    return {**pdu, "signatures": {s: {"ed25519:k": "sig"} for s in servers}}


def _variants() -> Iterator[object]:
    b = RoomBuilder("11")
    tips = b.bootstrap(["@bob:a.example", "@carol:b.example"])
    msg = b.message("@bob:a.example", prev=tips)
    b.message("@carol:b.example", prev=[msg], body="from b")
    for pdu in b.pdus:
        yield _signed(pdu, "a.example", "b.example")
    last = b.pdus[-1]
    yield _signed(last, "a.example")  # carol's server did not sign
    yield {**_signed(last, "b.example"), "signatures": {"b.example": {}}}  # empty
    yield {**_signed(last, "b.example"), "unsigned": {"age": 5}}
    tampered = _signed(last, "b.example")
    tampered["content"] = {"body": "changed", "msgtype": "m.text"}
    yield tampered  # content hash mismatch: redacted
    # A content value equal to the hashes member: the splice must not cut it.
    hashes = last["hashes"]
    yield {**_signed(last, "b.example"), "content": {"body": "x", "hashes": hashes}}
    yield {**_signed(last, "b.example"), "content": {"body": "y", "n": {"hashes": hashes}}}
    yield {**_signed(last, "b.example"), "hashes": {"sha256": "AAAA", "other": "x"}}


@pytest.mark.parametrize("verifier", [SignaturePresenceVerifier(), TRUST])
@pytest.mark.parametrize("chunk", [1, 100])
def test_signatures_and_content_hashes(verifier: SignatureVerifier, chunk: int) -> None:
    """Signature presence read from the decoded PDU and the spliced content hash: same
    outcomes as asking the verifier and hashing the re-decoded PDU, including redactions."""
    statuses = assert_same(list(_variants()), "11", chunk=chunk, verifier=verifier)
    assert Status.ACCEPTED in statuses
    if isinstance(verifier, SignaturePresenceVerifier):
        assert Status.INVALID in statuses


def test_receipt_content_hash_equals_content_hash() -> None:
    """The content hash the pipeline takes from parsing (check 3) is the content hash of the
    stored PDU, on awkward PDUs too, trusted or not."""
    base = next(generate_room("11", events=3)).to_pdu()
    cases: list[dict[str, JsonValue]] = [
        base,
        {**base, "unsigned": {"age": 1, "hashes": base["hashes"]}},
        {**base, "signatures": {"s": {"k": "v"}}, "unsigned": {}},
        {**base, "content": {**base["content"], "signatures": {}}},
        {**base, "zzz": {"hashes": base["hashes"]}},
        {**base, "aaa": [{"hashes": base["hashes"]}]},
        {**base, "hashes": {"sha256": "x"}, "signatures": {"a": {"b": "c"}}},
    ]
    for pdu in cases:
        event, digest = Event.from_pdu_with_content_hash(pdu, "11")
        assert event == Event.from_pdu(pdu, "11")
        assert digest == content_hash(event.to_pdu()), pdu
    # A trusted import whose PDU carried an event_id (RV 3+ stores it without): same hash.
    trusted = {**base, "event_id": "$x"}
    event, digest = Event.from_pdu_with_content_hash(trusted, "11", trusted=True)
    assert event == Event.from_trusted_pdu(trusted, "11")
    assert digest == content_hash(event.to_pdu())


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_state_given_across_a_gap_then_the_gap(chunk: int) -> None:
    """An event connected with ``state_before`` before its prev arrives, then the prev (an
    event with a stored accepted child: not a forward extremity): same answers."""
    b = RoomBuilder("11")
    bob = "@bob:a.example"
    tips = b.bootstrap([bob])
    hidden = b.message(bob, prev=tips)  # the state given names only known events
    after_gap = b.message(bob, prev=[hidden])
    later = b.message(bob, prev=[after_gap])
    b.message(ALICE, prev=[later])
    pdus = [p for p in b.pdus if Event.from_pdu(p, "11").event_id != hidden]
    pdus += [p for p in b.pdus if Event.from_pdu(p, "11").event_id == hidden]
    fetched = b.state_after(hidden)
    statuses = assert_same(pdus, "11", chunk=chunk, state_before={after_gap: fetched})
    assert set(statuses) == {Status.ACCEPTED}


# -- the write contract (rule 4) ------------------------------------------------------------------


class _FailingStore(MemoryStore):
    """Refuses its ``fail_at``-th write (counting from 1) as a broken disk would."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.writes = 0

    def add_events_with_state(self, events: Any, /, **kw: Any) -> Any:
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError("disk on fire")
        return super().add_events_with_state(events, **kw)


def _prefix_ok(store: MemoryStore, events: Sequence[Event]) -> int:
    """The stored events are a prefix of the pipeline's processing order of ``events`` and
    equal what ingesting that prefix alone gives; returns its length."""
    order, _ = _topological({e.event_id: _Candidate(i, e, False) for i, e in enumerate(events)})
    by_id = {e.event_id: e for e in events}
    events = [by_id[i] for i in order]
    stored = [e for e in events if e.event_id in store]
    n = len(stored)
    assert [e.event_id for e in events[:n]] == [e.event_id for e in stored]
    ref = room_memory_store()
    Room(ref, "11", verifier=TRUST).add([e.to_pdu() for e in events[:n]])
    ids = [e.event_id for e in events[:n]]
    assert _view(store, ids) == _view(ref, ids)
    store.check_invariants()
    return n


@pytest.mark.parametrize("fail_at", [1, 2, 3, 5])
def test_failed_write_leaves_a_prefix(fail_at: int) -> None:
    """A write that fails stores none of its events (nor any later one); the events of the
    writes before it are stored: the store is what ingesting a prefix gives."""
    events = list(generate_room("11", events=700, members=30, fork_rate=0.05))
    store = _FailingStore(fail_at)
    with pytest.raises(OSError, match="disk on fire"):
        Room(store, "11", verifier=TRUST).add([e.to_pdu() for e in events])
    n = _prefix_ok(store, events)
    assert n < len(events)


def test_error_in_an_algorithm_stores_the_events_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error raised while checking an event: the pending events before it are written,
    then the error propagates."""
    import eventgraph.room as room_module
    import eventgraph.state.authz

    events = list(generate_room("11", events=300, members=20, fork_rate=0.0))
    original = eventgraph.state.authz.check_auth
    calls = 0

    def failing(*args: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 200:
            raise RuntimeError("bug")
        original(*args, **kw)

    monkeypatch.setattr(room_module, "check_auth", failing)
    store = room_memory_store()
    with pytest.raises(RuntimeError, match="bug"):
        Room(store, "11", verifier=TRUST).add([e.to_pdu() for e in events])
    monkeypatch.undo()
    n = _prefix_ok(store, events)
    assert 150 < n < 300  # everything checked before the failing check is stored


# -- check 6 for a key no extremity's state has (StateKeyPresenceReader) -------------------------


@pytest.mark.parametrize(
    ("version", "seed"), [(v, s) for v in ("1", "3", "11", "12") for s in range(2)]
)
def test_newcomers_joining_during_forks(version: str, seed: int) -> None:
    """Many members joining while the room is forked (their ``m.room.member`` key is in no
    extremity's state, so check 6 reads it as absent when the room has no event for it):
    same answers as the plain path, which resolves."""
    pdus = [
        e.to_pdu()
        for e in generate_room(
            version, events=600, members=400, seed=seed, fork_rate=0.5, fork_length=20
        )
    ]
    assert_same(pdus, version, chunk=50)


def test_absent_keys_read_without_resolving(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above is not vacuous: the store is asked about keys no extremity's state
    has, and often answers that the room has no event for any of them."""
    answers: list[int] = []
    original = MemoryStore.get_present_state_keys

    def counted(store: MemoryStore, room_id: str, keys: Any, /) -> Any:
        present = original(store, room_id, keys)
        answers.append(len(present))
        return present

    monkeypatch.setattr(MemoryStore, "get_present_state_keys", counted)
    pdus = [
        e.to_pdu()
        for e in generate_room("11", events=600, members=400, fork_rate=0.5, fork_length=20)
    ]
    _ingest(pdus, "11", fast=True, chunk=50)
    assert answers.count(0) >= 20


def test_memory_store_present_state_keys() -> None:
    """Every stored state event counts, rejected and outlier ones included; other rooms and
    unknown rooms do not."""
    events = list(generate_room("11", events=30, members=5))
    store = room_memory_store()
    store.add_events(events[:10], outliers=[events[9].event_id])
    store.add_events(events[10:], rejected={events[-1].event_id: "test"})
    keys = {e.state_tuple for e in events if e.state_tuple is not None}
    room_id = events[0].room_id
    probe = [*sorted(keys), ("m.room.member", "@nobody:example")]
    assert set(store.get_present_state_keys(room_id, probe)) == keys
    assert not store.get_present_state_keys("!other:example", probe)
    store.check_invariants()


def test_newcomers_joining_during_forks_in_sqlite() -> None:
    """The same with SqliteStore (its ``room_state_keys`` table answers the presence read):
    the same outcomes as the plain path over MemoryStore."""
    pdus = [
        e.to_pdu()
        for e in generate_room("11", events=600, members=400, fork_rate=0.5, fork_length=20)
    ]
    _, plain_out, _ = _ingest(pdus, "11", fast=False, chunk=50)
    with SqliteStore(":memory:") as store:
        assert isinstance(store, StateKeyPresenceReader)
        room = Room(store, "11", verifier=TRUST)
        outcomes: list[tuple[object, ...]] = []
        for start in range(0, len(pdus), 50):
            report = room.add(pdus[start : start + 50])
            outcomes += [(start, *_fields(o)) for o in report.outcomes]
        store.check_invariants()
    assert outcomes == plain_out


def test_an_auth_event_rejected_when_connected_rejects_its_dependants() -> None:
    """A parked event that passed check 4 is rejected at check 5 when a batch connects it: a
    later event of the same batch citing it as an auth event is rejected for that
    (``auth_events.rejected``): an outlier's flag is never taken as final (it can change when
    the outlier is connected)."""
    b = RoomBuilder("11")
    (tip,) = b.bootstrap(["@bob:a.example"])
    # X: the join rules become "invite"; P: carol's join, authorised by the public join rules
    # but sent after X (so rejected against the state before it).
    x = b.state("m.room.join_rules", "", {"join_rule": "invite"}, prev=[tip])
    carol = "@carol:b.example"
    b.state("m.room.member", carol, {"membership": "join"}, prev=[tip], sender=carol)
    p_pdu = dict(b.pdus[-1])
    p_pdu["prev_events"] = [x]
    p_pdu["hashes"] = {"sha256": unpadded_base64(content_hash(p_pdu))}
    p = Event.from_pdu(p_pdu, "11").event_id
    create, power = b.pdus[0], b.pdus[2]
    y_pdu: dict[str, JsonValue] = {
        "type": "m.room.message",
        "sender": carol,
        "room_id": b.room_id,
        "content": {"body": "hi", "msgtype": "m.text"},
        "depth": 20,
        "origin_server_ts": 2_000_000,
        "prev_events": [p],
        "auth_events": [
            Event.from_pdu(create, "11").event_id,
            Event.from_pdu(power, "11").event_id,
            p,
        ],
        "signatures": {},
    }
    y_pdu["hashes"] = {"sha256": unpadded_base64(content_hash(y_pdu))}
    y = Event.from_pdu(y_pdu, "11").event_id
    x_pdu = next(pdu for pdu in b.pdus if Event.from_pdu(pdu, "11").event_id == x)
    boot = [pdu for pdu in b.pdus[:-1] if pdu is not x_pdu]
    batches: list[list[object]] = [list(boot), [p_pdu], [x_pdu, y_pdu]]
    results = []
    for fast in (True, False):
        saved = _Run.fast_paths
        _Run.fast_paths = fast
        try:
            room = Room(room_memory_store(), "11", verifier=TRUST)
            reports = [room.add(batch) for batch in batches]
        finally:
            _Run.fast_paths = saved
        last = reports[-1].by_event_id()
        results.append({e: (o.status, o.reason) for e, o in last.items()})
        assert reports[1].outcomes[0].status is Status.OUTLIER
        assert last[p].status is Status.REJECTED
        assert (last[y].status, last[y].reason) == (Status.REJECTED, "auth_events.rejected")
    assert results[0] == results[1]


# -- the batch's processing order ----------------------------------------------------------------


@settings(max_examples=200)
@given(data=st.data())
def test_topological_fast_path_is_kahns_order(data: st.DataObject) -> None:
    """The sorted-order shortcut of ``_topological`` gives Kahn's heap order exactly, on
    random batches: parents inside and outside the batch, depths that agree with the edges or
    not, repeated parents, self-loops and cycles."""
    n = data.draw(st.integers(1, 12))
    ids = [f"$e{i}" for i in range(n)]
    events = []
    for i, event_id in enumerate(ids):
        parents = st.sampled_from([*ids, "$outside"])
        prevs = data.draw(st.lists(parents, max_size=3))
        auths = data.draw(st.lists(parents, max_size=3))
        depth = data.draw(st.integers(0, 4))
        events.append(
            Event.from_trusted_pdu(
                {
                    "type": "m.room.message",
                    "room_id": "!r:x",
                    "sender": ALICE,
                    "content": {},
                    "depth": depth,
                    "origin_server_ts": i,
                    "prev_events": prevs,
                    "auth_events": auths,
                },
                "11",
                event_id=event_id,
            )
        )
    batch = {e.event_id: _Candidate(i, e, False) for i, e in enumerate(events)}
    assert _topological(batch) == _kahn(batch)


def test_topological_takes_the_fast_path_on_a_generated_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shortcut is not vacuous: a generated room's batch (forks included) needs no heap."""
    events = list(generate_room("11", events=300, members=20, fork_rate=0.2))

    def no_heap(candidates: object) -> object:
        raise AssertionError("the heap was run")

    monkeypatch.setattr(room_module, "_kahn", no_heap)
    order, cyclic = _topological(
        {e.event_id: _Candidate(i, e, False) for i, e in enumerate(events)}
    )
    assert sorted(order) == sorted(e.event_id for e in events)
    assert not cyclic
