"""State groups, state at event and the ingest pipeline (issue 5).

The differential tests compare the pipeline with a naive reference written from the spec text
(digest §7.1, §8.1): S(E) = resolution of the states after E's prev events; S'(E) = S(E) plus E
for an accepted state event; an event is rejected when it fails the auth rules against its own
auth events (or one of them is rejected) or against S(E).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from eventgraph.errors import AuthError, EventNotFoundError, InvalidRequestError, StoreError
from eventgraph.events.auth_selection import auth_types_for_event
from eventgraph.events.event import Event, StateKey
from eventgraph.events.room_versions import room_version
from eventgraph.federation.state import (
    event_auth_response,
    state_ids_response,
    state_response,
)
from eventgraph.graph.auth_chain import auth_chain_ids
from eventgraph.protocols import EventStateGroups, RoomStore, StateGroupDraft, StateWrite
from eventgraph.room import IngestReport, NoSignatureChecks, Room, Status, ingest
from eventgraph.state.authz import check_auth
from eventgraph.state.resolution import resolve_state
from eventgraph.state.state_at import (
    current_state_ids,
    state_id_after,
    state_id_before,
    state_ids_after,
    state_ids_before,
)
from eventgraph.stores.memory import MemoryStore
from eventgraph.stores.memory_state import MAX_DELTA_HOPS, MemoryStateGroups
from eventgraph.testing.rooms import RoomBuilder, room_memory_store

from .stores import RoomStoreFactory

ALICE = "@alice:a.example"
TRUST = NoSignatureChecks()

# -- a test-local generator of rooms with concurrent state changes ------------------------------


def random_room(seed: int, version: str = "11", n: int = 60) -> RoomBuilder:
    """A room with forks whose branches change state concurrently: bans against power
    changes, join-rule flips against joins, topic wars, kicks, leaves and rejoins."""
    rng = random.Random(seed)
    rv = room_version(version)
    b = RoomBuilder(version)
    users = [f"@u{i}:a.example" for i in range(6)]
    b.bootstrap(users[:4])
    children: dict[str, int] = {}
    all_ids = list(b.events)[1:]

    def levels(mod: str | None) -> dict[str, object]:
        u: dict[str, object] = {} if rv.creators_have_infinite_power else {ALICE: 100}
        if mod is not None:
            u[mod] = 50
        return {"users": u, "state_default": 50, "ban": 50, "kick": 50}

    for _ in range(n):
        if rng.random() < 0.3:
            prev = [rng.choice(all_ids[-12:])]  # fork off a recent event
        else:
            open_tips = [e for e in all_ids if children.get(e, 0) == 0]
            prev = sorted(rng.sample(open_tips, min(len(open_tips), rng.randint(1, 3))))
        sender = rng.choice([ALICE, *users])
        target = rng.choice(users)
        action = rng.randrange(9)
        if action == 0:
            e = b.state("m.room.topic", "", {"topic": f"t{rng.random()}"}, prev=prev, sender=sender)
        elif action == 1:
            e = b.state("m.room.power_levels", "", levels(rng.choice([None, *users])), prev=prev)
        elif action == 2:
            e = b.state("m.room.member", target, {"membership": "ban"}, prev=prev, sender=sender)
        elif action == 3:
            rule = rng.choice(["public", "invite"])
            e = b.state("m.room.join_rules", "", {"join_rule": rule}, prev=prev, sender=sender)
        elif action == 4:
            e = b.state("m.room.member", target, {"membership": "join"}, prev=prev, sender=target)
        elif action == 5:
            e = b.state("m.room.member", target, {"membership": "leave"}, prev=prev, sender=sender)
        else:
            e = b.message(sender, prev=prev)
        for p in prev:
            children[p] = children.get(p, 0) + 1
        all_ids.append(e)
    return b


def naive_reference(
    events: Sequence[Event],
) -> tuple[dict[str, dict[StateKey, str]], dict[str, dict[StateKey, str]], dict[str, str]]:
    """States before/after every event and the rejected events, from the spec text alone."""
    store = MemoryStore()
    before: dict[str, dict[StateKey, str]] = {}
    after: dict[str, dict[StateKey, str]] = {}
    rejected: dict[str, str] = {}
    for e in events:
        rv = e.room_version
        sets = [after[p] for p in e.prev_event_ids]
        state = resolve_state(rv, sets, store) if sets else {}
        reason = None
        auth = store.get_events(e.auth_event_ids)
        if any(a in rejected for a in e.auth_event_ids):
            reason = "auth_events.rejected"
        else:
            try:
                check_auth(rv, e, [auth[a] for a in e.auth_event_ids], verifier=TRUST)
            except AuthError as err:
                reason = err.rule
        if reason is None:
            keys = auth_types_for_event(rv, e.type, e.sender, e.state_key, e.content)
            ids = [state[k] for k in keys if k in state and state[k] not in rejected]
            if rv.room_id_is_create_event_id and e.type != "m.room.create":
                ids.append("$" + e.room_id[1:])
            try:
                check_auth(rv, e, list(store.get_events(ids).values()), verifier=TRUST)
            except AuthError as err:
                reason = err.rule
        store.add_events([e], rejected={e.event_id: reason} if reason else None)
        if reason is not None:
            rejected[e.event_id] = reason
        before[e.event_id] = state
        new = dict(state)
        if e.state_tuple is not None and reason is None:
            new[e.state_tuple] = e.event_id
        after[e.event_id] = new
    return before, after, rejected


def ingest_all(
    pdus: Sequence[object], version: str, **kw: object
) -> tuple[MemoryStore, IngestReport]:
    store = room_memory_store()
    report = Room(store, version, verifier=TRUST).add(pdus, **kw)  # type: ignore[arg-type]
    return store, report


def _check_invariants(store: object) -> None:
    check = getattr(store, "check_invariants", None)
    assert check is not None  # every bundled store checks its own indexes
    check()


def rejected_of(store: RoomStore, ids: Sequence[str]) -> dict[str, str]:
    facts = store.get_facts(ids)
    return {i: f.rejected for i, f in facts.items() if f.rejected is not None}


# -- state groups ---------------------------------------------------------------------------------


def test_state_groups_long_chain_stays_bounded_and_exact() -> None:
    """A chain of 3,000 one-key changes: every group answers full and single-key reads like a
    plain dict, delta chains never exceed the bound, and entries grow far slower than
    changes x state."""
    groups = MemoryStateGroups()
    naive: dict[StateKey, str] = {}
    states: dict[int, dict[StateKey, str]] = {}
    prev: int | None = None
    rng = random.Random(5)
    for i in range(3000):
        key = ("m.room.member", f"@u{rng.randrange(2000)}:x")
        value: str | None = None if i % 97 == 5 and naive else f"$e{i}"
        if value is None:
            key = sorted(naive)[0]
            naive.pop(key)
        else:
            naive[key] = value
        plan = groups.prepare(
            StateWrite(groups=(StateGroupDraft(-1, "!r:x", prev, {key: value}),)),
            connected=lambda _e: True,
        )
        prev = groups.apply(plan)[-1]
        states[prev] = dict(naive)
    groups.check_invariants()
    for g in list(states)[::37]:
        assert groups.get_state([g])[g] == states[g]
        some = [*list(states[g])[:3], ("m.room.member", "@absent:x")]
        assert groups.get_state([g], some)[g] == {k: states[g][k] for k in some if k in states[g]}
    stats = groups.stats()
    assert stats.snapshots + stats.compactions >= 3000 // (MAX_DELTA_HOPS + 1)
    assert stats.entries < 3000 * 60  # vs 3000 x ~1,500 for a snapshot per change


def test_state_write_refused_leaves_store_unchanged(room_store_factory: RoomStoreFactory) -> None:
    """Inconsistent writes raise StoreError and change nothing (protocols rule 3), on every
    store (they share one check: ``memory_state.check_state_write``)."""
    store = room_store_factory()
    b = RoomBuilder("11")
    b.bootstrap()
    create = Event.from_pdu(b.pdus[0], "11")
    bad_writes = [
        StateWrite(groups=(StateGroupDraft(1, "!room:a.example", None, {}),)),
        StateWrite(groups=(StateGroupDraft(-1, "!room:a.example", 99, {}),)),
        StateWrite(groups=(StateGroupDraft(-1, 5, None, {}),)),  # type: ignore[arg-type]
        StateWrite(groups=(StateGroupDraft(-1, "!room:a.example", None, {("a",): "$x"}),)),  # type: ignore[dict-item]
        StateWrite(unparked=(7,)),  # type: ignore[arg-type]
        StateWrite(event_groups={"$nope": EventStateGroups(1, 1)}),
        StateWrite(
            groups=(StateGroupDraft(-1, "!room:a.example", None, {}),),
            event_groups={create.event_id: EventStateGroups(-1, -7)},
        ),
    ]
    for write in bad_writes:
        with pytest.raises(StoreError):
            store.add_events_with_state([create], state=write)
        assert store.get_facts([create.event_id]) == {}
        assert store.get_state([1]) == {}


# -- differential against the naive reference -------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "version"), [(s, v) for s in range(4) for v in ("10", "11", "12")]
)
def test_pipeline_matches_naive_spec_reference(
    room_store_factory: RoomStoreFactory, seed: int, version: str
) -> None:
    """For generated rooms with concurrent state changes, S(E), S'(E) and the rejected events
    equal the spec definition computed naively, for every event, on every store."""
    b = random_room(seed, version)
    store = room_store_factory()
    report = Room(store, version, verifier=TRUST).add(b.pdus)
    events = list(b.events.values())
    before, after, rejected = naive_reference(events)
    assert report.count(Status.INVALID) == 0
    for e in events:
        assert state_ids_before(store, e.event_id) == before[e.event_id], e
        assert state_ids_after(store, e.event_id) == after[e.event_id], e
    assert rejected_of(store, list(b.events)) == rejected
    _check_invariants(store)
    # Single-key lookups agree with the full state.
    for e in events[::5]:
        for key in [*list(before[e.event_id])[:4], ("m.room.topic", ""), ("x", "y")]:
            assert state_id_before(store, e.event_id, key) == before[e.event_id].get(key)
            assert state_id_after(store, e.event_id, key) == after[e.event_id].get(key)


def test_generated_rooms_exercise_forks_rejections_and_merges() -> None:
    """The generator is worth its name: merges with conflicts and rejected events happen."""
    rejected = merges = 0
    for seed in range(4):
        b = random_room(seed, "11")
        merges += sum(1 for e in b.events.values() if len(e.prev_event_ids) > 1)
        rejected += len(naive_reference(list(b.events.values()))[2])
    assert merges > 20
    assert rejected > 5


# -- order independence ------------------------------------------------------------------------


def _final_view(store: RoomStore, ids: Sequence[str]) -> tuple[object, ...]:
    return (
        {i: state_ids_before(store, i) for i in ids},
        {i: state_ids_after(store, i) for i in ids},
        rejected_of(store, ids),
        store.forward_extremities("!room:a.example"),
        dict(store.backward_extremities("!room:a.example")),
    )


@pytest.mark.parametrize("seed", range(3))
def test_ingest_order_independence(room_store_factory: RoomStoreFactory, seed: int) -> None:
    """Any topological order, a reversed batch, or shuffled batches with gaps filled later end
    with the same state at every event, the same rejections and the same extremities
    (backfilled, so soft failure — order-dependent by design — does not apply)."""
    b = random_room(seed, "11", n=50)
    ids = list(b.events)
    store_a, _ = ingest_all(b.pdus, "11", backfilled=True)
    expected = _final_view(store_a, ids)
    store_b, _ = ingest_all(list(reversed(b.pdus)), "11", backfilled=True)
    assert _final_view(store_b, ids) == expected

    rng = random.Random(seed)
    pdus = list(b.pdus)
    rng.shuffle(pdus)
    store_c = room_store_factory()  # the shuffled, gappy ingest runs on every store
    room = Room(store_c, "11", verifier=TRUST)
    pending = pdus
    saw_outlier = False
    for _ in range(len(pdus)):
        if not pending:
            break
        retry = []
        for start in range(0, len(pending), 7):
            chunk = pending[start : start + 7]
            report = room.add(chunk, backfilled=True)
            saw_outlier |= any(o.status is Status.OUTLIER for o in report.outcomes)
            retry += [chunk[o.index] for o in report.outcomes if o.status is Status.MISSING_AUTH]  # type: ignore[index]
        pending = retry
    assert not pending
    assert saw_outlier
    assert _final_view(store_c, ids) == expected
    _check_invariants(store_c)


# -- bad input ---------------------------------------------------------------------------------


def test_receipt_check_outcomes() -> None:
    """Each receipt check gives its outcome; invalid and missing-auth events write nothing."""
    b = RoomBuilder("11")
    tips = b.bootstrap(["@bob:a.example"])
    msg = b.message("@bob:a.example", prev=tips)
    store, report = ingest_all(b.pdus, "11")
    assert {o.status for o in report.outcomes} == {Status.ACCEPTED}
    room = Room(store, "11", verifier=TRUST)
    n = len(store)

    other = RoomBuilder("11", room_id="!other:a.example")
    other.bootstrap()
    b.message("@bob:a.example", prev=[msg], body="original")
    tampered = dict(b.pdus[-1])
    tampered["content"] = {"body": "changed", "msgtype": "m.text"}
    unknown_auth = dict(b.pdus[-2], auth_events=["$missing"], depth=99)
    report = room.add(
        [
            {"type": "m.room.message"},  # format
            b.pdus[-2],  # duplicate of a stored event
            other.pdus[0],  # another room
            tampered,  # content hash mismatch: redacted, then processed
            tampered,  # repeated in the batch
        ]
    )
    statuses = [o.status for o in report.outcomes]
    assert statuses == [
        Status.INVALID,
        Status.DUPLICATE,
        Status.INVALID,
        Status.ACCEPTED,
        Status.DUPLICATE,
    ]
    assert report.outcomes[3].redacted
    redacted = store.get_events([report.outcomes[3].event_id])[report.outcomes[3].event_id]  # type: ignore[list-item,index]
    assert dict(redacted.content) == {}
    assert len(store) == n + 1
    # Unknown auth events: not stored.
    report = Room(store, "11", verifier=TRUST).add([unknown_auth])
    assert report.outcomes[0].status in (Status.MISSING_AUTH, Status.INVALID)
    assert len(store) == n + 1
    # Signatures: the default verifier requires the sender's server to have signed.
    store2 = room_memory_store()
    report = Room(store2, "11").add(b.pdus)
    assert {o.status for o in report.outcomes} == {Status.INVALID}
    assert report.outcomes[0].reason == "signature: not signed by a.example"
    assert len(store2) == 0
    assert msg in store


def test_rejected_auth_event_rejects_dependants_and_soft_failure() -> None:
    """An event whose auth event is rejected is rejected; a ban on one branch soft-fails a
    message sent on an older branch by the banned user; rejected events change no state."""
    b = RoomBuilder("11")
    bob, eve = "@bob:a.example", "@eve:a.example"
    tips = b.bootstrap([bob, eve])
    # Eve (power 0) tries to set the topic: rejected (state_default 50).
    bad_topic = b.state("m.room.topic", "", {"topic": "eve's"}, prev=tips, sender=eve)
    # Bob "joins again" citing... a message authorised by a rejected event can't exist via
    # the builder's selection; craft one: an event listing the rejected topic as auth event.
    pdu = dict(b.pdus[-1])
    b2 = RoomBuilder("11")
    b2.bootstrap([bob, eve])
    store, report = ingest_all(b.pdus, "11")
    by_id = report.by_event_id()
    assert by_id[bad_topic].status is Status.REJECTED
    assert by_id[bad_topic].reason == "event.power"
    assert state_id_after(store, bad_topic, ("m.room.topic", "")) is None
    assert current_state_ids(store, "!room:a.example").get(("m.room.topic", "")) is None
    assert bad_topic not in store.forward_extremities("!room:a.example")
    del pdu

    # Soft failure: ban eve on the main line, then eve speaks on an old branch.
    tip = tips[0]
    ban = b.state("m.room.member", eve, {"membership": "ban"}, prev=[tip])
    assert Room(store, "11", verifier=TRUST).add(b.pdus[-1:]).outcomes[0].status.value == "accepted"
    late = b.message(eve, prev=[tip])
    report = Room(store, "11", verifier=TRUST).add(b.pdus[-1:])
    by_id = report.by_event_id()
    assert by_id[late].status is Status.SOFT_FAILED
    assert by_id[late].reason == "sender_not_joined"
    assert late not in store.forward_extremities("!room:a.example")
    # A merge referencing the soft-failed event is handled normally (spec "Soft failure").
    merge = b.message(bob, prev=[ban, late])
    report = Room(store, "11", verifier=TRUST).add(b.pdus[-1:])
    assert report.outcomes[0].status is Status.ACCEPTED
    assert store.forward_extremities("!room:a.example") == (merge,)


def test_rejected_auth_event_rule() -> None:
    """An event citing a rejected event among its auth events is rejected for it."""
    b = RoomBuilder("11")
    eve = "@eve:a.example"
    tips = b.bootstrap([eve])
    bad_pl = b.state("m.room.power_levels", "", {"users": {eve: 100}}, prev=tips, sender=eve)
    # Eve sets a topic citing her own (rejected) power levels.
    topic = b.state("m.room.topic", "", {"topic": "x"}, prev=[bad_pl], sender=eve)
    _, report = ingest_all(b.pdus, "11")
    by_id = report.by_event_id()
    assert by_id[bad_pl].status is Status.REJECTED
    assert by_id[topic].status is Status.REJECTED
    assert by_id[topic].reason == "auth_events.rejected"


def test_hundreds_of_extremities() -> None:
    """300 concurrent branches, then one merge of 20 of them: correct extremities, one
    resolution per distinct input set, state equal to the naive reference."""
    b = RoomBuilder("11")
    users = [f"@u{i}:a.example" for i in range(300)]
    tips = b.bootstrap(users)
    leaves = [b.message(u, prev=tips) for u in users]
    store, report = ingest_all(b.pdus, "11")
    assert report.count(Status.ACCEPTED) == len(b.pdus)
    assert store.forward_extremities("!room:a.example") == tuple(sorted(leaves))
    merge = b.message(ALICE, prev=sorted(leaves)[:20])
    report = Room(store, "11", verifier=TRUST).add(b.pdus[-1:])
    assert report.outcomes[0].status is Status.ACCEPTED
    assert len(store.forward_extremities("!room:a.example")) == 300 - 20 + 1
    before, _, _ = naive_reference(list(b.events.values()))
    assert state_ids_before(store, merge) == before[merge]


def test_gap_filled_later_connects_outliers() -> None:
    """Events whose prevs are unknown are parked outliers; delivering the gap connects them
    (reported in ``connected``), with the same state as an in-order ingest."""
    b = random_room(7, "11", n=30)
    pdus = b.pdus
    head, gap, tail = pdus[:8], pdus[8:12], pdus[12:]
    store = room_memory_store()
    room = Room(store, "11", verifier=TRUST)
    room.add(head, backfilled=True)
    first = room.add(tail, backfilled=True)
    assert Status.OUTLIER in {o.status for o in first.outcomes}
    missing = [tail[o.index] for o in first.outcomes if o.status is Status.MISSING_AUTH]  # type: ignore[index]
    second = room.add([*gap, *missing], backfilled=True)
    assert second.connected
    reference, _ = ingest_all(pdus, "11", backfilled=True)
    ids = list(b.events)
    assert _final_view(store, ids) == _final_view(reference, ids)


def test_state_before_override_connects_an_event_across_a_gap() -> None:
    """A host that fetched the state at a gap passes it as ``state_before``."""
    b = RoomBuilder("11")
    tips = b.bootstrap(["@bob:a.example"])
    hidden = b.state("m.room.topic", "", {"topic": "unseen"}, prev=tips)
    after_gap = b.message("@bob:a.example", prev=[hidden])
    known = [p for p in b.pdus if Event.from_pdu(p, "11").event_id != hidden]
    fetched = b.state_after(hidden)
    store = room_memory_store()
    room = Room(store, "11", verifier=TRUST)
    report = room.add(known[:-1])
    assert report.count(Status.ACCEPTED) == len(known) - 1
    # The topic event is an auth-less outlier for us: store it as an outlier via its own batch?
    # No: the message only needs its auth events; give the state at the gap.
    report = room.add(known[-1:], state_before={after_gap: fetched})
    assert report.outcomes[0].status is Status.ACCEPTED
    assert state_ids_before(store, after_gap) == fetched
    with pytest.raises(InvalidRequestError):
        room.add(known[-1:], state_before={after_gap: {("a",): "$x"}})  # type: ignore[dict-item]


def test_cycle_in_v1_ids_is_invalid() -> None:
    """Forged room version 1 IDs forming a prev cycle are invalid, not a hang."""
    b = RoomBuilder("1")
    tips = b.bootstrap()
    pdu_a = {**b.pdus[-1]}
    cyc1 = {
        **pdu_a,
        "event_id": "$c1:a.example",
        "type": "m.room.message",
        "prev_events": [["$c2:a.example", {"sha256": "x"}]],
        "content": {"body": "1"},
    }
    cyc1.pop("state_key")
    cyc2 = {**cyc1, "event_id": "$c2:a.example", "prev_events": [["$c1:a.example", {}]]}
    store, _ = ingest_all(b.pdus, "1")
    report = Room(store, "1", verifier=TRUST).add([cyc1, cyc2], trusted=True)
    assert [o.status for o in report.outcomes] == [Status.INVALID, Status.INVALID]
    assert tips


def test_lookups_of_unknown_and_outlier_events() -> None:
    """Unknown events and outliers have no state: EventNotFoundError (404)."""
    b = RoomBuilder("11")
    tips = b.bootstrap()
    lost = b.message(ALICE, prev=[tips[0], "$never-seen"])
    store, report = ingest_all(b.pdus, "11")
    assert report.by_event_id()[lost].status is Status.OUTLIER
    for event_id in ("$unknown", lost):
        with pytest.raises(EventNotFoundError):
            state_ids_before(store, event_id)
        with pytest.raises(EventNotFoundError):
            state_id_after(store, event_id, ("m.room.create", ""))
    assert current_state_ids(store, "!room:a.example") == state_ids_after(store, tips[0])


# -- federation answers -----------------------------------------------------------------------


def test_federation_state_answers() -> None:
    """/state_ids and /state: the state *before* the event plus the auth chain of that state;
    /event_auth: the event's auth chain; 404 for other rooms, outliers, unknown events."""
    b = random_room(3, "11", n=30)
    store, _ = ingest_all(b.pdus, "11")
    room_id = "!room:a.example"
    for e in list(b.events.values())[::4]:
        before = state_ids_before(store, e.event_id)
        if store.get_facts([e.event_id])[e.event_id].rejected is not None:
            with pytest.raises(EventNotFoundError):
                state_ids_response(store, room_id, e.event_id)
            continue
        body = state_ids_response(store, room_id, e.event_id)
        before_ids = sorted(set(before.values()))
        assert body["pdu_ids"] == before_ids
        assert body["auth_chain_ids"] == sorted(auth_chain_ids(store, list(before.values())))
        full = state_response(store, room_id, e.event_id)
        assert full["pdus"] == [store.get_events([i])[i].to_pdu() for i in before_ids]
        auth = event_auth_response(store, room_id, e.event_id)["auth_chain"]
        assert len(auth) == len(auth_chain_ids(store, [e.event_id]))
    first = next(iter(b.events))
    for bad_room, bad_event in (("!other:a.example", first), (room_id, "$unknown")):
        with pytest.raises(EventNotFoundError):
            state_ids_response(store, bad_room, bad_event)
        with pytest.raises(EventNotFoundError):
            event_auth_response(store, bad_room, bad_event)


def test_ingest_function_and_report() -> None:
    """``ingest`` is ``Room(...).add``; the report counts final outcomes."""
    b = RoomBuilder("12")
    tips = b.bootstrap(["@bob:a.example"])
    b.message("@bob:a.example", prev=tips)
    store = room_memory_store()
    report = ingest(store, "12", b.pdus, verifier=TRUST)
    assert report.count(Status.ACCEPTED) == len(b.pdus)
    assert current_state_ids(store, b.room_id)[("m.room.member", "@bob:a.example")]
