"""MemoryStateGroups' reads against plain dicts: some keys of a state (read with one walk down
the chain), and the groups of events stored as one ID or as a pair."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import pytest

from eventgraph.errors import StoreError
from eventgraph.protocols import EventStateGroups, StateGroupDraft, StateWrite
from eventgraph.stores.memory_state import MemoryStateGroups

Key = tuple[str, str]


def grow_random_groups(
    groups: MemoryStateGroups,
    rng: random.Random,
    keys: Sequence[Key],
    states: dict[int, dict[Key, str]],
    n: int,
    *,
    fresh: float,
    latest: float,
    sizes: Sequence[int],
    removal: float,
    values: int | None = None,
) -> Iterator[int]:
    """Write ``n`` groups one by one, each a few random changes (removals included) on no
    group (with probability ``fresh``), the latest one (up to ``latest``) or a random one;
    record each group's state as a plain dict in ``states`` and yield its ID. Values are
    ``$e<i>`` (``$e<i % values>`` when given: values repeat)."""
    for i in range(n):
        draw = rng.random()
        if not states or draw < fresh:
            parent = None
        else:
            parent = max(states) if draw < latest else rng.choice(list(states))
        base = dict(states[parent]) if parent is not None else {}
        changes: dict[Key, str | None] = {}
        value = f"$e{i if values is None else i % values}"
        for _ in range(rng.choice(sizes)):
            key = rng.choice(keys)
            changes[key] = None if base and rng.random() < removal else value
        plan = groups.prepare(
            StateWrite(groups=(StateGroupDraft(-1, "!r:x", parent, changes),)),
            connected=lambda _e: True,
        )
        group = groups.apply(plan)[-1]
        for key, change in changes.items():
            if change is None:
                base.pop(key, None)
            else:
                base[key] = change
        states[group] = base
        yield group


@pytest.mark.parametrize("seed", range(3))
def test_some_keys_read_like_a_plain_dict(seed: int) -> None:
    """Branching chains of random changes (removals included, several keys at once): every
    group answers any few keys (present, removed, never set, repeated) exactly as its plain
    dict, in the order asked."""
    rng = random.Random(seed)
    groups = MemoryStateGroups()
    keys = [("m.room.member", f"@u{i}:x") for i in range(150)] + [("m.room.name", "")]
    states: dict[int, dict[Key, str]] = {}
    # mostly the latest group: long delta chains, compactions and snapshots
    for _ in grow_random_groups(
        groups, rng, keys, states, 400, fresh=0.02, latest=0.8, sizes=(1, 1, 1, 2, 5), removal=0.2
    ):
        pass
    groups.check_invariants()
    assert groups.stats().compactions > 0
    for group, state in states.items():
        asked = [*rng.sample(keys, rng.choice([1, 2, 5, 40])), ("m.room.absent", "")]
        asked.append(asked[0])
        got = groups.get_state([group], asked)[group]
        want = {k: state[k] for k in asked if k in state}
        assert got == want
        assert list(got) == list(want)


def test_event_groups_read_back_as_written() -> None:
    """An event whose state before and after are one group and one whose differ read back the
    same pair they were written with."""
    groups = MemoryStateGroups()
    w = StateWrite(
        groups=(
            StateGroupDraft(-1, "!r:x", None, {("m.room.create", ""): "$c"}),
            StateGroupDraft(-2, "!r:x", -1, {("m.room.topic", ""): "$t"}),
        ),
        event_groups={"$t": EventStateGroups(-1, -2), "$m": EventStateGroups(-2, -2)},
    )
    ids = groups.apply(groups.prepare(w, connected=lambda _e: True))
    got = groups.get_event_state_groups(["$t", "$m", "$x"])
    assert got == {
        "$t": EventStateGroups(ids[-1], ids[-2]),
        "$m": EventStateGroups(ids[-2], ids[-2]),
    }
    groups.check_invariants()


@pytest.mark.parametrize(
    "second",
    [
        EventStateGroups(1, 2),  # another room's group
        EventStateGroups(1, True),  # equal to 1, not a group ID
        EventStateGroups(1.0, 1.0),  # type: ignore[arg-type]  # equal to 1, not a group ID
        EventStateGroups(True, True),
        EventStateGroups(3, 3),  # unknown
    ],
)
def test_an_event_after_one_with_a_checked_group_is_still_checked(
    second: EventStateGroups,
) -> None:
    """The write check skips the room lookups of an event whose one group an earlier event of
    the write was found with; an event naming that group next to another, or a value equal to
    it that is not a group ID, is still refused (and nothing is written)."""
    groups = MemoryStateGroups()
    ids = groups.apply(
        groups.prepare(
            StateWrite(
                groups=(
                    StateGroupDraft(-1, "!r:x", None, {("m.room.create", ""): "$c"}),
                    StateGroupDraft(-2, "!s:x", None, {("m.room.create", ""): "$d"}),
                )
            ),
            connected=lambda _e: True,
        )
    )
    assert ids == {-1: 1, -2: 2}
    ok = {"$a": EventStateGroups(1, 1), "$b": EventStateGroups(1, 1)}
    groups.apply(groups.prepare(StateWrite(event_groups=ok), connected=lambda _e: True))
    write = StateWrite(event_groups={**ok, "$c": second})
    with pytest.raises(StoreError, match="unknown or of two rooms"):
        groups.prepare(write, connected=lambda _e: True)
    assert groups.get_event_state_groups(["$a", "$b", "$c"]) == ok
