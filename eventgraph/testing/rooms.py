"""Small hand-driven rooms for tests and docs: a PDU builder with forks and concurrent state.

Rules of this module:

1. :class:`RoomBuilder` writes real federation PDUs (correct content hashes, IDs computed by
   :meth:`~eventgraph.Event.from_pdu`, ``signatures`` empty: use
   :class:`~eventgraph.room.NoSignatureChecks`). The caller chooses each event's
   ``prev_events``, so forks, merges and concurrent state changes are explicit.
2. ``auth_events`` are chosen by the auth events selection from the builder's *own* view of the
   state before the event: the states after the prevs, merged by state resolution, *without*
   knowing which events a server would reject. So a builder can write events a server rejects
   (bans by demoted moderators, joins after a join-rule flip): that is the point.
3. :func:`room_memory_store` returns the in-memory store with the state-group protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..events.auth_selection import auth_types_for_event
from ..events.canonical_json import JsonValue
from ..events.event import Event, StateKey
from ..events.hashes import content_hash, unpadded_base64
from ..events.room_versions import RoomVersion, room_version
from ..protocols import RoomStore
from ..state.resolution import resolve_state
from ..stores.memory import MemoryStore

__all__ = ["RoomBuilder", "room_memory_store", "tiny_room", "tiny_room_pdus"]


def room_memory_store() -> MemoryStore:
    """A new :class:`~eventgraph.MemoryStore` (it implements the state-group protocols).

    >>> len(room_memory_store())
    0
    """
    return MemoryStore()


class RoomBuilder:
    """Writes the PDUs of one room, event by event, with explicit ``prev_events`` (rule 1).

    Args:
        version: the room version.
        room_id: the room ID (ignored in room version 12, where the create event names it).
        server: the server name of every generated user.

    Examples:
        >>> b = RoomBuilder("11")
        >>> tips = b.bootstrap(["@bob:a.example"])
        >>> t1 = b.state("m.room.topic", "", {"topic": "one"}, prev=tips)
        >>> t2 = b.state("m.room.topic", "", {"topic": "two"}, prev=tips,
        ...              sender="@bob:a.example")
        >>> merge = b.message("@alice:a.example", prev=[t1, t2])
        >>> len(b.pdus), b.state_after(merge)[("m.room.topic", "")] in (t1, t2)
        (8, True)
    """

    def __init__(
        self,
        version: str | RoomVersion = "11",
        *,
        room_id: str = "!room:a.example",
        creator: str = "@alice:a.example",
    ) -> None:
        self.version = room_version(version)
        self.room_id = room_id
        self.creator = creator
        self.pdus: list[dict[str, JsonValue]] = []
        self.events: dict[str, Event] = {}
        self._after: dict[str, dict[StateKey, str]] = {}
        self._store = MemoryStore()
        self._ts = 1_000_000

    # -- building -------------------------------------------------------------------------------

    def bootstrap(self, members: Sequence[str] = ()) -> list[str]:
        """Create the room: create, creator join, power levels (creator 100), public join
        rules, then a join per member. Returns ``[tip]``."""
        rv = self.version
        content: dict[str, JsonValue] = {"room_version": rv.identifier}
        if not rv.implicit_room_creator:
            content["creator"] = self.creator
        create = self.state("m.room.create", "", content, prev=[])
        if rv.room_id_is_create_event_id:
            self.room_id = "!" + create[1:]
        tip = self.state("m.room.member", self.creator, {"membership": "join"}, prev=[create])
        users: dict[str, JsonValue] = {} if rv.creators_have_infinite_power else {self.creator: 100}
        tip = self.state(
            "m.room.power_levels", "", {"users": users, "state_default": 50, "ban": 50}, prev=[tip]
        )
        tip = self.state("m.room.join_rules", "", {"join_rule": "public"}, prev=[tip])
        for member in members:
            tip = self.state(
                "m.room.member", member, {"membership": "join"}, prev=[tip], sender=member
            )
        return [tip]

    def message(self, sender: str, *, prev: Sequence[str], body: str = "hi") -> str:
        """A ``m.room.message`` event; returns its ID."""
        return self.add("m.room.message", sender, {"body": body, "msgtype": "m.text"}, prev=prev)

    def state(
        self,
        type: str,
        state_key: str,
        content: Mapping[str, JsonValue],
        *,
        prev: Sequence[str],
        sender: str | None = None,
    ) -> str:
        """A state event; returns its ID."""
        return self.add(type, sender or self.creator, content, prev=prev, state_key=state_key)

    def add(
        self,
        type: str,
        sender: str,
        content: Mapping[str, JsonValue],
        *,
        prev: Sequence[str],
        state_key: str | None = None,
    ) -> str:
        """Any event; returns its ID (rule 2 for its ``auth_events``)."""
        rv = self.version
        before = self._before(prev)
        keys = auth_types_for_event(rv, type, sender, state_key, content)
        auth = [before[k] for k in keys if k in before]
        if type != "m.room.create" and not rv.room_id_is_create_event_id:
            create = before.get(("m.room.create", ""))
            if create is not None and create not in auth:
                auth.insert(0, create)
        depth = 1 + max((self.events[p].depth for p in prev if p in self.events), default=0)
        self._ts += 1
        pdu: dict[str, JsonValue] = {
            "type": type,
            "sender": sender,
            "content": dict(content),
            "depth": depth,
            "origin_server_ts": self._ts,
            "prev_events": list(prev),
            "auth_events": list(auth),
        }
        if not (rv.room_id_is_create_event_id and type == "m.room.create"):
            pdu["room_id"] = self.room_id
        if state_key is not None:
            pdu["state_key"] = state_key
        if not rv.uses_reference_hash_ids:
            pdu["event_id"] = f"${len(self.pdus) + 1}:a.example"
            pdu["prev_events"] = [[p, {"sha256": "x"}] for p in prev]
            pdu["auth_events"] = [[a, {"sha256": "x"}] for a in auth]
        pdu["hashes"] = {"sha256": unpadded_base64(content_hash(pdu))}
        pdu["signatures"] = {}
        event = Event.from_pdu(pdu, rv, backfilled=True)
        self.pdus.append(pdu)
        self.events[event.event_id] = event
        self._store.add_events([event])
        after = dict(before)
        if state_key is not None:
            after[(type, state_key)] = event.event_id
        self._after[event.event_id] = after
        return event.event_id

    def state_after(self, event_id: str) -> dict[StateKey, str]:
        """The builder's own view of the state after an event (rule 2: no rejections)."""
        return dict(self._after[event_id])

    def _before(self, prev: Sequence[str]) -> dict[StateKey, str]:
        known = [p for p in prev if p in self._after]  # unknown prevs: a deliberate gap
        if not known:
            return {}
        if len(known) == 1:
            return dict(self._after[known[0]])
        return resolve_state(self.version, [self._after[p] for p in known], self._store)


def tiny_room_pdus() -> list[dict[str, JsonValue]]:
    """The PDUs of a tiny room version 11 room: create, join, power levels, join rules, a
    topic and a message.

    >>> [p["type"] for p in tiny_room_pdus()][-2:]
    ['m.room.topic', 'm.room.message']
    """
    b = RoomBuilder("11")
    tips = b.bootstrap()
    topic = b.state("m.room.topic", "", {"topic": "tiny"}, prev=tips)
    b.message(b.creator, prev=[topic])
    return b.pdus


def tiny_room() -> tuple[RoomStore, dict[str, str]]:
    """A store holding :func:`tiny_room_pdus`, ingested; and the IDs of its ``topic`` and
    ``message`` events.

    >>> store, ids = tiny_room()
    >>> sorted(ids)
    ['message', 'topic']
    """
    from ..room import NoSignatureChecks, Room  # the room layer sits above testing's imports

    store = room_memory_store()
    pdus = tiny_room_pdus()
    report = Room(store, "11", verifier=NoSignatureChecks()).add(pdus)
    ids = [o.event_id for o in report.outcomes]
    topic, message = ids[-2], ids[-1]
    assert topic is not None
    assert message is not None
    return store, {"topic": topic, "message": message}
