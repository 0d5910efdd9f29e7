"""Room versions 1–12: one frozen table of per-version features.

Rules of this module:

1. Every difference between room versions that eventgraph knows of is a field of
   :class:`RoomVersion`, set in one table below. Code never branches on a version's *name*;
   it looks the version up once (:func:`room_version`) and reads the feature it needs.
2. Each feature names the spec page that introduced it (``content/rooms/vN.md`` in
   matrix-org/matrix-spec; digest §4.3, §5, §6.4, §7).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ..errors import UnsupportedRoomVersionError

__all__ = [
    "KNOWN_ROOM_VERSIONS",
    "EventFormat",
    "EventIdFormat",
    "RedactionRules",
    "RoomVersion",
    "StateResAlgorithm",
    "room_version",
]


class EventFormat(enum.Enum):
    """The shape of a PDU (spec: the ``pdu_vN.yaml`` schemas; digest §4.3)."""

    #: RV 1–2: ``event_id`` in the PDU; ``prev_events``/``auth_events`` are ``[id, hashes]`` pairs.
    V1 = 1
    #: RV 3–11: no ``event_id`` in the PDU; edges are plain event IDs.
    V2 = 2
    #: RV 12: as V2, but the create event has no ``room_id`` and is never listed in
    #: ``auth_events`` (the room ID names it) — MSC4291.
    V3 = 3


class EventIdFormat(enum.Enum):
    """How an event ID is made (spec: ``fragments/v1-event-ids.md``, ``rooms/v3.md``,
    ``fragments/v4-event-ids.md``)."""

    #: RV 1–2: ``$opaque:domain``, chosen by the origin server and carried in the PDU.
    SERVER_ASSIGNED = 1
    #: RV 3: ``$`` + reference hash in standard unpadded base64.
    REFERENCE_HASH_STANDARD = 2
    #: RV 4+: ``$`` + reference hash in URL-safe unpadded base64.
    REFERENCE_HASH_URLSAFE = 3


class RedactionRules(enum.Enum):
    """Which redaction algorithm the room version uses (digest §5)."""

    V1 = 1  # RV 1–5: fragments/v1-redactions.md
    V6 = 6  # RV 6–7: fragments/v6-redactions.md (m.room.aliases no longer special)
    V8 = 8  # RV 8: join_rules keeps ``allow``
    V9 = 9  # RV 9–10: fragments/v9-redactions.md (member keeps join_authorised_via_users_server)
    V11 = 11  # RV 11–12: fragments/v11-redactions.md


class StateResAlgorithm(enum.Enum):
    """The state resolution algorithm (digest §7)."""

    V1 = 1  # RV 1: rooms/v1.md "State resolution"
    V2 = 2  # RV 2–11: fragments/v2-state-res.md
    V2_1 = 3  # RV 12: rooms/v12.md (MSC4297)


@attrs.frozen
class RoomVersion:
    """The features of one room version. Obtain instances with :func:`room_version`.

    >>> rv = room_version("11")
    >>> rv.identifier, rv.state_res is StateResAlgorithm.V2, rv.max_depth == 2**53 - 1
    ('11', True, True)
    """

    identifier: str
    event_format: EventFormat
    event_id_format: EventIdFormat
    redaction_rules: RedactionRules
    state_res: StateResAlgorithm
    #: RV 6+: canonical JSON is enforced (integers in [-(2**53)+1, 2**53-1], no floats);
    #: RV 1–5 "MUST NOT strictly enforce" it (fragments/v1-canonical-json.md).
    strict_canonical_json: bool
    #: The largest valid ``depth``: 2**63 - 1 for RV 1–5, 2**53 - 1 for RV 6+ (depth_v6.yaml).
    max_depth: int
    #: RV 1–2 auth rule 11: redactions are authorised by comparing event-ID domains.
    redaction_auth_by_event_id_domain: bool
    #: RV 1–5 auth rule 4: ``m.room.aliases`` is authorised specially (removed in RV 6).
    special_case_aliases_auth: bool
    #: RV 6+: power-level rules also cover ``notifications`` (rooms/v6.md).
    limit_notifications_power_levels: bool
    #: RV 7+: the ``knock`` membership and join rule (rooms/v7.md).
    knock_join_rule: bool
    #: RV 8+: the ``restricted`` join rule and ``join_authorised_via_users_server``.
    restricted_join_rule: bool
    #: RV 10+: the ``knock_restricted`` join rule.
    knock_restricted_join_rule: bool
    #: RV 10+: power-level values must be JSON integers (no strings) (rooms/v10.md).
    integer_power_levels: bool
    #: RV 1–5 accept float power levels (fragments/v1-floaty-power-levels.md).
    float_power_levels: bool
    #: RV 11+: the room creator is the create event's ``sender``; ``content.creator`` is gone.
    implicit_room_creator: bool
    #: RV 11+: the 255-byte field limits count UTF-8 bytes. Before RV 11 interoperating servers
    #: (Synapse's ``strict_event_byte_limits``) counted code points, so events accepted into
    #: old rooms keep validating; we follow them there.
    strict_event_byte_limits: bool
    #: RV 12: creators (create ``sender`` + ``additional_creators``) have infinite power
    #: (MSC4289).
    creators_have_infinite_power: bool
    #: RV 12: the room ID is the create event's ID with the ``!`` sigil (MSC4291).
    room_id_is_create_event_id: bool

    @property
    def uses_reference_hash_ids(self) -> bool:
        """Whether event IDs are computed from the reference hash (RV 3+)."""
        return self.event_id_format is not EventIdFormat.SERVER_ASSIGNED


def _table() -> dict[str, RoomVersion]:
    versions: dict[str, RoomVersion] = {}
    for n in range(1, 13):
        versions[str(n)] = RoomVersion(
            identifier=str(n),
            event_format=(
                EventFormat.V1 if n <= 2 else EventFormat.V2 if n <= 11 else EventFormat.V3
            ),
            event_id_format=(
                EventIdFormat.SERVER_ASSIGNED
                if n <= 2
                else EventIdFormat.REFERENCE_HASH_STANDARD
                if n == 3
                else EventIdFormat.REFERENCE_HASH_URLSAFE
            ),
            redaction_rules=(
                RedactionRules.V1
                if n <= 5
                else RedactionRules.V6
                if n <= 7
                else RedactionRules.V8
                if n == 8
                else RedactionRules.V9
                if n <= 10
                else RedactionRules.V11
            ),
            state_res=(
                StateResAlgorithm.V1
                if n == 1
                else StateResAlgorithm.V2
                if n <= 11
                else StateResAlgorithm.V2_1
            ),
            strict_canonical_json=n >= 6,
            max_depth=2**63 - 1 if n <= 5 else 2**53 - 1,
            redaction_auth_by_event_id_domain=n <= 2,
            special_case_aliases_auth=n <= 5,
            limit_notifications_power_levels=n >= 6,
            knock_join_rule=n >= 7,
            restricted_join_rule=n >= 8,
            knock_restricted_join_rule=n >= 10,
            integer_power_levels=n >= 10,
            float_power_levels=n <= 5,
            implicit_room_creator=n >= 11,
            strict_event_byte_limits=n >= 11,
            creators_have_infinite_power=n >= 12,
            room_id_is_create_event_id=n >= 12,
        )
    return versions


#: Every room version eventgraph implements, by identifier.
KNOWN_ROOM_VERSIONS: Mapping[str, RoomVersion] = MappingProxyType(_table())


def room_version(identifier: str | RoomVersion) -> RoomVersion:
    """Look up a room version by its identifier (``"1"`` … ``"12"``).

    A :class:`RoomVersion` is returned as it is, so functions can take either.

    Raises:
        UnsupportedRoomVersionError: the identifier is not a room version eventgraph implements.

    >>> room_version("12").room_id_is_create_event_id
    True
    >>> room_version("13")
    Traceback (most recent call last):
    ...
    eventgraph.errors.UnsupportedRoomVersionError: unsupported room version '13' (known: 1–12)
    """
    if isinstance(identifier, RoomVersion):
        return identifier
    rv = KNOWN_ROOM_VERSIONS.get(identifier) if isinstance(identifier, str) else None
    if rv is None:
        msg = f"unsupported room version {identifier!r} (known: 1–12)"
        raise UnsupportedRoomVersionError(msg)
    return rv
