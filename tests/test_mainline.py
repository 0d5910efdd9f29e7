"""Mainline ordering over the kept power-levels tree (eventgraph.state._mainline), against a
transcription of the spec's lists ("Mainline ordering", v2 state resolution).

The rooms are forests of power-levels events built to be awkward: forks, several power-levels
events among one event's auth events (the first listed counts), auth events stored only later
(a parent that appears afterwards), forged cycles (room version 1–2 style free IDs), events of
another room. Positions are asked again and again while the store grows, so kept heights are
read by later resolutions; every answer must equal the spec's, and equal a fresh walk's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from eventgraph import Event, MemoryStore
from eventgraph.state import _mainline
from eventgraph.state._mainline import mainline_positions
from eventgraph.state.resolution import _Events
from eventgraph.testing import make_event

ROOM = "!r:x"
OTHER_ROOM = "!other:x"
PL = "m.room.power_levels"


def _pl(event_id: str, auth: list[str], room: str = ROOM) -> Event:
    return make_event(event_id, room_id=room, type=PL, state_key="", auth=auth, version="10")


def _message(event_id: str, auth: list[str]) -> Event:
    return make_event(event_id, room_id=ROOM, auth=auth, version="10")


def _reference(store: MemoryStore, p0: str | None, ids: list[str]) -> dict[str, float]:
    """The spec's lists, literally: P₀'s mainline and each eⱼ list, each stopped at a repeat
    (a forged cycle), over the stored events of the room; the index of the first eⱼ on the
    mainline, else ∞."""

    def get(event_id: str) -> Event | None:
        ev = store.get_events([event_id]).get(event_id)
        return ev if ev is not None and ev.room_id == ROOM else None

    def pl_parent(ev: Event) -> str | None:
        for a in ev.auth_event_ids:
            auth = get(a)
            if auth is not None and auth.type == PL and a != ev.event_id:
                return a
        return None

    mainline: list[str] = []
    x = p0 if p0 is not None and get(p0) is not None else None
    while x is not None and x not in mainline:
        mainline.append(x)
        ev = get(x)
        assert ev is not None
        x = pl_parent(ev)
    out: dict[str, float] = {}
    for event_id in ids:
        ev = get(event_id)
        assert ev is not None
        chain: list[str] = []
        y = pl_parent(ev)
        position = math.inf
        while y is not None and y not in chain:
            if y in mainline:
                position = float(mainline.index(y))
                break
            chain.append(y)
            auth_ev = get(y)
            assert auth_ev is not None
            y = pl_parent(auth_ev)
        out[event_id] = position
    return out


def _positions(store: MemoryStore, p0: str | None, ids: list[str]) -> dict[str, float]:
    loaded = _Events(store)
    loaded.room_id = ROOM
    loaded.load([*ids, *([p0] if p0 else [])])
    loaded.load_auth_events(ids)  # as state resolution has them loaded
    return mainline_positions(loaded, p0, ids)


def _room_in_stages(rng: random.Random, most: int = 60) -> list[list[Event]]:
    """Batches of events: power-levels events in a forest with the awkward cases, and messages
    citing them. Parents are mostly recent events, so paths are long (the common-ancestor
    search's jumps are exercised)."""
    n = rng.randint(5, most)
    ids = [f"$p{i}" for i in range(n)]
    stages: list[list[Event]] = [[make_event("$c", room_id=ROOM, type="m.room.create",
                                             state_key="", version="10")]]  # fmt: skip
    for i, event_id in enumerate(ids):
        auth = ["$c"]
        roll = rng.random()
        if i and roll < 0.75:
            # a parent stored before, usually a recent one
            auth.append(ids[max(0, i - 1 - int(rng.expovariate(0.3)))])
            if rng.random() < 0.2:
                auth.append(ids[rng.randrange(i)])  # a second one (the first listed counts)
        elif roll < 0.85:
            auth.append(ids[rng.randrange(n)])  # maybe later, maybe itself: cycles, gaps
        elif roll < 0.9:
            auth.append(f"$missing{i}")  # never stored
        rng.shuffle(auth) if rng.random() < 0.2 else None
        room = OTHER_ROOM if rng.random() < 0.05 else ROOM
        ev = _pl(event_id, auth, room)
        if not stages[-1] or rng.random() < 0.3:
            stages.append([])
        stages[-1].append(ev)
    messages = [_message(f"$m{i}", ["$c", rng.choice(ids)]) for i in range(rng.randint(1, 20))]
    stages.append(messages)
    return stages


@given(st.integers(0, 2**32 - 1), st.sampled_from([60, 400]))
def test_kept_and_fresh_positions_are_the_spec_lists(seed: int, most: int) -> None:
    rng = random.Random(seed)
    store = MemoryStore()
    stored: list[str] = []
    pls: list[str] = []
    for stage in _room_in_stages(rng, most):
        store.add_events(stage)
        for ev in stage:
            if ev.room_id == ROOM:
                stored.append(ev.event_id)
                if ev.type == PL:
                    pls.append(ev.event_id)
        for _ in range(4):
            if not stored:
                break
            p0 = rng.choice(pls) if pls and rng.random() < 0.9 else None
            ids = rng.sample(stored, min(len(stored), rng.randint(1, 12)))
            expected = _reference(store, p0, ids)
            assert _positions(store, p0, ids) == expected  # with what earlier asks kept
            _mainline.forget(store)
            assert _positions(store, p0, ids) == expected  # fresh


def test_long_history_is_walked_once() -> None:
    """A 3,000-deep power-levels history: after the first resolution, one more power-levels
    event costs a walk of one event, not of the whole mainline (the store counts reads)."""
    store = MemoryStore()
    events = [make_event("$c", room_id=ROOM, type="m.room.create", state_key="", version="10")]
    previous: list[str] = []
    for i in range(3000):
        events.append(_pl(f"$p{i}", ["$c", *previous]))
        previous = [f"$p{i}"]
    store.add_events(events)
    assert _positions(store, "$p2999", ["$p2999"]) == {"$p2999": 1.0}
    store.add_events([_pl("$q", ["$c", "$p2999"]), _message("$m", ["$c", "$p10"])])
    loaded = _Events(store)
    loaded.room_id = ROOM
    loaded.load(["$q", "$m"])
    loaded.load_auth_events(["$m"])
    calls: list[int] = []
    real = store.get_events

    def counting(ids: object) -> Mapping[str, Event]:
        got = real(ids)  # type: ignore[arg-type]
        calls.append(len(got))
        return got

    store.get_events = counting  # type: ignore[method-assign]
    # $m's list meets the mainline of $q at $p10: index 1 + (2999 - 10).
    assert mainline_positions(loaded, "$q", ["$m"]) == {"$m": float(1 + 2999 - 10)}
    assert sum(calls) <= 4  # $q's auth events, nothing of the kept history


def test_jumps_find_ancestors_in_logarithmic_steps() -> None:
    """On a 100,000-deep path, any ancestor and any common ancestor take O(log) steps."""
    tree: dict[str, _mainline._Node] = {}
    previous: str | None = None
    for i in range(100_000):
        below = tree[previous] if previous is not None else None
        tree[f"n{i}"] = _mainline._child(f"n{i}", previous, below, (tree, {}))
        previous = f"n{i}"
    tree["side"] = _mainline._child("side", "n5", tree["n5"], (tree, {}))
    steps = [0]

    def node_of(x: str) -> _mainline._Node:
        steps[0] += 1
        return tree[x]

    rng = random.Random(5)
    for _ in range(200):
        top = rng.randrange(100_000)
        height = rng.randrange(top + 1)
        steps[0] = 0
        x, node = _mainline._lift(f"n{top}", tree[f"n{top}"], height, node_of)
        assert (x, node[1]) == (f"n{height}", height)
        assert steps[0] <= 80
    steps[0] = 0
    meet = _mainline._common_ancestor("side", tree["side"], "n99999", tree["n99999"], node_of)
    assert meet == 5
    assert steps[0] <= 200


class _SlottedStore:
    """A store that cannot be weakly referenced: nothing is kept for it, answers are the same."""

    __slots__ = ("_inner",)

    def __init__(self, inner: MemoryStore) -> None:
        self._inner = inner

    def get_events(self, ids: object) -> Mapping[str, Event]:
        return self._inner.get_events(ids)  # type: ignore[arg-type]

    def get_facts(self, ids: object) -> Mapping[str, object]:
        return self._inner.get_facts(ids)  # type: ignore[arg-type]


def test_a_store_without_weak_references_keeps_nothing() -> None:
    rng = random.Random(3)
    inner = MemoryStore()
    for stage in _room_in_stages(rng, 60):
        inner.add_events(stage)
    store = _SlottedStore(inner)
    pls = [e for e in inner.get_events([f"$p{i}" for i in range(60)]) if e]
    ids = sorted(pls)[:10]
    assert len(ids) == 10
    for p0 in sorted(pls)[:5]:
        loaded = _Events(store)  # type: ignore[arg-type]
        loaded.room_id = ROOM
        loaded.load([*ids, p0])
        loaded.load_auth_events(ids)
        got = mainline_positions(loaded, p0, [i for i in ids if i in loaded.events])
        assert got == _reference(inner, p0, [i for i in ids if i in loaded.events])
    assert _mainline._tree_of(store) is None
