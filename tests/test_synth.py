"""Synthetic rooms: valid, deterministic, streamed (eventgraph.synth).

Every generated event is checked against values recomputed here with the public functions
(content hash, event ID, reference hash, depth, auth events selection) and against the state
before it, which a reference replay computes from the events alone.
"""

from __future__ import annotations

import gc
import re
import tracemalloc
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest

from eventgraph import (
    KNOWN_ROOM_VERSIONS,
    Event,
    InvalidRequestError,
    UnsupportedRoomVersionError,
    compute_event_id,
    content_hash,
    reference_hash,
    unpadded_base64,
)
from eventgraph.events import JsonValue
from eventgraph.events.auth_selection import auth_types_for_event
from eventgraph.room import NoSignatureChecks, Room, Status
from eventgraph.state import check_auth, resolve_state
from eventgraph.state.state_at import state_ids_after
from eventgraph.stores.memory import MemoryStore
from eventgraph.synth import RoomShape, SynthConfig, SynthStats, generate_room
from eventgraph.testing.rooms import room_memory_store

VERSIONS = sorted(KNOWN_ROOM_VERSIONS, key=int)
State = Mapping[tuple[str, str], Event]
NO_SIGS = NoSignatureChecks()


def busy_room(version: str, **knobs: int | float) -> Iterator[Event]:
    """A small room with many forks and state changes, so every action happens."""
    settings: dict[str, int | float] = {
        "events": 600,
        "members": 40,
        "fork_rate": 0.08,
        "fork_width": 4,
        "state_rate": 0.5,
        "seed": 11,
    }
    settings.update(knobs)
    return generate_room(
        version,
        events=int(settings["events"]),
        members=int(settings["members"]),
        fork_rate=float(settings["fork_rate"]),
        fork_width=int(settings["fork_width"]),
        state_rate=float(settings["state_rate"]),
        seed=int(settings["seed"]),
    )


def replay(events: Iterable[Event], version: str) -> Iterator[tuple[Event, State]]:
    """Pair each event with the state before it, computed from the events alone by the spec's
    definition: the state after its only prev event, or the resolution (``resolve_state`` over a
    store of the whole room) of the states after its prev events."""
    events = list(events)
    by_id = {e.event_id: e for e in events}
    store = MemoryStore()
    store.add_events(events)
    after: dict[str, dict[tuple[str, str], str]] = {}
    for event in events:
        prevs = [after[p] for p in event.prev_event_ids]  # KeyError: not topological
        if not prevs:
            before: dict[tuple[str, str], str] = {}
        elif len(prevs) == 1:
            before = prevs[0]
        else:
            before = resolve_state(version, prevs, store)
        yield event, {key: by_id[i] for key, i in before.items()}
        changed = event.state_tuple
        after[event.event_id] = before if changed is None else {**before, changed: event.event_id}


def membership(state: State, user: str) -> str | None:
    member = state.get(("m.room.member", user))
    return None if member is None else str(member.content["membership"])


def power(state: State, user: str) -> float:
    """The user's power level (spec "Definitions"; RV 12 creators are infinitely powerful)."""
    create = state[("m.room.create", "")]
    if create.room_version.creators_have_infinite_power and user == create.sender:
        return float("inf")
    pl = state.get(("m.room.power_levels", ""))
    if pl is None:
        creator = create.content.get("creator", create.sender)
        return 100 if user == creator else 0
    users = pl.content.get("users", {})
    return int(users.get(user, pl.content.get("users_default", 0)))


def pl_value(state: State, name: str, default: int) -> int:
    pl = state.get(("m.room.power_levels", ""))
    return default if pl is None else int(pl.content.get(name, default))


def check_rules(event: Event, state: State) -> None:
    """The authorization rules the generator exercises (digest §6.3–6.5), from the state before.

    A partial reference for these tests; the full rules are ``eventgraph.state.authz``.
    """
    sender = event.sender
    if event.type == "m.room.create":
        assert event.prev_event_ids == ()
        return
    if event.type == "m.room.member":
        target = event.state_key
        assert target is not None
        new = event.content["membership"]
        old = membership(state, target)
        join_rule = state.get(("m.room.join_rules", ""))
        if new == "join":
            assert sender == target
            assert old != "ban"
            if len(state) == 1:  # only the create event: the creator's bootstrap join
                return
            # A resolution may leave no join rules at all (every candidate failed): then only
            # invitees and members may join.
            public = join_rule is not None and join_rule.content["join_rule"] == "public"
            assert public or old in ("invite", "join")
        elif new == "invite":
            assert membership(state, sender) == "join"
            assert old not in ("join", "ban")
            assert power(state, sender) >= pl_value(state, "invite", 0)
        elif new == "leave" and sender == target:
            assert old in ("invite", "join")
        elif new == "leave":
            assert membership(state, sender) == "join"
            if old == "ban":
                assert power(state, sender) >= pl_value(state, "ban", 50)
            assert power(state, sender) >= pl_value(state, "kick", 50)
            assert power(state, target) < power(state, sender)
        else:
            assert new == "ban"
            assert membership(state, sender) == "join"
            assert power(state, sender) >= pl_value(state, "ban", 50)
            assert power(state, target) < power(state, sender)
        return
    assert membership(state, sender) == "join"
    pl = state.get(("m.room.power_levels", ""))
    levels = {} if pl is None else pl.content.get("events", {})
    default = "state_default" if event.is_state else "events_default"
    required = levels.get(event.type, pl_value(state, default, 50 if event.is_state else 0))
    assert power(state, sender) >= required
    if event.type == "m.room.power_levels" and pl is not None:
        mine = power(state, sender)
        old_users, new_users = pl.content["users"], event.content["users"]
        for user in sorted(set(old_users) | set(new_users)):
            if old_users.get(user) != new_users.get(user):
                assert old_users.get(user, 0) < mine
                assert new_users.get(user, 0) <= mine


def check_room(events: Iterable[Event], version: str) -> RoomShape:
    """Check every event of a room; return its shape."""
    rv = KNOWN_ROOM_VERSIONS[version]
    pdus: dict[str, dict[str, JsonValue]] = {}
    seen: list[Event] = []
    room_id = None
    for event, before in replay(events, version):
        seen.append(event)
        pdu = event.to_pdu()
        pdus[event.event_id] = pdu
        assert Event.from_pdu(pdu, version) == event
        # Content hash (server-server API "Calculating the content hash for an event").
        assert pdu["hashes"] == {"sha256": unpadded_base64(content_hash(pdu))}
        assert pdu["signatures"] == {}
        # Event IDs and edges (digest §4.3–4.4).
        if rv.uses_reference_hash_ids:
            assert compute_event_id(pdu, version) == event.event_id
            assert all(isinstance(p, str) for p in pdu["prev_events"])
        else:
            assert re.fullmatch(r"\$\d+\.[A-Za-z]{18}:hs\d+\.example", event.event_id)
            for name in ("prev_events", "auth_events"):
                for ref_id, hashes in pdu[name]:
                    expected = unpadded_base64(reference_hash(pdus[ref_id], version))
                    assert hashes == {"sha256": expected}
        # Depth: the largest depth of the prev events plus one; the create event has 1.
        prev_depths = [pdus[p]["depth"] for p in event.prev_event_ids]
        assert event.depth == max(prev_depths, default=0) + 1
        # Auth events: the selection from the state before, in selection order.
        keys = auth_types_for_event(
            version, event.type, event.sender, event.state_key, event.content
        )
        expected_auth = [before[k].event_id for k in keys if k in before]
        if rv.room_id_is_create_event_id and event.type != "m.room.create":
            expected_auth.append(before[("m.room.create", "")].event_id)  # implied (RV 12)
        assert list(event.auth_event_ids) == expected_auth
        assert all(a in pdus for a in event.auth_event_ids)
        check_rules(event, before)
        if room_id is None:
            room_id = event.room_id
            if rv.room_id_is_create_event_id:
                assert room_id == "!" + event.event_id[1:]
        assert event.room_id == room_id
        assert event.room_version is rv
    return RoomShape.measure(seen)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_event_of_every_room_version_is_exact_and_allowed(version: str) -> None:
    """Hashes, IDs, depths, auth events and the rules hold for every event (module rules 1–4)."""
    shape = check_room(busy_room(version), version)
    assert shape.events == 600
    assert shape.forks > 5
    assert shape.merges == shape.forks
    assert shape.state_events > 150


@pytest.mark.parametrize("version", ["1", "2", "11", "12"])
def test_state_only_branches_and_tiny_budgets(version: str) -> None:
    """All-state rooms, constant forking and rooms cut inside the setup stay valid."""
    for events in (1, 2, 3, 5, 6, 7):
        check_room(busy_room(version, events=events, fork_rate=1.0), version)
    check_room(busy_room(version, state_rate=1.0, fork_rate=0.3, members=5), version)
    check_room(busy_room(version, members=1, fork_rate=0.5), version)
    check_room(busy_room(version, members=600, events=300), version)
    # The generator's own state is the spec's even when every event changes state.
    config = SynthConfig(
        room_version=version,
        events=600,
        members=5,
        seed=11,
        state_rate=1.0,
        fork_rate=0.3,
        fork_width=4,
        concurrent_state=1.0,
    )
    generated = [(e, dict(before)) for e, before, _ in config.stream_with_state()]
    for (event, mine), (_, spec) in zip(
        generated, replay([e for e, _ in generated], version), strict=True
    ):
        assert mine == {key: e.event_id for key, e in spec.items()}, event.event_id


def contested_room(version: str, seed: int = 5, **knobs: float) -> SynthConfig:
    """A room whose forks are frequent and mostly contested (module rule 4)."""
    settings: dict[str, float] = {"fork_rate": 0.12, "concurrent_state": 0.8, "state_rate": 0.5}
    settings.update(knobs)
    return SynthConfig(
        room_version=version,
        events=700,
        members=30,
        seed=seed,
        fork_width=4,
        fork_rate=settings["fork_rate"],
        concurrent_state=settings["concurrent_state"],
        state_rate=settings["state_rate"],
        rejected_rate=settings.get("rejected_rate", 0.0),
    )


def ingest(events: list[Event], version: str) -> tuple[Any, Any]:
    """The events through the ingest pipeline, in stream order; the store and the report."""
    store = room_memory_store()
    report = Room(store, version, verifier=NoSignatureChecks()).add([e.to_pdu() for e in events])
    return store, report


@pytest.mark.parametrize("version", VERSIONS)
def test_concurrent_state_is_the_spec_state_and_the_pipeline_accepts_it(version: str) -> None:
    """Module rules 3–4 with concurrent state changes, every room version:

    - every event passes ``check_auth`` against its own auth events and against the auth events
      selected from the generator's state before it;
    - the generator's state before every event equals the spec's (whole-room ``resolve_state``
      of the states after the prev events at every merge);
    - the ingest pipeline accepts every event (none rejected; soft failure, which depends on
      arrival order, is allowed) and its state after every event is the generator's;
    - the forks really contest state: branches of one fork both change state, and resolutions
      both keep and drop branch changes.
    """
    config = contested_room(version)
    generated = [(e, dict(b)) for e, b, _ in config.stream_with_state()]
    stats = config.stats()
    events = [e for e, _ in generated]
    by_id = {e.event_id: e for e in events}
    rv = KNOWN_ROOM_VERSIONS[version]
    merges = 0
    after: dict[str, dict[tuple[str, str], str]] = {}
    for (event, mine), (same, spec) in zip(generated, replay(events, version), strict=True):
        assert same is event
        assert mine == {key: e.event_id for key, e in spec.items()}, event.event_id
        check_auth(version, event, [by_id[a] for a in event.auth_event_ids], verifier=NO_SIGS)
        keys = auth_types_for_event(
            version, event.type, event.sender, event.state_key, event.content
        )
        selected = [spec[k] for k in keys if k in spec]
        if rv.room_id_is_create_event_id and event.type != "m.room.create":
            selected.append(spec[("m.room.create", "")])
        check_auth(version, event, selected, verifier=NO_SIGS)
        merges += len(event.prev_event_ids) > 1
        changed = event.state_tuple
        after[event.event_id] = mine if changed is None else {**mine, changed: event.event_id}
    store, report = ingest(events, version)
    assert report.count(Status.REJECTED) == 0
    assert report.count(Status.ACCEPTED) + report.count(Status.SOFT_FAILED) == len(events)
    for event in events:
        assert state_ids_after(store, event.event_id) == after[event.event_id], event.event_id
    assert merges > 20
    assert stats.concurrent_forks > 10
    assert stats.contested_keys > 3
    assert stats.kept > 20
    assert stats.dropped > 3
    assert stats.refused < len(events) // 5


def test_every_contest_happens_and_resolutions_decide_them() -> None:
    """Each of the four contests opens forks, and across rooms resolutions keep and drop the
    contested changes (bans against demotions, join-rule flips against joins, topic wars,
    kicks against membership changes)."""
    total = SynthStats()
    for version, seed in (("11", 1), ("11", 2), ("10", 3), ("12", 4)):
        stats = contested_room(version, seed, fork_rate=0.15, concurrent_state=1.0).stats()
        total.dropped += stats.dropped
        total.kept += stats.kept
        for kind, n in stats.by_contest.items():
            total.by_contest[kind] = total.by_contest.get(kind, 0) + n
    assert sorted(total.by_contest) == [
        "ban/power",
        "join rules/join",
        "kick/membership",
        "topic war",
    ]
    assert min(total.by_contest.values()) >= 5
    assert total.dropped > 20
    assert total.kept > 100


def test_without_concurrent_state_only_one_branch_changes_state() -> None:
    """``concurrent_state=0``: every fork has one branch changing state, no contests."""
    stats = contested_room("11", concurrent_state=0.0).stats()
    assert stats.concurrent_forks == 0
    assert stats.by_contest == {}
    assert stats.resolutions > 10


@pytest.mark.parametrize("version", ["1", "6", "11", "12"])
def test_rejected_material_behind_its_knob(version: str) -> None:
    """``rejected_rate``: the pipeline rejects exactly the deliberate events (against their auth
    events), and the state after every event still matches."""
    config = contested_room(version, seed=9, rejected_rate=0.05)
    generated = [(e, dict(b)) for e, b, _ in config.stream_with_state()]
    stats = config.stats()
    events = [e for e, _ in generated]
    store, report = ingest(events, version)
    rejected = {o.event_id for o in report.outcomes if o.status is Status.REJECTED}
    assert len(rejected) == stats.rejected > 5
    assert {by.type for by in events if by.event_id in rejected} == {"m.room.name"}
    for event, before in generated:
        changed = event.state_tuple
        if changed is not None and event.event_id not in rejected:
            before = {**before, changed: event.event_id}
        assert state_ids_after(store, event.event_id) == before
    assert contested_room(version, seed=9).stats().rejected == 0


def test_setup_events_follow_the_room_version() -> None:
    """Create content, creator and power levels per version (digest §4.3, §6.5)."""
    for version in VERSIONS:
        rv = KNOWN_ROOM_VERSIONS[version]
        create, join, pl, rules, visibility = generate_room(version, events=5)
        assert create.content["room_version"] == version
        assert ("creator" in create.content) == (not rv.implicit_room_creator)
        assert ("room_id" in create.to_pdu()) == (not rv.room_id_is_create_event_id)
        assert (join.state_key, join.content["membership"]) == (create.sender, "join")
        users = pl.content["users"]
        assert (create.sender in users) == (not rv.creators_have_infinite_power)
        if rv.creators_have_infinite_power:
            # MSC4289: the tombstone level must be above state_default.
            assert pl.content["events"]["m.room.tombstone"] > pl.content["state_default"]
        assert rules.content == {"join_rule": "public"}
        assert visibility.content == {"history_visibility": "shared"}


def test_same_seed_same_room_and_other_seeds_differ() -> None:
    """Determinism (module rule 5): IDs depend only on the config."""
    for version in ("2", "11", "12"):
        first = [e.event_id for e in busy_room(version)]
        again = [e.event_id for e in busy_room(version)]
        other = [e.event_id for e in busy_room(version, seed=12)]
        assert first == again
        assert len(set(first)) == len(first)
        assert not set(first) & set(other)
    config = SynthConfig(room_version="10", events=300, fork_rate=0.1)
    assert [e.pdu_json for e in config.stream()] == [e.pdu_json for e in config.stream()]


def test_forks_merge_with_several_prev_events() -> None:
    """Forks of up to ``fork_width`` branches, each closed by one merge event."""
    events = list(generate_room("11", events=3000, fork_rate=0.2, fork_width=6, fork_length=3))
    widths = sorted({len(e.prev_event_ids) for e in events})
    assert widths == [0, 1, 2, 3, 4, 5, 6]
    shape = RoomShape.measure(events)
    assert shape.merges == shape.forks > 100
    no_forks = RoomShape.measure(generate_room("11", events=500, fork_rate=0.0))
    assert (no_forks.forks, no_forks.merges, no_forks.max_depth) == (0, 0, 500)


def test_members_all_arrive() -> None:
    """Every one of ``members`` users is invited or joins, spread over the room."""
    events = list(generate_room("11", events=2000, members=300, state_rate=0.0))
    targets = {e.state_key for e in events if e.type == "m.room.member"}
    assert len(targets) == 300
    last_newcomer = max(i for i, e in enumerate(events) if e.state_key == "@u299:hs2.example")
    # Half-way, or a little later when the join rule was "invite" and newcomers wait for
    # invites.
    assert 900 < last_newcomer <= 1100


def test_streaming_keeps_no_events() -> None:
    """The generator holds no message it has yielded and no state event that left the state
    (but for power levels, rule 4), and its memory does not grow with the number of events
    (module rule 6)."""
    stream = generate_room("11", events=5000, members=50)
    first = [next(stream) for _ in range(300)]
    kept = {e.event_id for e in first if e.type in ("m.room.create", "m.room.power_levels")}
    refs = [weakref.ref(e) for e in first if e.event_id not in kept]
    assert sum(e.state_key is None for e in first) > 100
    del first
    for _ in stream:
        pass
    gc.collect()
    # Still held: the first events that are still state entries or their auth events.
    assert sum(r() is not None for r in refs) < 60

    def peak(events: int) -> int:
        tracemalloc.start()
        try:
            for _ in generate_room("11", events=events, members=200, seed=3):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1_000), peak(5_000)
    # A list of 5,000 events would hold several megabytes; the stream's peak (about 400 kB
    # here, the state of 200 members with their auth events) grows only by the power-levels
    # history a merge's mainline walk may need (synth rule 4): ~4 kB per power-levels change.
    changes = sum(
        e.type == "m.room.power_levels"
        for e in generate_room("11", events=5_000, members=200, seed=3)
    )
    assert 50 < changes < 150
    assert large < small + 200_000 + 6_000 * changes, (small, large, changes)


def test_bad_knobs_are_refused_at_once() -> None:
    """Out-of-range knobs raise when the config is made, not while iterating."""
    with pytest.raises(InvalidRequestError, match="fork_width"):
        generate_room("11", fork_width=1)
    with pytest.raises(InvalidRequestError, match="fork_width"):
        generate_room("11", fork_width=21)
    with pytest.raises(InvalidRequestError, match="fork_rate"):
        generate_room("11", fork_rate=1.5)
    with pytest.raises(InvalidRequestError, match="members"):
        SynthConfig(members=0)
    with pytest.raises(UnsupportedRoomVersionError):
        generate_room("13")
