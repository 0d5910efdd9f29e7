"""The straightforward parser that :mod:`eventgraph.events.event` is tested against.

:func:`parse_reference` is the parser as first written: every check in the same order, then the
plain way to the bytes and the ID — encode the whole PDU, redact it with
:func:`~eventgraph.events.redaction.redact_unchecked`, encode the redacted form, SHA-256. The fast
parser in ``event.py`` builds both encodings from parts; property tests hold the two parsers to
the same events, the same bytes and the same refusals. Nothing in the library calls this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from .canonical_json import FrozenDict, check_json, encode_canonical_json, freeze_json
from .event import (
    _CHECKED_TOP_LEVEL,
    _CHECKED_TOP_LEVEL_V11,
    _SHORT,
    MAX_AUTH_EVENTS,
    MAX_EVENT_SIZE,
    MAX_PREV_EVENTS,
    Event,
    _bad,
    _check_length,
    _edges,
    _event_id_ref,
    _flat_strings,
    _integer,
    _string,
)
from .hashes import unpadded_base64
from .redaction import redact_unchecked
from .room_versions import EventFormat, EventIdFormat, RedactionRules, RoomVersion

__all__ = ["parse_reference"]


def parse_reference(
    pdu: object, rv: RoomVersion, *, backfilled: bool, trusted_id: str | None
) -> Event:
    """``Event.from_pdu`` (``trusted_id`` None) or ``Event.from_trusted_pdu``, done plainly.

    The full PDU and its redacted form are each encoded on their own with the plain encoder;
    the event is built through ``Event.__init__`` with keywords.
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

    is_v12_create = rv.event_format is EventFormat.V3 and event_type == "m.room.create"
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
    others = pdu.keys() - (
        _CHECKED_TOP_LEVEL_V11 if rv.redaction_rules is RedactionRules.V11 else _CHECKED_TOP_LEVEL
    )
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
    if rv.redaction_rules is RedactionRules.V11:
        r = content.get("redacts") if event_type == "m.room.redaction" else None
        redacts = r if type(r) is str else None
    else:
        r = pdu.get("redacts")
        if r is not None:
            redacts = _event_id_ref(r, "redacts", byte_limits)

    # The PDU as stored: without a top-level event_id from RV 3 on (the ID is not on the wire).
    server_assigned = rv.event_id_format is EventIdFormat.SERVER_ASSIGNED
    if not server_assigned and "event_id" in pdu:
        if not trusted:
            raise _bad("a room version 3+ PDU must not carry an 'event_id'")
        pdu = {k: v for k, v in pdu.items() if k != "event_id"}
    elif trusted_id is not None and server_assigned and "event_id" not in pdu:
        pdu = {**pdu, "event_id": trusted_id}
    pdu_json = encode_canonical_json(pdu)
    if len(pdu_json) > MAX_EVENT_SIZE:
        raise _bad(f"the event is larger than {MAX_EVENT_SIZE} bytes ({len(pdu_json)})")

    if trusted_id is not None:
        event_id = trusted_id
        if server_assigned and pdu.get("event_id") not in (
            None,
            trusted_id,
        ):
            raise _bad("the trusted event ID differs from the PDU's 'event_id'")
    elif server_assigned:
        event_id = _string(pdu, "event_id", byte_limits)
        if not event_id.startswith("$") or ":" not in event_id:
            raise _bad("'event_id' must have the form $opaque:domain")
    else:
        redacted = redact_unchecked(
            pdu, rv.redaction_rules, event_type, raw_content, for_hashing=True
        )
        digest = hashlib.sha256(encode_canonical_json(redacted)).digest()
        urlsafe = rv.event_id_format is EventIdFormat.REFERENCE_HASH_URLSAFE
        event_id = "$" + unpadded_base64(digest, urlsafe=urlsafe)

    implied = False
    if rv.room_id_is_create_event_id:
        if is_v12_create:
            room_id = "!" + event_id[1:]
        else:
            assert room_id is not None
            create_id = "$" + room_id[1:]
            if create_id not in auth_ids:
                auth_ids = (*auth_ids, create_id)
                implied = True
    assert room_id is not None

    return Event(
        event_id=event_id,
        room_id=room_id,
        type=event_type,
        state_key=state_key,
        sender=sender,
        prev_event_ids=prev_ids,
        auth_event_ids=auth_ids,
        depth=depth,
        origin_server_ts=origin_server_ts,
        content=content,
        redacts=redacts,
        room_version=rv,
        implied_create_auth=implied,
        pdu_json=pdu_json,
    )
