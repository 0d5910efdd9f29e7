"""The chain cover index: Synapse's worked example, the LinkMap cases, bounded links.

Vectors: ``tests/storage/test_event_chain.py`` (research/synapse.md §6.4–6.5), used as facts.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph import Event, MemoryStore, SqliteStore
from eventgraph import chain_cover as cc
from eventgraph.chain_cover import ChainCoverIndex, IndexedEvent
from eventgraph.graph import auth_chain_difference, auth_chain_ids
from eventgraph.protocols import ChainLink, ChainPosition, ChainReverseLink
from eventgraph.stores import _sqlite_chain
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


# -- the fast link reduction against the plain one ---------------------------------------------


def _plain_reaches(
    links: Mapping[int, Sequence[ChainLink]],
    source: ChainPosition,
    target: ChainPosition,
    budget: int | None,
) -> bool:
    """The reachability probe link by link (the reference): a depth-first walk that counts
    every link of every chain it pops and gives up past ``budget``."""
    if source.chain_id == target.chain_id:
        return target.sequence < source.sequence
    best = {source.chain_id: source.sequence}
    stack = [source]
    examined = 0
    while stack:
        here = stack.pop()
        for link in links.get(here.chain_id, ()):
            examined += 1
            if budget is not None and examined > budget:
                return False
            if link.origin_sequence > here.sequence:
                continue
            if link.target_chain_id == target.chain_id and link.target_sequence >= target.sequence:
                return True
            if best.get(link.target_chain_id, 0) < link.target_sequence:
                best[link.target_chain_id] = link.target_sequence
                stack.append(ChainPosition(link.target_chain_id, link.target_sequence))
    return False


class _PlainIndex(ChainCoverIndex):
    """Rule 3 as written: every other auth event probed, link by link, for every candidate."""

    def _index(self, event_id: str) -> None:
        event = self._events[event_id]
        positions = self._positions
        targets: list[str] = []
        for a in event.auth_event_ids:
            if a in positions and a not in targets and self._events[a].room_id == event.room_id:
                targets.append(a)
        chain, seq = 0, 1
        for a in targets:
            pos = positions[a]
            if (
                self._events[a].state_key == event.state_key
                and len(self._members[pos.chain_id]) == pos.sequence
            ):
                chain, seq = pos.chain_id, pos.sequence + 1
                break
        if not chain:
            chain = self._next_chain
            self._next_chain += 1
            self._members[chain] = []
        self._members[chain].append(event_id)
        positions[event_id] = ChainPosition(chain, seq)
        for a in targets:
            target = positions[a]
            if target.chain_id == chain or any(
                b != a and _plain_reaches(self._links, positions[b], target, cc.PROBE_BUDGET)
                for b in targets
            ):
                continue
            existing = self._links.setdefault(chain, [])
            if any(
                x.target_chain_id == target.chain_id
                and x.target_sequence >= target.sequence
                and x.origin_sequence <= seq
                for x in existing
            ):
                continue
            existing.append(ChainLink(seq, target.chain_id, target.sequence))
            existing.sort()
            into = self._reverse.setdefault(target.chain_id, [])
            into.append(ChainReverseLink(target.sequence, chain, seq))
            into.sort()


def _contents(index: ChainCoverIndex) -> tuple[object, ...]:
    return (
        dict(index._positions),
        {c: list(v) for c, v in index._links.items() if v},
        {c: list(v) for c, v in index._reverse.items() if v},
        dict(index._members),
    )


def _fast_and_plain(events: Sequence[IndexedEvent], order: Sequence[int]) -> None:
    """Feed both indexes the same events in ``order``; they must hold exactly the same."""
    stored: dict[str, str] = {}
    fast, plain = ChainCoverIndex(stored.get), _PlainIndex(stored.get)
    for i in order:
        stored[events[i].event_id] = events[i].room_id
        fast.add(events[i])
        plain.add(events[i])
    assert _contents(fast) == _contents(plain)
    fast.check()


def _orders(n: int, seed: int) -> list[list[int]]:
    shuffled = list(range(n))
    random.Random(seed).shuffle(shuffled)
    return [list(range(n)), list(range(n))[::-1], shuffled]


@st.composite
def _hub_rooms(draw: st.DrawFn) -> list[IndexedEvent]:
    """Rooms shaped like the ingest profile: members whose auth events are the create event,
    the current hubs (power levels, join rules, topic) and their own membership; hubs that
    change now and then, naming the power levels and a member."""
    room = "!hub:test"
    hubs = [("m.room.power_levels", ""), ("m.room.join_rules", ""), ("m.room.topic", "")]
    create = ("m.room.create", "")
    current = {create: "$create"}
    out = [IndexedEvent("$create", room, create, ())]
    for n in range(draw(st.integers(1, 80))):
        kind = draw(st.sampled_from(["member", "member", "member", "hub"]))
        if kind == "hub":
            key = draw(st.sampled_from(hubs))
            sender = ("m.room.member", f"@u{draw(st.integers(0, 3))}")
            auth = ["$create"]
            auth.extend(
                current[k] for k in (hubs[0], key, sender) if k in current and draw(st.booleans())
            )
        else:
            key = ("m.room.member", f"@u{draw(st.integers(0, 12))}")
            auth = ["$create"]
            for k in (*hubs, key):
                if k in current and draw(st.integers(0, 4)) > 0:
                    auth.append(current[k])
        event_id = f"${n}"
        out.append(IndexedEvent(event_id, room, key, tuple(auth)))
        current[key] = event_id
    return out


@pytest.mark.parametrize("budget", [0, 1, 3, 8, cc.PROBE_BUDGET])
@settings(max_examples=60, deadline=None)
@given(events=_hub_rooms(), seed=st.integers(0, 9), cache=st.sampled_from([1, 2, 1024]))
def test_fast_reduction_makes_the_plain_links_in_hub_rooms(
    budget: int, events: list[IndexedEvent], seed: int, cache: int
) -> None:
    """The skipped probes and cached walks make exactly the links of the plain double loop,
    whatever the budget (small ones run out often) and however small the walk cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cc, "PROBE_BUDGET", budget)
        mp.setattr(cc, "_WALK_CACHE_SIZE", cache)
        for order in _orders(len(events), seed):
            _fast_and_plain(events, order)


@pytest.mark.parametrize("budget", [1, 4, cc.PROBE_BUDGET])
@settings(max_examples=40, deadline=None)
@given(room_dags(state_rate=0.9, max_auths=5, max_events=30), st.integers(0, 9))
def test_fast_reduction_makes_the_plain_links_in_random_dags(
    budget: int, dag: RoomDag, seed: int
) -> None:
    """The same on random DAGs: gaps (waiting events), foreign auth events, any order."""
    events = [
        IndexedEvent(e.event_id, e.room_id, e.state_tuple, e.auth_event_ids) for e in dag.events
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cc, "PROBE_BUDGET", budget)
        for order in _orders(len(events), seed):
            _fast_and_plain(events, order)


@st.composite
def _link_maps(draw: st.DrawFn) -> dict[int, list[ChainLink]]:
    chains = draw(st.integers(2, 6))
    out: dict[int, list[ChainLink]] = {}
    for c in range(1, chains + 1):
        links = draw(
            st.lists(
                st.tuples(st.integers(1, 6), st.integers(1, chains), st.integers(1, 6)),
                max_size=8,
            )
        )
        if links:
            out[c] = sorted(ChainLink(o, t, s) for o, t, s in links if t != c)
    return out


@settings(max_examples=300, deadline=None)
@given(
    _link_maps(),
    st.tuples(st.integers(1, 6), st.integers(1, 6)),
    st.tuples(st.integers(1, 6), st.integers(1, 6)),
    st.one_of(st.none(), st.integers(0, 30)),
)
def test_probe_gives_up_where_the_link_by_link_walk_does(
    links: dict[int, list[ChainLink]],
    source: tuple[int, int],
    target: tuple[int, int],
    budget: int | None,
) -> None:
    """The probe (reading a chain's links up to its stand, counting the rest in one step,
    counting stale pops) answers as the walk that examines every link, for any budget; and a
    cached complete walk knows what it reaches."""
    index = ChainCoverIndex(lambda _: None)
    index._links = links
    src, dst = ChainPosition(*source), ChainPosition(*target)
    assert index.reaches(src, dst, budget=budget) == _plain_reaches(links, src, dst, budget)
    walk = index._walk(src.chain_id, src.sequence, 10**9)
    if src.chain_id != dst.chain_id:
        reached = walk.best.get(dst.chain_id, 0) >= dst.sequence
        assert reached == _plain_reaches(links, src, dst, None)
        assert walk.counted == sum(len(links.get(c, ())) for c in walk.popped)


def test_a_stale_pop_counts_its_links() -> None:
    """A chain pushed at a lower stand and then a higher one is popped twice; the second
    (stale) pop reads nothing new but its links count, so the budget can run out there."""
    links = {
        1: [ChainLink(1, 3, 1), ChainLink(2, 2, 1), ChainLink(3, 2, 2)],
        2: [ChainLink(1, 7, 1), ChainLink(9, 7, 2)],
        3: [ChainLink(1, 6, 1), ChainLink(1, 8, 1), ChainLink(1, 8, 2)],
    }
    index = ChainCoverIndex(lambda _: None)
    index._links = links  # pops: (2,2), (7,1), (2,1) stale, (3,1) which reaches (6,1)
    source, target = ChainPosition(1, 3), ChainPosition(6, 1)
    for budget in range(12):
        want = _plain_reaches(links, source, target, budget)
        assert index.reaches(source, target, budget=budget) == want
    assert not index.reaches(source, target, budget=7)  # 3 + 2 + 2 (stale) + 1 > 7
    assert index.reaches(source, target, budget=8)


def test_a_cached_walk_counts_the_links_its_chains_gain() -> None:
    """A cached walk that reached the target answers ``True`` only while its pops' links fit
    the budget: a chain it popped twice counts each link it gains twice."""
    links = {
        1: [ChainLink(1, 3, 1), ChainLink(2, 2, 1), ChainLink(3, 2, 2)],
        2: [ChainLink(1, 6, 1), ChainLink(7, 6, 2)],
        3: [ChainLink(1, 5, 1)],
    }
    index = ChainCoverIndex(lambda _: None)
    index._links = links  # pops: 1, (2,2), (6,1), (2,1) stale, (3,1) which reaches (5,1)
    source, target = ChainPosition(1, 3), ChainPosition(5, 1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cc, "PROBE_BUDGET", 9)
        for _ in range(3):
            want = _plain_reaches(links, source, target, 9)
            assert index._reached([(source, 1)], 0, 5, 1) == want
            assert (1, 3) in index._walks
            links[2].append(ChainLink(9 + len(links[2]), 6, len(links[2]) + 1))
            index._made += 1
        assert not want  # 3 + 3 + 3 (stale) + 1 > 9 after the first growth


def _mixed_batches(seed: int, n: int = 120, batches: int = 10) -> list[list[Event]]:
    """State and non-state events in two rooms, auth events drawn among earlier events of
    either kind and room (a message or a foreign event named as an auth event), shuffled so
    auth events often arrive later, cut into batches."""
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(n):
        room = "!a:test" if rng.random() < 0.85 else "!b:test"
        auth = rng.sample([e.event_id for e in events], min(len(events), rng.randrange(4)))
        state = rng.random() < 0.7
        events.append(
            make_event(
                f"$e{i}",
                room_id=room,
                auth=auth,
                state_key=f"k{rng.randrange(5)}" if state else None,
                depth=i + 1,
            )
        )
    rng.shuffle(events)
    size = -(-n // batches)
    return [events[i : i + size] for i in range(0, n, size)]


@pytest.mark.parametrize("seed", range(4))
def test_sqlite_cache_catches_up_with_another_connections_writes(tmp_path: Path, seed: int) -> None:
    """Two SqliteStores take turns writing one file: after its first write, each catches its
    cached index up with the other's events instead of replaying every stored event, and
    holds exactly the index a replay builds (the tables agree with it too)."""
    path = tmp_path / "two.db"
    with SqliteStore(path) as one, SqliteStore(path) as two:
        for n, batch in enumerate(_mixed_batches(seed)):
            writer = one if n % 2 else two
            writer.add_events(batch)
            cached = writer._chain._index
            assert cached is not None
            with sqlite3.connect(path) as conn:
                replayed, _ = _sqlite_chain._replay(conn, 100)
            assert _contents(cached) == _contents(replayed)
            assert cached._waiting_for == replayed._waiting_for
            assert {k: v for k, v in cached._waiters.items() if v} == {
                k: v for k, v in replayed._waiters.items() if v
            }
        one.check_invariants()
        assert one._chain.replays == two._chain.replays == 1


def test_a_link_into_an_old_position_goes_before_the_tip_links() -> None:
    """Forty chains link to the tip of a chain, then forks link to its first event: their
    reverse links go before all forty (not only among the last ones searched first)."""
    room = "!fork:test"
    events = [
        IndexedEvent("$c", room, ("m.room.create", ""), ()),
        IndexedEvent("$x1", room, ("x", ""), ("$c",)),
        IndexedEvent("$x2", room, ("x", ""), ("$c", "$x1")),
    ]
    events += [IndexedEvent(f"$m{i}", room, ("m", f"u{i}"), ("$c", "$x2")) for i in range(40)]
    events += [IndexedEvent(f"$n{i}", room, ("n", f"u{i}"), ("$c", "$x1")) for i in range(3)]
    _fast_and_plain(events, range(len(events)))
    index = ChainCoverIndex({e.event_id: room for e in events}.get)
    for e in events:
        index.add(e)
    x = index.positions(["$x1"])["$x1"].chain_id
    into = index.reverse_links({x: (0, 2)})[x]
    assert [r.target_sequence for r in into] == [1] * 3 + [2] * 40
