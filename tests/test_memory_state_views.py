"""MemoryStateGroups' views (module rule 5): reads of a few keys, and the lookups of a write,
made through the merged changes of a group's deltas, against plain dicts, with the views
built cold, built on a cached parent's, and dropped by a tiny cache."""

from __future__ import annotations

import random

import pytest

from eventgraph.protocols import StateGroupDraft, StateWrite
from eventgraph.stores import memory_state
from eventgraph.stores.memory_state import MemoryStateGroups

from .test_memory_state_groups import Key, grow_random_groups


@pytest.mark.parametrize(("seed", "cache"), [(0, 1), (1, 2), (2, 512)])
def test_views_read_like_plain_dicts_while_groups_grow(
    seed: int, cache: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Groups made one by one on the latest or a random group (removals, several keys,
    compactions, snapshots), with reads of few keys at new and old groups between the
    writes: every read and every group's size (the writes' lookups) match the plain dicts."""
    monkeypatch.setattr(memory_state, "_VIEW_CACHE_SIZE", cache)
    rng = random.Random(seed)
    groups = MemoryStateGroups()
    keys = [("m.room.member", f"@u{i}:x") for i in range(120)] + [("m.room.name", "")]
    states: dict[int, dict[Key, str]] = {}
    for group in grow_random_groups(
        groups,
        rng,
        keys,
        states,
        500,
        fresh=0.005,
        latest=0.85,
        sizes=(1, 1, 1, 2, 4),
        removal=0.25,
        values=7,
    ):
        for at in (group, rng.choice(list(states))):
            asked = [*rng.sample(keys, rng.choice([1, 3, 48])), ("m.room.absent", "")]
            asked.append(asked[0])
            got = groups.get_state([at], asked)[at]
            want = {k: states[at][k] for k in asked if k in states[at]}
            assert got == want
            assert list(got) == list(want)
    groups.check_invariants()  # every group's size is its plain dict's
    stats = groups.stats()
    assert stats.compactions > 0
    assert stats.snapshots > 1


def test_a_view_is_built_on_a_cached_parent_view() -> None:
    """A delta read after its parent was read gets its view from the parent's (one copy), and
    the merged changes hold the newest value of each key changed by the deltas."""
    groups = MemoryStateGroups()
    drafts = [StateGroupDraft(-1, "!r:x", None, {("a", ""): "$a"})]
    drafts += [StateGroupDraft(-n, "!r:x", -(n - 1), {("k", ""): f"$k{n}"}) for n in range(2, 6)]
    drafts.append(StateGroupDraft(-6, "!r:x", -5, {("a", ""): None}))
    ids = groups.apply(groups.prepare(StateWrite(groups=tuple(drafts)), connected=lambda _: True))
    assert groups.get_state([ids[-4]], [("k", ""), ("a", "")])[ids[-4]] == {
        ("k", ""): "$k4",
        ("a", ""): "$a",
    }
    assert groups.get_state([ids[-6]], [("k", ""), ("a", "")])[ids[-6]] == {("k", ""): "$k5"}
    merged, base = groups._view(groups._groups[ids[-6]])
    assert merged == {("k", ""): "$k5", ("a", ""): None}
    assert base is groups._groups[ids[-1]]


@pytest.mark.parametrize(("seed", "cache"), [(0, 1), (1, 2), (2, 512)])
def test_views_passed_along_a_write_of_chained_drafts(
    seed: int, cache: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes of several drafts each on the one before (a batch's state events): the view a
    draft's parent got while the write looked its keys up passes to the draft; reads of the
    last group, and of the groups between (their views built again), match plain dicts."""
    monkeypatch.setattr(memory_state, "_VIEW_CACHE_SIZE", cache)
    rng = random.Random(seed)
    groups = MemoryStateGroups()
    keys = [("m.room.member", f"@u{i}:x") for i in range(40)]
    first = dict.fromkeys(keys[:10], "$c")
    ids = groups.apply(
        groups.prepare(
            StateWrite(groups=(StateGroupDraft(-1, "!r:x", None, dict(first)),)),
            connected=lambda _e: True,
        )
    )
    states: dict[int, dict[Key, str]] = {ids[-1]: first}
    tip = ids[-1]
    for w in range(60):
        drafts = []
        plain = dict(states[tip])
        wanted: list[dict[Key, str]] = []
        for n in range(1, rng.randrange(2, 12)):
            key = rng.choice(keys)
            value = None if rng.random() < 0.2 else f"$w{w}d{n}"
            prev = tip if n == 1 else -(n - 1)
            drafts.append(StateGroupDraft(-n, "!r:x", prev, {key: value}))
            if value is None:
                plain.pop(key, None)
            else:
                plain[key] = value
            wanted.append(dict(plain))
        made = groups.apply(
            groups.prepare(StateWrite(groups=tuple(drafts)), connected=lambda _e: True)
        )
        for n, state in enumerate(wanted, start=1):
            states[made[-n]] = state
        tip = made[-len(wanted)]
        for at in (tip, rng.choice(list(states)), tip):
            asked = rng.sample(keys, 5)
            want = {k: states[at][k] for k in asked if k in states[at]}
            assert groups.get_state([at], asked)[at] == want
    groups.check_invariants()
    assert groups.stats().compactions > 0
