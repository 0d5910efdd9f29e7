"""The power-levels parser's fast path over ``users`` (authz ``_checked_user_ids``): a map whose
entries are all exact ints for user IDs checked before is taken as is; the answer must be the
entry-by-entry loop's, whatever the map holds."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventgraph.events.canonical_json import freeze_json
from eventgraph.events.room_versions import room_version
from eventgraph.state import authz


class _Str(str):
    """A ``str`` subclass: equal to a user ID, but not an exact ``str``."""


_USER_IDS = ["@a:x", "@b:y.example", "@c:z", "not-a-user", "@nocolon", ""]
_VALUES: list[Any] = [0, 50, 100, -5, True, False, 1.5, "50", None, 10**20]


def _fields(levels: authz._Levels) -> tuple[object, ...]:
    return (
        levels.users,
        list(levels.users),  # (the order too)
        levels.users_problem,
        levels.named,
        levels.events,
        levels.value_problem,
    )


def _slow(rv_id: str, content: Any) -> tuple[object, ...]:
    saved = set(authz._checked_user_ids)
    authz._checked_user_ids.clear()
    try:
        return _fields(authz._Levels(room_version(rv_id), content))
    finally:
        authz._checked_user_ids.clear()
        authz._checked_user_ids.update(saved)


@settings(max_examples=300)
@given(
    rv_id=st.sampled_from(["1", "6", "10", "11"]),
    users=st.lists(
        st.tuples(st.sampled_from(_USER_IDS), st.sampled_from(_VALUES), st.booleans()), max_size=6
    ),
    warm=st.lists(st.sampled_from(_USER_IDS), max_size=6),
)
def test_users_fast_path_is_the_loop(
    rv_id: str, users: list[tuple[str, Any, bool]], warm: list[str]
) -> None:
    rv = room_version(rv_id)
    # Some IDs checked before (a power-levels event naming them, parsed first).
    authz._Levels(rv, {"users": dict.fromkeys(warm, 0)})
    raw: dict[Any, Any] = {(_Str(u) if sub else u): v for u, v, sub in users}
    for content in (
        {"users": raw},
        {"users": raw, "ban": 50},
    ):
        expected = _slow(rv_id, content)
        assert _fields(authz._Levels(rv, content)) == expected
        assert _fields(authz._Levels(rv, content)) == expected  # (now every valid ID is known)


def test_users_fast_path_is_taken_and_bounded(monkeypatch: Any) -> None:
    """A second power-levels content naming the same users skips the per-entry check; the
    memory of checked IDs is cleared when full."""
    rv = room_version("11")
    content = freeze_json({"users": {f"@u{i}:x": 50 for i in range(20)}}, strict=True)
    authz._Levels(rv, content)
    calls = []
    original = authz._is_user_id

    def counted(value: object) -> bool:
        calls.append(value)
        return original(value)

    monkeypatch.setattr(authz, "_is_user_id", counted)
    assert authz._Levels(rv, content).users == dict(content["users"])
    assert calls == []
    monkeypatch.setattr(authz, "_CHECKED_USER_IDS_LIMIT", 5)
    authz._checked_user_ids.clear()
    authz._Levels(rv, content)
    assert len(authz._checked_user_ids) <= 5
