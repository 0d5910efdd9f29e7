"""The room event (PDU) as an immutable, validated value.

Rules of this module:

1. An :class:`Event` exists only if its PDU passed the format checks of its room version
   (server-server API "Checks performed on receipt of a PDU", check 1; the ``pdu_vN.yaml``
   schemas; digest §4). :meth:`Event.from_pdu` is the one way in from the network; it computes the
   event ID itself for room versions 3+.
2. :meth:`Event.from_trusted_pdu` is the documented *trusted import* path for database exports
   and test fixtures: it takes a caller-supplied event ID and does not require ``hashes`` or
   ``signatures``. It still checks everything else. It is never used on network input.
3. Every input, however malformed, yields an ``Event`` or an :class:`~eventgraph.InvalidEventError`
   (a fuzz test holds us to it).
4. Fast and general paths agree: network PDUs of the usual shape are parsed by an accept-only
   fast path that either vouches for the PDU (every rule checked) or hands it to the general
   parser; both are property-tested against the plain reference parser
   (:mod:`eventgraph.events._reference`): same events, same bytes, same refusals.
5. Nothing an event holds can be mutated: ``content`` is a :class:`FrozenDict` of frozen values,
   edges are tuples, the original PDU is kept as canonical JSON bytes.
6. Room version 12 (MSC4291): the create event has no ``room_id``; its room ID is its event ID
   with the ``!`` sigil. Every other event's ``auth_event_ids`` includes the create event, which
   its PDU must not list (the create event is implied by ``room_id``); algorithms therefore see
   one auth graph for every room version.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import operator
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import InvalidEventError
from .canonical_json import (
    FrozenDict,
    JsonValue,
    check_json,
    encode_canonical_json,
    encode_canonical_parts,
    encode_canonical_text,
    encode_json_string,
    freeze_json,
)
from .redaction import TYPES_WITH_KEPT_CONTENT, hashed_top_level_keys, redacted_content
from .room_versions import EventFormat, EventIdFormat, RedactionRules, RoomVersion, room_version

__all__ = [
    "MAX_AUTH_EVENTS",
    "MAX_EVENT_SIZE",
    "MAX_PREV_EVENTS",
    "Event",
    "StateKey",
]

#: A key of the room state: ``(event type, state key)``.
StateKey = tuple[str, str]

#: The most ``prev_events`` a PDU may list (pdu schemas, since 2020; not checked on backfill).
MAX_PREV_EVENTS = 20
#: The most ``auth_events`` a PDU may list.
MAX_AUTH_EVENTS = 10
#: The largest PDU, in bytes of canonical JSON with signatures (client-server API "Size limits").
MAX_EVENT_SIZE = 65536
#: The longest ``type``, ``state_key``, ``sender``, ``room_id`` and event ID (appendices).
MAX_ID_LENGTH = 255
# Strings this short are within MAX_ID_LENGTH bytes whatever their characters.
_SHORT = MAX_ID_LENGTH // 4

_KNOWN_TOP_LEVEL = frozenset(
    {
        "event_id",
        "room_id",
        "type",
        "state_key",
        "sender",
        "prev_events",
        "auth_events",
        "depth",
        "origin_server_ts",
        "content",
        "redacts",
        "hashes",
        "signatures",
        "unsigned",
    }
)


_UNSIGNED_PARTS = frozenset({"hashes", "signatures", "unsigned"})
# Enum members as plain globals: reading one through its class runs EnumType's Python-level
# attribute hook, which costs more than the comparison.
_V1_FORMAT = EventFormat.V1
_V3_FORMAT = EventFormat.V3
_V11_RULES = RedactionRules.V11
_SERVER_ASSIGNED = EventIdFormat.SERVER_ASSIGNED
_URLSAFE_IDS = EventIdFormat.REFERENCE_HASH_URLSAFE
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_quote = encode_json_string
_encode_text = encode_canonical_text
_encode_parts = encode_canonical_parts
#: The keys of the common layout of ``_parse``, in canonical (sorted) order.
_COMMON_ORDER = (
    "auth_events",
    "content",
    "depth",
    "hashes",
    "origin_server_ts",
    "prev_events",
    "room_id",
    "sender",
    "signatures",
    "state_key",
    "type",
    "unsigned",
)
_COMMON_KEYS = frozenset(_COMMON_ORDER)
# The required keys of the common layout, fetched in one call, and their types.
_COMMON_GET = operator.itemgetter(
    "type",
    "sender",
    "room_id",
    "content",
    "depth",
    "origin_server_ts",
    "prev_events",
    "auth_events",
    "hashes",
    "signatures",
)
_sha256 = hashlib.sha256
#: The quoted text of auth event IDs the fast path has checked (see ``_parse_common``); cleared
#: when full. A 44-character ID and its text take ~250 bytes: at most ~1 MB.
_AUTH_ID_TEXT: dict[str, str] = {}
_AUTH_ID_TEXT_SIZE = 4096
_NOTHING_KEPT: dict[str, JsonValue] = {}  # read-only: the redacted content of most types
# Top-level keys whose values the parser checks one by one (the rest get a generic check).
_CHECKED_TOP_LEVEL = _KNOWN_TOP_LEVEL - _UNSIGNED_PARTS
# From RV 11 a top-level ``redacts`` is not the redaction target and gets no check of its own.
_CHECKED_TOP_LEVEL_V11 = _CHECKED_TOP_LEVEL - {"redacts"}


def _flat_strings(value: object) -> bool:
    # Fast path for hashes ({alg: str}) and signatures ({server: {key: str}}): nothing to check.
    if type(value) is not dict:
        return False
    for v in value.values():
        if type(v) is str:
            continue
        if type(v) is not dict:
            return False
        for w in v.values():
            if type(w) is not str:
                return False
    return True


def _bad(msg: str) -> InvalidEventError:
    return InvalidEventError(msg)


def _check_length(value: str, name: str, byte_limits: bool) -> None:
    # 255 is measured in UTF-8 bytes from RV 11 on, in code points before (room_versions rule).
    n = len(value)
    if n <= _SHORT or (n <= MAX_ID_LENGTH and not byte_limits):
        return
    if n > MAX_ID_LENGTH:
        raise _bad(f"'{name}' is longer than {MAX_ID_LENGTH}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as err:
        raise _bad(f"'{name}' is not valid Unicode") from err
    if size > MAX_ID_LENGTH:
        raise _bad(f"'{name}' is longer than {MAX_ID_LENGTH} bytes")


def _string(pdu: Mapping[str, Any], name: str, byte_limits: bool) -> str:
    value = pdu.get(name)
    if type(value) is not str:
        if name not in pdu:
            raise _bad(f"missing '{name}'")
        raise _bad(f"'{name}' must be a string")
    _check_length(value, name, byte_limits)
    return value


def _integer(pdu: Mapping[str, Any], name: str) -> int:
    value = pdu.get(name)
    if type(value) is not int:
        if name not in pdu:
            raise _bad(f"missing '{name}'")
        raise _bad(f"'{name}' must be an integer")
    return value


def _event_id_ref(value: object, name: str, byte_limits: bool) -> str:
    if type(value) is not str or not value.startswith("$"):
        raise _bad(f"'{name}' must hold event IDs (strings starting with '$')")
    _check_length(value, name, byte_limits)
    return value


def _edges(
    pdu: Mapping[str, Any], name: str, rv: RoomVersion, limit: int | None, byte_limits: bool
) -> tuple[str, ...]:
    value = pdu.get(name)
    if type(value) is not list and type(value) is not tuple:
        if name not in pdu:
            raise _bad(f"missing '{name}'")
        raise _bad(f"'{name}' must be an array")
    if limit is not None and len(value) > limit:
        raise _bad(f"'{name}' lists {len(value)} events; at most {limit} are allowed")
    if rv.event_format is _V1_FORMAT:
        # RV 1–2: each entry is [event_id, {"sha256": reference hash}] (pdu_v1.yaml).
        ids = []
        for item in value:
            if (
                (type(item) is not list and type(item) is not tuple)
                or len(item) != 2
                or not isinstance(item[1], dict)
            ):
                raise _bad(f"'{name}' entries must be [event_id, hashes] pairs in this version")
            ids.append(_event_id_ref(item[0], name, byte_limits))
        return tuple(ids)
    for item in value:
        # Fast path: a short string with the sigil (every RV 3+ ID is 44 characters).
        if type(item) is not str or item[:1] != "$" or len(item) > _SHORT:
            _event_id_ref(item, name, byte_limits)
    return tuple(value)


@attrs.frozen(eq=False, repr=False)
class Event:
    """A room event (PDU) of a known room version, validated and immutable.

    Build it with :meth:`from_pdu` (network input) or :meth:`from_trusted_pdu` (trusted import).

    Attributes:
        event_id: the event's ID (computed from the reference hash for room versions 3+).
        room_id: the room's ID (for a room version 12 create event: derived from its ID).
        type: the event type.
        state_key: the state key, or ``None`` for a non-state event.
        sender: the sender's user ID.
        prev_event_ids: the event's ``prev_events``, in PDU order.
        auth_event_ids: the event's ``auth_events``, in PDU order; in room version 12 the create
            event is appended for every other event (rule 6).
        depth: the sender-asserted depth (untrusted; never used for security).
        origin_server_ts: the sender-asserted timestamp in milliseconds.
        content: the event content, read-only.
        redacts: the redacted event's ID for ``m.room.redaction`` (top-level in RV 1–10,
            ``content.redacts`` from RV 11), else ``None``.
        room_version: the room version's features.
        implied_create_auth: ``True`` when the last entry of ``auth_event_ids`` is the create
            event implied by a room version 12 ``room_id`` rather than listed in the PDU.

    >>> ev = Event.from_pdu({
    ...     "type": "m.room.message", "room_id": "!r:a.example", "sender": "@u:a.example",
    ...     "content": {"body": "hello"}, "depth": 5, "origin_server_ts": 1000,
    ...     "prev_events": ["$p"], "auth_events": ["$c", "$m"],
    ...     "hashes": {"sha256": "abc"}, "signatures": {}}, "11")
    >>> ev.event_id
    '$030hsuzgDuriKY9Q7FQ8ojCd5IHDqVJgD05ljwj7q0o'
    >>> ev.content["body"], ev.state_key, ev.is_state
    ('hello', None, False)
    """

    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    prev_event_ids: tuple[str, ...]
    auth_event_ids: tuple[str, ...]
    depth: int
    origin_server_ts: int
    content: Mapping[str, JsonValue]
    redacts: str | None
    room_version: RoomVersion
    implied_create_auth: bool = False
    _pdu_json: bytes = b""

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_pdu(
        cls, pdu: object, version: str | RoomVersion, *, backfilled: bool = False
    ) -> Event:
        """Validate a PDU of room version ``version`` and build its event, computing its ID.

        Args:
            pdu: the PDU as decoded JSON (federation format).
            version: the room version (an identifier or a :class:`RoomVersion`).
            backfilled: relax the ``prev_events`` ≤ 20 and ``auth_events`` ≤ 10 counts, which
                the spec says "MUST NOT" be validated on ``/backfill`` responses.

        Spec: server-server API "Checks performed on receipt of a PDU" (check 1), the
        ``pdu_vN.yaml`` schemas, "Size limits"; digest §4.

        Complexity: O(size of the PDU): each top-level member is encoded once, the stored
        bytes and the redacted form are joined from those parts, and one SHA-256 gives the ID.
        Usual network PDUs take an accept-only fast path (``_parse_common``); anything it does
        not vouch for, valid or not, goes through the general parser, which words refusals.

        Raises:
            InvalidEventError: the PDU does not have the format of its room version.
            UnsupportedRoomVersionError: unknown room version.
        """
        rv = room_version(version)
        parsed = _parse_common(pdu, rv, backfilled, False)
        if parsed is None:
            parsed = _parse(pdu, rv, backfilled=backfilled, trusted_id=None)
        return parsed[0]

    @classmethod
    def from_trusted_pdu(
        cls,
        pdu: object,
        version: str | RoomVersion,
        *,
        event_id: str | None = None,
        backfilled: bool = False,
    ) -> Event:
        """Build an event from a *trusted* PDU, keeping the caller's event ID (rule 2).

        For database exports and test fixtures whose IDs are placeholders or were computed
        elsewhere. ``event_id`` defaults to the PDU's own ``event_id`` field (which is then
        removed from the stored PDU for room versions 3+). ``hashes`` and ``signatures`` may be
        absent. All other format checks apply. Never use it for network input.

        Raises:
            InvalidEventError: no usable event ID, or the PDU fails a format check.
            UnsupportedRoomVersionError: unknown room version.
        """
        rv = room_version(version)
        trusted_id = _trusted_event_id(pdu, event_id)
        return _parse(pdu, rv, backfilled=backfilled, trusted_id=trusted_id)[0]

    @classmethod
    def from_pdu_with_content_hash(
        cls,
        pdu: object,
        version: str | RoomVersion,
        *,
        backfilled: bool = False,
        trusted: bool = False,
    ) -> tuple[Event, bytes]:
        """:meth:`from_pdu` (or, with ``trusted``, :meth:`from_trusted_pdu` with the PDU's own
        event ID), and the event's content hash from the same encoding.

        For the receipt of a PDU: check 1 (format, size, event ID) and the hash that check 3
        compares with ``hashes.sha256``, without encoding the event again. The hash is exactly
        :func:`~eventgraph.content_hash` of ``event.to_pdu()`` (server-server API
        "Calculating the content hash for an event"): SHA-256 of the stored PDU's canonical JSON
        without ``hashes``, ``signatures`` and ``unsigned``. Comparing it is the caller's job
        (a trusted import may have no ``hashes``).

        Complexity: :meth:`from_pdu` plus one SHA-256 over the hashed members (no encoding).

        Raises:
            InvalidEventError: as :meth:`from_pdu` / :meth:`from_trusted_pdu`.
            UnsupportedRoomVersionError: unknown room version.

        >>> pdu = {"type": "m.room.message", "room_id": "!r:a", "sender": "@u:a",
        ...        "content": {}, "depth": 1, "origin_server_ts": 0, "prev_events": [],
        ...        "auth_events": [], "hashes": {"sha256": "x"}, "signatures": {}}
        >>> event, digest = Event.from_pdu_with_content_hash(pdu, "11")
        >>> from eventgraph import content_hash
        >>> digest == content_hash(event.to_pdu())
        True
        """
        rv = room_version(version)
        parsed = None if trusted else _parse_common(pdu, rv, backfilled, True)
        if parsed is None:
            trusted_id = _trusted_event_id(pdu, None) if trusted else None
            parsed = _parse(
                pdu, rv, backfilled=backfilled, trusted_id=trusted_id, with_content_hash=True
            )
        event, digest = parsed
        assert digest is not None
        return event, digest

    # -- views --------------------------------------------------------------------------------

    @property
    def is_state(self) -> bool:
        """Whether this is a state event (it has a ``state_key``, possibly empty)."""
        return self.state_key is not None

    @property
    def state_tuple(self) -> StateKey | None:
        """``(type, state_key)`` for a state event, else ``None``."""
        sk = self.state_key
        return None if sk is None else (self.type, sk)

    @property
    def sender_domain(self) -> str:
        """The server name part of ``sender``."""
        return self.sender.split(":", 1)[1]

    def to_pdu(self) -> dict[str, JsonValue]:
        """A fresh, mutable copy of the PDU in federation format (as received)."""
        pdu: dict[str, JsonValue] = json.loads(self._pdu_json)
        return pdu

    @property
    def pdu_json(self) -> bytes:
        """The PDU in federation format, as canonical JSON bytes."""
        return self._pdu_json

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.event_id == other.event_id and self._pdu_json == other._pdu_json

    def __hash__(self) -> int:
        return hash(self.event_id)

    def __repr__(self) -> str:
        sk = "" if self.state_key is None else f", state_key={self.state_key!r}"
        return f"<Event {self.event_id} {self.type}{sk} depth={self.depth}>"


class _EventBuilder(Event):
    """Builds an :class:`Event` at a quarter of the cost of its ``attrs`` initialiser.

    The frozen initialiser writes each of the 14 fields through ``object.__setattr__`` (a call
    per field, ~1,000 instructions each: a tenth of parsing a message). This subclass adds no
    slots and restores the plain attribute protocol (both ``__setattr__`` and ``__delattr__``,
    so CPython installs its generic setter and specialises each assignment to a slot store),
    then turns the instance into an ``Event`` by ``__class__`` assignment, which CPython allows
    between classes of the same layout. The result is an ordinary frozen ``Event``: this class
    never escapes ``__init__`` (a test holds the fields, the type and the frozenness to the
    ``attrs`` initialiser's).
    """

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__

    def __init__(
        self,
        event_id: str,
        room_id: str,
        type: str,
        state_key: str | None,
        sender: str,
        prev_event_ids: tuple[str, ...],
        auth_event_ids: tuple[str, ...],
        depth: int,
        origin_server_ts: int,
        content: Mapping[str, JsonValue],
        redacts: str | None,
        room_version: RoomVersion,
        implied_create_auth: bool,
        pdu_json: bytes,
    ) -> None:
        # (mypy sees the frozen fields as read-only; at run time this class may write them)
        new: Any = self
        new.event_id = event_id
        new.room_id = room_id
        new.type = type
        new.state_key = state_key
        new.sender = sender
        new.prev_event_ids = prev_event_ids
        new.auth_event_ids = auth_event_ids
        new.depth = depth
        new.origin_server_ts = origin_server_ts
        new.content = content
        new.redacts = redacts
        new.room_version = room_version
        new.implied_create_auth = implied_create_auth
        new._pdu_json = pdu_json
        new.__class__ = Event  # same layout: see the docstring


def _trusted_event_id(pdu: object, event_id: object) -> str:
    # The event ID of a trusted import: the caller's, else the PDU's own (rule 2).
    if event_id is None and isinstance(pdu, Mapping):
        event_id = pdu.get("event_id")
    if type(event_id) is not str or not event_id.startswith("$"):
        raise _bad("a trusted import needs an event ID starting with '$'")
    _check_length(event_id, "event_id", True)
    return event_id


def _parse(
    pdu: object,
    rv: RoomVersion,
    *,
    backfilled: bool,
    trusted_id: str | None,
    with_content_hash: bool = False,
) -> tuple[Event, bytes | None]:
    """Check ``pdu`` and build its event; with ``with_content_hash``, also its content hash.

    The general parser: every PDU shape, every refusal worded. The checks are those of
    :func:`~eventgraph.events._reference.parse_reference`, in the same order. The encodings
    differ in how, not in what. When the ID is computed (RV 3+ network input): canonical JSON
    writes an object as its members (``"key":value``) sorted by key and joined by commas, so
    each top-level member is encoded once and the full PDU (size limit, storage), the redacted
    form (reference hash, event ID) and the form without ``hashes``/``signatures``/``unsigned``
    (content hash) are joins of the same parts; only a redacted ``content`` that differs from
    the content is encoded again (small: the kept keys). When the ID is given (RV 1–2, trusted
    import) the stored PDU is one encoding and the content hash is cut out of it. Property
    tests hold the events, the bytes and the refusals equal to the reference.
    """
    if type(pdu) is not dict and not isinstance(pdu, Mapping):
        raise _bad("a PDU must be a JSON object")
    strict = rv.strict_canonical_json
    byte_limits = rv.strict_event_byte_limits
    event_type = pdu.get("type")
    if type(event_type) is not str or len(event_type) > _SHORT:
        event_type = _string(pdu, "type", byte_limits)
    state_key = pdu.get("state_key")
    if state_key is not None:
        if type(state_key) is not str:
            raise _bad("'state_key' must be a string")
        _check_length(state_key, "state_key", byte_limits)
    elif "state_key" in pdu:
        raise _bad("'state_key' must be a string")
    sender = pdu.get("sender")
    if type(sender) is not str or len(sender) > _SHORT:
        sender = _string(pdu, "sender", byte_limits)
    if sender[:1] != "@" or ":" not in sender:
        raise _bad("'sender' must be a user ID (@localpart:domain)")

    is_v12_create = rv.event_format is _V3_FORMAT and event_type == "m.room.create"
    room_id: str | None
    if is_v12_create:
        if "room_id" in pdu:
            # RV 12: "Omitted from m.room.create events" (room_id_v12.yaml).
            raise _bad("a room version 12 create event must not have a 'room_id'")
        room_id = None
    else:
        room_id = pdu.get("room_id")
        if type(room_id) is not str or len(room_id) > _SHORT:
            room_id = _string(pdu, "room_id", byte_limits)
        if room_id[:1] != "!":
            raise _bad("'room_id' must start with '!'")

    raw_content = pdu.get("content")
    if type(raw_content) is not dict and type(raw_content) is not FrozenDict:
        raise _bad("'content' must be an object" if "content" in pdu else "missing 'content'")
    content = freeze_json(raw_content, strict=strict, where="content")

    depth = pdu.get("depth")
    if type(depth) is not int:
        depth = _integer(pdu, "depth")
    if not 0 <= depth <= rv.max_depth:
        # pdu schemas: depth is at most 2**63 - 1 (RV 1–5) or 2**53 - 1 (RV 6+).
        raise _bad(f"'depth' must be between 0 and {rv.max_depth}")
    origin_server_ts = pdu.get("origin_server_ts")
    if type(origin_server_ts) is not int:
        origin_server_ts = _integer(pdu, "origin_server_ts")

    prev_limit = None if backfilled else MAX_PREV_EVENTS
    auth_limit = None if backfilled else MAX_AUTH_EVENTS
    prev_ids = _edges(pdu, "prev_events", rv, prev_limit, byte_limits)
    auth_ids = _edges(pdu, "auth_events", rv, auth_limit, byte_limits)

    trusted = trusted_id is not None
    hashes = pdu.get("hashes")
    if (hashes is not None or not trusted) and (
        not isinstance(hashes, dict) or type(hashes.get("sha256")) is not str
    ):
        raise _bad("'hashes' must be an object with a string 'sha256'")
    signatures = pdu.get("signatures")
    if signatures is not None or not trusted:
        if not isinstance(signatures, dict):
            raise _bad("'signatures' must be an object of objects")
        for by_server in signatures.values():
            if not isinstance(by_server, dict):
                raise _bad("'signatures' must be an object of objects")
    unsigned = pdu.get("unsigned")
    if unsigned is not None and not isinstance(unsigned, dict):
        raise _bad("'unsigned' must be an object")

    # Keys the checks above did not cover: unknown ones and the unsigned parts. The known keys
    # are strings by construction; only these few need a type check (one C set difference).
    v11_rules = rv.redaction_rules is _V11_RULES
    others = pdu.keys() - (_CHECKED_TOP_LEVEL_V11 if v11_rules else _CHECKED_TOP_LEVEL)
    for key in others:
        if type(key) is not str:
            raise _bad("PDU keys must be strings")
    if strict:
        # RV 6+: every value must obey canonical JSON's number rules, not just the content.
        # (Relaxed versions need no walk: the encoder below refuses non-JSON values.)
        for key in sorted(others):
            value = pdu[key]
            if type(value) is not str and not _flat_strings(value):
                check_json(value, strict=True, where=key)

    redacts: str | None = None
    if v11_rules:
        r = content.get("redacts") if event_type == "m.room.redaction" else None
        redacts = r if type(r) is str else None
    else:
        r = pdu.get("redacts")
        if r is not None:
            redacts = _event_id_ref(r, "redacts", byte_limits)

    # The PDU as stored: without a top-level event_id from RV 3 on (the ID is not on the wire).
    server_assigned = rv.event_id_format is _SERVER_ASSIGNED
    if not server_assigned and "event_id" in pdu:
        if not trusted:
            raise _bad("a room version 3+ PDU must not carry an 'event_id'")
        pdu = {k: v for k, v in pdu.items() if k != "event_id"}
    elif trusted_id is not None and server_assigned and "event_id" not in pdu:
        pdu = {**pdu, "event_id": trusted_id}

    digest: bytes | None = None
    if trusted_id is not None or server_assigned:
        # The ID is given, not computed: no redacted form to hash. The stored PDU in one
        # encoding (the content hash, if asked, is cut out of it).
        pdu_json = encode_canonical_json(pdu)
        if len(pdu_json) > MAX_EVENT_SIZE:
            raise _bad(f"the event is larger than {MAX_EVENT_SIZE} bytes ({len(pdu_json)})")
        if with_content_hash:
            digest = _content_hash_cut(pdu_json, pdu)
        if trusted_id is not None:
            event_id = trusted_id
            if server_assigned and pdu.get("event_id") not in (None, trusted_id):
                raise _bad("the trusted event ID differs from the PDU's 'event_id'")
        else:
            event_id = _string(pdu, "event_id", byte_limits)
            if not event_id.startswith("$") or ":" not in event_id:
                raise _bad("'event_id' must have the form $opaque:domain")
    else:
        # RV 3+ network input: canonical JSON from parts (see the docstring), one member per
        # key of the stored PDU. The values checked above have known types; the rest go
        # through the generic encoder.
        try:
            members = {
                "type": '"type":' + _quote(event_type),
                "sender": '"sender":' + _quote(sender),
                "content": '"content":' + _encode_text(raw_content),
                "depth": '"depth":' + str(depth),
                "origin_server_ts": '"origin_server_ts":' + str(origin_server_ts),
                "prev_events": '"prev_events":' + _id_list_text(prev_ids),
                "auth_events": '"auth_events":' + _id_list_text(auth_ids),
            }
            if room_id is not None:
                members["room_id"] = '"room_id":' + _quote(room_id)
            if state_key is not None:
                members["state_key"] = '"state_key":' + _quote(state_key)
            if not v11_rules and "redacts" in pdu:
                members["redacts"] = '"redacts":' + ("null" if redacts is None else _quote(redacts))
            for key in others:
                prefix = _MEMBER_PREFIX.get(key) or _quote(key) + ":"
                members[key] = prefix + _value_text(pdu[key])
            members = {k: members[k] for k in sorted(members)}
            pdu_json = ("{" + ",".join(members.values()) + "}").encode("utf-8")
        except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as err:
            # The messages of the plain encoder, which fails on the same values.
            raise _bad(f"cannot encode as canonical JSON: {err}") from err
        if len(pdu_json) > MAX_EVENT_SIZE:
            raise _bad(f"the event is larger than {MAX_EVENT_SIZE} bytes ({len(pdu_json)})")
        if with_content_hash:
            # Server-server API "Calculating the content hash for an event": the stored PDU
            # without hashes, signatures and unsigned (hashes.py rule 1).
            hashed_text = ",".join([m for k, m in members.items() if k not in _UNSIGNED_PARTS])
            digest = hashlib.sha256(("{" + hashed_text + "}").encode("utf-8")).digest()
        # Reference hash ("Calculating the reference hash for an event"): the members redaction
        # keeps but signatures, with the redacted content (redaction.py rules 1-2).
        rules = rv.redaction_rules
        kept = redacted_content(rules, event_type, raw_content)
        if kept is not None:
            members["content"] = '"content":' + (_encode_text(kept) if kept else "{}")
        top = hashed_top_level_keys(rules)
        redacted = "{" + ",".join([m for k, m in members.items() if k in top]) + "}"
        event_id = _event_id_of(redacted, rv)

    implied = False
    if rv.room_id_is_create_event_id:
        if is_v12_create:
            room_id = "!" + event_id[1:]
        else:
            assert room_id is not None
            auth_ids, implied = _with_implied_create(room_id, auth_ids)
    assert room_id is not None

    event = _EventBuilder(
        event_id,
        room_id,
        event_type,
        state_key,
        sender,
        prev_ids,
        auth_ids,
        depth,
        origin_server_ts,
        content,
        redacts,
        rv,
        implied,
        pdu_json,
    )
    return event, digest


def _content_hash_cut(pdu_json: bytes, pdu: Mapping[str, Any]) -> bytes:
    """The content hash of the stored PDU ``pdu`` whose canonical JSON is ``pdu_json``.

    Server-server API "Calculating the content hash for an event" (hashes.py rule 1): SHA-256
    of the canonical JSON without ``hashes``, ``signatures`` and ``unsigned``. Canonical JSON
    writes an object as its members, sorted and joined by commas, so those bytes are
    ``pdu_json`` with the three members cut out. Each is encoded on its own (they are small)
    and found by search: never first (``auth_events`` sorts before them), so preceded by a
    comma. When one does not occur exactly once (an equal text nested elsewhere could be
    taken for it) the hash is computed the plain way.
    """
    out = pdu_json
    for name, tag in _UNSIGNED_TAGS:
        if name not in pdu:
            continue
        member = tag + encode_canonical_json(pdu[name])
        at = out.find(member)
        if at < 0 or out.find(member, at + 1) >= 0:
            hashed = {k: v for k, v in pdu.items() if k not in _UNSIGNED_PARTS}
            return hashlib.sha256(encode_canonical_json(hashed)).digest()
        out = out[:at] + out[at + len(member) :]
    return hashlib.sha256(out).digest()


def _parse_common(
    pdu: object, rv: RoomVersion, backfilled: bool, with_content_hash: bool
) -> tuple[Event, bytes | None] | None:
    """:func:`_parse` for network PDUs of the usual shape, or ``None`` to go the general way.

    Accept-only: it returns an event only for a PDU it has checked to be valid, by the rules of
    :func:`_parse` (each named there), and ``None`` for anything else, valid or not, so that
    :func:`_parse` words every refusal. The shape: a ``dict`` of RV 3+ with exactly the keys
    of ``_COMMON_ORDER`` (``state_key`` and ``unsigned`` optional), of their plain JSON types,
    short strings, edges of short event IDs, one-entry ``hashes``, signatures of strings.

    Its checks are done in bulk (one C call where it can), and the stored PDU, the redacted form
    and the content-hash form are written from the same encoded parts, keys in their canonical
    order without sorting. Property tests hold its events, bytes and hashes to the reference.
    """
    if type(pdu) is not dict or rv.event_id_format is _SERVER_ASSIGNED:
        return None
    try:
        (
            event_type,
            sender,
            room_id,
            raw_content,
            depth,
            origin_server_ts,
            prev,
            auth,
            hashes,
            signatures,
        ) = _COMMON_GET(pdu)
    except KeyError:
        return None  # a required key is missing (or a RV 12 create event: no room_id)
    # The keys: the 10 required ones (just fetched) and at most state_key and unsigned. The
    # count decides without a pass over the keys in the two usual cases.
    count = len(pdu)
    unsigned = None
    has_unsigned = False
    if count == 10:
        state_key = None
    elif count == 11 and type(state_key := pdu.get("state_key")) is str:
        pass
    else:
        if not _COMMON_KEYS.issuperset(pdu):
            return None  # event_id, redacts before RV 11, or keys unknown to the format
        state_key = pdu.get("state_key")
        if state_key is not None and type(state_key) is not str:
            return None
        if state_key is None and "state_key" in pdu:
            return None
        unsigned = pdu.get("unsigned")
        has_unsigned = "unsigned" in pdu
    if (
        type(event_type) is not str
        or type(sender) is not str
        or type(room_id) is not str
        or type(raw_content) is not dict
        or type(depth) is not int
        or type(origin_server_ts) is not int
        or type(prev) is not list
        or type(auth) is not list
        or type(hashes) is not dict
        or type(signatures) is not dict
    ):
        return None
    if state_key is None:
        longest = max(len(event_type), len(sender), len(room_id))
    else:
        longest = max(len(event_type), len(sender), len(room_id), len(state_key))
    if (
        longest > _SHORT  # within the 255 limit however counted (code points or bytes)
        or not "@" <= sender < "A"  # starts with "@" (the next code point is "A")
        or ":" not in sender
        or not "!" <= room_id < '"'
        or not 0 <= depth <= rv.max_depth
        or (rv.event_format is _V3_FORMAT and event_type == "m.room.create")
        or type(hashes.get("sha256")) is not str
        or (not backfilled and (len(prev) > MAX_PREV_EVENTS or len(auth) > MAX_AUTH_EVENTS))
    ):
        return None
    # Edges: short event IDs with the sigil. Auth events recur from event to event (the create
    # event, the power levels, the sender's membership): the quoted text of the auth event IDs
    # that passed this check is kept (_AUTH_ID_TEXT), so that a recurring one is checked and
    # quoted by one lookup. (An exact ``str`` equal to a checked ID passes the same check.)
    auth_texts = []
    for item in auth:
        if type(item) is not str:
            return None
        text = _AUTH_ID_TEXT.get(item)
        if text is None:
            if not "$" <= item < "%" or len(item) > _SHORT:
                return None
            text = _quote(item)
            if len(_AUTH_ID_TEXT) >= _AUTH_ID_TEXT_SIZE:
                _AUTH_ID_TEXT.clear()
            _AUTH_ID_TEXT[item] = text
        auth_texts.append(text)
    for item in prev:
        if type(item) is not str or not "$" <= item < "%" or len(item) > _SHORT:
            return None
    # Signatures: an object of objects of strings (so nothing for the number rules to check).
    # The usual one signature is also written here (its strings are quoted below).
    one_signature = None
    if len(signatures) == 1:
        ((server, keys),) = signatures.items()
        if type(keys) is not dict:
            return None
        if len(keys) == 1:
            ((key_id, signature),) = keys.items()
            if type(signature) is not str:
                return None
            one_signature = (server, key_id, signature)
    if one_signature is None:
        for keys in signatures.values():
            if type(keys) is not dict:
                return None
            for signature in keys.values():
                if type(signature) is not str:
                    return None
    if has_unsigned and unsigned is not None and type(unsigned) is not dict:
        return None
    strict = rv.strict_canonical_json
    try:
        for key, value in raw_content.items():
            if type(value) is not str or type(key) is not str:
                content = freeze_json(raw_content, strict=strict, where="content")
                break
        else:  # a flat object of strings (most contents): freeze_json's own shortcut, inline
            content = FrozenDict(raw_content)
        if strict:
            if len(hashes) != 1:
                check_json(hashes, strict=True, where="hashes")
            if unsigned is not None:
                check_json(unsigned, strict=True, where="unsigned")
    except InvalidEventError:
        return None

    # The encodings, from parts: keys in _COMMON_ORDER, which is sorted. The three forms
    # (stored PDU, content hash, redacted form) share their start up to the content and their
    # end from origin_server_ts on.
    try:
        content_text = "".join(_encode_parts(raw_content, 0))
        head = '{"auth_events":[' + ",".join(auth_texts) + '],"content":'
        if len(hashes) == 1:
            hashes_text = ',"hashes":{"sha256":' + _quote(hashes["sha256"]) + "}"
        else:
            hashes_text = ',"hashes":' + _encode_text(hashes)
        # (Usually one prev event: quoted directly.)
        prev_text = _quote(prev[0]) if len(prev) == 1 else ",".join(map(_quote, prev))
        middle = (
            f',"origin_server_ts":{origin_server_ts},"prev_events":[{prev_text}]'
            f',"room_id":{_quote(room_id)},"sender":{_quote(sender)}'
        )
        tail = ',"type":' + _quote(event_type)
        if state_key is not None:
            tail = ',"state_key":' + _quote(state_key) + tail
        unsigned_text = ',"unsigned":' + _encode_text(unsigned) if has_unsigned else ""
        if not signatures:
            signatures_text = "{}"
        elif one_signature is None:
            signatures_text = "".join(_encode_parts(signatures, 0))
        else:
            server, key_id, signature = one_signature  # (not strings: TypeError, general path)
            signatures_text = f"{{{_quote(server)}:{{{_quote(key_id)}:{_quote(signature)}}}}}"
        depth_text = f',"depth":{depth}'
        pdu_json = (
            f"{head}{content_text}{depth_text}{hashes_text}{middle}"
            f',"signatures":{signatures_text}{tail}{unsigned_text}}}'
        ).encode()
        end = f"{middle}{tail}}}"
        kept = (
            redacted_content(rv.redaction_rules, event_type, raw_content)
            if event_type in TYPES_WITH_KEPT_CONTENT
            else _NOTHING_KEPT
        )
        # SHA-256 of the content hash's form and of the redacted form, their common start
        # hashed once (a copy of the state continues it).
        digest = None
        if kept is None:  # the redacted content is the content: common up to the depth
            reference = _sha256((head + content_text + depth_text).encode())
            if with_content_hash:
                hashed = reference.copy()
                hashed.update(end.encode())
                digest = hashed.digest()
            reference.update((hashes_text + end).encode())
        else:
            if not kept:
                kept_text = "{}"
            elif len(kept) == 1 and type(membership := kept.get("membership")) is str:
                kept_text = '{"membership":' + _quote(membership) + "}"  # member events
            else:
                kept_text = "".join(_encode_parts(kept, 0))
            reference = _sha256(head.encode())
            if with_content_hash:
                hashed = reference.copy()
                hashed.update((content_text + depth_text + end).encode())
                digest = hashed.digest()
            reference.update((kept_text + depth_text + hashes_text + end).encode())
        event_id = _event_id_from_hash(reference.digest(), rv)
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return None
    if len(pdu_json) > MAX_EVENT_SIZE:
        return None

    redacts = None
    if rv.redaction_rules is _V11_RULES and event_type == "m.room.redaction":
        # RV 11+: the target is content.redacts (fragments/v11-redactions.md); before RV 11 it
        # is the top-level key, absent from this layout.
        r = content.get("redacts")
        redacts = r if type(r) is str else None
    auth_ids = tuple(auth)
    implied = False
    if rv.room_id_is_create_event_id:
        auth_ids, implied = _with_implied_create(room_id, auth_ids)
    event = _EventBuilder(
        event_id,
        room_id,
        event_type,
        state_key,
        sender,
        tuple(prev),
        auth_ids,
        depth,
        origin_server_ts,
        content,
        redacts,
        rv,
        implied,
        pdu_json,
    )
    return event, digest


def _with_implied_create(room_id: str, auth_ids: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """RV 12: ``auth_ids`` with the create event the room ID names appended unless listed, and
    whether it was appended (``Event.implied_create_auth``). Room version 12
    (``rooms/v12.md``; MSC4291, digest §6.5): the room ID is the create event's ID with ``!``
    for ``$``, and the create event is not in ``auth_events``."""
    create_id = "$" + room_id[1:]
    if create_id in auth_ids:
        return auth_ids, False
    return (*auth_ids, create_id), True


def _event_id_of(redacted: str, rv: RoomVersion) -> str:
    # RV 3+: "$" + the reference hash (SHA-256 of the redacted form's canonical JSON).
    return _event_id_from_hash(hashlib.sha256(redacted.encode("utf-8")).digest(), rv)


def _event_id_from_hash(ref: bytes, rv: RoomVersion) -> str:
    # The event ID of the reference hash ``ref``: "$" + unpadded base64, URL-safe from RV 4
    # (hashes.py rule 3): 43 characters, what unpadded_base64 does.
    b64 = binascii.b2a_base64(ref, newline=False)[:43]
    if rv.event_id_format is _URLSAFE_IDS:
        b64 = b64.translate(_URLSAFE)
    return "$" + b64.decode("ascii")


def _id_list_text(ids: tuple[str, ...]) -> str:
    # Canonical JSON of an array of strings (RV 3+ edges, already checked to be strings).
    return "[" + ",".join(map(_quote, ids)) + "]"


def _value_text(value: object) -> str:
    # Canonical JSON text of any value (strings without the encoder's set-up).
    return _quote(value) if type(value) is str else _encode_text(value)


# The members the content hash leaves out, each with the bytes that start it after a comma.
_UNSIGNED_TAGS = tuple(
    (k, b',"' + k.encode() + b'":') for k in ("hashes", "signatures", "unsigned")
)
# "key": of the members most PDUs carry beyond the ones checked field by field.
_MEMBER_PREFIX = {k: encode_json_string(k) + ":" for k in ("hashes", "signatures", "unsigned")}
