"""The checks every store makes on a write batch before touching anything (protocols rule 3).

One function, shared by the bundled stores, so they refuse exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from ..errors import StoreError
from ..events.event import Event
from ..events.room_versions import RoomVersion

__all__ = ["check_batch"]


def check_batch(
    events: Iterable[Event],
    outliers: Collection[str],
    rejected: Mapping[str, str],
    soft_failed: Collection[str],
    *,
    stored_event: Callable[[str], Event | None] = lambda _: None,
    stored_version: Callable[[str], RoomVersion | None] = lambda _: None,
) -> tuple[list[Event], dict[str, RoomVersion]]:
    """Check a batch against itself (and what the caller knows is stored).

    Args:
        events: the batch.
        outliers, rejected, soft_failed: the flags of the write, by event ID.
        stored_event: the stored event with an ID, if the caller can tell cheaply.
        stored_version: a room's stored room version, if the caller can tell cheaply.

    Returns:
        The batch without repeated events, in order, and the room version of each room in it.

    Raises:
        StoreError: a non-event; a different event under an ID stored or earlier in the batch;
            a room with two room versions; flags naming events not in the batch; a rejection
            reason that is not a string.

    Complexity: O(size of the batch).
    """
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
    return batch, versions
