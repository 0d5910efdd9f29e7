"""State resolution vectors transcribed as data from ``research/statres_v2_vectors.md``.

Origin: element-hq/synapse ``tests/state/test_v2.py`` (§A, §B), ``tests/state/test_v21.py``
(§C.1) and ``tests/storage/test_event_federation.py::test_conflicted_subgraph`` (§C.2), at
``a58ad44eb0``: the events, the resolutions Synapse's harness performed and the asserted
answers, recorded by running those tests. Facts only; no code of Synapse is used.

§A runs as room version 2 (v1 event format, state resolution v2, the v1 auth rules the harness
used — no rule difference between room versions 1 and 2). Every ``@name`` is
``@name:example.com`` and node ``X`` has event ID ``$X:example.com``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import pytest

from eventgraph import Event, MemoryStore, StateKey, StateResAlgorithm
from eventgraph.events.canonical_json import JsonValue
from eventgraph.events.room_versions import RoomVersion, room_version
from eventgraph.graph.auth_chain import conflicted_subgraph
from eventgraph.state.resolution import _reverse_topological_power_order, resolve_state
from eventgraph.testing import make_event

from .stateres_support import RoomStates

PL = "m.room.power_levels"
JR = "m.room.join_rules"
MEM = "m.room.member"
TOPIC = "m.room.topic"
MSG = "m.room.message"
CREATE = "m.room.create"


def u(name: str) -> str:
    return f"@{name}:example.com"


def eid(node: str) -> str:
    return f"${node}:example.com"


# (node, ts, type, sender, state_key, content, prev nodes, auth nodes)
Row = tuple[str, int, str, str, str | None, Mapping[str, JsonValue], Sequence[str], Sequence[str]]


def users(**levels: int) -> dict[str, JsonValue]:
    return {"users": {u(k): v for k, v in levels.items()}}


INITIAL: list[Row] = [
    ("CREATE", 0, CREATE, "alice", "", {"creator": u("alice")}, [], []),
    ("IMA", 1, MEM, "alice", u("alice"), {"membership": "join"}, ["CREATE"], ["CREATE"]),
    ("IPOWER", 2, PL, "alice", "", users(alice=100), ["IMA"], ["CREATE", "IMA"]),
    ("IJR", 3, JR, "alice", "", {"join_rule": "public"}, ["IPOWER"], ["CREATE", "IMA", "IPOWER"]),
    ("IMB", 4, MEM, "bob", u("bob"), {"membership": "join"}, ["IJR"], ["CREATE", "IJR", "IPOWER"]),
    ("IMC", 5, MEM, "charlie", u("charlie"), {"membership": "join"}, ["IMB"],
     ["CREATE", "IJR", "IPOWER"]),
    ("IMZ", 6, MEM, "zara", u("zara"), {"membership": "join"}, ["IMC"],
     ["CREATE", "IJR", "IPOWER"]),
    ("START", 7, MSG, "zara", None, {}, ["IMZ"], ["CREATE", "IMZ", "IPOWER"]),
]  # fmt: skip

START_STATE: dict[StateKey, str] = {
    (CREATE, ""): "CREATE",
    (MEM, u("alice")): "IMA",
    (PL, ""): "IPOWER",
    (JR, ""): "IJR",
    (MEM, u("bob")): "IMB",
    (MEM, u("charlie")): "IMC",
    (MEM, u("zara")): "IMZ",
}

A_B = users(alice=100, bob=50)
TOPIC_BASE: list[Row] = [
    ("T1", 8, TOPIC, "alice", "", {}, ["START"], ["CREATE", "IMA", "IPOWER"]),
    ("PA1", 9, PL, "alice", "", A_B, ["T1"], ["CREATE", "IMA", "IPOWER"]),
    ("PB", 10, PL, "bob", "", A_B, ["PA1"], ["CREATE", "IMB", "PA1"]),
    ("T2", 11, TOPIC, "alice", "", {}, ["PA1"], ["CREATE", "IMA", "PA1"]),
]


@attrs.frozen
class Scenario:
    """One §A scenario: its events, the harness's resolutions and the asserted event IDs."""

    rows: list[Row]
    # each: (overrides of START_STATE for input 1, for input 2, for the result)
    resolutions: list[tuple[dict[StateKey, str], dict[StateKey, str], dict[StateKey, str]]]
    expected: list[str]


SCENARIOS: dict[str, Scenario] = {
    # A.1 test_ban_vs_pl: a ban beats a concurrent power-level change by the banned user.
    "ban_vs_pl": Scenario(
        rows=[
            ("PA", 8, PL, "alice", "", A_B, ["START"], ["CREATE", "IMA", "IPOWER"]),
            ("MA", 9, MEM, "alice", u("alice"), {"membership": "join"}, ["PA"],
             ["CREATE", "IJR", "IMA", "PA"]),
            ("MB", 10, MEM, "alice", u("bob"), {"membership": "ban"}, ["MA"],
             ["CREATE", "IMB", "MA", "PA"]),
            ("PB", 11, PL, "bob", "", A_B, ["PA"], ["CREATE", "IMB", "PA"]),
            ("END", 12, MSG, "zara", None, {}, ["MB", "PB"], ["CREATE", "IMZ", "PA"]),
        ],
        resolutions=[
            (
                {(PL, ""): "PB"},
                {(MEM, u("alice")): "MA", (MEM, u("bob")): "MB", (PL, ""): "PA"},
                {(MEM, u("alice")): "MA", (MEM, u("bob")): "MB", (PL, ""): "PA"},
            )
        ],
        expected=["PA", "MA", "MB"],
    ),
    # A.2 test_join_rule_evasion, with the test's typo {"join_rules": "private"}: the room then
    # has no join_rule value, which allows no join (the "join-rule typo trap").
    "join_rule_evasion": Scenario(
        rows=[
            ("JR", 8, JR, "alice", "", {"join_rules": "private"}, ["START"],
             ["CREATE", "IMA", "IPOWER"]),
            ("ME", 9, MEM, "evelyn", u("evelyn"), {"membership": "join"}, ["START"],
             ["CREATE", "IJR", "IPOWER"]),
            ("END", 10, MSG, "zara", None, {}, ["JR", "ME"], ["CREATE", "IMZ", "IPOWER"]),
        ],
        resolutions=[({(MEM, u("evelyn")): "ME"}, {(JR, ""): "JR"}, {(JR, ""): "JR"})],
        expected=["JR"],
    ),
    # A.3 test_offtopic_pl
    "offtopic_pl": Scenario(
        rows=[
            ("PA", 8, PL, "alice", "", A_B, ["START"], ["CREATE", "IMA", "IPOWER"]),
            ("PB", 9, PL, "bob", "", users(alice=100, bob=50, charlie=50), ["PA"],
             ["CREATE", "IMB", "PA"]),
            ("PC", 10, PL, "charlie", "", users(alice=100, bob=50, charlie=0), ["PB"],
             ["CREATE", "IMC", "PB"]),
            ("END", 11, MSG, "zara", None, {}, ["PA", "PC"], ["CREATE", "IMZ", "PC"]),
        ],
        resolutions=[({(PL, ""): "PA"}, {(PL, ""): "PC"}, {(PL, ""): "PC"})],
        expected=["PC"],
    ),
    # A.4 test_topic_basic
    "topic_basic": Scenario(
        rows=[
            *TOPIC_BASE,
            ("PA2", 12, PL, "alice", "", users(alice=100, bob=0), ["T2"],
             ["CREATE", "IMA", "PA1"]),
            ("T3", 13, TOPIC, "bob", "", {}, ["PB"], ["CREATE", "IMB", "PB"]),
            ("END", 14, MSG, "zara", None, {}, ["PA2", "T3"], ["CREATE", "IMZ", "PA2"]),
        ],
        resolutions=[
            (
                {(PL, ""): "PB", (TOPIC, ""): "T3"},
                {(PL, ""): "PA2", (TOPIC, ""): "T2"},
                {(PL, ""): "PA2", (TOPIC, ""): "T2"},
            )
        ],
        expected=["PA2", "T2"],
    ),
    # A.5 test_topic_reset
    "topic_reset": Scenario(
        rows=[
            ("T1", 8, TOPIC, "alice", "", {}, ["START"], ["CREATE", "IMA", "IPOWER"]),
            ("PA", 9, PL, "alice", "", A_B, ["T1"], ["CREATE", "IMA", "IPOWER"]),
            ("T2", 10, TOPIC, "bob", "", {}, ["PA"], ["CREATE", "IMB", "PA"]),
            ("MB", 11, MEM, "alice", u("bob"), {"membership": "ban"}, ["T2"],
             ["CREATE", "IMA", "IMB", "PA"]),
            ("END", 12, MSG, "zara", None, {}, ["MB", "T1"], ["CREATE", "IMZ", "PA"]),
        ],
        resolutions=[
            (
                {(TOPIC, ""): "T1"},
                {(MEM, u("bob")): "MB", (PL, ""): "PA", (TOPIC, ""): "T2"},
                {(MEM, u("bob")): "MB", (PL, ""): "PA", (TOPIC, ""): "T1"},
            )
        ],
        expected=["T1", "MB", "PA"],
    ),
    # A.6 test_topic: two resolutions, at MZ1 and at END.
    "topic": Scenario(
        rows=[
            *TOPIC_BASE,
            ("PA2", 12, PL, "alice", "", users(alice=100, bob=0), ["T2"],
             ["CREATE", "IMA", "PA1"]),
            ("T3", 13, TOPIC, "bob", "", {}, ["PB"], ["CREATE", "IMB", "PB"]),
            ("MZ1", 14, MSG, "zara", None, {}, ["PA2", "T3"], ["CREATE", "IMZ", "PA2"]),
            ("T4", 15, TOPIC, "alice", "", {}, ["MZ1"], ["CREATE", "IMA", "PA2"]),
            ("END", 16, MSG, "zara", None, {}, ["MZ1", "T4"], ["CREATE", "IMZ", "PA2"]),
        ],
        resolutions=[
            (
                {(PL, ""): "PB", (TOPIC, ""): "T3"},
                {(PL, ""): "PA2", (TOPIC, ""): "T2"},
                {(PL, ""): "PA2", (TOPIC, ""): "T2"},
            ),
            (
                {(PL, ""): "PA2", (TOPIC, ""): "T2"},
                {(PL, ""): "PA2", (TOPIC, ""): "T4"},
                {(PL, ""): "PA2", (TOPIC, ""): "T4"},
            ),
        ],
        expected=["T4", "PA2"],
    ),
    # A.7 test_mainline_sort: T4 (mainline position of PA1) is applied before T3 (PA2) despite
    # its larger ts, so T3 wins.
    "mainline_sort": Scenario(
        rows=[
            *TOPIC_BASE,
            ("PA2", 12, PL, "alice", "",
             {"events": {PL: 100}, "users": {u("alice"): 100, u("bob"): 50}}, ["T2"],
             ["CREATE", "IMA", "PA1"]),
            ("T3", 13, TOPIC, "bob", "", {}, ["PA2"], ["CREATE", "IMB", "PA2"]),
            ("T4", 14, TOPIC, "alice", "", {}, ["PB"], ["CREATE", "IMA", "PB"]),
            ("END", 15, MSG, "zara", None, {}, ["T3", "T4"], ["CREATE", "IMZ", "PA2"]),
        ],
        resolutions=[
            (
                {(PL, ""): "PA2", (TOPIC, ""): "T3"},
                {(PL, ""): "PB", (TOPIC, ""): "T4"},
                {(PL, ""): "PA2", (TOPIC, ""): "T3"},
            )
        ],
        expected=["T3", "PA2"],
    ),
}  # fmt: skip


def build(rows: Sequence[Row], version: str | RoomVersion = "2") -> list[Event]:
    return [
        make_event(
            eid(node),
            room_id="!test:example.com",
            version=version,
            prev=[eid(p) for p in prevs],
            auth=[eid(a) for a in auths],
            depth=1,
            type=etype,
            state_key=state_key,
            sender=u(sender),
            content=content,
            origin_server_ts=ts,
        )
        for node, ts, etype, sender, state_key, content, prevs, auths in rows
    ]


def ids(state: Mapping[StateKey, str]) -> dict[StateKey, str]:
    return {k: eid(v) for k, v in state.items()}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_synapse_logged_resolutions(name: str) -> None:
    """Each resolution Synapse's harness performed gives its logged result, in either order."""
    scenario = SCENARIOS[name]
    store = MemoryStore()
    store.add_events(build(INITIAL + scenario.rows))
    for in1, in2, result in scenario.resolutions:
        s1 = ids({**START_STATE, **in1})
        s2 = ids({**START_STATE, **in2})
        expected = ids({**START_STATE, **result})
        assert resolve_state("2", [s1, s2], store) == expected
        assert resolve_state("2", [s2, s1], store) == expected


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_synapse_scenario_end_state(name: str) -> None:
    """Walking the whole DAG, the state at END differs from START exactly as asserted."""
    scenario = SCENARIOS[name]
    events = build(INITIAL + scenario.rows)
    room = RoomStates(rv=room_version("2"))
    room.add_batch(events, one_by_one=True)
    start = room.after[eid("START")]
    end = room.after[eid("END")]
    expected = {eid(n) for n in scenario.expected}
    keys = {k for k, v in end.items() if v in expected}
    got = {v for k, v in end.items() if k in keys or start.get(k) != v}
    assert got == expected


def test_lexicographical_topological_sort() -> None:
    """§B.1: pointed-to nodes first, ties by the smallest key: o, l, n, m, p."""
    edges = {"l": ["o"], "m": ["n", "o"], "n": ["o"], "o": [], "p": ["o"]}
    events = {
        n: make_event(f"${n}", auth=[f"${a}" for a in a_], state_key="") for n, a_ in edges.items()
    }
    by_id = {ev.event_id: ev for ev in events.values()}
    keys = {f"${n}": (0.0, 0, f"${n}") for n in edges}
    order = _reverse_topological_power_order(sorted(by_id), by_id, keys)
    assert order == ["$o", "$l", "$n", "$m", "$p"]


def test_event_map_none_concurrent_joins_without_power_levels() -> None:
    """§B.2: no power levels event; Bob's and Charlie's concurrent joins both survive."""
    rows: list[Row] = [
        ("CREATE", 0, CREATE, "alice", "", {"creator": u("alice")}, [], []),
        ("IMA", 1, MEM, "alice", u("alice"), {"membership": "join"}, ["CREATE"], ["CREATE"]),
        ("IJR", 2, JR, "alice", "", {"join_rule": "public"}, ["IMA"], ["CREATE", "IMA"]),
        ("IMB", 3, MEM, "bob", u("bob"), {"membership": "join"}, ["IJR"], ["CREATE", "IJR"]),
        ("IMC", 4, MEM, "charlie", u("charlie"), {"membership": "join"}, ["IJR"],
         ["CREATE", "IJR"]),
    ]  # fmt: skip
    store = MemoryStore()
    store.add_events(build(rows))
    base = {(CREATE, ""): "CREATE", (MEM, u("alice")): "IMA", (JR, ""): "IJR"}
    bob = ids({**base, (MEM, u("bob")): "IMB"})
    charlie = ids({**base, (MEM, u("charlie")): "IMC"})
    expected = ids({**base, (MEM, u("bob")): "IMB", (MEM, u("charlie")): "IMC"})
    assert resolve_state("2", [bob, charlie], store) == expected


# -- §C.1 state resolution v2.1 (room version 12) -----------------------------------------------

V12 = room_version("12")
#: Room version 12 rules with the v2.0 algorithm: the "forced to v2" contrast of §C.1.
V12_WITH_V2 = attrs.evolve(V12, identifier="12-v2-contrast", state_res=StateResAlgorithm.V2)

# (name, type, sender, state_key, content, JSON auth_events) — ts = index, room "!e1".
C11: list[tuple[str, str, str, str, dict[str, JsonValue], list[str]]] = [
    ("e1", CREATE, "alice", "", {"creator": u("alice")}, []),
    ("e2", MEM, "alice", u("alice"), {"membership": "join"}, []),
    ("e3", PL, "alice", "", {"users": {}}, ["e2"]),
    ("e4", JR, "alice", "", {"join_rule": "public"}, ["e2", "e3"]),
    ("e5", MEM, "bob", u("bob"), {"membership": "join"}, ["e3", "e4"]),
    ("e6", MEM, "charlie", u("charlie"), {"membership": "join"}, ["e3", "e4"]),
    ("e7", PL, "alice", "", {"users": {u("bob"): 50}}, ["e2", "e3"]),
    ("e8", PL, "bob", "", {"users": {u("bob"): 50, u("charlie"): 50}}, ["e5", "e7"]),
    ("e9", MEM, "evelyn", u("evelyn"), {"membership": "join"}, ["e8", "e4"]),
    ("e10", MEM, "evelyn", u("evelyn"), {"membership": "join"}, ["e3", "e4", "e9"]),
    ("e11", MEM, "zara", u("zara"), {"membership": "join"}, ["e8", "e4"]),
]
C12: list[tuple[str, str, str, str, dict[str, JsonValue], list[str]]] = [
    ("e1", CREATE, "alice", "", {"creator": u("alice")}, []),
    ("e2", MEM, "alice", u("alice"), {"membership": "join"}, []),
    ("e3", PL, "alice", "", {"users": {u("bob"): 100}}, ["e2"]),
    ("e4", JR, "alice", "", {"join_rule": "public"}, ["e2", "e3"]),
    ("e5", MEM, "bob", u("bob"), {"membership": "join"}, ["e3", "e4"]),
    ("e6", JR, "alice", "", {"join_rule": "invite"}, ["e2", "e3"]),
    ("e7", MEM, "alice", u("alice"), {"membership": "leave"}, ["e3", "e2"]),
]


def _v12_store(
    rows: Sequence[tuple[str, str, str, str, dict[str, JsonValue], list[str]]], rv: RoomVersion
) -> MemoryStore:
    events = [
        make_event(
            f"${name}",
            room_id="!e1",
            version=rv,
            prev=["$e1"] if name == "e2" else [],
            auth=[f"${a}" for a in auth],
            depth=5,
            type=etype,
            state_key=state_key,
            sender=u(sender),
            content=content,
            origin_server_ts=i + 1,
        )
        for i, (name, etype, sender, state_key, content, auth) in enumerate(rows)
    ]
    store = MemoryStore()
    store.add_events(events)
    return store


def _named(state: Mapping[StateKey, str]) -> dict[StateKey, str]:
    return {k: f"${v}" for k, v in state.items()}


C11_S1 = {
    (CREATE, ""): "e1",
    (MEM, u("alice")): "e2",
    (MEM, u("bob")): "e5",
    (MEM, u("charlie")): "e6",
    (MEM, u("evelyn")): "e10",
    (PL, ""): "e3",
    (JR, ""): "e4",
}
C11_S2 = {
    (CREATE, ""): "e1",
    (MEM, u("alice")): "e2",
    (MEM, u("bob")): "e5",
    (MEM, u("charlie")): "e6",
    (MEM, u("zara")): "e11",
    (PL, ""): "e8",
    (JR, ""): "e4",
}
C12_CORRECT = {
    (CREATE, ""): "e1",
    (MEM, u("alice")): "e7",
    (MEM, u("bob")): "e5",
    (PL, ""): "e3",
    (JR, ""): "e6",
}
C12_INCORRECT = {**C12_CORRECT, (JR, ""): "e4"}


@pytest.mark.parametrize("reverse", [False, True])
def test_v21_state_reset_replay_conflicted_subgraph(reverse: bool) -> None:
    """§C.1.1: e10 is replayed in the e3 epoch, then e9 in the e8 epoch: PL e8, Evelyn e9."""
    store = _v12_store(C11, V12)
    sets = [_named(C11_S1), _named(C11_S2)]
    if reverse:
        sets.reverse()
    expected = _named({**C11_S1, **C11_S2, (MEM, u("evelyn")): "e9"})
    assert resolve_state(V12, sets, store) == expected


def test_v20_contrast_state_reset_replay_conflicted_subgraph() -> None:
    """§C.1.1 with the v2.0 algorithm (RV 12 rules): the state reset, PL e3 and Evelyn e10."""
    store = _v12_store(C11, V12_WITH_V2)
    got = resolve_state(V12_WITH_V2, [_named(C11_S1), _named(C11_S2)], store)
    assert got == _named({**C11_S1, **C11_S2, (PL, ""): "e3", (MEM, u("evelyn")): "e10"})


@pytest.mark.parametrize("reverse", [False, True])
def test_v21_state_reset_start_empty_set(reverse: bool) -> None:
    """§C.1.2: starting from the empty state, Alice's join rules e6 survive her later leave."""
    store = _v12_store(C12, V12)
    sets = [_named(C12_CORRECT), _named(C12_INCORRECT)]
    if reverse:
        sets.reverse()
    assert resolve_state(V12, sets, store) == _named(C12_CORRECT)


def test_v20_contrast_state_reset_start_empty_set() -> None:
    """§C.1.2 with the v2.0 algorithm: both join rules fail against Alice's leave: absent."""
    store = _v12_store(C12, V12_WITH_V2)
    got = resolve_state(V12_WITH_V2, [_named(C12_CORRECT), _named(C12_INCORRECT)], store)
    expected = _named(C12_CORRECT)
    del expected[(JR, "")]
    assert got == expected


# -- §C.2 conflicted state subgraph ---------------------------------------------------------------

CHAINS: dict[str, list[str]] = {
    "A1": [], "A2": ["A1"], "A3": ["A2"],
    "B1": ["A2"], "B2": ["B1"], "B3": ["B2"],
    "C1": ["B2"], "C2": ["C1"], "C3": ["C2"],
    "D1": ["C1"], "D2": ["D1"], "D3": ["D2"],
    "E1": ["D2"], "F1": ["E1"], "F2": ["F1"], "G1": ["D3"], "G2": ["G1"],
}  # fmt: skip

# Cases of §C.2 whose "additional" events (Synapse's source-only extra parameter, not part of
# the spec's definition) are absent or change nothing: (conflicted, expected subgraph).
SUBGRAPH_CASES: dict[str, tuple[list[str], list[str]]] = {
    "basic_single_chain": (["B1", "B3"], ["B1", "B2", "B3"]),
    "basic_single_link": (["A1", "B2"], ["A1", "A2", "B1", "B2"]),
    "basic_multi_link": (["B1", "F1"], ["B1", "B2", "C1", "D1", "D2", "E1", "F1"]),
    "mixed_multi_link": (["D1", "F1", "G1"], ["D1", "D2", "D3", "E1", "F1", "G1"]),
    "empty_subgraph": (["B3", "C3"], ["B3", "C3"]),
    "empty_subgraph_single_conflict": (["C1"], ["C1"]),
}


@pytest.mark.parametrize("case", sorted(SUBGRAPH_CASES))
def test_conflicted_subgraph_cases(case: str) -> None:
    """§C.2: the subgraph the v2.1 full conflicted set takes in (links make the paths)."""
    store = MemoryStore()
    store.add_events(
        make_event(f"${n}", auth=[f"${a}" for a in auth], state_key=n, version="12")
        for n, auth in CHAINS.items()
    )
    conflicted, expected = SUBGRAPH_CASES[case]
    got = conflicted_subgraph(store, [f"${n}" for n in conflicted])
    assert got == {f"${n}" for n in expected}
