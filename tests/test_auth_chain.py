"""Auth chains, the auth difference and the conflicted subgraph: vectors and hand cases.

Vectors: Synapse ``tests/storage/test_event_federation.py`` auth graph (research/synapse.md §6.4)
and the chain-cover worked example of ``test_event_chain.py::test_simple`` (§6.5), used as facts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgraph import Event, MemoryStore
from eventgraph.graph import auth_chain as ac
from eventgraph.testing import RoomDag, make_event, room_dags

# a→e means "a lists e in auth_events" (synapse.md §6.4), with the depths given there.
SYNAPSE_AUTH_GRAPH: dict[str, tuple[list[str], int]] = {
    "a": (["e"], 7),
    "b": (["e"], 7),
    "c": (["g", "i"], 4),
    "d": (["f"], 6),
    "e": (["f"], 6),
    "f": (["g"], 5),
    "g": (["h", "i"], 3),
    "h": (["k"], 2),
    "i": (["j"], 2),
    "j": ([], 1),
    "k": ([], 1),
}


def _synapse_store(order: list[str] | None = None) -> MemoryStore:
    store = MemoryStore()
    names = order if order is not None else sorted(SYNAPSE_AUTH_GRAPH, key=lambda n: n)
    events = [
        make_event(
            f"${n}",
            auth=[f"${a}" for a in SYNAPSE_AUTH_GRAPH[n][0]],
            depth=SYNAPSE_AUTH_GRAPH[n][1],
            type="foo",
            state_key="foo",
        )
        for n in names
    ]
    for ev in events:  # one at a time, so auth events may arrive after their children
        store.add_events([ev])
        store.check_invariants()
    return store


def _ids(names: str) -> list[str]:
    return [f"${n}" for n in names]


def _names(ids: frozenset[str]) -> str:
    return "".join(sorted(i[1:] for i in ids))


AUTH_CHAIN_VECTORS = [
    ("a", False, "efghijk"),
    ("b", False, "efghijk"),
    ("ab", False, "efghijk"),
    ("bcd", False, "efghijk"),
    ("be", False, "efghijk"),
    ("c", False, "ghijk"),
    ("d", False, "fghijk"),
    ("e", False, "fghijk"),
    ("f", False, "ghijk"),
    ("g", False, "hijk"),
    ("h", False, "k"),
    ("i", False, "j"),
    ("j", False, ""),
    ("k", False, ""),
    ("hi", False, "jk"),
    ("i", True, "ij"),
]

ChainFn = Callable[..., frozenset[str]]
IMPLEMENTATIONS: list[tuple[ChainFn, ChainFn]] = [
    (ac.auth_chain_ids, ac.auth_chain_difference),
    (ac.bfs_auth_chain_ids, ac.bfs_auth_chain_difference),
]


@pytest.mark.parametrize(("given", "include_given", "expected"), AUTH_CHAIN_VECTORS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=["public", "bfs"])
@pytest.mark.parametrize("order", ["topological", "reversed"])
def test_synapse_auth_chain_vectors(
    given: str, include_given: bool, expected: str, impl: tuple[ChainFn, ChainFn], order: str
) -> None:
    """Synapse's ``test_auth_chain_ids`` vectors, with auth events stored before or after."""
    names = sorted(SYNAPSE_AUTH_GRAPH, key=lambda n: SYNAPSE_AUTH_GRAPH[n][1])
    store = _synapse_store(names if order == "topological" else names[::-1])
    assert expected == _names(impl[0](store, _ids(given), include_given=include_given))


# Synapse's assert_auth_diff_is_expected cases; Synapse counts each set's own events (inclusive).
AUTH_DIFF_VECTORS = [
    (["a", "b"], "ab"),
    (["a", "b", "c"], "abcef"),
    (["ac", "b"], "abc"),
    (["ac", "bc"], "ab"),
    (["a", "b", "d"], "abde"),
    (["a", "b", "c", "d"], "abcdef"),
    (["a", "b", "e"], "ab"),
    (["a"], ""),
]


@pytest.mark.parametrize(("sets", "expected"), AUTH_DIFF_VECTORS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=["public", "bfs"])
def test_synapse_auth_difference_vectors(
    sets: list[str], expected: str, impl: tuple[ChainFn, ChainFn]
) -> None:
    """Synapse's auth-difference vectors hold for the inclusive variant."""
    store = _synapse_store()
    assert expected == _names(impl[1](store, [_ids(s) for s in sets], inclusive=True))


# -- references from the spec text, and the index held to them ---------------------------------


def _closure_ref(events: dict[str, Event], start: str, *, inclusive: bool) -> set[str]:
    """'All of E's auth events, and the auth events of those, recursively' (same room only)."""
    out: set[str] = {start} if inclusive and start in events else set()
    todo = [start] if start in events else []
    seen: set[str] = set()
    while todo:
        here = todo.pop()
        if here in seen:
            continue
        seen.add(here)
        for a in events[here].auth_event_ids:
            if a in events and events[a].room_id == events[here].room_id:
                out.add(a)
                todo.append(a)
    return out


def ref_auth_chain(events: dict[str, Event], ids: list[str], include_given: bool) -> set[str]:
    out: set[str] = set()
    for i in ids:
        out |= _closure_ref(events, i, inclusive=False)
        if include_given and i in events:
            out.add(i)
    return out


def ref_difference(events: dict[str, Event], sets: list[list[str]], inclusive: bool) -> set[str]:
    chains = [set().union(*[_closure_ref(events, i, inclusive=inclusive) for i in s]) for s in sets]
    if len(chains) < 2:
        return set()
    return set().union(*chains) - chains[0].intersection(*chains[1:])


def ref_subgraph(events: dict[str, Event], conflicted: list[str]) -> set[str]:
    """Every event on a path of auth edges between two conflicted events, endpoints included."""
    k = [c for c in conflicted if c in events]
    down = set().union(*[_closure_ref(events, c, inclusive=True) for c in k])
    return {e for e in down if any(c in _closure_ref(events, e, inclusive=True) for c in k)}


@st.composite
def _auth_case(draw: st.DrawFn) -> tuple[RoomDag, list[int], list[list[str]]]:
    dag = draw(room_dags(state_rate=draw(st.sampled_from([0.5, 0.9])), max_auths=4))
    pool = sorted([*dag.event_ids, *dag.missing_ids, "$unknown"])
    sets = draw(st.lists(st.lists(st.sampled_from(pool), max_size=4), max_size=4))
    return dag, draw(st.permutations(range(len(dag.events)))), sets


@given(_auth_case(), st.booleans())
def test_index_and_bfs_equal_the_spec_references(
    case: tuple[RoomDag, list[int], list[list[str]]], flag: bool
) -> None:
    """On generated DAGs stored in any order, index, BFS and spec reference all agree."""
    dag, order, sets = case
    store = MemoryStore()
    dag.store_into(store, order)
    store.check_invariants()
    events = {e.event_id: e for e in dag.events}
    flat = [i for s in sets for i in s]
    expected = ref_auth_chain(events, flat, flag)
    assert expected == ac.auth_chain_ids(store, flat, include_given=flag)
    assert expected == ac.bfs_auth_chain_ids(store, flat, include_given=flag)
    expected = ref_difference(events, sets, flag)
    assert expected == ac.auth_chain_difference(store, sets, inclusive=flag)
    assert expected == ac.bfs_auth_chain_difference(store, sets, inclusive=flag)
    expected = ref_subgraph(events, flat)
    assert expected == ac.conflicted_subgraph(store, flat)
    assert expected == ac.bfs_conflicted_subgraph(store, flat)


def _ghosted_store(unindexed_roots: Collection[str]) -> MemoryStore:
    """Synapse's graph where each root also cites a never-stored event: the roots and all
    events above them stay unindexed, while every answer stays the same."""
    store = MemoryStore()
    for n in sorted(SYNAPSE_AUTH_GRAPH, key=lambda n: SYNAPSE_AUTH_GRAPH[n][1]):
        auth = [f"${a}" for a in SYNAPSE_AUTH_GRAPH[n][0]]
        if n in unindexed_roots:
            auth.append("$ghost")
        store.add_events(
            [make_event(f"${n}", auth=auth, depth=SYNAPSE_AUTH_GRAPH[n][1], state_key="foo")]
        )
    return store


def _closed_sets() -> list[frozenset[str]]:
    """Every set of events closed towards newer events (if X is in it, so is all above X)."""
    names = sorted(SYNAPSE_AUTH_GRAPH)
    above: dict[str, set[str]] = {n: set() for n in names}
    for n in names:
        for m in names:
            if n in "".join(_names(frozenset(ref_auth_chain(_SYN_EVENTS, [f"${m}"], False)))):
                above[n].add(m)
    out: set[frozenset[str]] = set()
    for mask in range(1 << len(names)):
        chosen = {names[b] for b in range(len(names)) if mask >> b & 1}
        out.add(frozenset(chosen.union(*[above[c] for c in chosen])))
    return sorted(out, key=lambda s: (len(s), sorted(s)))


_SYN_EVENTS = {
    f"${n}": make_event(f"${n}", auth=[f"${a}" for a in SYNAPSE_AUTH_GRAPH[n][0]], state_key="f")
    for n in SYNAPSE_AUTH_GRAPH
}


def test_synapse_vectors_with_partial_index() -> None:
    """Synapse's test_auth_difference_partial: every closed set of unindexed events."""
    closed = _closed_sets()
    assert len(closed) > 20
    for unindexed in closed:
        store = _ghosted_store(unindexed)
        store.check_invariants()
        positions = store.get_chain_positions(_ids("abcdefghijk"))
        assert {i[1:] for i in _ids("abcdefghijk")} - {i[1:] for i in positions} == unindexed
        for sets, expected in AUTH_DIFF_VECTORS:
            got = ac.auth_chain_difference(store, [_ids(s) for s in sets], inclusive=True)
            assert expected == _names(got), (sorted(unindexed), sets)
        for given_names, include_given, expected in AUTH_CHAIN_VECTORS:
            got = ac.auth_chain_ids(store, _ids(given_names), include_given=include_given)
            assert expected == _names(got), (sorted(unindexed), given_names)


def test_event_auth_returns_exactly_the_auth_chain() -> None:
    """Complement TestEventAuth: /event_auth is the chain of the event, nothing more
    (Dendrite #2084 returned chains of the whole state)."""
    store = _synapse_store()
    assert _names(ac.auth_chain_ids(store, ["$d"], include_given=True)) == "dfghijk"


def test_bad_input_to_auth_chains() -> None:
    """Unknown IDs, empty lists, duplicates and forged cycles give defined answers."""
    store = _synapse_store()
    for fn in (ac.auth_chain_ids, ac.bfs_auth_chain_ids):
        assert frozenset() == fn(store, [])
        assert frozenset() == fn(store, ["$nope"])
        assert _names(fn(store, ["$e", "$e", "$nope"])) == "fghijk"
    assert frozenset() == ac.auth_chain_difference(store, [])
    assert frozenset() == ac.conflicted_subgraph(store, ["$nope"])
    cyclic = MemoryStore()
    cyclic.add_events(
        [
            make_event("$x:a", version="1", auth=["$z:a"], state_key="x"),
            make_event("$y:a", version="1", auth=["$x:a"], state_key="y"),
            make_event("$z:a", version="1", auth=["$y:a"], state_key="z"),
        ]
    )
    cyclic.check_invariants()
    assert {"$x:a", "$y:a", "$z:a"} == ac.auth_chain_ids(cyclic, ["$x:a"])
    assert {"$x:a", "$y:a", "$z:a"} == ac.conflicted_subgraph(cyclic, ["$x:a"])
