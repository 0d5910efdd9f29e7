"""The shortcuts of the split auth difference: walks started straight from the extras' positions
(every extra indexed) and fresh walks from several events of one chain.

Each case is checked against the breadth-first reference and the forward-only index, so a
shortcut that loses a position (e.g. keeps the lower of two events of a chain) fails here.
"""

from __future__ import annotations

import pytest

from eventgraph import MemoryStore
from eventgraph.graph import auth_chain as ac
from eventgraph.protocols import ChainPosition
from eventgraph.testing import make_event

from .test_auth_chain import _ForwardOnly  # the store's forward index reads only

# create; pl1 -> pl2 -> pl3 on one chain; a member citing pl1; topics.
_ROOM = [
    ("c", "c", []),
    ("pl1", "pl", ["c"]),
    ("pl2", "pl", ["c", "pl1"]),
    ("pl3", "pl", ["c", "pl2"]),
    ("m1", "m1", ["c", "pl1"]),
    ("ta", "t", ["c", "pl2"]),
    ("tb", "t2", ["c"]),
]


def _store() -> MemoryStore:
    store = MemoryStore()
    for name, key, auth in _ROOM:
        store.add_events([make_event(f"${name}", auth=[f"${a}" for a in auth], state_key=key)])
    store.check_invariants()
    return store


@pytest.mark.parametrize("inclusive", [False, True])
def test_fresh_walk_keeps_the_highest_position_of_each_chain(inclusive: bool) -> None:
    """Several starting events on one chain, in any order: the walk stands at the highest."""
    for order in ([(1, 3), (1, 5), (2, 1)], [(1, 5), (2, 1), (1, 3)], [(2, 1), (1, 3), (1, 5)]):
        walk = ac._Reach()
        walk.start_all([ChainPosition(c, s) for c, s in order], inclusive=inclusive)
        assert walk.stand == {1: 5, 2: 1}
        assert walk.dirty == {1, 2}
        assert walk.reach == ({1: 5, 2: 1} if inclusive else {1: 4})


@pytest.mark.parametrize("inclusive", [False, True])
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("pl1 pl3", "tb"),  # two extras of one set on one chain, the higher listed second
        ("pl3 pl1", "tb"),
        ("pl2 ta", "pl1 m1"),  # both sets with events of the pl chain
        ("pl1 pl2 pl3", "pl1"),  # an event in both extras: shared after all
    ],
)
def test_split_difference_from_positions(a: str, b: str, inclusive: bool) -> None:
    """Every extra indexed: the walks start from their positions, as the reference walks."""
    store = _store()
    shared = {"$c"}
    extras = [{f"${n}" for n in a.split()}, {f"${n}" for n in b.split()}]
    sets = [shared | x for x in extras]
    expected = ac.bfs_auth_chain_difference(store, sets, inclusive=inclusive)
    assert expected == ac.auth_chain_difference_split(store, shared, extras, inclusive=inclusive)
    assert expected == ac.auth_chain_difference(store, sets, inclusive=inclusive)
    forward = _ForwardOnly(store)
    assert expected == ac.auth_chain_difference(forward, sets, inclusive=inclusive)
