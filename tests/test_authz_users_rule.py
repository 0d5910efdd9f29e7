"""The power-levels users rule (RV 1–11 rules 10.6–10.7, RV 12 rules 10.7–10.8) judged from each
map's users ranked by level (``authz._ranked_users``, kept on the parsed levels): the answer and
the error must be the rule's, read user by user over every changed entry."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph.errors import AuthError
from eventgraph.events.room_versions import room_version
from eventgraph.state import authz
from eventgraph.testing import make_event

_USERS = ["@a:x", "@b:x", "@c:x", "@d:x", "@e:x"]
_LEVELS = [-1, 0, 49, 50, 51, 99, 100, 101]
_SENDER_LEVELS: list[float] = [-2, 0, 49, 50, 51, 100, 101, math.inf]

_maps = st.dictionaries(st.sampled_from(_USERS), st.sampled_from(_LEVELS), max_size=5)


def _reference(
    old: dict[str, int], new: dict[str, int], sender: str, sender_level: float
) -> str | None:
    """The rule's message for the first failing changed user (new's order, then old's), or
    ``None``: every user read, no screen."""
    for user in [*new, *(u for u in old if u not in new)]:
        old_value, new_value = old.get(user), new.get(user)
        if old_value == new_value:
            continue
        if (old_value is not None and user != sender and old_value >= sender_level) or (
            new_value is not None and new_value > sender_level
        ):
            return f"{sender} may not change the level of {user} ({old_value}→{new_value})"
    return None


@settings(max_examples=400)
@given(
    old=_maps,
    new=_maps,
    judged=st.lists(
        st.tuples(st.sampled_from(_USERS), st.sampled_from(_SENDER_LEVELS)),
        min_size=1,
        max_size=4,
    ),
    reversed_order=st.booleans(),
)
def test_users_rule_is_the_rule_read_user_by_user(
    old: dict[str, int],
    new: dict[str, int],
    judged: list[tuple[str, float]],
    reversed_order: bool,
) -> None:
    rv = room_version("11")
    create = make_event(
        "$create", version=rv, type="m.room.create", state_key="", sender="@a:x", content={}
    )
    create_info = authz._create_of(rv, create)
    current = authz._Levels(rv, {"users": old})
    changed = authz._Levels(rv, {"users": new})
    if reversed_order:  # the other way round too: the ranking kept on each serves both roles
        current, changed = changed, current
        old, new = new, old
    # Several senders against the same parsed levels: the ranking is made once and reused.
    for sender, sender_level in judged:
        event = make_event(
            "$pl",
            version=rv,
            type="m.room.power_levels",
            state_key="",
            sender=sender,
            content={"users": new},
            auth=("$create",),
        )
        expected = _reference(old, new, sender, sender_level)
        if expected is None:
            authz._check_power_levels(rv, event, create_info, current, sender_level, changed)
        else:
            with pytest.raises(AuthError) as raised:
                authz._check_power_levels(rv, event, create_info, current, sender_level, changed)
            assert raised.value.rule == "power_levels.users_change"
            assert str(raised.value) == expected
    for levels in (current, changed):
        if levels.ranked is not None:
            assert sorted(levels.ranked) == sorted(levels.users.items())
