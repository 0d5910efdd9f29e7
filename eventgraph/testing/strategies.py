"""Hypothesis strategies and builders for room DAGs (public: homeserver authors test with them).

Rules of this module:

1. Every generated DAG is drawn *in topological order*: each new event draws its
   ``prev_events`` and ``auth_events`` from events drawn before it, so the graph is acyclic by
   construction and shrinks towards tiny graphs.
2. Every event is a valid :class:`~eventgraph.Event`, built with
   :meth:`~eventgraph.Event.from_trusted_pdu` (readable placeholder IDs, every room version).
3. Knobs follow the attrs pattern: ``None`` means "draw it", a value pins it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..events.canonical_json import JsonValue
from ..events.event import Event
from ..events.room_versions import EventFormat, RoomVersion, room_version

__all__ = ["make_event"]

_FAKE_HASH: dict[str, JsonValue] = {"sha256": "AAAA"}


def make_event(
    event_id: str,
    *,
    room_id: str = "!room:a.example",
    version: str | RoomVersion = "10",
    prev: Sequence[str] = (),
    auth: Sequence[str] = (),
    depth: int = 1,
    type: str | None = None,
    state_key: str | None = None,
    sender: str = "@u:a.example",
    content: Mapping[str, JsonValue] | None = None,
    origin_server_ts: int = 0,
) -> Event:
    """Build a trusted event with the given ID and edges, for tests, docs and benchmarks.

    ``type`` defaults to ``m.room.message`` for a non-state event and ``m.test.state`` for a
    state event. In room version 12 an ``m.room.create`` event carries no ``room_id`` (its room
    is ``!`` + its ID without ``$``), and every other event gets the implied create event
    ``$`` + ``room_id`` without ``!`` appended to its auth events by :class:`Event` itself.

    >>> ev = make_event("$b", prev=("$a",), auth=("$c",), depth=2, version="1")
    >>> ev.prev_event_ids, ev.auth_event_ids, ev.depth, ev.room_version.identifier
    (('$a',), ('$c',), 2, '1')
    """
    rv = room_version(version)
    if type is None:
        type = "m.room.message" if state_key is None else "m.test.state"
    pairs = rv.event_format is EventFormat.V1

    def edges(ids: Sequence[str]) -> list[JsonValue]:
        if pairs:
            return [[i, _FAKE_HASH] for i in ids]
        return list(ids)

    pdu: dict[str, JsonValue] = {
        "type": type,
        "sender": sender,
        "content": dict(content) if content is not None else {},
        "depth": depth,
        "origin_server_ts": origin_server_ts,
        "prev_events": edges(prev),
        "auth_events": edges(auth),
    }
    if not (rv.room_id_is_create_event_id and type == "m.room.create"):
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    return Event.from_trusted_pdu(pdu, rv, event_id=event_id, backfilled=True)
