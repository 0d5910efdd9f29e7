"""Content hashes, reference hashes and event IDs (digest §4.4–4.6).

Rules of this module:

1. Content hash (server-server API "Calculating the content hash for an event"): remove
   ``unsigned``, ``signatures`` and ``hashes``; encode as canonical JSON; SHA-256. It covers the
   *unredacted* event and goes into ``hashes.sha256`` as unpadded standard base64. (Synapse also
   drops ``age_ts``, ``outlier`` and ``destinations``; the spec does not, and neither do we.)
2. Reference hash ("Calculating the reference hash for an event"): redact under the room
   version's rules; remove ``signatures`` and ``unsigned``; canonical JSON; SHA-256.
3. Event IDs: RV 1–2 carry theirs in the PDU; RV 3 is ``$`` + the reference hash in standard
   unpadded base64; RV 4+ use URL-safe unpadded base64. A room version 12 room ID is the create
   event's ID with the ``!`` sigil.
4. Hashing never validates numbers: old (RV 1–5) events may break canonical JSON's integer
   range and must still hash as their senders hashed them.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Mapping

from ..errors import InvalidEventError
from .canonical_json import JsonValue, encode_canonical_json
from .redaction import redact
from .room_versions import EventIdFormat, RoomVersion, room_version

_URLSAFE = bytes.maketrans(b"+/", b"-_")

__all__ = [
    "compute_event_id",
    "content_hash",
    "reference_hash",
    "unpadded_base64",
]


def unpadded_base64(data: bytes, *, urlsafe: bool = False) -> str:
    """Encode bytes as unpadded base64 (standard alphabet unless ``urlsafe``).

    >>> unpadded_base64(b"\\xfb\\xff")
    '+/8'
    >>> unpadded_base64(b"\\xfb\\xff", urlsafe=True)
    '-_8'
    """
    encoded = binascii.b2a_base64(data, newline=False).rstrip(b"=")
    if urlsafe:
        encoded = encoded.translate(_URLSAFE)
    return encoded.decode("ascii")


def content_hash(pdu: Mapping[str, JsonValue]) -> bytes:
    """The SHA-256 content hash of a PDU (rule 1), as raw bytes.

    ``hashes.sha256`` of a correctly hashed event equals ``unpadded_base64(content_hash(pdu))``.

    Spec: server-server API, "Calculating the content hash for an event".

    Raises:
        InvalidEventError: ``pdu`` is not an object or cannot be encoded as JSON.

    >>> pdu = {"event_id": "$0:domain", "origin_server_ts": 1000000, "signatures": {},
    ...        "type": "X", "content": {}, "unsigned": {"age_ts": 1000000}}
    >>> unpadded_base64(content_hash(pdu))
    'mq4QfPPpC+QsBd6eqfVsmJIEz8uvMSVK0+AU67PLESk'
    """
    if not isinstance(pdu, Mapping):
        raise InvalidEventError("a PDU must be a JSON object")
    stripped = {k: v for k, v in pdu.items() if k not in ("unsigned", "signatures", "hashes")}
    return hashlib.sha256(encode_canonical_json(stripped)).digest()


def _reference_hash_of(redacted: dict[str, JsonValue]) -> bytes:
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def reference_hash(pdu: Mapping[str, JsonValue], version: str | RoomVersion) -> bytes:
    """The SHA-256 reference hash of a PDU under its room version (rule 2), as raw bytes.

    Spec: server-server API, "Calculating the reference hash for an event".

    Raises:
        InvalidEventError: the PDU cannot be redacted or encoded.
        UnsupportedRoomVersionError: unknown room version.
    """
    return _reference_hash_of(redact(pdu, version))


def compute_event_id(pdu: Mapping[str, JsonValue], version: str | RoomVersion) -> str:
    """The event ID of a room version 3+ PDU (rule 3).

    The PDU must not carry an ``event_id`` (room versions 3+ have none on the wire).

    Raises:
        InvalidEventError: the room version assigns IDs in the PDU (RV 1–2), or the PDU carries
            an ``event_id``, or it cannot be redacted or encoded.

    >>> pdu = {"type": "m.room.message", "content": {}, "room_id": "!r:a", "sender": "@u:a",
    ...        "depth": 3, "origin_server_ts": 5, "prev_events": [], "auth_events": [],
    ...        "hashes": {"sha256": "x"}, "signatures": {}}
    >>> compute_event_id(pdu, "3") != compute_event_id(pdu, "4")
    True
    """
    rv = room_version(version)
    if rv.event_id_format is EventIdFormat.SERVER_ASSIGNED:
        msg = f"room version {rv.identifier} event IDs are assigned by the origin server"
        raise InvalidEventError(msg)
    if isinstance(pdu, Mapping) and "event_id" in pdu:
        raise InvalidEventError("a room version 3+ PDU must not carry an 'event_id'")
    digest = reference_hash(pdu, rv)
    urlsafe = rv.event_id_format is EventIdFormat.REFERENCE_HASH_URLSAFE
    return "$" + unpadded_base64(digest, urlsafe=urlsafe)
