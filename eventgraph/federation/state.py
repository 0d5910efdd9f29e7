"""Server-side answers of ``/state``, ``/state_ids`` and ``/event_auth`` (digest §3.1–3.4).

Rules of this module:

1. ``/state`` and ``/state_ids`` return the state *before* the event — "prior to considering any
   state changes induced by the requested event" — and the auth chain of those state events
   (their auth events, recursively; the state events themselves appear in it only when one is in
   another's chain), as Synapse answers them (``research/synapse.md`` §3.1).
2. ``/event_auth`` returns the auth chain of the event: its auth events and theirs, recursively,
   without the event itself (the spec does not say; Synapse omits it).
3. The answer is built for the room of the request: an event of another room, an unknown event,
   an outlier or a rejected event (for ``/state``/``/state_ids``) raise
   :class:`~eventgraph.EventNotFoundError` (404 ``M_NOT_FOUND``: "the server doesn't know about
   the state at that event"). Server ACLs and the requester's membership are the host's checks.
4. Lists are sorted by event ID (the spec gives no order), so answers are deterministic.
"""

from __future__ import annotations

from ..errors import EventNotFoundError
from ..events.canonical_json import JsonValue
from ..graph.auth_chain import auth_chain_ids
from ..protocols import StateStore
from ..state.state_at import state_ids_before

__all__ = ["event_auth_response", "state_ids_response", "state_response"]


def _check_event(store: StateStore, room_id: str, event_id: str, *, need_state: bool) -> None:
    facts = store.get_facts((event_id,)).get(event_id)
    if facts is None or facts.room_id != room_id:
        raise EventNotFoundError(f"event {event_id} is not known in room {room_id}")
    if need_state and facts.rejected is not None:
        raise EventNotFoundError(f"event {event_id} was rejected")


def _state_and_chain(store: StateStore, room_id: str, event_id: str) -> tuple[list[str], list[str]]:
    _check_event(store, room_id, event_id, need_state=True)
    state_ids = sorted(set(state_ids_before(store, event_id).values()))
    chain = sorted(auth_chain_ids(store, state_ids))
    return state_ids, chain


def state_ids_response(store: StateStore, room_id: str, event_id: str) -> dict[str, JsonValue]:
    """The body of ``GET /_matrix/federation/v1/state_ids/{roomId}?event_id=...``.

    Returns:
        ``{"pdu_ids": [...], "auth_chain_ids": [...]}``, each sorted.

    Raises:
        EventNotFoundError: unknown event, another room's, an outlier or rejected (rule 3).

    Spec: server-server API ``GET /state_ids`` (digest §3.2).

    Complexity: one state read (O(state size)) plus the auth chain of the state events.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> body = state_ids_response(store, "!room:a.example", ids["topic"])
        >>> len(body["pdu_ids"]), len(body["auth_chain_ids"])
        (4, 3)
    """
    pdu_ids, chain = _state_and_chain(store, room_id, event_id)
    return {"pdu_ids": list(pdu_ids), "auth_chain_ids": list(chain)}


def state_response(store: StateStore, room_id: str, event_id: str) -> dict[str, JsonValue]:
    """The body of ``GET /_matrix/federation/v1/state/{roomId}?event_id=...``.

    Returns:
        ``{"pdus": [...], "auth_chain": [...]}``: the PDUs as stored, sorted by event ID.

    Raises:
        EventNotFoundError: as :func:`state_ids_response`.

    Spec: server-server API ``GET /state`` (digest §3.1).

    Complexity: as :func:`state_ids_response`, plus loading the events in one batch.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> body = state_response(store, "!room:a.example", ids["message"])
        >>> sorted(p["type"] for p in body["pdus"])[-1]
        'm.room.topic'
    """
    pdu_ids, chain = _state_and_chain(store, room_id, event_id)
    events = store.get_events([*pdu_ids, *chain])
    pdus: list[JsonValue] = [events[i].to_pdu() for i in pdu_ids if i in events]
    auth: list[JsonValue] = [events[i].to_pdu() for i in chain if i in events]
    return {"pdus": pdus, "auth_chain": auth}


def event_auth_response(store: StateStore, room_id: str, event_id: str) -> dict[str, JsonValue]:
    """The body of ``GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}`` (rule 2).

    Returns:
        ``{"auth_chain": [...]}``: the PDUs, sorted by event ID.

    Raises:
        EventNotFoundError: unknown event, or one of another room.

    Spec: server-server API ``GET /event_auth`` (digest §3.4).

    Complexity: the auth chain of one event, loaded in one batch.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room
        >>> store, ids = tiny_room()
        >>> len(event_auth_response(store, "!room:a.example", ids["topic"])["auth_chain"])
        3
    """
    _check_event(store, room_id, event_id, need_state=False)
    chain = sorted(auth_chain_ids(store, (event_id,)))
    events = store.get_events(chain)
    pdus: list[JsonValue] = [events[i].to_pdu() for i in chain if i in events]
    return {"auth_chain": pdus}
