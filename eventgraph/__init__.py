"""eventgraph: the Matrix room event graph and its retrieval algorithms, as a library.

The public face is this module; everything else is private unless ``eventgraph.testing``.
See ``docs/`` for the guide, the model and the performance tables.
"""

from .errors import AuthError as AuthError
from .errors import CycleError as CycleError
from .errors import EventGraphError as EventGraphError
from .errors import EventNotFoundError as EventNotFoundError
from .errors import InternalError as InternalError
from .errors import InvalidEventError as InvalidEventError
from .errors import InvalidRequestError as InvalidRequestError
from .errors import StoreError as StoreError
from .errors import UnsupportedRoomVersionError as UnsupportedRoomVersionError
from .events.canonical_json import FrozenDict as FrozenDict
from .events.canonical_json import encode_canonical_json as encode_canonical_json
from .events.event import Event as Event
from .events.event import StateKey as StateKey
from .events.hashes import compute_event_id as compute_event_id
from .events.hashes import content_hash as content_hash
from .events.hashes import reference_hash as reference_hash
from .events.hashes import unpadded_base64 as unpadded_base64
from .events.redaction import redact as redact
from .events.room_versions import KNOWN_ROOM_VERSIONS as KNOWN_ROOM_VERSIONS
from .events.room_versions import EventFormat as EventFormat
from .events.room_versions import EventIdFormat as EventIdFormat
from .events.room_versions import RedactionRules as RedactionRules
from .events.room_versions import RoomVersion as RoomVersion
from .events.room_versions import StateResAlgorithm as StateResAlgorithm
from .events.room_versions import room_version as room_version
from .protocols import EventFacts as EventFacts
from .protocols import EventReader as EventReader
from .protocols import EventStore as EventStore
from .protocols import EventWriter as EventWriter
from .protocols import GraphReader as GraphReader
from .stores.memory import MemoryStore as MemoryStore

__version__ = "0.1.0"

__all__ = [
    "KNOWN_ROOM_VERSIONS",
    "AuthError",
    "CycleError",
    "Event",
    "EventFacts",
    "EventFormat",
    "EventGraphError",
    "EventIdFormat",
    "EventNotFoundError",
    "EventReader",
    "EventStore",
    "EventWriter",
    "FrozenDict",
    "GraphReader",
    "InternalError",
    "InvalidEventError",
    "InvalidRequestError",
    "MemoryStore",
    "RedactionRules",
    "RoomVersion",
    "StateKey",
    "StateResAlgorithm",
    "StoreError",
    "UnsupportedRoomVersionError",
    "compute_event_id",
    "content_hash",
    "encode_canonical_json",
    "redact",
    "reference_hash",
    "room_version",
    "unpadded_base64",
]
