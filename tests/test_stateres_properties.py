"""State resolution: properties (hypothesis) and hostile input.

Rooms are generated in topological order by a small test-only generator: a bootstrapped public
room (v2: room version 10; v2.1: 12; v1: 1) whose further events — joins, leaves, kicks, bans,
power-level changes, join-rule changes, topics — are drawn on random forks of the DAG, each
authorized against the state before it (stateres_support.RoomStates), so some are rejected.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph import (
    CycleError,
    Event,
    EventGraphError,
    EventNotFoundError,
    FlaggedEventsReader,
    InvalidRequestError,
    MemoryStore,
    StateKey,
)
from eventgraph.events.canonical_json import JsonValue
from eventgraph.events.room_versions import room_version
from eventgraph.graph.auth_chain import auth_chain_difference, conflicted_subgraph
from eventgraph.protocols import EventReader
from eventgraph.state.resolution import resolve_state
from eventgraph.testing import make_event

from .stateres_support import FlagStore, RoomStates, reference_resolve_v2

USERS = ["@alice:x", "@bob:x", "@carol:x", "@dave:x"]
CREATE: StateKey = ("m.room.create", "")


def _event(
    version: str,
    n: int,
    prev: Sequence[str],
    auth: Sequence[str],
    etype: str,
    sender: str,
    state_key: str | None,
    content: dict[str, JsonValue],
    ts: int,
) -> Event:
    return make_event(
        f"$e{n}",
        room_id="!e0" if version == "12" else "!r:x",
        version=version,
        prev=prev,
        auth=auth,
        depth=n + 1,
        type=etype,
        state_key=state_key,
        sender=sender,
        content=content,
        origin_server_ts=ts,
    )


def generate_room(version: str, seed: int, size: int, *, mods: bool = False) -> RoomStates:
    """A random forked room, every event authorized against the state before it.

    With ``mods``, bob (100) and carol (50) have power from the start, so concurrent power
    events of different senders (and power orderings that matter) are common.
    """
    rng = random.Random(seed)
    rv = room_version(version)
    room = RoomStates(rv=rv)
    alice = USERS[0]
    base_users: dict[str, JsonValue] = {} if version == "12" else {alice: 100}
    if mods:
        base_users.update({USERS[1]: 100, USERS[2]: 50})
    create: dict[str, JsonValue] = {"room_version": version}
    if not rv.implicit_room_creator:
        create["creator"] = alice
    boot: list[tuple[str, str | None, dict[str, JsonValue]]] = [
        ("m.room.create", "", create),
        ("m.room.member", alice, {"membership": "join"}),
        ("m.room.power_levels", "", {"users": dict(base_users)}),
        ("m.room.join_rules", "", {"join_rule": "public"}),
    ]
    ids: list[str] = []
    for n, (etype, key, content) in enumerate(boot):
        ev = _event(version, n, ids[-1:], [], etype, alice, key, content, n)
        # auth events: selected from the state before (the helper computes the state).
        room.add_batch([_with_auth(room, ev)], one_by_one=True)
        ids.append(ev.event_id)
    for n in range(len(boot), len(boot) + size):
        prevs = sorted(set(rng.sample(ids[-6:], k=min(len(ids[-6:]), rng.choice([1, 1, 2])))))
        sender = rng.choice(USERS)
        target = rng.choice(USERS)
        kind = rng.randrange(7)
        if kind == 0:
            etype, key, content = "m.room.member", sender, {"membership": "join"}
        elif kind == 1:
            etype, key, content = "m.room.member", sender, {"membership": "leave"}
        elif kind == 2:
            membership = rng.choice(["ban", "leave"])
            etype, key, content = "m.room.member", target, {"membership": membership}
        elif kind == 3:
            level = rng.choice([0, 50, 100])
            users = dict(base_users)
            if target != alice or version != "12":
                users[target] = level if target != alice else 100
            etype, key, content = "m.room.power_levels", "", {"users": users}
        elif kind == 4:
            rule = rng.choice(["public", "invite"])
            etype, key, content = "m.room.join_rules", "", {"join_rule": rule}
        else:
            etype, key, content = "m.room.topic", "", {"topic": f"t{n}"}
        ev = _event(version, n, prevs, [], etype, sender, key, content, rng.randrange(1000))
        room.add_batch([_with_auth(room, ev)], one_by_one=True)
        ids.append(ev.event_id)
    return room


def _with_auth(room: RoomStates, ev: Event) -> Event:
    """``ev`` with its auth events selected from the state before it (resolved from prevs)."""
    prevs = [room.after[p] for p in ev.prev_event_ids if p in room.after]
    before = resolve_state(room.rv, prevs, room.store)
    auth = [e.event_id for e in room._auth_from_state(before, ev)]
    if room.rv.room_id_is_create_event_id:
        auth = [a for a in auth if a != "$e0"]
    return make_event(
        ev.event_id,
        room_id=ev.room_id,
        version=room.rv,
        prev=ev.prev_event_ids,
        auth=auth,
        depth=ev.depth,
        type=ev.type,
        state_key=ev.state_key,
        sender=ev.sender,
        content=ev.content,
        origin_server_ts=ev.origin_server_ts,
    )


rooms = st.builds(
    generate_room,
    version=st.sampled_from(["1", "10", "12"]),
    seed=st.integers(0, 2**32),
    size=st.integers(1, 14),
)


def _state_sets(room: RoomStates, data: st.DataObject) -> list[dict[StateKey, str]]:
    ids = sorted(room.after)
    picked = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4))
    return [room.after[i] for i in picked]


@given(room=rooms, data=st.data())
def test_one_state_set_resolves_to_itself(room: RoomStates, data: st.DataObject) -> None:
    """Resolving one state set gives that set; resolving copies of it gives it too."""
    state = _state_sets(room, data)[0]
    assert resolve_state(room.rv, [state], room.store) == state
    assert resolve_state(room.rv, [state, dict(state), dict(state)], room.store) == state


@given(room=rooms, data=st.data())
def test_order_of_state_sets_does_not_matter(room: RoomStates, data: st.DataObject) -> None:
    """Any permutation of the state sets gives the same answer."""
    sets = _state_sets(room, data)
    expected = resolve_state(room.rv, sets, room.store)
    shuffled = data.draw(st.permutations(sets))
    assert resolve_state(room.rv, shuffled, room.store) == expected


@given(room=rooms, data=st.data())
def test_store_insertion_order_does_not_matter(room: RoomStates, data: st.DataObject) -> None:
    """Storing the same events in another order (flags kept) gives the same answer."""
    sets = _state_sets(room, data)
    expected = resolve_state(room.rv, sets, room.store)
    events = list(room.events.values())
    order = data.draw(st.permutations(events))
    other = type(room.store)()
    other.add_events(order)
    other.rejected.update(room.store.rejected)
    assert resolve_state(room.rv, sets, other) == expected


@given(room=rooms, data=st.data())
def test_a_store_with_flagged_facts_gives_the_same_answer(
    room: RoomStates, data: st.DataObject
) -> None:
    """The same events and rejected flags in a store offering ``get_flagged_facts`` (a
    MemoryStore: the rejected flags read without a fact per event, rule 3) give the answer of
    the store that answers ``get_facts`` only (the FlagStore)."""
    assert not isinstance(room.store, FlaggedEventsReader)
    sets = _state_sets(room, data)
    expected = resolve_state(room.rv, sets, room.store)
    flagged = MemoryStore()
    flagged.add_events(list(room.events.values()), rejected=dict(room.store.rejected))
    assert isinstance(flagged, FlaggedEventsReader)
    assert resolve_state(room.rv, sets, flagged) == expected


@pytest.mark.parametrize("flagged", [True, False])
def test_a_rejected_event_whose_own_auth_events_are_selected_is_checked(flagged: bool) -> None:
    """A rejected topic whose own auth events are exactly those the resolved state selects
    (rule 4 would let it pass unread) is checked in full and fails — whether the store gives
    the rejected flag by ``get_flagged_facts`` (MemoryStore) or only by ``get_facts``."""

    def ev(
        eid: str,
        etype: str,
        key: str,
        content: dict[str, JsonValue],
        auth: Sequence[str],
        ts: int,
        sender: str = "@alice:x",
    ) -> Event:
        return make_event(
            eid,
            room_id="!r:x",
            version="10",
            type=etype,
            state_key=key,
            sender=sender,
            content=content,
            auth=auth,
            origin_server_ts=ts,
        )

    events = [
        ev("$c", "m.room.create", "", {"creator": "@alice:x", "room_version": "10"}, (), 0),
        ev("$j", "m.room.member", "@alice:x", {"membership": "join"}, ("$c",), 1),
        ev("$pl", "m.room.power_levels", "", {"users": {"@alice:x": 100}}, ("$c", "$j"), 2),
        ev("$t1", "m.room.topic", "", {"topic": "one"}, ("$c", "$pl", "$j"), 3),
        # bob never joined: rejected on receipt (its own auth events: the create event and
        # the power levels, which the state selects too — no member event of bob).
        ev("$t2", "m.room.topic", "", {"topic": "two"}, ("$c", "$pl"), 4, sender="@bob:x"),
    ]
    rejected = {"$t2": "not joined"}
    store: EventReader
    if flagged:
        memory = MemoryStore()
        memory.add_events(events, rejected=rejected)
        store = memory
    else:
        flags = FlagStore()
        flags.add_events(events)
        flags.rejected.update(rejected)
        store = flags
    assert isinstance(store, FlaggedEventsReader) == flagged
    base = {CREATE: "$c", ("m.room.member", "@alice:x"): "$j", ("m.room.power_levels", ""): "$pl"}
    sets = [{**base, ("m.room.topic", ""): "$t1"}, {**base, ("m.room.topic", ""): "$t2"}]
    assert resolve_state("10", sets, store)[("m.room.topic", "")] == "$t1"


@given(room=rooms, data=st.data())
def test_result_comes_from_inputs_or_replayed_events_never_rejected(
    room: RoomStates, data: st.DataObject
) -> None:
    """Every value comes from some input set or from the events the algorithm replays beside
    them (the auth difference, and in v2.1 the conflicted subgraph: spec "Full conflicted
    set"); rejected events never appear."""
    sets = _state_sets(room, data)
    got = resolve_state(room.rv, sets, room.store)
    values = {v for s in sets for v in s.values()}
    replayed = set(
        auth_chain_difference(room.store, [list(s.values()) for s in sets], inclusive=True)
    )
    if room.rv.identifier == "12":
        conflicted = values - {v for v in values if all(v in s.values() for s in sets)}
        replayed |= conflicted_subgraph(room.store, sorted(conflicted))
    assert set(got.values()) <= values | replayed
    assert not set(got.values()) & set(room.store.rejected)
    # Keys with one value in every set keep it (unconflicted).
    for key, value in sets[0].items():
        if all(s.get(key) == value for s in sets):
            assert got[key] == value


# -- hostile input -----------------------------------------------------------------------------


def generate_fork(version: str, seed: int, prefix: int, changes: int, branches: int) -> RoomStates:
    """A room forked into linear ``branches`` of ``changes`` state events each (after a prefix
    of joins), most drawn from users with power (alice 100, bob 100, carol 50): power-level
    changes, kicks, bans, joins, leaves, join rules, topics; timestamps from a small range, so
    ties are common. Events failing auth stay in the DAG, marked rejected."""
    rng = random.Random(seed)
    room = generate_room(version, seed, 0, mods=True)
    n = len(room.events)
    tip = f"$e{n - 1}"
    for user in USERS[1 : 1 + prefix]:
        ev = _event(version, n, [tip], [], "m.room.member", user, user, {"membership": "join"}, n)
        room.add_batch([_with_auth(room, ev)], one_by_one=True)
        tip = ev.event_id
        n += 1
    fork = tip
    for _ in range(branches):
        tip = fork
        for _ in range(changes):
            sender = rng.choice([*USERS[:3], *USERS])
            target = rng.choice(USERS)
            kind = rng.randrange(6)
            if kind == 0:
                level = rng.choice([0, 50, 75, 100])
                users = {
                    u: v for u, v in {USERS[1]: 100, USERS[2]: 50}.items() if rng.random() < 0.8
                }
                if version != "12":
                    users[USERS[0]] = 100
                if target != USERS[0] or version != "12":
                    users[target] = level
                content: dict[str, JsonValue] = {"users": dict(users)}
                if rng.random() < 0.3:
                    content["ban"] = rng.choice([50, 75])
                etype, key = "m.room.power_levels", ""
            elif kind == 1:
                etype, key = "m.room.member", target
                content = {"membership": rng.choice(["ban", "leave"])}
            elif kind == 2:
                etype, key = "m.room.member", sender
                content = {"membership": rng.choice(["join", "join", "leave"])}
            elif kind == 3:
                etype, key = "m.room.join_rules", ""
                content = {"join_rule": rng.choice(["public", "invite"])}
            else:
                etype, key, content = "m.room.topic", "", {"topic": f"t{n}"}
            ev = _event(version, n, [tip], [], etype, sender, key, content, rng.randrange(8))
            room.add_batch([_with_auth(room, ev)], one_by_one=True)
            tip = ev.event_id
            n += 1
    return room


forks = st.builds(
    generate_fork,
    version=st.sampled_from(["10", "12"]),
    seed=st.integers(0, 2**32),
    prefix=st.integers(0, 3),
    changes=st.integers(1, 12),
    branches=st.integers(2, 3),
)


@settings(max_examples=200, deadline=None)
@given(room=forks, data=st.data())
def test_resolution_equals_the_reference(room: RoomStates, data: st.DataObject) -> None:
    """v2 and v2.1 equal the spec transcribed step by step (``reference_resolve_v2``: plain
    BFS auth chains, ``check_auth`` on lists, no shortcut), on 2–4 states of a forked room
    (mostly the branch tips)."""
    tips = room.extremities()
    ids = list(room.after)
    picked = data.draw(
        st.lists(st.sampled_from(tips) | st.sampled_from(ids), min_size=2, max_size=4)
    )
    sets = [room.after[i] for i in picked]
    trusted = data.draw(st.booleans())  # well-formed sets: the same answer either way
    assert resolve_state(room.rv, sets, room.store, trusted=trusted) == reference_resolve_v2(
        room.rv, sets, room.store
    )


def _base_store(version: str = "10") -> tuple[MemoryStore, dict[StateKey, str]]:
    alice = "@alice:x"
    evs = [
        make_event("$c", room_id="!r:x", version=version, type="m.room.create", state_key="",
                   sender=alice, content={"creator": alice, "room_version": version}),
        make_event("$j", room_id="!r:x", version=version, type="m.room.member", state_key=alice,
                   sender=alice, content={"membership": "join"}, auth=["$c"], prev=["$c"]),
    ]  # fmt: skip
    store = MemoryStore()
    store.add_events(evs)
    return store, {CREATE: "$c", ("m.room.member", alice): "$j"}


def test_missing_conflicted_event_raises() -> None:
    """A conflicted event the store lacks is an EventNotFoundError."""
    store, base = _base_store()
    with pytest.raises(EventNotFoundError):
        resolve_state("10", [{**base, ("m.room.topic", ""): "$nope"}, base], store)


@pytest.mark.parametrize("bad", [[{("a",): "$x"}], [{("a", "b"): 1}], ["not a map"], "str"])
def test_malformed_state_sets_raise(bad: object) -> None:
    store, _ = _base_store()
    with pytest.raises(InvalidRequestError):
        resolve_state("10", bad, store)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [["not a map"], "str", {("a", "b"): "$x"}])
def test_trusted_state_sets_must_still_be_mappings(bad: object) -> None:
    """``trusted`` skips the entry check only: the container shapes are still checked."""
    store, _ = _base_store()
    with pytest.raises(InvalidRequestError):
        resolve_state("10", bad, store, trusted=True)  # type: ignore[arg-type]


def test_events_of_two_rooms_raise() -> None:
    store, base = _base_store()
    store.add_events([make_event("$other", room_id="!o:x", state_key="", type="m.room.topic")])
    with pytest.raises(InvalidRequestError):
        resolve_state("10", [{**base, ("m.room.topic", ""): "$other"}, base], store)


def test_missing_auth_events_give_a_defined_answer() -> None:
    """A topic whose auth events are unknown fails auth; the other one wins."""
    store, base = _base_store()
    store.add_events(
        [
            make_event("$t1", room_id="!r:x", type="m.room.topic", state_key="",
                       sender="@alice:x", auth=["$c", "$j"], origin_server_ts=5),
            make_event("$t2", room_id="!r:x", type="m.room.topic", state_key="",
                       sender="@alice:x", auth=["$gone1", "$gone2"], origin_server_ts=9),
        ]
    )  # fmt: skip
    key = ("m.room.topic", "")
    # v2 starts from the unconflicted state, which holds Alice's join: both pass; t2 is later.
    got = resolve_state("10", [{**base, key: "$t1"}, {**base, key: "$t2"}], store)
    assert got[key] == "$t2"
    # Without Alice's join in the states, the join is in the auth difference (t1's chain only):
    # replayed first, it lets t2 pass against the state although t2's own auth events are gone.
    got = resolve_state("10", [{CREATE: "$c", key: "$t1"}, {CREATE: "$c", key: "$t2"}], store)
    assert got == {CREATE: "$c", ("m.room.member", "@alice:x"): "$j", key: "$t2"}
    # With only t2 conflicted against nothing, t2 must use its own (missing) auth events: fails.
    got = resolve_state("10", [{CREATE: "$c"}, {CREATE: "$c", key: "$t2"}], store)
    assert got == {CREATE: "$c"}


@pytest.mark.parametrize(
    "content",
    [
        {"users": {"@alice:x": "lots"}},
        {"users": {"@alice:x": 2**70}},
        {"users": "nobody"},
        {"state_default": -(2**80), "users": {"@alice:x": 100}},
        {"events": [1, 2]},
    ],
)
def test_malformed_power_levels_give_a_defined_answer(content: dict[str, JsonValue]) -> None:
    """Malformed or absurd power levels never crash the resolution."""
    store, base = _base_store("5")
    pl = make_event("$pl", room_id="!r:x", version="5", type="m.room.power_levels",
                    state_key="", sender="@alice:x", content=content,
                    auth=["$c", "$j"])  # fmt: skip
    jr = make_event("$jr", room_id="!r:x", version="5", type="m.room.join_rules",
                    state_key="", sender="@alice:x", content={"join_rule": ["public"]},
                    auth=["$c", "$j"])  # fmt: skip
    store.add_events([pl, jr])
    sets = [
        {**base, ("m.room.power_levels", ""): "$pl"},
        {**base, ("m.room.join_rules", ""): "$jr"},
    ]
    got = resolve_state("5", sets, store)
    assert got[CREATE] == "$c"
    assert set(got.values()) <= {"$c", "$j", "$pl", "$jr"}


def test_auth_cycle_raises_cycle_error() -> None:
    """Forged room version 1 IDs can make an auth cycle among power events: CycleError."""
    alice = "@alice:x"
    evs = [
        make_event("$c:x", room_id="!r:x", version="2", type="m.room.create", state_key="",
                   sender=alice, content={"creator": alice}),
        make_event("$p1:x", room_id="!r:x", version="2", type="m.room.power_levels",
                   state_key="", sender=alice, auth=["$c:x", "$p2:x"]),
        make_event("$p2:x", room_id="!r:x", version="2", type="m.room.power_levels",
                   state_key="", sender=alice, auth=["$c:x", "$p1:x"]),
    ]  # fmt: skip
    store = MemoryStore()
    store.add_events(evs)
    pl = ("m.room.power_levels", "")
    with pytest.raises(CycleError):
        resolve_state("2", [{CREATE: "$c:x", pl: "$p1:x"}, {CREATE: "$c:x", pl: "$p2:x"}], store)


@pytest.mark.parametrize("version", ["1", "10", "12"])
def test_huge_conflicted_set_is_answered(version: str) -> None:
    """3,000 conflicting custom-state events (no auth path) resolve without error."""
    store, base = _base_store("10" if version != "1" else "1")
    if version == "12":
        store = MemoryStore()
        store.add_events(
            [
                make_event("$c", version="12", type="m.room.create", state_key="",
                           sender="@alice:x", content={}),
                make_event("$j", room_id="!c", version="12", type="m.room.member",
                           state_key="@alice:x", sender="@alice:x",
                           content={"membership": "join"}, prev=["$c"]),
            ]
        )  # fmt: skip
    room_id = "!c" if version == "12" else "!r:x"
    v = version if version != "12" else "12"
    evs = [
        make_event(f"$s{i}", room_id=room_id, version=v, type="org.x", state_key=str(i % 1000),
                   sender="@alice:x", auth=["$c", "$j"] if v != "12" else ["$j"],
                   origin_server_ts=i)
        for i in range(3000)
    ]  # fmt: skip
    store.add_events(evs)
    sets = [dict(base) for _ in range(3)]
    for i in range(3000):
        sets[i // 1000][("org.x", str(i % 1000))] = f"$s{i}"
    try:
        got = resolve_state(version, sets, store)
    except EventGraphError:  # pragma: no cover - a defined refusal is also acceptable
        return
    assert len([k for k in got if k[0] == "org.x"]) == 1000
