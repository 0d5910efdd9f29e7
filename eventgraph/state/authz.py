"""The authorization rules of room versions 1–12.

Rules of this module (spec: the "Authorisation rules" section of each room version page,
``content/rooms/fragments/v1-auth-rules.md`` (RV 1–2), ``v3-auth-rules.md`` (RV 3–5),
``rooms/v6.md``, ``rooms/v7.md``, ``fragments/v8-auth-rules.md`` (RV 8–9), ``rooms/v10.md``,
``rooms/v11.md``, ``rooms/v12.md``; server-server API "Definitions" and "Auth events selection";
digest §6):

1. :func:`check_auth` answers one question: is ``event`` allowed given ``auth_events``? It returns
   ``None`` or raises :class:`~eventgraph.AuthError` whose ``rule`` names the rule that failed
   (the names are listed in :data:`AUTH_RULES`). It never raises anything else for any event or
   any content, however malformed (a property test holds us to it).
2. Room-version differences are read from :class:`~eventgraph.RoomVersion` flags, never from a
   version's name.
3. The "rejected auth event" rule (RV 1–11 rule 2.3, RV 12 rule 3.3) and "an *accepted* create
   event" (RV 12 rule 2) need facts an event does not carry: the caller must pass only events
   that were not rejected. Each event of ``auth_events`` must be passed once.
4. Signatures are checked by a pluggable :class:`SignatureVerifier`. eventgraph's dependencies
   have no ed25519 implementation, so the default, :class:`SignaturePresenceVerifier`, *refuses*
   every third-party-invite signature and accepts an event as "signed by server S" when its PDU
   carries a signature from S (the cryptographic check of event signatures belongs to receipt
   check 2, which the host performs with its keys before auth).
5. Power levels and create events are read once per event object and cached (a bounded memo
   keyed by the identity of the immutable :class:`~eventgraph.Event`, holding the event so the
   identity stays unique; it never changes an answer, and it is safe to share between threads).
   The user IDs a power-levels ``users`` map held that passed the user-ID check are remembered
   (a bounded set of exact strings: the check is a function of the string alone), so a new
   power-levels event naming the same users, with integer levels, is read at C speed. Parsed
   levels keep their users ranked by level once a power-levels change is judged against them,
   so the users rule reads only the entries at or above the sender's level.
   The auth-events list is checked in one pass; only when it fails are the rules re-run one by
   one, so the error names the first failing rule in the spec's order. Room version 12 creators
   have infinite power, represented by ``math.inf``, which outranks every integer.

Decisions where the spec is silent (each follows Synapse and/or ruma, read for behaviour):

- No ``m.room.join_rules`` event: the join rule is ``invite``.
- No ``m.room.power_levels`` event: the defaults of the schema (``state_default`` 50,
  ``events_default`` 0, ``users_default`` 0, ``ban``/``kick``/``redact`` 50, ``invite`` 0); the
  creator has 100 (RV 1–11), the creators infinite power (RV 12).
- A new power-levels event any of whose level values cannot be read as a power level in its room
  version is rejected (``power_levels.invalid_value``) in every version; from RV 10 that is the
  spec's rule 9.1/9.2, before RV 10 rules 10.3–10.5 cannot compare such values (ruma rejects,
  Synapse fails on ``int()``). In power levels already in the room state an unreadable value is
  treated as absent (its default applies).
- String power levels (RV 1–9): ASCII digits with an optional sign, surrounded by any white space
  Python's ``str.strip`` removes; no limit on size except Python's 4300-digit conversion limit,
  beyond which the value is unreadable. Booleans are never power levels.
- ``join_authorised_via_users_server`` set to ``null`` or ``""`` counts as absent (Synapse); any
  other non-user-ID value fails the RV 8+ signature rule.
- RV 1–2 rule 11: a redaction without ``redacts`` has no redacted event whose domain could match,
  so it is rejected unless the sender reaches the redact level.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from operator import itemgetter
from typing import Final, NoReturn, Protocol

import attrs

from ..errors import AuthError, InternalError, InvalidRequestError
from ..events.auth_selection import auth_types_for_event
from ..events.canonical_json import JsonValue
from ..events.event import Event
from ..events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, room_version

__all__ = [
    "AUTH_RULES",
    "CREATOR_POWER_LEVEL",
    "SignaturePresenceVerifier",
    "SignatureVerifier",
    "check_auth",
    "get_power_level",
    "sender_power_level",
]

#: The power level of a room version 12 creator: above every integer (``rooms/v12.md``).
CREATOR_POWER_LEVEL: Final[float] = math.inf

#: Every ``AuthError.rule`` :func:`check_auth` can raise, with the spec rule it enforces
#: (numbering of RV 1–2 / RV 3–5 / RV 6–11 / RV 12 where they differ).
AUTH_RULES: Final[Mapping[str, str]] = {
    "create.prev_events": "create rule 1.1: the create event has prev_events",
    "create.room_id_domain": "create rule 1.2 (RV 1–11): room_id domain is not the sender's",
    "create.room_version": "create rule 1.3: content.room_version is not a known version",
    "create.creator_missing": "create rule 1.4 (RV 1–10): content has no creator",
    "create.additional_creators": "create rule 1.4 (RV 12): bad content.additional_creators",
    "room_id.create_missing": "RV 12 rule 2: room_id does not name an accepted create event",
    "auth_events.duplicate": "rule 2.1 / 3.1: two auth events for one (type, state_key)",
    "auth_events.not_selected": "rule 2.2 / 3.2: an auth event the selection would not pick",
    "auth_events.create_missing": "rule 2.4 (RV 1–11): no m.room.create among the auth events",
    "auth_events.wrong_room": "rule 2.5 / 3.5: an auth event of another room",
    "federate": "rule 3 / 4: m.federate is false and the sender is of another server",
    "aliases.no_state_key": "rule 4.1 (RV 1–5): m.room.aliases without a state key",
    "aliases.domain": "rule 4.2 (RV 1–5): m.room.aliases state key is not the sender's domain",
    "member.malformed": "member rule 1: no state_key or no content.membership",
    "member.authorising_signature": "member rule 2 (RV 8+): not signed by the authorising server",
    "member.join.sender_mismatch": "join rule 2: sender is not the state_key",
    "member.join.banned": "join rule 3: the sender is banned",
    "member.join.restricted_authoriser": "join rule 5.2 (RV 8+): authorising user can't invite",
    "member.join.join_rule": "join rules 4–7: the join rule does not let the user in",
    "member.invite.third_party.banned": "3pid invite rule 1: the target is banned",
    "member.invite.third_party.malformed": "3pid invite rules 2–3: no signed, mxid or token",
    "member.invite.third_party.mxid": "3pid invite rule 4: mxid is not the state_key",
    "member.invite.third_party.no_invite_event": "3pid invite rule 5: no matching invite event",
    "member.invite.third_party.sender": "3pid invite rule 6: sender is not the invite's sender",
    "member.invite.third_party.signature": "3pid invite rules 7–8: no valid signature",
    "member.invite.sender_not_joined": "invite rule 2: the sender is not joined",
    "member.invite.target_state": "invite rule 3: the target is joined or banned",
    "member.invite.power": "invite rules 4–5: sender below the invite level",
    "member.leave.self": "leave rule 1: the user is not invited, joined (or knocking)",
    "member.leave.sender_not_joined": "leave rule 2: the sender is not joined",
    "member.leave.banned_target": "leave rule 3: unbanning needs the ban level",
    "member.leave.power": "leave rules 4–5: below the kick level or the target's level",
    "member.ban.sender_not_joined": "ban rule 1: the sender is not joined",
    "member.ban.power": "ban rules 2–3: below the ban level or the target's level",
    "member.knock.join_rule": "knock rule 1 (RV 7+): join rule is not knock (knock_restricted)",
    "member.knock.sender_mismatch": "knock rule 2: sender is not the state_key",
    "member.knock.membership": "knock rules 3–4: the sender is banned, invited or joined",
    "member.unknown_membership": "member rule: unknown membership (knock before RV 7)",
    "sender_not_joined": "rule 6 / 5: the sender is not joined",
    "third_party_invite.power": "rule 7 / 6: sender below the invite level",
    "event.power": "rule 8 / 7: sender below the event type's required power level",
    "state_key.user": "rule 9 / 8: state key starts with '@' and is not the sender",
    "power_levels.invalid_value": "PL rule 9.1–9.2 (RV 10+) / unreadable level: bad level value",
    "power_levels.users": "PL rule 10.1 / 9.3: users is not an object of user IDs to integers",
    "power_levels.creator_in_users": "PL rule 10.4 (RV 12): a creator is listed in users",
    "power_levels.change": "PL rule 10.3 / 9.5: a default or named level beyond the sender",
    "power_levels.events_change": "PL rules 10.4–10.5: events/notifications beyond the sender",
    "power_levels.users_change": "PL rules 10.6–10.7: a user's level beyond the sender",
    "redaction.domain": "rule 11 (RV 1–2): below redact level and event ID domains differ",
}

_CREATE = "m.room.create"
_MEMBER = "m.room.member"
_PL = "m.room.power_levels"
_JR = "m.room.join_rules"
_TPI = "m.room.third_party_invite"
_CREATE_KEY = (_CREATE, "")
_PL_KEY = (_PL, "")
_JR_KEY = (_JR, "")

_JOIN = "join"
_INVITE = "invite"
_LEAVE = "leave"
_BAN = "ban"
_KNOCK = "knock"

#: The seven named levels the PL rules compare (rule 10.3 / 9.5), with their defaults.
_NAMED_DEFAULTS: Final[Mapping[str, int]] = {
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
    "ban": 50,
    "redact": 50,
    "kick": 50,
    "invite": 0,
}

_INT_STRING = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)

_CACHE_LIMIT = 4096

Level = int | float


# -- signatures -------------------------------------------------------------------------------


class SignatureVerifier(Protocol):
    """The signature checks the auth rules need (pluggable: the keys are the host's).

    Spec: RV 8+ member rule 2 ("validly signed by the homeserver of the user ID denoted by"
    ``join_authorised_via_users_server``); third-party invite rule 7.
    """

    def event_signed_by(self, event: Event, server_name: str) -> bool:
        """Whether ``event`` is validly signed by ``server_name``."""
        ...

    def third_party_invite_signed(
        self, signed: Mapping[str, JsonValue], public_keys: tuple[str, ...]
    ) -> bool:
        """Whether any signature in ``signed`` verifies with any of ``public_keys``.

        ``public_keys`` are the unpadded-base64 ed25519 keys of the ``m.room.third_party_invite``
        event (``public_key``, then each ``public_keys[i].public_key``), in that order.
        """
        ...


@attrs.frozen
class SignaturePresenceVerifier:
    """The default :class:`SignatureVerifier`: checks presence, never cryptography.

    - :meth:`event_signed_by` is true when the PDU carries at least one signature from the server
      (as Synapse's auth code does); the host verifies signatures at receipt (check 2).
    - :meth:`third_party_invite_signed` always refuses: eventgraph depends on no ed25519 library.
      Hosts that accept third-party invites pass their own verifier (e.g. built on signedjson).

    >>> SignaturePresenceVerifier().third_party_invite_signed({}, ("key",))
    False
    """

    def event_signed_by(self, event: Event, server_name: str) -> bool:
        """Whether the PDU has a non-empty ``signatures[server_name]`` object."""
        try:
            signatures = json.loads(event.pdu_json).get("signatures")
        except (ValueError, AttributeError):  # not an object: no signatures at all
            return False
        if not isinstance(signatures, dict):
            return False
        by_server = signatures.get(server_name)
        return isinstance(by_server, dict) and bool(by_server)

    def third_party_invite_signed(
        self, signed: Mapping[str, JsonValue], public_keys: tuple[str, ...]
    ) -> bool:
        """Always ``False``: no ed25519 implementation is available (module rule 4)."""
        return False


_DEFAULT_VERIFIER: Final = SignaturePresenceVerifier()


# -- reading power levels and the create event ------------------------------------------------


def _read_level(value: JsonValue, rv: RoomVersion) -> int | None:
    """A power-level value as an integer, or ``None`` if the room version can't read it."""
    cls = type(value)
    if cls is int:
        return int(value)
    if cls is str and not rv.integer_power_levels:
        # fragments/v1-stringy-power-levels.md (RV 1–9): base 10, optional sign, white space.
        text = value.strip()
        if _INT_STRING.match(text):
            try:
                return int(text)
            except ValueError:  # over Python's 4300-digit limit: unreadable (module doc)
                return None
        return None
    if cls is float and rv.float_power_levels and math.isfinite(value):
        # fragments/v1-floaty-power-levels.md (RV 1–5): truncate at the decimal point.
        return int(value)
    return None


def _is_user_id(value: object) -> bool:
    # The checks Event.from_pdu applies to ``sender`` (RV 12 rule 1.4 "same validation").
    return (
        type(value) is str
        and value.startswith("@")
        and ":" in value
        # At most 4 UTF-8 bytes per code point: up to 63 code points always fit in 255 bytes.
        and (len(value) <= 63 or len(value.encode("utf-8", "surrogatepass")) <= 255)
    )


#: Exact ``str`` user IDs that passed :func:`_is_user_id` (a pure function of the string), for
#: :class:`_Levels`' fast path over a power-levels ``users`` map; cleared when full.
_checked_user_ids: set[str] = set()
_CHECKED_USER_IDS_LIMIT = 1 << 16
_STR_TYPE = frozenset({str})
_INT_TYPE = frozenset({int})


def _remember_user_id(user: str) -> None:
    if len(_checked_user_ids) >= _CHECKED_USER_IDS_LIMIT:
        _checked_user_ids.clear()
    _checked_user_ids.add(user)


def _domain(identifier: str) -> str | None:
    parts = identifier.split(":", 1)
    return parts[1] if len(parts) == 2 else None


class _Levels:
    """The parsed content of one power-levels event (hot internal record, not public)."""

    __slots__ = (
        "events",
        "named",
        "notifications",
        "ranked",
        "resolved",
        "room_version",
        "users",
        "users_problem",
        "value_problem",
    )

    def __init__(self, rv: RoomVersion, content: Mapping[str, JsonValue]) -> None:
        self.room_version = rv
        self.value_problem: str | None = None
        self.users_problem: str | None = None
        self.named: dict[str, int] = {}
        for name in _NAMED_DEFAULTS:
            if name in content:
                level = _read_level(content[name], rv)
                if level is None:
                    self.value_problem = self.value_problem or f"'{name}' is not a power level"
                else:
                    self.named[name] = level
        self.events = self._read_map(rv, content, "events")
        # RV 6+: notifications are covered by the rules (rooms/v6.md); before, it is ignored.
        self.notifications = (
            self._read_map(rv, content, "notifications")
            if rv.limit_notifications_power_levels
            else {}
        )
        self.users: dict[str, int] = {}
        # ``users``' entries by level, highest first (made when a power-levels change is
        # first judged against these levels: :func:`_ranked_users`).
        self.ranked: list[tuple[str, int]] | None = None
        users = content.get("users")
        if users is not None or "users" in content:
            if not isinstance(users, Mapping):
                self.users_problem = "'users' is not an object"
            elif (
                _checked_user_ids.issuperset(users)
                and set(map(type, users)) <= _STR_TYPE
                and set(map(type, users.values())) <= _INT_TYPE
            ):
                # Every entry an exact int for a user ID checked before (most entries of a
                # new power-levels event were in the one it replaces): what the loop below
                # keeps, at C speed.
                self.users = dict(users)
            else:
                for user, value in users.items():
                    level = value if type(value) is int else _read_level(value, rv)
                    if level is None:
                        self.users_problem = self.users_problem or f"users[{user!r}] is not a level"
                    elif not _is_user_id(user):
                        self.users_problem = self.users_problem or f"{user!r} is not a user ID"
                    else:
                        self.users[user] = level
                        if type(user) is str:
                            _remember_user_id(user)
        # Every named level, its default where the content has none (what ``get`` answers).
        self.resolved: dict[str, int] = {**_NAMED_DEFAULTS, **self.named}

    def _read_map(
        self, rv: RoomVersion, content: Mapping[str, JsonValue], name: str
    ) -> dict[str, int]:
        out: dict[str, int] = {}
        if name not in content:
            return out
        value = content[name]
        if not isinstance(value, Mapping):
            self.value_problem = self.value_problem or f"'{name}' is not an object"
            return out
        for key, raw in value.items():
            level = _read_level(raw, rv)
            if level is None:
                self.value_problem = self.value_problem or f"{name}[{key!r}] is not a level"
            else:
                out[key] = level
        return out

    def get(self, name: str) -> int:
        return self.resolved[name]


class _Create:
    """What the rules read from a create event: creators and ``m.federate``."""

    __slots__ = (
        "bootstrap_creator",
        "creators",
        "event_id",
        "federate_false",
        "room_version",
        "sender_domain",
    )

    def __init__(self, rv: RoomVersion, create: Event) -> None:
        self.room_version = rv
        self.event_id = create.event_id
        content = create.content
        # The creator of the join bootstrap rule and of "no PL event: the creator has 100":
        # content.creator before RV 11, the create sender from RV 11 (rooms/v11.md).
        if rv.implicit_room_creator:
            self.bootstrap_creator: str | None = create.sender
        else:
            creator = content.get("creator")
            self.bootstrap_creator = creator if type(creator) is str else None
        creators = {create.sender}
        if rv.creators_have_infinite_power:
            extra = content.get("additional_creators")
            if isinstance(extra, tuple | list):
                creators.update(c for c in extra if type(c) is str)
        self.creators: frozenset[str] = frozenset(creators)
        self.federate_false = content.get("m.federate") is False
        self.sender_domain = _domain(create.sender)


# Memo caches keyed by id(event). Each entry holds the event itself, so its id can't be reused
# while the entry lives, and a hit is confirmed by identity. Bounded: cleared when full.
_levels_cache: dict[int, tuple[Event, _Levels]] = {}
_create_cache: dict[int, tuple[Event, _Create]] = {}


def _levels_of(rv: RoomVersion, event: Event) -> _Levels:
    entry = _levels_cache.get(id(event))
    if entry is not None and entry[0] is event and entry[1].room_version is rv:
        return entry[1]
    levels = _Levels(rv, event.content)
    if len(_levels_cache) >= _CACHE_LIMIT:
        _levels_cache.clear()
    _levels_cache[id(event)] = (event, levels)
    return levels


def _create_of(rv: RoomVersion, event: Event) -> _Create:
    entry = _create_cache.get(id(event))
    if entry is not None and entry[0] is event and entry[1].room_version is rv:
        return entry[1]
    info = _Create(rv, event)
    if len(_create_cache) >= _CACHE_LIMIT:
        _create_cache.clear()
    _create_cache[id(event)] = (event, info)
    return info


def _user_level(
    rv: RoomVersion, user_id: str, create: _Create | None, levels: _Levels | None
) -> Level:
    # SS "Definitions"; rooms/v12.md: creators are "infinitely high" and can't be in ``users``.
    if create is not None and rv.creators_have_infinite_power and user_id in create.creators:
        return CREATOR_POWER_LEVEL
    if levels is None:
        # No PL event: the creator has 100, everyone else 0 (digest §6.2).
        if create is not None and user_id == create.bootstrap_creator:
            return 100
        return 0
    level = levels.users.get(user_id)
    return levels.get("users_default") if level is None else level


def _named_level(levels: _Levels | None, name: str) -> int:
    return _NAMED_DEFAULTS[name] if levels is None else levels.get(name)


# -- public helpers for state resolution --------------------------------------------------------


def get_power_level(
    version: str | RoomVersion,
    user_id: str,
    create_event: Event | None,
    power_levels_event: Event | None,
) -> int | float:
    """The power level of ``user_id`` given the room's create and power-levels events.

    The number the auth rules compare: ``users[user_id]``, else ``users_default``; with no
    power-levels event the creator has 100 and everyone else 0; in room version 12 a creator
    (create ``sender`` or ``additional_creators``) has :data:`CREATOR_POWER_LEVEL` (infinity),
    which outranks every integer. Unreadable values count as absent (module doc).

    Args:
        version: the room version.
        user_id: the user.
        create_event: the room's ``m.room.create`` event, if known.
        power_levels_event: the ``m.room.power_levels`` event in force, if any.

    Returns:
        An ``int``, or ``math.inf`` for a room version 12 creator.

    Spec: server-server API "Definitions"; ``rooms/v12.md`` (room creators); state resolution's
    reverse topological power ordering uses it for each event's sender.

    Complexity: O(1) after the first call per power-levels event (its content is parsed once,
    O(size of content), and cached).

    >>> create = Event.from_trusted_pdu({"type": "m.room.create", "state_key": "",
    ...     "room_id": "!r:a", "sender": "@alice:a", "content": {}, "depth": 1,
    ...     "origin_server_ts": 0, "prev_events": [], "auth_events": []}, "11", event_id="$c")
    >>> get_power_level("11", "@alice:a", create, None)
    100
    >>> get_power_level("11", "@bob:a", create, None)
    0
    """
    rv = room_version(version)
    create = _create_of(rv, create_event) if create_event is not None else None
    levels = _levels_of(rv, power_levels_event) if power_levels_event is not None else None
    return _user_level(rv, user_id, create, levels)


def sender_power_level(
    version: str | RoomVersion, event: Event, auth_events: Iterable[Event]
) -> int | float:
    """The power level of ``event``'s sender "when looking at" its ``auth_events``.

    Picks the ``m.room.create`` and ``m.room.power_levels`` events (state key ``""``) among
    ``auth_events`` and applies :func:`get_power_level`.

    Args:
        version: the room version.
        event: the event whose sender is ranked.
        auth_events: the event's auth events (those that could be loaded; missing ones simply
            don't count). In room version 12 include the create event the room ID names.

    Returns:
        An ``int``, or ``math.inf`` for a room version 12 creator.

    Raises:
        UnsupportedRoomVersionError: unknown room version.

    Spec: state resolution v2 / v2.1, "Reverse topological power ordering" (rule 1).

    Complexity: O(len(auth_events)); power-levels content is parsed once per event.

    >>> create = Event.from_trusted_pdu({"type": "m.room.create", "state_key": "",
    ...     "sender": "@alice:a", "content": {"additional_creators": ["@bob:b"]}, "depth": 1,
    ...     "origin_server_ts": 0, "prev_events": [], "auth_events": []}, "12", event_id="$c")
    >>> msg = Event.from_trusted_pdu({"type": "m.room.message", "room_id": "!c",
    ...     "sender": "@bob:b", "content": {}, "depth": 2, "origin_server_ts": 0,
    ...     "prev_events": ["$c"], "auth_events": []}, "12", event_id="$m")
    >>> sender_power_level("12", msg, [create])
    inf
    """
    create: Event | None = None
    power_levels: Event | None = None
    for auth_event in auth_events:
        if auth_event.state_key == "":
            if auth_event.type == _PL:
                power_levels = auth_event
            elif auth_event.type == _CREATE:
                create = auth_event
    return get_power_level(version, event.sender, create, power_levels)


# -- the rules ---------------------------------------------------------------------------------


def _reject(rule: str, msg: str) -> AuthError:
    return AuthError(msg, rule=rule)


def check_auth(
    version: str | RoomVersion,
    event: Event,
    auth_events: Collection[Event],
    *,
    verifier: SignatureVerifier = _DEFAULT_VERIFIER,
) -> None:
    """Check ``event`` against the authorization rules of its room version.

    Args:
        version: the room version (must be the event's own).
        event: the event to authorise.
        auth_events: the state the event is checked against, each event once: the event's own
            auth events, or those selected (``auth_types_for_event``) from the state before it,
            or from the current state. Only events that were *not rejected* may be passed
            (module rule 3). In room version 12 the create event must be among them.
        verifier: the signature checks (module rule 4); the default refuses third-party-invite
            signatures and checks the presence of the authorising server's signature.

    Raises:
        AuthError: the event is not allowed; ``rule`` names the failed rule (:data:`AUTH_RULES`).
        InvalidRequestError: ``event`` is of another room version than ``version``.
        UnsupportedRoomVersionError: unknown room version.

    Spec: the "Authorisation rules" section of ``rooms/v1.md`` … ``rooms/v12.md``;
    server-server API "Definitions", "Auth events selection".

    Complexity: O(len(auth_events)) for every event but ``m.room.power_levels``, which costs
    O(number of entries in the old and new contents). Content of power-levels and create events
    is parsed once per event and cached. No store access.

    >>> def ev(event_id, etype, sender, content, state_key="", prevs=(), auth=()):
    ...     return Event.from_trusted_pdu({"type": etype, "state_key": state_key,
    ...         "room_id": "!r:a", "sender": sender, "content": content, "depth": 1,
    ...         "origin_server_ts": 0, "prev_events": list(prevs), "auth_events": list(auth)},
    ...         "11", event_id=event_id)
    >>> create = ev("$c", "m.room.create", "@alice:a", {})
    >>> join = ev("$j", "m.room.member", "@alice:a", {"membership": "join"}, "@alice:a",
    ...           prevs=["$c"], auth=["$c"])
    >>> check_auth("11", create, []), check_auth("11", join, [create])
    (None, None)
    >>> bob = ev("$b", "m.room.member", "@bob:a", {"membership": "join"}, "@bob:a",
    ...          prevs=["$j"], auth=["$c"])
    >>> check_auth("11", bob, [create])
    Traceback (most recent call last):
    ...
    eventgraph.errors.AuthError: @bob:a may not join: the join rule is 'invite'
    """
    rv = room_version(version)
    if event.room_version is not rv:
        msg = (
            f"event {event.event_id} is of room version {event.room_version.identifier}, "
            f"not {rv.identifier}"
        )
        raise InvalidRequestError(msg)
    etype = event.type
    if etype == _CREATE:
        _check_create(rv, event)
        return

    room_id = event.room_id
    v12 = rv.room_id_is_create_event_id
    selected = auth_types_for_event(rv, etype, event.sender, event.state_key, event.content)
    # One pass for the common case; on any doubt _diagnose re-checks rule by rule, in the
    # spec's order, so the error names the first rule that fails.
    amap: dict[tuple[str, str], Event] = {}
    for auth_event in auth_events:
        state_key = auth_event.state_key
        if state_key is None:
            _diagnose(rv, event, auth_events, selected)
        key = (auth_event.type, state_key)
        if (
            key in amap
            or auth_event.room_id != room_id
            or (key not in selected and not (v12 and key == _CREATE_KEY))
        ):
            _diagnose(rv, event, auth_events, selected)
        amap[key] = auth_event
    create_event = amap.get(_CREATE_KEY)
    if create_event is None or (
        v12 and (create_event.event_id != "$" + room_id[1:] or not event.implied_create_auth)
    ):
        _diagnose(rv, event, auth_events, selected)
        raise AssertionError("unreachable")  # pragma: no cover
    _check_selected(rv, event, amap, create_event, verifier)


def _check_selected(
    rv: RoomVersion,
    event: Event,
    amap: Mapping[tuple[str, str], Event],
    create_event: Event,
    verifier: SignatureVerifier,
    levels_of: Callable[[RoomVersion, Event], _Levels] = _levels_of,
    parsed: tuple[_Create, _Levels | None] | None = None,
) -> None:
    """The rules after the auth-events list rules, for an already validated list.

    For :func:`check_auth` and for callers that build ``amap`` themselves from a state (state
    resolution's iterative auth checks), which must guarantee what :func:`check_auth` verifies
    before calling it: ``event`` is of room version ``rv`` and not a create event; ``amap`` maps
    each auth event's own ``(type, state_key)`` to it, holds only keys the auth events selection
    picks for ``event`` (plus, in room version 12, the create event the room ID names, when
    ``event.implied_create_auth``), only events of ``event``'s room, none rejected; and
    ``create_event`` is ``amap``'s create event (RV 12: the one the room ID names).
    ``levels_of`` parses power-levels content (a caller may keep its own memo, as long as the
    answer is ``_levels_of``'s). ``parsed``: ``create_event`` and ``amap``'s power levels
    event (if any) parsed already, as ``_create_of`` and ``levels_of`` would (a caller
    checking many events against one state parses them once).
    """
    etype = event.type
    if parsed is None:
        create = _create_of(rv, create_event)
        pl_event = amap.get(_PL_KEY)
        levels = levels_of(rv, pl_event) if pl_event is not None else None
    else:
        create, levels = parsed
    sender = event.sender

    # Rule 3 / 4: m.federate.
    if create.federate_false and _domain(sender) != create.sender_domain:
        raise _reject("federate", f"the room does not federate with {sender}")

    # Rule 4 (RV 1–5): m.room.aliases.
    if rv.special_case_aliases_auth and etype == "m.room.aliases":
        if event.state_key is None:
            raise _reject("aliases.no_state_key", "m.room.aliases without a state key")
        if event.state_key != _domain(sender):
            raise _reject("aliases.domain", f"{sender} may not set aliases of {event.state_key}")
        return

    if etype == _MEMBER:
        _check_member(rv, event, amap, create, levels, verifier)
        return

    # Rule 6 / 5: the sender must be joined.
    sender_member = amap.get((_MEMBER, sender))
    if sender_member is None or sender_member.content.get("membership") != _JOIN:
        raise _reject("sender_not_joined", f"{sender} is not joined to the room")

    sender_level = _user_level(rv, sender, create, levels)

    # Rule 7 / 6: m.room.third_party_invite.
    if etype == _TPI:
        if sender_level >= _named_level(levels, "invite"):
            return
        raise _reject("third_party_invite.power", f"{sender} is below the invite level")

    # Rule 8 / 7: the event type's required power level.
    state_key = event.state_key
    required = levels.events.get(etype) if levels is not None else None
    if required is None:
        required = _named_level(levels, "events_default" if state_key is None else "state_default")
    if required > sender_level:
        raise _reject(
            "event.power", f"{sender} ({sender_level}) is below {required} needed for {etype}"
        )

    # Rule 9 / 8: state keys starting with '@' belong to that user.
    if state_key is not None and state_key.startswith("@") and state_key != sender:
        raise _reject("state_key.user", f"{sender} may not set state key {state_key}")

    # Rule 10 / 9: m.room.power_levels.
    if etype == _PL:
        _check_power_levels(rv, event, create, levels, sender_level, levels_of(rv, event))
        return

    # Rule 11 (RV 1–2): redactions by event-ID domain.
    if rv.redaction_auth_by_event_id_domain and etype == "m.room.redaction":
        if sender_level >= _named_level(levels, "redact"):
            return
        redacts = event.redacts
        redacter_domain = _domain(event.event_id)
        if redacts is None or redacter_domain is None or _domain(redacts) != redacter_domain:
            raise _reject(
                "redaction.domain",
                f"{sender} is below the redact level and {redacts} is of another server",
            )
        return
    # Otherwise, allow.


def _diagnose(
    rv: RoomVersion,
    event: Event,
    auth_events: Collection[Event],
    selected: tuple[tuple[str, str], ...],
) -> NoReturn:
    """Raise for the first failing rule about the auth events list, in the spec's order."""
    room_id = event.room_id
    if rv.room_id_is_create_event_id:
        # RV 12 rule 2: the room ID names an accepted create event ("!" for "$").
        create_id = "$" + room_id[1:]
        if not any(
            e.event_id == create_id and e.type == _CREATE and e.state_key == "" for e in auth_events
        ):
            raise _reject(
                "room_id.create_missing",
                f"the room's create event {create_id} is not among the auth events",
            )
    # Rules 2.1 / 3.1: no duplicate (type, state_key).
    seen: dict[tuple[str, str | None], Event] = {}
    for auth_event in auth_events:
        key = (auth_event.type, auth_event.state_key)
        if key in seen:
            raise _reject(
                "auth_events.duplicate",
                f"two auth events for {key}: {seen[key].event_id}, {auth_event.event_id}",
            )
        seen[key] = auth_event
    # Rules 2.2 / 3.2: only entries the auth events selection picks. In RV 12 the create event
    # "MUST NOT be selected": it may only be here because the room ID implies it.
    for key, auth_event in seen.items():
        if key not in selected and not (
            rv.room_id_is_create_event_id
            and key == _CREATE_KEY
            and auth_event.event_id == "$" + room_id[1:]
            and event.implied_create_auth
        ):
            raise _reject(
                "auth_events.not_selected",
                f"auth event {auth_event.event_id} {key} is not one the selection picks",
            )
    # Rule 2.4 (RV 1–11): an m.room.create among the entries.
    if not rv.room_id_is_create_event_id and _CREATE_KEY not in seen:
        raise _reject("auth_events.create_missing", "no m.room.create among the auth events")
    # Rules 2.5 / 3.5: every entry of this room.
    for auth_event in auth_events:
        if auth_event.room_id != room_id:
            raise _reject(
                "auth_events.wrong_room",
                f"auth event {auth_event.event_id} is of room {auth_event.room_id}",
            )
    msg = "auth events check disagreed with its diagnosis"  # pragma: no cover
    raise InternalError(msg)  # pragma: no cover


def _check_create(rv: RoomVersion, event: Event) -> None:
    # Rule 1.1: no prev_events.
    if event.prev_event_ids:
        raise _reject("create.prev_events", "the create event has prev_events")
    # Rule 1.2: RV 1–11: room_id domain is the sender's. (RV 12: "If the event has a room_id,
    # reject" — Event.from_pdu refuses such a PDU, so a v12 create Event never has one.)
    if not rv.room_id_is_create_event_id and _domain(event.room_id) != _domain(event.sender):
        raise _reject("create.room_id_domain", "the room ID's domain is not the sender's")
    content = event.content
    # Rule 1.3: a known room_version, if present.
    if "room_version" in content:
        claimed = content["room_version"]
        if type(claimed) is not str or claimed not in KNOWN_ROOM_VERSIONS:
            raise _reject("create.room_version", f"unknown room version {claimed!r}")
    # Rule 1.4 (RV 1–10): content.creator is required (removed in rooms/v11.md).
    if not rv.implicit_room_creator and "creator" not in content:
        raise _reject("create.creator_missing", "the create event has no content.creator")
    # Rule 1.4 (RV 12): additional_creators is an array of user IDs.
    if rv.creators_have_infinite_power and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, tuple | list) or not all(_is_user_id(c) for c in extra):
            raise _reject(
                "create.additional_creators", "additional_creators is not an array of user IDs"
            )


def _membership_of(amap: Mapping[tuple[str, str], Event], user: str) -> JsonValue:
    member = amap.get((_MEMBER, user))
    return None if member is None else member.content.get("membership")


def _check_member(
    rv: RoomVersion,
    event: Event,
    amap: Mapping[tuple[str, str], Event],
    create: _Create,
    levels: _Levels | None,
    verifier: SignatureVerifier,
) -> None:
    content = event.content
    target = event.state_key
    membership = content.get("membership")
    # Member rule 1: a state key and a membership.
    if target is None or "membership" not in content:
        raise _reject("member.malformed", "m.room.member without state_key or membership")
    sender = event.sender

    # Member rule 2 (RV 8+): signed by the authorising user's server.
    via = content.get("join_authorised_via_users_server")
    if rv.restricted_join_rule and via is not None and via != "":
        via_domain = _domain(via) if _is_user_id(via) else None
        if via_domain is None or not verifier.event_signed_by(event, via_domain):
            raise _reject(
                "member.authorising_signature",
                f"not signed by the server of the authorising user {via!r}",
            )

    sender_membership = _membership_of(amap, sender)

    if membership == _JOIN:
        # Join rule 1: the creator's own join right after the create event.
        prevs = event.prev_event_ids
        if len(prevs) == 1 and prevs[0] == create.event_id and target == create.bootstrap_creator:
            return
        # Join rule 2.
        if sender != target:
            raise _reject("member.join.sender_mismatch", f"{sender} may not join {target}")
        # Join rule 3.
        if sender_membership == _BAN:
            raise _reject("member.join.banned", f"{sender} is banned")
        jr_event = amap.get(_JR_KEY)
        join_rule = "invite" if jr_event is None else jr_event.content.get("join_rule")
        # Join rule 4: invite (RV 7+: or knock) — invited or joined users may join.
        if (join_rule == "invite" or (rv.knock_join_rule and join_rule == "knock")) and (
            sender_membership in (_INVITE, _JOIN)
        ):
            return
        # Join rule 5 (RV 8+): restricted (RV 10+: or knock_restricted).
        if rv.restricted_join_rule and (
            join_rule == "restricted"
            or (rv.knock_restricted_join_rule and join_rule == "knock_restricted")
        ):
            if sender_membership in (_JOIN, _INVITE):
                return
            if (
                type(via) is not str
                or _membership_of(amap, via) != _JOIN
                or _user_level(rv, via, create, levels) < _named_level(levels, "invite")
            ):
                raise _reject(
                    "member.join.restricted_authoriser",
                    f"the authorising user {via!r} is not a joined member able to invite",
                )
            return
        # Join rule 6: public.
        if join_rule == "public":
            return
        # Join rule 7.
        raise _reject(
            "member.join.join_rule", f"{sender} may not join: the join rule is {join_rule!r}"
        )

    target_membership = _membership_of(amap, target)

    if membership == _INVITE:
        if "third_party_invite" in content:
            _check_third_party_invite(event, amap, target, target_membership, verifier)
            return
        # Invite rule 2.
        if sender_membership != _JOIN:
            raise _reject("member.invite.sender_not_joined", f"{sender} is not joined")
        # Invite rule 3.
        if target_membership in (_JOIN, _BAN):
            raise _reject("member.invite.target_state", f"{target} is {target_membership}")
        # Invite rules 4–5.
        if _user_level(rv, sender, create, levels) >= _named_level(levels, "invite"):
            return
        raise _reject("member.invite.power", f"{sender} is below the invite level")

    if membership == _LEAVE:
        # Leave rule 1: leaving oneself (RV 7+: also from knock).
        if sender == target:
            if sender_membership in (_INVITE, _JOIN) or (
                rv.knock_join_rule and sender_membership == _KNOCK
            ):
                return
            raise _reject("member.leave.self", f"{sender} is {sender_membership}, cannot leave")
        # Leave rule 2.
        if sender_membership != _JOIN:
            raise _reject("member.leave.sender_not_joined", f"{sender} is not joined")
        sender_level = _user_level(rv, sender, create, levels)
        # Leave rule 3: unbanning needs the ban level.
        if target_membership == _BAN and sender_level < _named_level(levels, "ban"):
            raise _reject("member.leave.banned_target", f"{sender} may not unban {target}")
        # Leave rules 4–5.
        if (
            sender_level >= _named_level(levels, "kick")
            and _user_level(rv, target, create, levels) < sender_level
        ):
            return
        raise _reject("member.leave.power", f"{sender} may not kick {target}")

    if membership == _BAN:
        # Ban rule 1.
        if sender_membership != _JOIN:
            raise _reject("member.ban.sender_not_joined", f"{sender} is not joined")
        sender_level = _user_level(rv, sender, create, levels)
        # Ban rules 2–3.
        if (
            sender_level >= _named_level(levels, "ban")
            and _user_level(rv, target, create, levels) < sender_level
        ):
            return
        raise _reject("member.ban.power", f"{sender} may not ban {target}")

    if membership == _KNOCK and rv.knock_join_rule:
        jr_event = amap.get(_JR_KEY)
        join_rule = "invite" if jr_event is None else jr_event.content.get("join_rule")
        # Knock rule 1 (RV 10+: knock_restricted too).
        if not (
            join_rule == "knock"
            or (rv.knock_restricted_join_rule and join_rule == "knock_restricted")
        ):
            raise _reject("member.knock.join_rule", f"the join rule {join_rule!r} forbids knocks")
        # Knock rule 2.
        if sender != target:
            raise _reject("member.knock.sender_mismatch", f"{sender} may not knock for {target}")
        # Knock rules 3–4.
        if sender_membership not in (_BAN, _INVITE, _JOIN):
            return
        raise _reject("member.knock.membership", f"{sender} is {sender_membership}")

    # Otherwise the membership is unknown.
    raise _reject("member.unknown_membership", f"unknown membership {membership!r}")


def _check_third_party_invite(
    event: Event,
    amap: Mapping[tuple[str, str], Event],
    target: str,
    target_membership: JsonValue,
    verifier: SignatureVerifier,
) -> None:
    # Third-party invite rules 1–8 (member rule "invite", 1).
    if target_membership == _BAN:
        raise _reject("member.invite.third_party.banned", f"{target} is banned")
    tpi = event.content.get("third_party_invite")
    signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
    if not isinstance(signed, Mapping):
        raise _reject("member.invite.third_party.malformed", "third_party_invite has no signed")
    mxid = signed.get("mxid")
    token = signed.get("token")
    if "mxid" not in signed or "token" not in signed:
        raise _reject("member.invite.third_party.malformed", "signed lacks mxid or token")
    if mxid != target:
        raise _reject("member.invite.third_party.mxid", f"signed.mxid {mxid!r} is not {target}")
    invite = amap.get((_TPI, token)) if type(token) is str else None
    if invite is None:
        raise _reject(
            "member.invite.third_party.no_invite_event", f"no m.room.third_party_invite {token!r}"
        )
    if invite.sender != event.sender:
        raise _reject(
            "member.invite.third_party.sender", f"{event.sender} did not send invite {token!r}"
        )
    keys: list[str] = []
    public_key = invite.content.get("public_key")
    if type(public_key) is str:
        keys.append(public_key)
    public_keys = invite.content.get("public_keys")
    if isinstance(public_keys, tuple | list):
        for entry in public_keys:
            key = entry.get("public_key") if isinstance(entry, Mapping) else None
            if type(key) is str:
                keys.append(key)
    if keys and verifier.third_party_invite_signed(signed, tuple(keys)):
        return
    raise _reject("member.invite.third_party.signature", "no signature in signed verifies")


def _check_power_levels(
    rv: RoomVersion,
    event: Event,
    create: _Create,
    current: _Levels | None,
    sender_level: Level,
    new: _Levels,
) -> None:
    # RV 10+ rules 9.1–9.2 come before the users rule; before RV 10 the users rule (10.1) comes
    # first and unreadable other values are our documented addition.
    if rv.integer_power_levels and new.value_problem is not None:
        raise _reject("power_levels.invalid_value", new.value_problem)
    if new.users_problem is not None:
        raise _reject("power_levels.users", new.users_problem)
    if new.value_problem is not None:
        raise _reject("power_levels.invalid_value", new.value_problem)
    # RV 12 rule 10.4: creators can't be listed in users.
    if rv.creators_have_infinite_power:
        listed = create.creators.intersection(new.users)
        if listed:
            raise _reject("power_levels.creator_in_users", f"creators in users: {sorted(listed)}")
    # Rule 10.2: the first power-levels event is allowed.
    if current is None:
        return
    sender = event.sender
    # Rule 10.3: the named levels, added, changed or removed (none when the maps are equal).
    for name in _NAMED_DEFAULTS if current.named != new.named else ():
        old_value = current.named.get(name)
        new_value = new.named.get(name)
        if old_value != new_value and (
            (old_value is not None and old_value > sender_level)
            or (new_value is not None and new_value > sender_level)
        ):
            raise _reject(
                "power_levels.change", f"{sender} may not change {name} ({old_value}→{new_value})"
            )
    # Rules 10.4–10.5: events (RV 6+: and notifications).
    for old_map, new_map, what in (
        (current.events, new.events, "events"),
        (current.notifications, new.notifications, "notifications"),
    ):
        if old_map == new_map:
            continue
        # Screen at C speed: no value that differs is beyond the sender's level.
        if max(map(_value, old_map.items() ^ new_map.items())) <= sender_level:
            continue
        for key in _changed_keys(old_map, new_map):
            old_value = old_map.get(key)
            new_value = new_map.get(key)
            if (old_value is not None and old_value > sender_level) or (
                new_value is not None and new_value > sender_level
            ):
                raise _reject(
                    "power_levels.events_change",
                    f"{sender} may not change {what}[{key!r}] ({old_value}→{new_value})",
                )
    # Rules 10.6–10.7: users.
    old_users = current.users
    new_users = new.users
    # Screen: a changed entry fails only if its old level is at or above the sender's (for
    # another user than the sender) or its new level is above it. Only the entries at such
    # levels are read, from each map's entries ranked by level (kept with the parsed levels):
    # when none of them changed, no rule can fail. (The symmetric difference of the items
    # views this replaced built a tuple per entry of both maps at every check: ~8,000
    # instructions with a dozen users.) Otherwise the rule is checked user by user.
    changed = False
    ranked = current.ranked
    if ranked is None:
        ranked = _ranked_users(current)
    for user, old_value in ranked:
        if old_value < sender_level:
            break
        if user != sender and new_users.get(user) != old_value:
            changed = True
            break
    if not changed:
        ranked = new.ranked
        if ranked is None:
            ranked = _ranked_users(new)
        for user, new_value in ranked:
            if new_value <= sender_level:
                break
            if old_users.get(user) != new_value:
                changed = True
                break
    if changed:
        for user in _changed_keys(old_users, new_users):
            old_value = old_users.get(user)
            new_value = new_users.get(user)
            if (old_value is not None and user != sender and old_value >= sender_level) or (
                new_value is not None and new_value > sender_level
            ):
                raise _reject(
                    "power_levels.users_change",
                    f"{sender} may not change the level of {user} ({old_value}→{new_value})",
                )


_value = itemgetter(1)


def _ranked_users(levels: _Levels) -> list[tuple[str, int]]:
    """``levels.users``' entries by level, highest first, kept on ``levels`` (parsed levels
    never change; two threads making it at once make equal lists)."""
    ranked = levels.ranked = sorted(levels.users.items(), key=_value, reverse=True)
    return ranked


def _changed_keys(old: Mapping[str, int], new: Mapping[str, int]) -> list[str]:
    """Keys added, removed or changed, in a deterministic order (new's, then old's).

    The entries that differ come from the symmetric difference of the items views, at C speed
    (a power-levels change mostly changes one or two entries of maps with one entry per
    moderator); the values are parsed levels (``int``), so the entries hash.
    """
    diff = old.items() ^ new.items()
    if not diff:
        return []
    changed = {k for k, _ in diff}
    if len(changed) == 1:
        return list(changed)
    ordered = [k for k in new if k in changed]
    ordered.extend(k for k in old if k in changed and k not in new)
    return ordered
