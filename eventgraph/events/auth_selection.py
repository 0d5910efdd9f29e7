"""Auth events selection: which state an event's ``auth_events`` must come from.

Rules of this module (server-server API "Auth events selection"; digest §6.1):

1. ``m.room.create`` has no auth events.
2. Every other event selects, from the room state: the create event (room versions 1–11 only;
   in room version 12 the ``room_id`` names it and it "MUST NOT be selected"), the power levels,
   and the sender's membership.
3. ``m.room.member`` events also select the target's membership; for ``join``, ``invite`` and
   ``knock`` the join rules; for an ``invite`` with ``third_party_invite``, the
   ``m.room.third_party_invite`` whose state key is ``third_party_invite.signed.token``; for a
   ``join`` with ``join_authorised_via_users_server`` in a room version with restricted joins,
   that user's membership.
4. The answer is a tuple of state keys without duplicates, in the order of the rules above, so
   callers get a deterministic list. Only keys present in the state are then used.
"""

from __future__ import annotations

from collections.abc import Mapping

from .canonical_json import JsonValue
from .room_versions import RoomVersion, room_version

__all__ = ["auth_types_for_event"]

_CREATE = ("m.room.create", "")
_POWER_LEVELS = ("m.room.power_levels", "")


def auth_types_for_event(
    version: str | RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, JsonValue],
) -> tuple[tuple[str, str], ...]:
    """The state keys an event's ``auth_events`` are selected from (rules 1–4).

    Spec: server-server API, "Auth events selection".

    Complexity: O(1).

    Raises:
        UnsupportedRoomVersionError: ``version`` is not a room version eventgraph implements.

    >>> auth_types_for_event("11", "m.room.member", "@a:x", "@b:x", {"membership": "invite"})
    (('m.room.create', ''), ('m.room.power_levels', ''), ('m.room.member', '@a:x'), \
('m.room.member', '@b:x'), ('m.room.join_rules', ''))
    >>> auth_types_for_event("12", "m.room.message", "@a:x", None, {})
    (('m.room.power_levels', ''), ('m.room.member', '@a:x'))
    """
    rv = version if type(version) is RoomVersion else room_version(version)
    if event_type != "m.room.member":
        # Rules 1–2 only (most events: messages and state of other types), no list built.
        if event_type == "m.room.create":
            return ()
        if rv.room_id_is_create_event_id:
            return (_POWER_LEVELS, ("m.room.member", sender))
        return (_CREATE, _POWER_LEVELS, ("m.room.member", sender))
    keys: list[tuple[str, str]] = []
    if not rv.room_id_is_create_event_id:
        keys.append(_CREATE)
    keys.append(_POWER_LEVELS)
    keys.append(("m.room.member", sender))
    if event_type == "m.room.member" and state_key is not None:
        target = ("m.room.member", state_key)
        if target not in keys:
            keys.append(target)
        membership = content.get("membership")
        if membership in ("join", "invite", "knock"):
            keys.append(("m.room.join_rules", ""))
        if membership == "invite":
            tpi = content.get("third_party_invite")
            signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
            token = signed.get("token") if isinstance(signed, Mapping) else None
            if isinstance(token, str):
                keys.append(("m.room.third_party_invite", token))
        if membership == "join" and rv.restricted_join_rule:
            via = content.get("join_authorised_via_users_server")
            if isinstance(via, str) and ("m.room.member", via) not in keys:
                keys.append(("m.room.member", via))
    return tuple(keys)
