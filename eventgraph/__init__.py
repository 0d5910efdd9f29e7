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
from .events.auth_selection import auth_types_for_event as auth_types_for_event
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
from .federation.state import event_auth_response as event_auth_response
from .federation.state import state_ids_response as state_ids_response
from .federation.state import state_response as state_response
from .graph.auth_chain import auth_chain_difference as auth_chain_difference
from .graph.auth_chain import auth_chain_difference_split as auth_chain_difference_split
from .graph.auth_chain import auth_chain_ids as auth_chain_ids
from .graph.auth_chain import conflicted_subgraph as conflicted_subgraph
from .graph.walks import BACKFILL_MAX_LIMIT as BACKFILL_MAX_LIMIT
from .graph.walks import MISSING_EVENTS_MAX_LIMIT as MISSING_EVENTS_MAX_LIMIT
from .graph.walks import backfill as backfill
from .graph.walks import missing_events as missing_events
from .protocols import ChainIndexDepthReader as ChainIndexDepthReader
from .protocols import ChainIndexReader as ChainIndexReader
from .protocols import ChainIndexReverseReader as ChainIndexReverseReader
from .protocols import ChainLink as ChainLink
from .protocols import ChainPosition as ChainPosition
from .protocols import ChainReverseLink as ChainReverseLink
from .protocols import EventFacts as EventFacts
from .protocols import EventReader as EventReader
from .protocols import EventStateGroups as EventStateGroups
from .protocols import EventStore as EventStore
from .protocols import EventWriter as EventWriter
from .protocols import FlaggedEventsReader as FlaggedEventsReader
from .protocols import GraphReader as GraphReader
from .protocols import RoomStore as RoomStore
from .protocols import StateGroupChangesReader as StateGroupChangesReader
from .protocols import StateGroupDraft as StateGroupDraft
from .protocols import StateGroupReader as StateGroupReader
from .protocols import StateGroupWriter as StateGroupWriter
from .protocols import StateKeyPresenceReader as StateKeyPresenceReader
from .protocols import StateStore as StateStore
from .protocols import StateWrite as StateWrite
from .room import IngestReport as IngestReport
from .room import NoSignatureChecks as NoSignatureChecks
from .room import Outcome as Outcome
from .room import Room as Room
from .room import Status as Status
from .room import ingest as ingest
from .state.authz import AUTH_RULES as AUTH_RULES
from .state.authz import CREATOR_POWER_LEVEL as CREATOR_POWER_LEVEL
from .state.authz import SignaturePresenceVerifier as SignaturePresenceVerifier
from .state.authz import SignatureVerifier as SignatureVerifier
from .state.authz import check_auth as check_auth
from .state.authz import get_power_level as get_power_level
from .state.authz import sender_power_level as sender_power_level
from .state.group_resolution import GroupResolution as GroupResolution
from .state.group_resolution import resolve_groups as resolve_groups
from .state.resolution import resolve_state as resolve_state
from .state.state_at import current_state_ids as current_state_ids
from .state.state_at import state_id_after as state_id_after
from .state.state_at import state_id_before as state_id_before
from .state.state_at import state_ids_after as state_ids_after
from .state.state_at import state_ids_before as state_ids_before
from .stores.memory import MemoryStore as MemoryStore
from .stores.sqlite import SqliteStore as SqliteStore
from .synth import RoomShape as RoomShape
from .synth import SynthConfig as SynthConfig
from .synth import generate_room as generate_room

__version__ = "0.1.0"

__all__ = [
    "AUTH_RULES",
    "BACKFILL_MAX_LIMIT",
    "CREATOR_POWER_LEVEL",
    "KNOWN_ROOM_VERSIONS",
    "MISSING_EVENTS_MAX_LIMIT",
    "AuthError",
    "ChainIndexDepthReader",
    "ChainIndexReader",
    "ChainIndexReverseReader",
    "ChainLink",
    "ChainPosition",
    "ChainReverseLink",
    "CycleError",
    "Event",
    "EventFacts",
    "EventFormat",
    "EventGraphError",
    "EventIdFormat",
    "EventNotFoundError",
    "EventReader",
    "EventStateGroups",
    "EventStore",
    "EventWriter",
    "FlaggedEventsReader",
    "FrozenDict",
    "GraphReader",
    "GroupResolution",
    "IngestReport",
    "InternalError",
    "InvalidEventError",
    "InvalidRequestError",
    "MemoryStore",
    "NoSignatureChecks",
    "Outcome",
    "RedactionRules",
    "Room",
    "RoomShape",
    "RoomStore",
    "RoomVersion",
    "SignaturePresenceVerifier",
    "SignatureVerifier",
    "SqliteStore",
    "StateGroupChangesReader",
    "StateGroupDraft",
    "StateGroupReader",
    "StateGroupWriter",
    "StateKey",
    "StateKeyPresenceReader",
    "StateResAlgorithm",
    "StateStore",
    "StateWrite",
    "Status",
    "StoreError",
    "SynthConfig",
    "UnsupportedRoomVersionError",
    "auth_chain_difference",
    "auth_chain_difference_split",
    "auth_chain_ids",
    "auth_types_for_event",
    "backfill",
    "check_auth",
    "compute_event_id",
    "conflicted_subgraph",
    "content_hash",
    "current_state_ids",
    "encode_canonical_json",
    "event_auth_response",
    "generate_room",
    "get_power_level",
    "ingest",
    "missing_events",
    "redact",
    "reference_hash",
    "resolve_groups",
    "resolve_state",
    "room_version",
    "sender_power_level",
    "state_id_after",
    "state_id_before",
    "state_ids_after",
    "state_ids_before",
    "state_ids_response",
    "state_response",
    "unpadded_base64",
]
