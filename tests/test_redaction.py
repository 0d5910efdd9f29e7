"""Redaction per room version: the keep-lists of digest §5, one case per difference.

Cases follow the shapes of Synapse's PruneEventTestCase (research/synapse.md §6.3), used as facts;
expected values are written from the spec tables, not copied output.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgraph import InvalidEventError, redact, room_version
from eventgraph.events.redaction import TYPES_WITH_KEPT_CONTENT, redacted_content

ALL = [str(n) for n in range(1, 13)]
BASE: dict[str, Any] = {
    "event_id": "$e:x",
    "type": "m.room.message",
    "room_id": "!r:x",
    "sender": "@u:x",
    "content": {"body": "secret", "msgtype": "m.text"},
    "hashes": {"sha256": "h"},
    "signatures": {"x": {"ed25519:1": "s"}},
    "depth": 4,
    "prev_events": ["$p"],
    "auth_events": ["$a"],
    "origin_server_ts": 7,
    "unsigned": {"age_ts": 1, "replaces_state": "$q"},
    "prev_state": [],
    "origin": "x",
    "membership": "join",
    "other_key": 1,
    "redacts": "$z",
}


def _content_after(version: str, event_type: str, content: dict[str, Any]) -> Any:
    return redact({**BASE, "type": event_type, "content": content}, version)["content"]


@pytest.mark.parametrize("version", ALL)
def test_top_level_keys(version: str) -> None:
    """RV 1–10 keep prev_state/origin/membership; RV 11+ drop them; unsigned, redacts and
    unknown keys never survive."""
    out = redact(BASE, version)
    expected = {
        "event_id",
        "type",
        "room_id",
        "sender",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
    }
    if int(version) <= 10:
        expected |= {"prev_state", "origin", "membership"}
    assert set(out) == expected
    assert out["content"] == {}


def test_input_is_not_modified() -> None:
    pdu = {**BASE, "content": {"membership": "join", "x": 1}, "type": "m.room.member"}
    before = repr(pdu)
    redact(pdu, "11")
    assert repr(pdu) == before


@pytest.mark.parametrize("version", ALL)
def test_member_content(version: str) -> None:
    content = {
        "membership": "join",
        "displayname": "Alice",
        "join_authorised_via_users_server": "@b:x",
        "third_party_invite": {"signed": {"token": "t"}, "display_name": "d"},
    }
    expected: dict[str, Any] = {"membership": "join"}
    if int(version) >= 9:
        expected["join_authorised_via_users_server"] = "@b:x"
    if int(version) >= 11:
        expected["third_party_invite"] = {"signed": {"token": "t"}}
    assert _content_after(version, "m.room.member", content) == expected


@pytest.mark.parametrize(
    ("tpi", "expected"),
    [({}, {"membership": "invite", "third_party_invite": {}}), ("x", {"membership": "invite"})],
)
def test_v11_third_party_invite_shapes(tpi: Any, expected: dict[str, Any]) -> None:
    """An object third_party_invite keeps only 'signed' (possibly nothing); a non-object goes."""
    content = {"membership": "invite", "third_party_invite": tpi}
    assert _content_after("11", "m.room.member", content) == expected


@pytest.mark.parametrize("version", ALL)
def test_create_content(version: str) -> None:
    content = {"creator": "@u:x", "room_version": version, "m.federate": False}
    expected = content if int(version) >= 11 else {"creator": "@u:x"}
    assert _content_after(version, "m.room.create", content) == expected


@pytest.mark.parametrize("version", ALL)
def test_join_rules_content(version: str) -> None:
    content = {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": 1}
    expected: dict[str, Any] = {"join_rule": "restricted"}
    if int(version) >= 8:
        expected["allow"] = [{"type": "m.room_membership"}]
    assert _content_after(version, "m.room.join_rules", content) == expected


@pytest.mark.parametrize("version", ALL)
def test_power_levels_content(version: str) -> None:
    keys = ["ban", "events", "events_default", "kick", "redact", "state_default", "users"]
    content = dict.fromkeys([*keys, "users_default", "invite", "notifications", "historical"], 1)
    expected = dict.fromkeys([*keys, "users_default"], 1)
    if int(version) >= 11:
        expected["invite"] = 1
    assert _content_after(version, "m.room.power_levels", content) == expected


@pytest.mark.parametrize("version", ALL)
def test_aliases_content(version: str) -> None:
    expected = {"aliases": ["#a:x"]} if int(version) <= 5 else {}
    assert _content_after(version, "m.room.aliases", {"aliases": ["#a:x"], "x": 1}) == expected


@pytest.mark.parametrize("version", ALL)
def test_history_visibility_content(version: str) -> None:
    content = {"history_visibility": "joined", "x": 1}
    assert _content_after(version, "m.room.history_visibility", content) == {
        "history_visibility": "joined"
    }


@pytest.mark.parametrize("version", ALL)
def test_redaction_content(version: str) -> None:
    expected = {"redacts": "$z"} if int(version) >= 11 else {}
    assert _content_after(version, "m.room.redaction", {"redacts": "$z", "reason": "r"}) == expected


@pytest.mark.parametrize(
    "pdu",
    [
        {"content": {}},
        {"type": "m.room.message"},
        {"type": 5, "content": {}},
        {"type": "m.room.message", "content": []},
        [],
    ],
)
def test_unredactable_input_is_refused(pdu: Any) -> None:
    """Without a string type and an object content there is nothing to redact (rule 3)."""
    with pytest.raises(InvalidEventError):
        redact(pdu, "10")


def test_redaction_is_idempotent() -> None:
    for version in ALL:
        once = redact({**BASE, "type": "m.room.member", "content": {"membership": "x"}}, version)
        assert redact(once, version) == once


@given(
    st.sampled_from(ALL),
    st.sampled_from([*sorted(TYPES_WITH_KEPT_CONTENT), "m.room.message", "m.room.topic", "x"]),
    st.dictionaries(
        st.sampled_from(
            [
                *("membership", "join_rule", "allow", "creator", "ban", "invite", "redacts"),
                *("body", "join_authorised_via_users_server", "third_party_invite"),
                "history_visibility",
            ]
        ),
        st.sampled_from(["v", 1, {"signed": {"a": 1}, "x": 2}, {"x": 2}, ["a"]]),
    ),
)
def test_redacted_content_is_what_redact_keeps(
    version: str, event_type: str, content: dict[str, Any]
) -> None:
    """``redacted_content`` (what the parser hashes) against ``redact``: ``None`` exactly when
    the whole content survives, else the kept content; ``{}`` for any type not listed."""
    rules = room_version(version).redaction_rules
    kept = redacted_content(rules, event_type, content)
    after = redact({**BASE, "type": event_type, "content": content}, version)["content"]
    if kept is None:
        assert after == content
    else:
        assert kept == after
    if event_type not in TYPES_WITH_KEPT_CONTENT:
        assert kept == {}
