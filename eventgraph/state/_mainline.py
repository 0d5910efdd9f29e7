"""Mainline ordering (state resolution v2 and v2.1), over a power-levels tree kept per store.

Spec: ``rooms/fragments/v2-state-res.md`` "Mainline ordering": "Let P = P₀ be an
``m.room.power_levels`` event. Starting with i = 0, repeatedly fetch Pᵢ₊₁, the
``m.room.power_levels`` event in the ``auth_events`` of Pᵢ. Increment i and repeat until Pᵢ
has no ``m.room.power_levels`` event in its ``auth_events``. The mainline of P₀ is the list of
events [P₀, P₁, …, Pₙ], fetched in this way. Let e = e₀ be another event (possibly another
``m.room.power_levels`` event). We can compute a similar list of events [e₁, …, eₘ], where
eⱼ₊₁ is the ``m.room.power_levels`` event in the ``auth_events`` of eⱼ and where there is no
``m.room.power_levels`` event in the ``auth_events`` of eₘ. (Note that the event we started
with, e₀, is not included in this list. Also note that it may be empty, because e may not cite
an ``m.room.power_levels`` event in its ``auth_events`` at all.) Now compare these two lists as
follows. Find the smallest index j ≥ 1 for which eⱼ belongs to the mainline of P. If such a j
exists, then eⱼ = Pᵢ for some unique index i ≥ 0. Otherwise set i = ∞ … The mainline position
of e is i."

Why a tree. Every event's power-levels parent (the ``m.room.power_levels`` event among its
``auth_events``; :meth:`~eventgraph.state.resolution._Events.pl_parent`) is one event, so the
power-levels events of a room form a forest, and the mainline of P₀ is P₀'s path to its root.
Give each power-levels event its *height*: the length of its path below it (a root has
height 0). Then Pᵢ is the event at height h(P₀) − i on P₀'s path, and the first eⱼ on the
mainline is the lowest common ancestor of e₁ and P₀ in the tree (the first event of e₁'s path
that is on P₀'s). Its position is h(P₀) − h(lca), ∞ when the two paths end at different roots.
Each node also keeps a *jump* pointer to an ancestor (the skew-binary scheme of Myers' random
access lists: the jump of a node is its grandparent-by-jumps when the parent's two last jumps
are of equal length, else its parent), which depends only on its height, so a common ancestor
is found in O(log h) steps, however long the room's power-levels history is (a 10^6-event room
of the benchmarks has ~16,000 power-levels events, and its forks' events cite power levels
from anywhere in it; walking the whole mainline per resolution was 5% of ingest).

What is kept. A height is a fact of stored events once the path below the event is complete:
every auth event of every event on it is stored in the room (an auth event stored later could
change a parent) and the path has no cycle (forgeable in room versions 1–2). Such heights and
parents are kept per store (weakly referenced; cleared when they pass ``_KEPT_LIMIT`` events),
so a resolution walks only the power-levels events it has not met before. Everything else — a
path with a missing auth event, a cycle, a store that cannot be weakly referenced — is walked
for the one resolution and dropped, giving the same answers as walking everything afresh (a
test holds the kept and the fresh answers equal).

Complexity: per resolution, O(events + power-levels events not yet kept + the steps of each
path to its meeting point); store round trips: one per level of the walks of events not kept.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .resolution import _Events

__all__ = ["mainline_positions"]

_INFINITY = float("inf")
#: Kept power-levels events per store before a fresh tree is started (a bound on memory; a
#: room has one entry per power-levels event).
_KEPT_LIMIT = 1_000_000

#: A node of the tree: (parent, height, jump); a root is its own jump.
_Node = tuple["str | None", int, str]

_TREES: weakref.WeakKeyDictionary[object, dict[str, _Node]] = weakref.WeakKeyDictionary()
_TREES_LOCK = threading.Lock()


def _tree_of(store: object) -> dict[str, _Node] | None:
    """The kept tree of ``store`` (made empty when first asked); ``None`` if the store cannot
    be weakly referenced. Entries are only ever added to a tree."""
    try:
        tree = _TREES.get(store)  # (one dictionary read: safe without the lock)
        if tree is not None:
            return tree
        with _TREES_LOCK:
            tree = _TREES.get(store)
            if tree is None:
                tree = _TREES[store] = {}
            return tree
    except TypeError:
        return None


def forget(store: object) -> None:
    """Drop what is kept for ``store`` (tests compare kept and fresh answers with it)."""
    with _TREES_LOCK:
        _TREES.pop(store, None)


def mainline_positions(
    loaded: _Events, power_levels_id: str | None, event_ids: Collection[str]
) -> dict[str, float]:
    """The mainline position of each (loaded) event of ``event_ids``, based on the power levels
    event ``power_levels_id`` (the resolved one; ``None``: an empty mainline). The events'
    auth events must be loaded (state resolution loads them before ordering).

    Spec: v2 "Mainline ordering" (see the module docstring). A path that ends off the mainline,
    or a cycle, gives ∞.
    """
    events = loaded.events
    pl_parent = loaded.pl_parent
    firsts = loaded.pl_parents(map(events.__getitem__, event_ids))  # e₁ of each event
    if power_levels_id is None or power_levels_id not in events:
        return dict.fromkeys(firsts, _INFINITY)  # an empty mainline: nothing meets it
    tree = _tree_of(loaded.store)
    kept: dict[str, _Node] = {} if tree is None else tree

    # 1. The parent of every power-levels event met that is not kept, one batch per round:
    #    P₀'s path and every e₁ path, down to a kept event, a root or a cycle.
    parent: dict[str, str | None] = {}
    complete: dict[str, bool] = {}
    room_id = events[power_levels_id].room_id
    frontier: set[str] = set()
    for p in firsts.values():  # (a plain loop: cheaper than a comprehension for a few items)
        if p is not None and p not in kept:
            frontier.add(p)
    if power_levels_id not in kept:
        frontier.add(power_levels_id)
    while frontier:
        loaded.load_auth_events(frontier)
        met: set[str] = set()
        for p in frontier:
            ev = events.get(p)
            q = pl_parent(ev) if ev is not None else None
            parent[p] = q
            complete[p] = (
                ev is not None
                and ev.room_id == room_id
                and all(a in events for a in ev.auth_event_ids)
            )
            if q is not None and q not in kept and q not in parent:
                met.add(q)
        frontier = met

    # 2. The walked events become nodes (each path read back from where it ends, iteratively);
    #    those whose whole path is complete are kept for the store.
    local: dict[str, _Node] = {}
    infinite: set[str] = set()  # on or above a cycle (forgeable IDs): ∞
    keep: dict[str, _Node] = {}
    for start in parent:
        if start in local or start in infinite:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        x: str | None = start
        below: _Node | None = None
        whole = True
        cycle = False
        while x is not None:
            below = kept.get(x)
            if below is not None:
                break
            below = local.get(x)
            if below is not None:
                whole = x in keep
                break
            if x in infinite or x in on_path:
                cycle = True
                break
            on_path.add(x)
            path.append(x)
            x = parent[x]
        if cycle:
            infinite.update(path)
            continue
        nodes = (kept, local)
        for y in reversed(path):
            node = _child(y, x, below, nodes)
            local[y] = node
            whole = whole and complete[y]
            if whole:
                keep[y] = node
            x, below = y, node
    if keep and tree is not None:
        with _TREES_LOCK:
            if len(kept) + len(keep) > _KEPT_LIMIT:
                _TREES.pop(loaded.store, None)  # a fresh tree for the next resolutions
            else:
                kept.update(keep)

    def local_or_kept(x: str) -> _Node:
        node = local.get(x)
        return kept[x] if node is None else node

    # (with nothing walked, as when every power-levels event met is kept from an earlier
    # resolution, a node is the kept one: read by the dictionary's own method, no Python call)
    node_of: Callable[[str], _Node] = local_or_kept if local else kept.__getitem__

    if power_levels_id in infinite:
        # P₀'s own path has a cycle: the mainline is P₀'s path up to the repeat.
        return _positions_on_list(
            power_levels_id, firsts, lambda x: parent[x] if x in parent else kept[x][0]
        )

    # 3. Each e₁ meets the mainline at its common ancestor with P₀.
    #    P₀ lifted to the height of an e₁ lower than it has the same common ancestor with e₁
    #    (that ancestor is no higher than e₁); the lifts are kept by height for this call, as
    #    most e₁ of one resolution sit at a few heights.
    top_node = node_of(power_levels_id)
    top = top_node[1]
    lifted: dict[int, tuple[str, _Node]] = {}
    answer: dict[str, float] = {}
    result: dict[str, float] = {}
    for event_id, first in firsts.items():
        if first is None or first in infinite:
            result[event_id] = _INFINITY
            continue
        known = answer.get(first)
        if known is None:
            first_node = node_of(first)
            height = first_node[1]
            meet: int | None
            if height < top:
                low = lifted.get(height)
                if low is None:
                    low = lifted[height] = _lift(power_levels_id, top_node, height, node_of)
                if low[0] == first:  # e₁ is on the mainline (the usual case): no walk
                    meet = height
                else:
                    meet = _common_ancestor(first, first_node, low[0], low[1], node_of)
            elif first == power_levels_id:
                meet = top
            else:
                meet = _common_ancestor(first, first_node, power_levels_id, top_node, node_of)
            known = answer[first] = _INFINITY if meet is None else float(top - meet)
        result[event_id] = known
    return result


def _child(
    y: str, x: str | None, below: _Node | None, nodes: tuple[dict[str, _Node], ...]
) -> _Node:
    """The node of ``y`` whose parent is ``x`` (node ``below``; ``None``: ``y`` is a root)."""
    if x is None or below is None:
        return (None, 0, y)
    _, height, jump = below
    jump_node = nodes[0].get(jump) or nodes[1][jump]
    jump_height, jump_jump = jump_node[1], jump_node[2]
    jj_height = (nodes[0].get(jump_jump) or nodes[1][jump_jump])[1]
    if height - jump_height == jump_height - jj_height:
        return (x, height + 1, jump_jump)
    return (x, height + 1, x)


def _common_ancestor(
    a: str, a_node: _Node, b: str, b_node: _Node, node_of: Callable[[str], _Node]
) -> int | None:
    """The height of the lowest common ancestor of ``a`` and ``b`` (each an ancestor of
    itself), ``None`` if they are in different trees. O(log height) steps: jumps depend only on
    the height, so two nodes at one height jump to one height."""
    while a_node[1] > b_node[1]:
        a, a_node = _lift(a, a_node, b_node[1], node_of)
    while b_node[1] > a_node[1]:
        b, b_node = _lift(b, b_node, a_node[1], node_of)
    while a != b:
        pa, pb = a_node[0], b_node[0]
        if pa is None or pb is None:
            return None  # two roots
        ja, jb = a_node[2], b_node[2]
        if ja != jb:  # the common ancestor is below both jumps (of one height)
            a, b = ja, jb
        else:
            a, b = pa, pb
        a_node, b_node = node_of(a), node_of(b)
    return a_node[1]


def _lift(x: str, node: _Node, height: int, node_of: Callable[[str], _Node]) -> tuple[str, _Node]:
    """The ancestor of ``x`` at ``height`` (at most ``x``'s own), in O(log) steps."""
    while node[1] > height:
        jump = node[2]
        jump_node = node_of(jump)
        if jump_node[1] >= height:
            x, node = jump, jump_node
        else:
            parent = node[0]
            assert parent is not None  # (height above a root's)
            x, node = parent, node_of(parent)
    return x, node


def _positions_on_list(
    power_levels_id: str,
    firsts: Mapping[str, str | None],
    get_parent: Callable[[str], str | None],
) -> dict[str, float]:
    """Positions when P₀'s own path has a cycle (forgeable IDs): the mainline is the path up to
    the first repeat (each event once), and each e₁ path is walked until it meets it, a repeat
    or its end (∞)."""
    index: dict[str, int] = {}
    x: str | None = power_levels_id
    while x is not None and x not in index:
        index[x] = len(index)
        x = get_parent(x)
    result: dict[str, float] = {}
    for event_id, first in firsts.items():
        seen: set[str] = set()
        y: str | None = first
        position = _INFINITY
        while y is not None and y not in seen:
            if y in index:
                position = float(index[y])
                break
            seen.add(y)
            y = get_parent(y)
        result[event_id] = position
    return result
