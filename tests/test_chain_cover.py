"""The chain cover index: Synapse's worked example, the LinkMap cases, bounded links.

Vectors: ``tests/storage/test_event_chain.py`` (research/synapse.md §6.4–6.5), used as facts.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings

from eventgraph import Event, MemoryStore
from eventgraph.chain_cover import ChainCoverIndex, IndexedEvent
from eventgraph.graph import auth_chain_difference, auth_chain_ids
from eventgraph.protocols import ChainLink, ChainPosition
from eventgraph.testing import CountingStore, RoomDag, make_event, room_dags

BOB, ALICE = "@creator:test", "@alice:test"
# name: (type, state_key, sender, auth events) — test_event_chain.py::test_simple, room v6.
WORKED: dict[str, tuple[str, str, str, list[str]]] = {
    "create": ("m.room.create", "", BOB, []),
    "bob_join": ("m.room.member", BOB, BOB, ["create"]),
    "power": ("m.room.power_levels", "", BOB, ["create", "bob_join"]),
    "alice_invite": ("m.room.member", ALICE, BOB, ["create", "bob_join", "power"]),
    "alice_join": ("m.room.member", ALICE, ALICE, ["create", "alice_invite", "power"]),
    "power_2": ("m.room.power_levels", "", BOB, ["create", "bob_join", "power"]),
    "bob_join_2": ("m.room.member", BOB, BOB, ["create", "bob_join", "power"]),
    "alice_join2": ("m.room.member", ALICE, ALICE, ["create", "alice_join", "power_2"]),
    "charlie_invite": (
        "m.room.member",
        "@charlie:test",
        ALICE,
        ["create", "alice_join2", "power_2"],
    ),
}
EXPECTED_LINKS = {
    ("bob_join", "create"),
    ("power", "bob_join"),
    ("alice_invite", "power"),
    ("bob_join_2", "power"),
    ("alice_join2", "power_2"),
    ("charlie_invite", "alice_join2"),
}


def _worked_events() -> list[Event]:
    return [
        make_event(
            f"${name}",
            room_id="!room:test",
            version="6",
            type=kind,
            state_key=sk,
            sender=sender,
            auth=[f"${a}" for a in auth],
            content={"tag": name},
        )
        for name, (kind, sk, sender, auth) in WORKED.items()
    ]


def _links_by_name(store: MemoryStore) -> set[tuple[str, str]]:
    ids = [f"${n}" for n in WORKED]
    positions = store.get_chain_positions(ids)
    at = {(p.chain_id, p.sequence): i[1:] for i, p in positions.items()}
    out = set()
    for chain, links in store.get_chain_links({p.chain_id for p in positions.values()}).items():
        for link in links:
            target = (link.target_chain_id, link.target_sequence)
            out.add((at[(chain, link.origin_sequence)], at[target]))
    return out


@pytest.mark.parametrize("mode", ["one by one", "batch", "reversed"])
def test_synapse_worked_example(mode: str) -> None:
    """Exactly Synapse's links, whether persisted one by one, as a batch or out of order."""
    events = _worked_events()
    store = MemoryStore()
    if mode == "batch":
        store.add_events(events)
    else:
        for ev in events if mode == "one by one" else events[::-1]:
            store.add_events([ev])
            store.check_invariants()
    assert _links_by_name(store) == EXPECTED_LINKS
    for name in WORKED:
        chain = auth_chain_ids(store, [f"${name}"])
        assert (name == "create") == ("$create" not in chain)


def test_synapse_worked_example_chains_and_difference() -> None:
    """The chains of the doc example, and its (inclusive) difference."""
    store = MemoryStore()
    store.add_events(_worked_events())
    pos = store.get_chain_positions([f"${n}" for n in WORKED])
    chains: dict[int, list[tuple[int, str]]] = {}
    for name in WORKED:
        p = pos[f"${name}"]
        chains.setdefault(p.chain_id, []).append((p.sequence, name))
    expected = [
        ["create"],
        ["bob_join", "bob_join_2"],
        ["power", "power_2"],
        ["alice_invite", "alice_join", "alice_join2"],
        ["charlie_invite"],
    ]
    assert sorted(expected) == sorted([n for _, n in sorted(c)] for c in chains.values())
    s1 = ["$alice_invite", "$bob_join_2"]
    s2 = ["$alice_join2", "$bob_join"]
    got = auth_chain_difference(store, [s1, s2], inclusive=True)
    assert {"$bob_join_2", "$power_2", "$alice_join", "$alice_join2"} == got


def test_link_map_reachability() -> None:
    """Synapse's LinkMapTestCase facts, on the index's reachability probe."""
    index = ChainCoverIndex(lambda _: None)
    index._links = {1: [ChainLink(1, 2, 1)]}  # a hand-made link map
    reach = index.reaches
    assert reach(ChainPosition(1, 5), ChainPosition(2, 1), budget=None)
    assert not reach(ChainPosition(1, 5), ChainPosition(2, 2), budget=None)
    assert reach(ChainPosition(1, 5), ChainPosition(1, 1), budget=None)
    assert not reach(ChainPosition(1, 1), ChainPosition(1, 5), budget=None)
    index._links = {1: [ChainLink(1, 2, 1)], 2: [ChainLink(1, 3, 1)]}
    assert reach(ChainPosition(1, 4), ChainPosition(3, 1), budget=None)
    assert not reach(ChainPosition(1, 4), ChainPosition(3, 2), budget=None)
    index._links[1].append(ChainLink(5, 2, 3))
    index._links[2].append(ChainLink(2, 3, 3))
    assert reach(ChainPosition(1, 6), ChainPosition(3, 2), budget=None)
    assert not reach(ChainPosition(1, 4), ChainPosition(3, 2), budget=None)


@settings(max_examples=30)
@given(room_dags(state_rate=0.9, max_auths=5, max_events=30))
def test_links_stay_reduced_and_bounded(dag: RoomDag) -> None:
    """Never the transitive closure: at most one link per same-room auth edge, in any order."""
    for order in (None, list(range(len(dag.events)))[::-1]):
        store = MemoryStore()
        dag.store_into(store, order)
        store.check_invariants()
        ids = list(dag.event_ids)
        positions = store.get_chain_positions(ids)
        links = store.get_chain_links({p.chain_id for p in positions.values()})
        n_links = sum(len(v) for v in links.values())
        rooms = {e.event_id: e.room_id for e in dag.events}
        edges = sum(
            1
            for e in dag.events
            if e.event_id in positions
            for a in set(e.auth_event_ids)
            if rooms.get(a) == e.room_id
        )
        assert n_links <= edges


def test_late_auth_event_releases_a_cascade() -> None:
    """A missing auth event that arrives last releases every waiting descendant, iteratively."""
    n = 5000
    events = [make_event("$0", state_key="k")] + [
        make_event(f"${i}", auth=[f"${i - 1}"], state_key="k") for i in range(1, n)
    ]
    store = MemoryStore()
    store.add_events(events[1:])
    assert store.get_chain_positions([f"${n - 1}"]) == {}
    store.add_events(events[:1])
    assert store.get_chain_positions([f"${n - 1}"]) == {f"${n - 1}": ChainPosition(1, n)}
    assert len(auth_chain_ids(store, [f"${n - 1}"])) == n - 1


def test_index_round_trips_do_not_grow_with_the_chain() -> None:
    """A long single-key chain: the index answers in a constant number of round trips."""
    store = MemoryStore()
    store.add_events(
        [make_event("$0", state_key="k")]
        + [make_event(f"${i}", auth=[f"${i - 1}"], state_key="k") for i in range(1, 2000)]
    )
    counting = CountingStore(store)
    assert len(auth_chain_ids(counting, ["$1999"])) == 1999
    assert counting.statistics().round_trips <= 4


def test_index_direct() -> None:
    """Adding an ID twice is a no-op; non-state events are never indexed."""
    rooms = {"$a": "!r", "$m": "!r"}
    index = ChainCoverIndex(rooms.get)
    index.add(IndexedEvent("$a", "!r", ("t", ""), ()))
    index.add(IndexedEvent("$a", "!r", ("t", ""), ()))
    index.add(IndexedEvent("$m", "!r", None, ("$a",)))
    assert list(index.positions(["$a", "$m"])) == ["$a"]
    index.check()
    assert list(itertools.chain.from_iterable(index.members({1: (0, 9)}).values())) == ["$a"]


def test_reverse_links_of_the_worked_example() -> None:
    """Each of Synapse's links read from its target, by target range; the check rebuilds them
    from the links (a store that loses one fails ``check_invariants``)."""
    store = MemoryStore()
    store.add_events(_worked_events())
    store.check_invariants()
    ids = [f"${n}" for n in WORKED]
    positions = store.get_chain_positions(ids)
    at = {(p.chain_id, p.sequence): i[1:] for i, p in positions.items()}
    chains = {p.chain_id for p in positions.values()}
    everything = dict.fromkeys(chains, (0, 99))
    read_back = {
        (at[(r.origin_chain_id, r.origin_sequence)], at[(c, r.target_sequence)])
        for c, into in store.get_chain_reverse_links(everything).items()
        for r in into
    }
    assert read_back == EXPECTED_LINKS
    power = positions["$power"]
    into_power = store.get_chain_reverse_links({power.chain_id: (0, power.sequence)})
    origins = {at[(r.origin_chain_id, r.origin_sequence)] for r in into_power[power.chain_id]}
    assert origins == {"alice_invite", "bob_join_2"}
    whole = store.get_chain_reverse_links(everything)[power.chain_id]
    above = store.get_chain_reverse_links({power.chain_id: (power.sequence, 99)})
    assert above == {power.chain_id: tuple(r for r in whole if r.target_sequence > power.sequence)}
    assert {at[(r.origin_chain_id, r.origin_sequence)] for r in above[power.chain_id]} == {
        "alice_join2"
    }
    assert store.get_unindexed([*ids, "$unknown"]) == set()
