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

import attrs
from hypothesis import strategies as st

from ..events.canonical_json import FrozenDict, JsonValue
from ..events.event import Event
from ..events.room_versions import EventFormat, RoomVersion, room_version
from ..protocols import EventWriter

__all__ = ["RoomDag", "make_event", "room_dags"]

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


@attrs.frozen(repr=False)
class RoomDag:
    """A generated room DAG: events in topological order plus the flags to store them with.

    Attributes:
        room_id: the main room's ID.
        room_version: the main room's version.
        events: every generated event that exists, in topological order (each event's edges
            point only to earlier events or to ``missing_ids``). Includes events of
            ``other_room_id``.
        missing_ids: IDs that edges point to but that are not in ``events`` (gaps).
        outliers: IDs to store as outliers.
        rejected: ID → rejection reason, for events to store as rejected.
        soft_failed: IDs to store as soft-failed.
        other_room_id: the ID of the second room whose events are mixed in.
    """

    room_id: str
    room_version: RoomVersion
    events: tuple[Event, ...]
    missing_ids: frozenset[str]
    outliers: frozenset[str]
    rejected: Mapping[str, str]
    soft_failed: frozenset[str]
    other_room_id: str

    def __repr__(self) -> str:
        def edges(ids: Sequence[str]) -> str:
            return ",".join(i[1:] for i in ids)

        lines = [f"RoomDag(v{self.room_version.identifier} {self.room_id}"]
        for e in self.events:
            flags = "".join(
                flag
                for flag, on in (
                    (" outlier", e.event_id in self.outliers),
                    (" rejected", e.event_id in self.rejected),
                    (" soft-failed", e.event_id in self.soft_failed),
                    (" other-room", e.room_id != self.room_id),
                )
                if on
            )
            sk = "" if e.state_key is None else f" {e.type}/{e.state_key}"
            lines.append(
                f"  {e.event_id} d={e.depth} prev=[{edges(e.prev_event_ids)}] "
                f"auth=[{edges(e.auth_event_ids)}]{sk}{flags}"
            )
        lines.append(f"  missing={sorted(self.missing_ids)})")
        return "\n".join(lines)

    @property
    def event_ids(self) -> tuple[str, ...]:
        """The IDs of ``events``, in order."""
        return tuple(e.event_id for e in self.events)

    def store_into(self, store: EventWriter, order: Sequence[int] | None = None) -> None:
        """Add the events to ``store`` one at a time, in ``order`` (indexes into ``events``;
        default: topological), each with its flags."""
        indexes = range(len(self.events)) if order is None else order
        for index in indexes:
            event = self.events[index]
            i = event.event_id
            store.add_events(
                [event],
                outliers=(i,) if i in self.outliers else (),
                rejected={i: self.rejected[i]} if i in self.rejected else None,
                soft_failed=(i,) if i in self.soft_failed else (),
            )


_STATE_TYPES = ("m.room.member", "m.room.power_levels", "m.room.join_rules", "m.test.state")


def _rate(draw: st.DrawFn, pinned: float | None) -> int:
    """A percentage: the pinned rate, or one drawn from a few typical values."""
    if pinned is not None:
        return round(pinned * 100)
    return draw(st.sampled_from((0, 10, 30)))


def _hit(draw: st.DrawFn, percent: int) -> bool:
    return percent > 0 and draw(st.integers(0, 99)) < percent


@st.composite
def room_dags(
    draw: st.DrawFn,
    *,
    room_versions: Sequence[str] | None = None,
    min_events: int = 1,
    max_events: int = 25,
    max_prevs: int = 3,
    max_auths: int = 3,
    fork_rate: float | None = None,
    gap_rate: float | None = None,
    outlier_rate: float | None = None,
    rejected_rate: float | None = None,
    soft_failed_rate: float | None = None,
    lying_depth_rate: float | None = None,
    foreign_rate: float | None = None,
    state_rate: float | None = None,
    depth_above_auth: bool = False,
) -> RoomDag:
    """A strategy for room DAGs drawn in topological order (module rule 1).

    Event 0 is the room's create event. Each later event draws its ``prev_events`` (a fork
    when it skips the latest event, a merge when it has several) and, for every event, its
    ``auth_events`` among earlier *state* events. Knobs: a rate of ``None`` is drawn, a number
    pins it (0 turns the feature off).

    Args:
        room_versions: the versions to draw from (default: every version 1–12).
        min_events: the fewest events (before gaps are cut out).
        max_events: the most events.
        max_prevs: the most ``prev_events`` per event.
        max_auths: the most ``auth_events`` drawn per event (besides the create event).
        fork_rate: how often an event's prevs are drawn anywhere rather than the latest event.
        gap_rate: how often an event is withheld (its ID stays referenced: a gap).
        outlier_rate: how often an event is flagged outlier.
        rejected_rate: how often an event is flagged rejected.
        soft_failed_rate: how often an event is flagged soft-failed.
        lying_depth_rate: how often an event's depth is drawn anywhere in ``0 .. max_depth``
            instead of one more than its deepest prev.
        foreign_rate: how often an event belongs to another room (edges cross rooms both ways).
        state_rate: how often an event is a state event.
        depth_above_auth: each (truthful) depth is also above the depths of the event's auth
            events, as in rooms whose auth events are prev ancestors (real rooms: auth events
            come from the state before the event).

    >>> from hypothesis import find
    >>> dag = find(room_dags(room_versions=["12"], min_events=3), lambda d: len(d.events) >= 3)
    >>> dag.room_version.identifier, dag.events[0].type
    ('12', 'm.room.create')
    """
    versions = tuple(room_versions) if room_versions is not None else _ALL_VERSIONS
    rv = room_version(draw(st.sampled_from(versions)))
    n = draw(st.integers(max(1, min_events), max(1, min_events, max_events)))
    fork = _rate(draw, fork_rate)
    gap = _rate(draw, gap_rate)
    outlier = _rate(draw, outlier_rate)
    rejected_p = _rate(draw, rejected_rate)
    soft = _rate(draw, soft_failed_rate)
    lying = _rate(draw, lying_depth_rate)
    foreign = _rate(draw, foreign_rate)
    state_p = 50 if state_rate is None else round(state_rate * 100)
    # Labels unrelated to topological order, so event-ID tie-breaks are really exercised.
    labels = draw(st.permutations(range(n)))
    ids = [f"$e{labels[i]:03d}" for i in range(n)]
    room_id = "!" + ids[0][1:] if rv.room_id_is_create_event_id else "!dag:a.example"
    other_room_id = "!other:b.example"

    events: list[Event] = []
    depths: list[int] = []
    state_indexes: list[int] = []
    missing: set[str] = set()
    outliers: set[str] = set()
    rejected: dict[str, str] = {}
    soft_failed: set[str] = set()
    for i in range(n):
        if i == 0:
            ev = make_event(
                ids[0],
                room_id=room_id,
                version=rv,
                type="m.room.create",
                state_key="",
                sender="@creator:a.example",
            )
            events.append(ev)
            depths.append(1)
            state_indexes.append(0)
            continue
        in_other = _hit(draw, foreign)
        if _hit(draw, fork):
            prev_idx = draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=max_prevs))
        else:
            prev_idx = [i - 1]
        prev_idx = sorted(set(prev_idx))
        auth_idx = sorted(
            set(draw(st.lists(st.sampled_from(state_indexes), max_size=max_auths))) | {0}
        )
        if rv.room_id_is_create_event_id and not in_other:
            auth_idx = [a for a in auth_idx if a != 0]  # implied by the room ID (RV 12)
        below = prev_idx + auth_idx if depth_above_auth else prev_idx
        depth = min(max((depths[p] for p in below), default=0) + 1, rv.max_depth)
        if _hit(draw, lying):
            depth = draw(st.sampled_from((0, 1, rv.max_depth, depth - 1, depth + 5)))
            depth = min(max(depth, 0), rv.max_depth)
        is_state = _hit(draw, state_p)
        ev = make_event(
            ids[i],
            room_id=other_room_id if in_other else room_id,
            version=rv,
            prev=[ids[p] for p in prev_idx],
            auth=[ids[a] for a in auth_idx],
            depth=depth,
            type=draw(st.sampled_from(_STATE_TYPES)) if is_state else "m.room.message",
            state_key=f"@u{draw(st.integers(0, 3))}:a.example" if is_state else None,
        )
        depths.append(depth)
        if is_state:
            state_indexes.append(i)
        if _hit(draw, gap):
            missing.add(ids[i])
            continue
        events.append(ev)
        if _hit(draw, outlier):
            outliers.add(ids[i])
        if _hit(draw, rejected_p):
            rejected[ids[i]] = "generated"
        elif _hit(draw, soft):
            soft_failed.add(ids[i])
    return RoomDag(
        room_id=room_id,
        room_version=rv,
        events=tuple(events),
        missing_ids=frozenset(missing),
        outliers=frozenset(outliers),
        rejected=FrozenDict(rejected),
        soft_failed=frozenset(soft_failed),
        other_room_id=other_room_id,
    )


_ALL_VERSIONS = tuple(str(n) for n in range(1, 13))
