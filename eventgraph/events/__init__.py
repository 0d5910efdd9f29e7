"""Layer 1, the model: room versions, canonical JSON, hashes, redaction and the Event value."""

from .canonical_json import FrozenDict as FrozenDict
from .canonical_json import JsonValue as JsonValue
from .canonical_json import encode_canonical_json as encode_canonical_json
from .event import Event as Event
from .event import StateKey as StateKey
from .hashes import compute_event_id as compute_event_id
from .hashes import content_hash as content_hash
from .hashes import reference_hash as reference_hash
from .hashes import unpadded_base64 as unpadded_base64
from .redaction import redact as redact
from .room_versions import KNOWN_ROOM_VERSIONS as KNOWN_ROOM_VERSIONS
from .room_versions import RoomVersion as RoomVersion
from .room_versions import room_version as room_version

__all__ = [
    "KNOWN_ROOM_VERSIONS",
    "Event",
    "FrozenDict",
    "JsonValue",
    "RoomVersion",
    "StateKey",
    "compute_event_id",
    "content_hash",
    "encode_canonical_json",
    "redact",
    "reference_hash",
    "room_version",
    "unpadded_base64",
]
