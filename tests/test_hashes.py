"""Content hashes, reference hashes and event IDs against published vectors.

Vectors: the spec appendix ("Cryptographic Test Vectors") content hashes, and Synapse's
``test_event_signing.py`` / Rust ``test_calculate_event_id`` (research/synapse.md §6.2), used as
facts with their origin noted.
"""

from __future__ import annotations

import pytest

import eventgraph
from eventgraph import compute_event_id, content_hash, reference_hash, unpadded_base64

# Synapse rust/src/events/utils.rs::test_calculate_event_id (a real event of a v10 room).
REAL_EVENT = {
    "auth_events": [
        "$gbHO7IPUHybc7ULFnT7P0r3iWlZFHGmr6zBfEYCUyKw",
        "$hy1eZFYcgNxMFNNBgCD5fyOzyWRcBkxfNcrUI5ZpZlE",
        "$Nt_z68EwFfPqBeHjzEHGsp461Z4EfNEzR-KH5bOYdOY",
    ],
    "prev_events": ["$4FbpZrgPQTwoLD9H5y7jcikucCypUOn78mXhQX7WliY"],
    "type": "m.room.message",
    "room_id": "!DHmIIVvxFASSFgDGzr:localhost:8008",
    "sender": "@tester_b:localhost:8008",
    "content": {"msgtype": "m.text", "body": "invited people can see history", "m.mentions": {}},
    "depth": 24,
    "origin": "localhost:8008",
    "origin_server_ts": 1731769874137,
    "hashes": {"sha256": "FoYV1w3TW/B2mVT0gX2/BZKpCwrrvGXqXFdUhN9LZYU"},
}


def test_spec_appendix_content_hashes() -> None:
    """The two content hashes of the spec's signing vectors (digest §4.7)."""
    minimal = {
        "room_id": "!x:domain",
        "sender": "@a:domain",
        "origin": "domain",
        "origin_server_ts": 1000000,
        "signatures": {},
        "hashes": {},
        "type": "X",
        "content": {},
        "prev_events": [],
        "auth_events": [],
        "depth": 3,
        "unsigned": {"age_ts": 1000000},
    }
    assert unpadded_base64(content_hash(minimal)) == "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    message = {
        "content": {"body": "Here is the message content"},
        "event_id": "$0:domain",
        "origin": "domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": {},
        "unsigned": {"age_ts": 1000000},
    }
    assert unpadded_base64(content_hash(message)) == "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"


def test_synapse_signing_vectors_content_hash() -> None:
    """Synapse's test_sign_minimal and test_sign_message content hashes."""
    minimal = {
        "event_id": "$0:domain",
        "origin_server_ts": 1000000,
        "signatures": {},
        "type": "X",
        "content": {},
        "unsigned": {"age_ts": 1000000},
    }
    assert unpadded_base64(content_hash(minimal)) == "mq4QfPPpC+QsBd6eqfVsmJIEz8uvMSVK0+AU67PLESk"
    message = {
        "content": {"body": "Here is the message content"},
        "event_id": "$0:domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": {},
        "unsigned": {"age_ts": 1000000},
    }
    assert unpadded_base64(content_hash(message)) == "rDCeYBepPlI891h/RkI2/Lkf9bt7u0TxFku4tMs7WKk"


def test_real_event_content_hash_matches_its_hashes_field() -> None:
    assert unpadded_base64(content_hash(REAL_EVENT)) == REAL_EVENT["hashes"]["sha256"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3", "$zRz9jjiT9wZc3Hl9ij/74aCmTjqV3YMlj9sj3Uqxg6o"),
        ("4", "$zRz9jjiT9wZc3Hl9ij_74aCmTjqV3YMlj9sj3Uqxg6o"),
        ("10", "$zRz9jjiT9wZc3Hl9ij_74aCmTjqV3YMlj9sj3Uqxg6o"),
        # Derived in research/synapse.md §6.2: v11 drops the top-level 'origin' before hashing.
        ("11", "$XEy9wBUPnTswE8-xZHYlz4NEt7JPyjV5J4RJ1Vl9Tf0"),
        ("12", "$XEy9wBUPnTswE8-xZHYlz4NEt7JPyjV5J4RJ1Vl9Tf0"),
    ],
)
def test_event_id_vectors(version: str, expected: str) -> None:
    """The real event's ID in each ID format, via compute_event_id and Event.from_pdu."""
    assert compute_event_id(REAL_EVENT, version) == expected
    event = eventgraph.Event.from_pdu({**REAL_EVENT, "signatures": {}}, version)
    assert event.event_id == expected


def test_signatures_and_unsigned_do_not_change_the_id() -> None:
    signed = {**REAL_EVENT, "signatures": {"x": {"ed25519:a": "sig"}}, "unsigned": {"age": 5}}
    assert compute_event_id(signed, "10") == compute_event_id(REAL_EVENT, "10")


def test_redacted_copy_has_the_same_id() -> None:
    """The reference hash is over the redacted event, so redacting keeps the ID."""
    redacted = eventgraph.redact(REAL_EVENT, "10")
    assert compute_event_id(redacted, "10") == compute_event_id(REAL_EVENT, "10")
    assert reference_hash(redacted, "10") == reference_hash(REAL_EVENT, "10")


@pytest.mark.parametrize("version", ["1", "2"])
def test_server_assigned_versions_refuse_computed_ids(version: str) -> None:
    with pytest.raises(eventgraph.InvalidEventError):
        compute_event_id(REAL_EVENT, version)


def test_content_hash_covers_content_but_reference_hash_only_via_hashes() -> None:
    """Changing the body changes the content hash; with hashes fixed the ID ignores the body."""
    changed = {**REAL_EVENT, "content": {"body": "other"}}
    assert content_hash(changed) != content_hash(REAL_EVENT)
    assert reference_hash(changed, "10") == reference_hash(REAL_EVENT, "10")
