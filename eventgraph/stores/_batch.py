"""The checks every store makes on a write batch before touching anything (protocols rule 3).

One function, shared by the bundled stores, so they refuse exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Set
from operator import attrgetter

from ..errors import StoreError
from ..events.event import Event
from ..events.room_versions import RoomVersion

__all__ = ["check_batch"]

_EVENT_ID = attrgetter("event_id")
_ROOM_ID = attrgetter("room_id")
_ROOM_VERSION = attrgetter("room_version")


def check_batch(
    events: Iterable[Event],
    outliers: Collection[str],
    rejected: Mapping[str, str],
    soft_failed: Collection[str],
    *,
    stored_event: Callable[[str], Event | None] = lambda _: None,
    stored_version: Callable[[str], RoomVersion | None] = lambda _: None,
    stored_ids: Set[str] | None = None,
) -> tuple[list[Event], dict[str, RoomVersion]]:
    """Check a batch against itself (and what the caller knows is stored).

    Args:
        events: the batch.
        outliers, rejected, soft_failed: the flags of the write, by event ID.
        stored_event: the stored event with an ID, if the caller can tell cheaply.
        stored_version: a room's stored room version, if the caller can tell cheaply.
        stored_ids: the IDs of every stored event, if the caller has them as a set: then a
            batch of new events of one room version (the usual write) is checked in a few
            passes at C speed (:func:`_new_events_of_one_version`), the same checks.

    Returns:
        The batch without repeated events, in order, and the room version of each room in it.

    Raises:
        StoreError: a non-event; a different event under an ID stored or earlier in the batch;
            a room with two room versions; flags naming events not in the batch; a rejection
            reason that is not a string.

    Complexity: O(size of the batch).
    """
    if stored_ids is not None:
        given = list(events)
        fast = _new_events_of_one_version(given, stored_ids, stored_version)
        if fast is not None:
            _check_flags(fast[1], outliers, rejected, soft_failed)
            return given, fast[0]
        events = given
    batch: list[Event] = []
    seen: dict[str, Event] = {}
    versions: dict[str, RoomVersion] = {}
    for event in events:
        if not isinstance(event, Event):
            msg = f"only Event values can be stored, not {type(event).__name__}"
            raise StoreError(msg)
        event_id = event.event_id
        known = seen.get(event_id)
        first = known is None
        if first:
            known = stored_event(event_id)
        if known is not None and known != event:
            msg = f"a different event is already stored as {event_id}"
            raise StoreError(msg)
        room_version = event.room_version
        version = versions.get(event.room_id)
        if version is not room_version:  # (else: the room's version, already checked)
            if version is None:
                version = stored_version(event.room_id)
            if version is not None and version is not room_version and version != room_version:
                msg = (
                    f"room {event.room_id} has room version {version.identifier}, "
                    f"not {room_version.identifier}"
                )
                raise StoreError(msg)
            versions[event.room_id] = room_version
        if first:
            seen[event_id] = event
            batch.append(event)
    _check_flags(seen, outliers, rejected, soft_failed)
    return batch, versions


def _new_events_of_one_version(
    batch: list[Event],
    stored_ids: Set[str],
    stored_version: Callable[[str], RoomVersion | None],
) -> tuple[dict[str, RoomVersion], set[str]] | None:
    """The room version of each room of ``batch`` (in order of first appearance), and the
    batch's IDs, when the
    batch is only :class:`Event` values (not subclasses), with distinct IDs none of which is
    stored, all of one room version object that each room's stored version (if any) equals:
    then :func:`check_batch`'s loop would find nothing to refuse, drop no repeat and return
    these versions. ``None`` otherwise (the loop then decides, and words any refusal).

    Complexity: a few passes over the batch at C speed; one ``stored_version`` call per room.
    """
    if not batch or set(map(type, batch)) != {Event}:
        return None
    ids = set(map(_EVENT_ID, batch))
    if len(ids) != len(batch) or not stored_ids.isdisjoint(ids):
        return None
    if len(set(map(id, map(_ROOM_VERSION, batch)))) != 1:
        return None
    version = batch[0].room_version
    versions = dict.fromkeys(map(_ROOM_ID, batch), version)
    for room_id in versions:
        stored = stored_version(room_id)
        if stored is not None and stored is not version and stored != version:
            return None
    return versions, ids


def _check_flags(
    seen: Collection[str],
    outliers: Collection[str],
    rejected: Mapping[str, str],
    soft_failed: Collection[str],
) -> None:
    """The flags of a write name events of the batch (``seen``: its IDs); rejection reasons
    are strings."""
    for name, flagged in (
        ("outliers", outliers),
        ("rejected", rejected),
        ("soft_failed", soft_failed),
    ):
        for event_id in flagged:
            if event_id not in seen:
                msg = f"'{name}' names {event_id}, which is not in the batch"
                raise StoreError(msg)
    for event_id, reason in rejected.items():
        if not isinstance(reason, str):
            msg = f"the rejection reason of {event_id} must be a string"
            raise StoreError(msg)
