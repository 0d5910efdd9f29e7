"""Auth chains, the auth difference and the conflicted subgraph: vectors and hand cases.

Vectors: Synapse ``tests/storage/test_event_federation.py`` auth graph (research/synapse.md §6.4)
and the chain-cover worked example of ``test_event_chain.py::test_simple`` (§6.5), used as facts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from eventgraph import MemoryStore
from eventgraph.graph import auth_chain as ac
from eventgraph.testing import make_event

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
