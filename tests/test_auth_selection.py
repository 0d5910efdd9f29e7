"""``auth_types_for_event`` against a slow reference written from the spec text.

Spec: server-server API "Auth events selection" (digest §6.1): the create event has no auth
events; every other event selects the create event (room versions 1–11; in 12 the room ID
implies it and it "MUST NOT be selected"), the power levels and the sender's membership; an
``m.room.member`` event also the target's membership, the join rules for ``join``, ``invite``
and ``knock``, the third-party invite named by ``third_party_invite.signed.token`` for an
invite, and for a ``join`` with ``join_authorised_via_users_server`` in a room version with
restricted rooms, that user's membership. The function's fast path for events other than
member events is held to the same reference.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgraph.errors import UnsupportedRoomVersionError
from eventgraph.events.auth_selection import auth_types_for_event
from eventgraph.events.canonical_json import JsonValue
from eventgraph.events.room_versions import KNOWN_ROOM_VERSIONS, room_version

Key = tuple[str, str]


def reference(
    version: str, etype: str, sender: str, state_key: str | None, content: dict[str, JsonValue]
) -> tuple[Key, ...]:
    rv = room_version(version)
    if etype == "m.room.create":
        return ()
    wanted: list[Key] = []
    if not rv.room_id_is_create_event_id:
        wanted.append(("m.room.create", ""))
    wanted += [("m.room.power_levels", ""), ("m.room.member", sender)]
    if etype == "m.room.member" and state_key is not None:
        wanted.append(("m.room.member", state_key))
        membership = content.get("membership")
        if membership in ("join", "invite", "knock"):
            wanted.append(("m.room.join_rules", ""))
        tpi = content.get("third_party_invite")
        if membership == "invite" and isinstance(tpi, dict):
            signed = tpi.get("signed")
            if isinstance(signed, dict) and isinstance(signed.get("token"), str):
                wanted.append(("m.room.third_party_invite", signed["token"]))
        via = content.get("join_authorised_via_users_server")
        if membership == "join" and rv.restricted_join_rule and isinstance(via, str):
            wanted.append(("m.room.member", via))
    return tuple(dict.fromkeys(wanted))  # each key once, first place kept


users = st.sampled_from(["@a:x", "@b:y", "@c:x"])
contents = st.fixed_dictionaries(
    {},
    optional={
        "membership": st.sampled_from(["join", "invite", "knock", "leave", "ban", 5]),
        "third_party_invite": st.one_of(
            st.just({"signed": {"token": "tok"}}), st.just({"signed": {"token": 3}}), st.none()
        ),
        "join_authorised_via_users_server": st.one_of(users, st.integers()),
    },
)


@given(
    version=st.sampled_from(sorted(KNOWN_ROOM_VERSIONS, key=int)),
    etype=st.sampled_from(
        ["m.room.create", "m.room.member", "m.room.message", "m.room.power_levels", "x.custom"]
    ),
    sender=users,
    state_key=st.one_of(st.none(), users, st.just("")),
    content=contents,
)
def test_selection_matches_the_spec_reference(
    version: str,
    etype: str,
    sender: str,
    state_key: str | None,
    content: dict[str, JsonValue],
) -> None:
    expected = reference(version, etype, sender, state_key, content)
    assert auth_types_for_event(version, etype, sender, state_key, content) == expected
    # A RoomVersion object and its identifier give the same answer.
    rv = room_version(version)
    assert auth_types_for_event(rv, etype, sender, state_key, content) == expected


def test_selection_examples() -> None:
    """Fixed cases of each branch (so a regression names itself)."""
    pl, create = ("m.room.power_levels", ""), ("m.room.create", "")
    assert auth_types_for_event("11", "m.room.create", "@a:x", "", {}) == ()
    assert auth_types_for_event("11", "m.room.message", "@a:x", None, {}) == (
        create,
        pl,
        ("m.room.member", "@a:x"),
    )
    assert auth_types_for_event("12", "m.room.topic", "@a:x", "", {}) == (
        pl,
        ("m.room.member", "@a:x"),
    )
    assert auth_types_for_event("7", "m.room.member", "@a:x", "@a:x", {"membership": "knock"}) == (
        create,
        pl,
        ("m.room.member", "@a:x"),
        ("m.room.join_rules", ""),
    )


def test_unknown_room_version_is_refused() -> None:
    with pytest.raises(UnsupportedRoomVersionError):
        auth_types_for_event("13", "m.room.message", "@a:x", None, {})
