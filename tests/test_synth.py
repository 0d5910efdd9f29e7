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
from eventgraph.state import check_auth, resolve_state
from eventgraph.stores.memory import MemoryStore
from eventgraph.synth import RoomShape, SynthConfig, generate_room

VERSIONS = sorted(KNOWN_ROOM_VERSIONS, key=int)
State = Mapping[tuple[str, str], Event]


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


def replay(events: Iterable[Event]) -> Iterator[tuple[Event, State]]:
    """Pair each event with the state before it, computed from the events alone.

    The state after a merge is the per-key newest (greatest depth) of its prev events' states;
    the test asserts that this equals the state after one of the prev events, i.e. only one
    branch of a fork changed state (synth rule 4).
    """
    after: dict[str, State] = {}
    for event in events:
        prevs = [after[p] for p in event.prev_event_ids]  # KeyError: not topological
        before: State
        if not prevs:
            before = {}
        elif len(prevs) == 1:
            before = prevs[0]
        else:
            merged: dict[tuple[str, str], Event] = {}
            for state in prevs:
                for key, value in state.items():
                    if key not in merged or value.depth > merged[key].depth:
                        merged[key] = value
            assert any(merged == dict(state) for state in prevs), "two branches changed state"
            before = merged
        yield event, before
        changed = event.state_tuple
        after[event.event_id] = before if changed is None else {**before, changed: event}


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
            assert join_rule is not None
            assert join_rule.content["join_rule"] == "public" or old in ("invite", "join")
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
    for event, before in replay(events):
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


@pytest.mark.parametrize("version", VERSIONS)
def test_every_event_passes_check_auth_and_merges_resolve_to_the_changing_branch(
    version: str,
) -> None:
    """The authorization rules allow every event against its auth events (module rule 3),
    state resolution of every merge gives the state of the branch that changed it (rule 4), and
    the senders of the merged branches are still joined after the merge."""
    checked = merges = 0
    for seed, knobs in (
        (1, {}),
        (2, {"members": 5, "state_rate": 0.9, "fork_rate": 0.15, "fork_length": 20}),
        (3, {"members": 150, "fork_width": 6, "fork_length": 12, "state_rate": 0.7}),
    ):
        events = list(busy_room(version, events=1500, seed=seed, **knobs))
        by_id = {e.event_id: e for e in events}
        store = MemoryStore()
        store.add_events(events)
        after: dict[str, dict[tuple[str, str], str]] = {}
        for event, before in replay(events):
            check_auth(version, event, [by_id[a] for a in event.auth_event_ids])
            checked += 1
            state = {key: e.event_id for key, e in before.items()}
            if len(event.prev_event_ids) > 1:
                merges += 1
                prev_states = [after[p] for p in event.prev_event_ids]
                assert resolve_state(version, prev_states, store) == state
                # The branches' senders are still joined: no server soft-fails their messages.
                for prev in event.prev_event_ids:
                    if by_id[prev].type == "m.room.message":
                        assert membership(before, by_id[prev].sender) == "join"
            changed = event.state_tuple
            if changed is not None:
                state[changed] = event.event_id
            after[event.event_id] = state
    assert checked == 4500
    assert merges > 100


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
    assert 900 < last_newcomer <= 1000


def test_streaming_keeps_no_events() -> None:
    """The generator holds no event it has yielded, and its memory does not grow with the
    number of events (module rule 6)."""
    stream = generate_room("11", events=5000, members=50)
    refs = [weakref.ref(next(stream)) for _ in range(200)]
    for _ in stream:
        pass
    gc.collect()
    assert sum(r() is not None for r in refs) == 0

    def peak(events: int) -> int:
        tracemalloc.start()
        try:
            for _ in generate_room("11", events=events, members=200, seed=3):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1_000), peak(5_000)
    # A list of 5,000 events would hold several megabytes; the stream's peak (about 100 kB
    # here, the state of 200 members) barely moves.
    assert large < small + 200_000, (small, large)


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
