"""Redaction: the algorithm of each room version (digest §5).

Rules of this module:

1. Top-level keys: RV 1–10 keep ``event_id, type, room_id, sender, state_key, content, hashes,
   signatures, depth, prev_events, auth_events, origin_server_ts`` plus ``prev_state, origin,
   membership``; RV 11+ drop those last three (``fragments/v1-redactions.md``,
   ``fragments/v11-redactions.md``). ``unsigned`` and top-level ``redacts`` never survive.
2. ``content`` keeps only the keys allowed for the event's type in its room version (the table
   in :data:`_CONTENT_KEYS`).
3. An event without a string ``type`` or an object ``content`` cannot be redacted: it raises
   :class:`~eventgraph.InvalidEventError` (today's Synapse does the same; the old spec vector
   without ``content`` is not accepted).
4. The input is never modified; the result is a new plain ``dict`` (nested values are shared
   with the input, except the rebuilt ``content``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidEventError
from .canonical_json import JsonValue
from .room_versions import RedactionRules, RoomVersion, room_version

__all__ = [
    "TYPES_WITH_KEPT_CONTENT",
    "hashed_top_level_keys",
    "redact",
    "redact_unchecked",
    "redacted_content",
]

_R = RedactionRules

_TOP_LEVEL_ALWAYS = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
    }
)
_TOP_LEVEL_BEFORE_V11 = _TOP_LEVEL_ALWAYS | {"prev_state", "origin", "membership"}

_TOP_LEVEL = {True: _TOP_LEVEL_ALWAYS, False: _TOP_LEVEL_BEFORE_V11}  # by "RV 11+"

_HASHED_V11 = _TOP_LEVEL_ALWAYS - {"signatures"}
_HASHED_BEFORE_V11 = _TOP_LEVEL_BEFORE_V11 - {"signatures"}

_PL_KEYS = frozenset(
    {"ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"}
)


def _content_keys(rules: RedactionRules) -> dict[str, frozenset[str]]:
    member = {"membership"}
    join_rules = {"join_rule"}
    power_levels = set(_PL_KEYS)
    keys: dict[str, frozenset[str]] = {}
    if rules.value >= _R.V8.value:
        join_rules.add("allow")  # rooms/v8.md
    if rules.value >= _R.V9.value:
        member.add("join_authorised_via_users_server")  # fragments/v9-redactions.md
    if rules is _R.V11:
        power_levels.add("invite")  # fragments/v11-redactions.md
        keys["m.room.redaction"] = frozenset({"redacts"})
    else:
        keys["m.room.create"] = frozenset({"creator"})
    if rules is _R.V1:
        keys["m.room.aliases"] = frozenset({"aliases"})  # dropped from RV 6 on
    keys["m.room.member"] = frozenset(member)
    keys["m.room.join_rules"] = frozenset(join_rules)
    keys["m.room.power_levels"] = frozenset(power_levels)
    keys["m.room.history_visibility"] = frozenset({"history_visibility"})
    return keys


_CONTENT_KEYS = {rules: _content_keys(rules) for rules in RedactionRules}
# The same tables by the rules' value: hashing an enum member runs Python code (Enum.__hash__).
_CONTENT_KEYS_BY_VALUE = {rules._value_: keys for rules, keys in _CONTENT_KEYS.items()}
_V11 = _R.V11  # read once: attribute access on an enum class runs a Python-level hook

#: Every event type whose redaction keeps some of its content, in any room version: for any
#: other type :func:`redacted_content` is ``{}`` (rule 2).
TYPES_WITH_KEPT_CONTENT = frozenset(
    {"m.room.create"}.union(*(keys.keys() for keys in _CONTENT_KEYS.values()))
)
_EMPTY: frozenset[str] = frozenset()


def redact(pdu: Mapping[str, JsonValue], version: str | RoomVersion) -> dict[str, JsonValue]:
    """Return the redacted form of ``pdu`` under the redaction algorithm of its room version.

    Spec: server-server API "Redactions" via the room version pages (digest §5).

    Complexity: O(number of top-level and content keys).

    Raises:
        InvalidEventError: ``pdu`` is not an object, or lacks a string ``type`` or an object
            ``content`` (rule 3).
        UnsupportedRoomVersionError: unknown room version.

    >>> redact({"type": "m.room.message", "content": {"body": "hi"}, "unsigned": {"age": 1},
    ...         "origin": "a.example"}, "10")
    {'type': 'm.room.message', 'content': {}, 'origin': 'a.example'}
    >>> redact({"type": "m.room.message", "content": {"body": "hi"}, "origin": "a.example"}, "11")
    {'type': 'm.room.message', 'content': {}}
    """
    rv = room_version(version)
    if not isinstance(pdu, Mapping):
        raise InvalidEventError("a PDU must be a JSON object")
    event_type = pdu.get("type")
    content = pdu.get("content")
    if not isinstance(event_type, str):
        raise InvalidEventError("cannot redact an event without a string 'type'")
    if not isinstance(content, Mapping):
        raise InvalidEventError("cannot redact an event without an object 'content'")
    return redact_unchecked(pdu, rv.redaction_rules, event_type, content)


def redact_unchecked(
    pdu: Mapping[str, JsonValue],
    rules: RedactionRules,
    event_type: str,
    content: Mapping[str, JsonValue],
    *,
    for_hashing: bool = False,
) -> dict[str, JsonValue]:
    """:func:`redact` for a PDU whose ``type`` and ``content`` were already checked.

    ``for_hashing`` also leaves out ``signatures``, as the reference hash requires.
    """
    top = hashed_top_level_keys(rules) if for_hashing else _TOP_LEVEL[rules is _V11]
    out: dict[str, Any] = {k: v for k, v in pdu.items() if k in top}
    kept = redacted_content(rules, event_type, content)
    out["content"] = dict(content) if kept is None else kept
    return out


def hashed_top_level_keys(rules: RedactionRules) -> frozenset[str]:
    """The top-level keys the reference hash covers: those redaction keeps, but ``signatures``.

    Spec: server-server API "Calculating the reference hash for an event" (rule 1).
    """
    return _HASHED_V11 if rules is _V11 else _HASHED_BEFORE_V11


def redacted_content(
    rules: RedactionRules, event_type: str, content: Mapping[str, JsonValue]
) -> dict[str, JsonValue] | None:
    """The ``content`` that redaction keeps (rule 2), or ``None`` when it keeps all of it.

    ``None`` means the redacted content equals ``content``: the same keys and the same values
    (the RV 11+ create event, or an event whose every content key is allowed). Otherwise a new
    dict of the kept keys (values shared with ``content``), in ``content``'s order.
    """
    if rules is _V11 and event_type == "m.room.create":
        # RV 11+: the create event keeps its whole content (fragments/v11-redactions.md).
        return None
    allowed = _CONTENT_KEYS_BY_VALUE[rules._value_].get(event_type, _EMPTY)
    if not allowed:
        return {}
    new_content = {k: v for k, v in content.items() if k in allowed}
    if rules is _V11 and event_type == "m.room.member":
        # RV 11+: member events also keep ``third_party_invite.signed`` (only that sub-key).
        tpi = content.get("third_party_invite")
        if isinstance(tpi, Mapping):
            new_content["third_party_invite"] = {k: v for k, v in tpi.items() if k == "signed"}
            return new_content
    return None if len(new_content) == len(content) else new_content
