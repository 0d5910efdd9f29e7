"""Event.from_pdu: the format checks of every room version, and the fuzz invariant."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgraph import (
    Event,
    EventGraphError,
    FrozenDict,
    InvalidEventError,
    UnsupportedRoomVersionError,
    compute_event_id,
    content_hash,
    unpadded_base64,
)

ALL = [str(n) for n in range(1, 13)]


def make_pdu(version: str, **overrides: Any) -> dict[str, Any]:
    """A valid message PDU of ``version`` (v1–2 with pairs and an event_id)."""
    v1 = int(version) <= 2
    pdu: dict[str, Any] = {
        "type": "m.room.message",
        "room_id": "!room:a.example",
        "sender": "@alice:a.example",
        "content": {"body": "hello", "msgtype": "m.text"},
        "depth": 5,
        "origin_server_ts": 1_700_000_000_000,
        "prev_events": [["$p:a.example", {"sha256": "x"}]] if v1 else ["$p"],
        "auth_events": [["$c:a.example", {"sha256": "y"}]] if v1 else ["$c"],
        "hashes": {"sha256": "h"},
        "signatures": {"a.example": {"ed25519:1": "sig"}},
    }
    if v1:
        pdu["event_id"] = "$ev1:a.example"
    pdu.update(overrides)
    return pdu


@pytest.mark.parametrize("version", ALL)
def test_valid_pdu_round_trips(version: str) -> None:
    pdu = make_pdu(version)
    event = Event.from_pdu(pdu, version)
    assert event.to_pdu() == pdu
    assert event.type == "m.room.message"
    assert event.sender == "@alice:a.example"
    assert event.depth == 5
    assert event.content == {"body": "hello", "msgtype": "m.text"}
    assert event.prev_event_ids == (("$p:a.example",) if int(version) <= 2 else ("$p",))
    if int(version) <= 2:
        assert event.event_id == "$ev1:a.example"
    else:
        assert event.event_id == compute_event_id(pdu, version)


def test_v12_appends_the_implied_create_event() -> None:
    room_id = "!" + "A" * 43
    event = Event.from_pdu(make_pdu("12", room_id=room_id), "12")
    assert event.auth_event_ids == ("$c", "$" + "A" * 43)
    assert event.implied_create_auth
    assert event.to_pdu()["auth_events"] == ["$c"]


def test_v12_create_event_room_id_is_derived() -> None:
    create = {
        "type": "m.room.create",
        "state_key": "",
        "sender": "@alice:a.example",
        "content": {"room_version": "12"},
        "depth": 1,
        "origin_server_ts": 1,
        "prev_events": [],
        "auth_events": [],
        "hashes": {"sha256": "h"},
        "signatures": {},
    }
    event = Event.from_pdu(create, "12")
    assert event.room_id == "!" + event.event_id[1:]
    assert event.auth_event_ids == ()
    with pytest.raises(InvalidEventError, match="must not have a 'room_id'"):
        Event.from_pdu({**create, "room_id": "!x:y"}, "12")


def test_content_is_frozen_and_a_copy() -> None:
    pdu = make_pdu("10", content={"list": [1, {"a": 2}]})
    event = Event.from_pdu(pdu, "10")
    pdu["content"]["list"].append(3)  # the caller's dict changes; the event does not
    assert event.content == {"list": (1, {"a": 2})}
    assert isinstance(event.content, FrozenDict)
    with pytest.raises(TypeError):
        event.content["x"] = 1  # type: ignore[index,unused-ignore]
    with pytest.raises(AttributeError):
        event.depth = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"type": 5}, "'type' must be a string"),
        ({"type": "x" * 256}, "longer than 255"),
        ({"sender": "alice"}, "user ID"),
        ({"room_id": "room"}, "must start with '!'"),
        ({"content": []}, "'content' must be an object"),
        ({"depth": "5"}, "'depth' must be an integer"),
        ({"depth": True}, "'depth' must be an integer"),
        ({"depth": -1}, "'depth' must be between"),
        ({"depth": 2**53}, "'depth' must be between"),
        ({"origin_server_ts": 1.5}, "'origin_server_ts' must be an integer"),
        ({"prev_events": "$p"}, "'prev_events' must be an array"),
        ({"prev_events": [5]}, "event IDs"),
        ({"auth_events": ["c"]}, "event IDs"),
        ({"prev_events": [f"$p{i}" for i in range(21)]}, "at most 20"),
        ({"auth_events": [f"$a{i}" for i in range(11)]}, "at most 10"),
        ({"hashes": {}}, "'hashes'"),
        ({"signatures": {"a": "b"}}, "'signatures'"),
        ({"unsigned": []}, "'unsigned'"),
        ({"state_key": 3}, "'state_key' must be a string"),
        ({"state_key": None}, "'state_key' must be a string"),
        ({"event_id": "$x"}, "must not carry an 'event_id'"),
        ({"content": {"n": 2**53}}, "canonical JSON range"),
        ({"content": {"f": 1.5}}, "floats"),
        ({"other": {"f": 0.5}}, "floats"),
        ({"unsigned": {"age": 2**60}}, "canonical JSON range"),
        ({"hashes": {"sha256": "h", "x": 0.5}}, "floats"),
        ({"content": {"big": "x" * 70000}}, "larger than 65536"),
    ],
)
def test_invalid_pdus_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        Event.from_pdu(make_pdu("10", **overrides), "10")


@pytest.mark.parametrize("missing", ["type", "sender", "room_id", "content", "depth", "hashes"])
def test_missing_required_fields(missing: str) -> None:
    pdu = make_pdu("10")
    del pdu[missing]
    with pytest.raises(InvalidEventError):
        Event.from_pdu(pdu, "10")


def test_relaxed_json_before_v6() -> None:
    """RV 1–5 "MUST NOT strictly enforce" canonical JSON: floats and big integers pass."""
    for version in ["1", "3", "5"]:
        Event.from_pdu(make_pdu(version, content={"f": 1.5, "n": 2**60}), version)
    with pytest.raises(InvalidEventError):
        Event.from_pdu(make_pdu("5", content={"f": float("nan")}), "5")


def test_depth_bounds_per_version() -> None:
    """2**63 - 1 for RV 1–5, 2**53 - 1 for RV 6+ (depth_v6.yaml)."""
    Event.from_pdu(make_pdu("5", depth=2**63 - 1), "5")
    with pytest.raises(InvalidEventError):
        Event.from_pdu(make_pdu("5", depth=2**63), "5")
    Event.from_pdu(make_pdu("6", depth=2**53 - 1), "6")
    with pytest.raises(InvalidEventError):
        Event.from_pdu(make_pdu("6", depth=2**53), "6")


def test_backfilled_events_may_exceed_edge_counts() -> None:
    """The /backfill response "MUST NOT be validated on these specific restrictions"."""
    pdu = make_pdu("10", prev_events=[f"$p{i}" for i in range(30)])
    assert len(Event.from_pdu(pdu, "10", backfilled=True).prev_event_ids) == 30


def test_byte_limits_from_v11() -> None:
    """255 is counted in UTF-8 bytes from RV 11, in code points before (Synapse's behaviour)."""
    state_key = "é" * 200  # 200 code points, 400 bytes
    Event.from_pdu(make_pdu("10", state_key=state_key), "10")
    with pytest.raises(InvalidEventError, match="bytes"):
        Event.from_pdu(make_pdu("11", state_key=state_key), "11")


@pytest.mark.parametrize("version", ["1", "2"])
def test_v1_format(version: str) -> None:
    with pytest.raises(InvalidEventError, match="pairs"):
        Event.from_pdu(make_pdu(version, prev_events=["$p:a"]), version)
    pdu = make_pdu(version)
    del pdu["event_id"]
    with pytest.raises(InvalidEventError, match="event_id"):
        Event.from_pdu(pdu, version)
    with pytest.raises(InvalidEventError, match=r"\$opaque:domain"):
        Event.from_pdu(make_pdu(version, event_id="$nodomain"), version)


def test_v11_top_level_redacts_is_still_checked_json() -> None:
    """From RV 11 a top-level 'redacts' is no target, but strict canonical JSON still applies."""
    with pytest.raises(InvalidEventError, match="floats"):
        Event.from_pdu(make_pdu("11", redacts=0.5), "11")


def test_redacts_by_version() -> None:
    redaction10 = make_pdu("10", type="m.room.redaction", redacts="$target")
    assert Event.from_pdu(redaction10, "10").redacts == "$target"
    redaction11 = make_pdu("11", type="m.room.redaction", content={"redacts": "$target"})
    assert Event.from_pdu(redaction11, "11").redacts == "$target"
    # In RV 11 a top-level 'redacts' is not the redaction target.
    assert (
        Event.from_pdu(make_pdu("11", type="m.room.redaction", redacts="$t"), "11").redacts is None
    )


def test_trusted_import_keeps_the_given_id() -> None:
    pdu = make_pdu("11", event_id="$readable-id")
    del pdu["hashes"]
    del pdu["signatures"]
    event = Event.from_trusted_pdu(pdu, "11")
    assert event.event_id == "$readable-id"
    assert "event_id" not in event.to_pdu()
    with pytest.raises(InvalidEventError):
        Event.from_pdu(pdu, "11")  # the untrusted path refuses the same PDU
    with pytest.raises(InvalidEventError):
        Event.from_trusted_pdu(make_pdu("11"), "11")  # no ID at all


def test_unknown_room_version() -> None:
    with pytest.raises(UnsupportedRoomVersionError):
        Event.from_pdu(make_pdu("10"), "13")


def test_events_compare_by_id_and_bytes() -> None:
    a = Event.from_pdu(make_pdu("10"), "10")
    b = Event.from_pdu(make_pdu("10"), "10")
    c = Event.from_pdu(make_pdu("10", unsigned={"age": 1}), "10")
    assert a == b
    assert hash(a) == hash(b)
    assert a.event_id == c.event_id
    assert a != c  # same ID, different unsigned: not the same stored PDU


def test_content_hash_of_a_pdu_matches_when_set() -> None:
    pdu = make_pdu("10")
    pdu["hashes"] = {"sha256": unpadded_base64(content_hash(pdu))}
    event = Event.from_pdu(pdu, "10")
    assert unpadded_base64(content_hash(event.to_pdu())) == pdu["hashes"]["sha256"]


# -- fuzz: any JSON value gives an Event or an EventGraphError (h11's invariant) -------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

field_values = st.one_of(
    json_values,
    st.sampled_from(["$p", "!r:a", "@u:a", "m.room.member", "", "$"]),
    st.lists(st.sampled_from(["$p", "$q", 1, None]), max_size=3),
)


@given(st.sampled_from(ALL), json_values)
def test_fuzz_arbitrary_json(version: str, value: Any) -> None:
    status = 400
    try:
        Event.from_pdu(value, version)
    except EventGraphError as err:
        status = err.http_status
    assert status == 400  # every refusal of a PDU is the sender's fault


@given(
    st.sampled_from(ALL),
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "sender",
                "room_id",
                "content",
                "depth",
                "prev_events",
                "auth_events",
                "hashes",
                "signatures",
                "state_key",
                "origin_server_ts",
                "redacts",
                "unsigned",
                "event_id",
            ]
        ),
        field_values,
    ),
)
def test_fuzz_mutated_fields(version: str, overrides: dict[str, Any]) -> None:
    """Valid PDUs with fields replaced by arbitrary JSON: an Event or an EventGraphError."""
    pdu = make_pdu(version)
    pdu.update(overrides)
    try:
        event = Event.from_pdu(pdu, version)
    except EventGraphError:
        return
    assert json.loads(event.pdu_json) == event.to_pdu()


def test_deep_nesting_is_refused_not_crashing() -> None:
    deep: Any = {}
    for _ in range(5000):
        deep = {"a": deep}
    with pytest.raises(InvalidEventError, match="nested deeper"):
        Event.from_pdu(make_pdu("10", content=deep), "10")
    with pytest.raises(InvalidEventError):
        Event.from_pdu(make_pdu("3", other=deep), "3")


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(InvalidEventError):
        Event.from_pdu(make_pdu("10", content={"body": "\ud800"}), "10")
