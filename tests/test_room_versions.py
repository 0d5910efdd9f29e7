"""The room-version table: one row per version, each difference where the spec puts it."""

from __future__ import annotations

import pytest

from eventgraph import (
    KNOWN_ROOM_VERSIONS,
    EventFormat,
    EventIdFormat,
    RedactionRules,
    StateResAlgorithm,
    UnsupportedRoomVersionError,
    room_version,
)


def test_versions_1_to_12_exactly() -> None:
    assert list(KNOWN_ROOM_VERSIONS) == [str(n) for n in range(1, 13)]


@pytest.mark.parametrize("bad", ["0", "13", "org.matrix.hydra.11", "", 11, None])
def test_unknown_versions_raise(bad: object) -> None:
    with pytest.raises(UnsupportedRoomVersionError):
        room_version(bad)  # type: ignore[arg-type]


def test_lookup_is_identity_for_versions() -> None:
    rv = room_version("7")
    assert room_version(rv) is rv
    assert room_version("7") is rv


@pytest.mark.parametrize("n", range(1, 13))
def test_features(n: int) -> None:
    """Each switch flips at the version whose spec page introduced it (digest §4.3–7)."""
    rv = room_version(str(n))
    assert rv.event_format is (
        EventFormat.V1 if n <= 2 else EventFormat.V2 if n <= 11 else EventFormat.V3
    )
    assert rv.event_id_format is (
        EventIdFormat.SERVER_ASSIGNED
        if n <= 2
        else EventIdFormat.REFERENCE_HASH_STANDARD
        if n == 3
        else EventIdFormat.REFERENCE_HASH_URLSAFE
    )
    assert rv.state_res is (
        StateResAlgorithm.V1
        if n == 1
        else StateResAlgorithm.V2
        if n <= 11
        else StateResAlgorithm.V2_1
    )
    expected_redaction = {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 6, 7: 6, 8: 8, 9: 9, 10: 9}.get(n, 11)
    assert rv.redaction_rules is RedactionRules(expected_redaction)
    assert rv.strict_canonical_json == (n >= 6)
    assert rv.max_depth == (2**63 - 1 if n <= 5 else 2**53 - 1)
    assert rv.redaction_auth_by_event_id_domain == (n <= 2)
    assert rv.special_case_aliases_auth == (n <= 5)
    assert rv.limit_notifications_power_levels == (n >= 6)
    assert rv.knock_join_rule == (n >= 7)
    assert rv.restricted_join_rule == (n >= 8)
    assert rv.knock_restricted_join_rule == (n >= 10)
    assert rv.integer_power_levels == (n >= 10)
    assert rv.float_power_levels == (n <= 5)
    assert rv.implicit_room_creator == (n >= 11)
    assert rv.creators_have_infinite_power == (n >= 12)
    assert rv.room_id_is_create_event_id == (n >= 12)
