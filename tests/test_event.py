"""Event.from_pdu: the format checks of every room version, and the fuzz invariant."""

from __future__ import annotations

import json
from typing import Any

import attrs
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
    room_version,
    unpadded_base64,
)
from eventgraph.events._reference import parse_reference
from eventgraph.events.event import (
    _COMMON_KEYS,
    _COMMON_ORDER,
    _parse,
    _parse_common,
    _trusted_event_id,
)
from eventgraph.synth import generate_room

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


# -- the parser against its reference: same events, same bytes, same refusals ----------------
#
# ``Event.from_pdu`` builds the stored bytes, the redacted form and the content-hash form from
# parts encoded once (eventgraph/events/event.py, ``_parse``). ``parse_reference`` is the plain
# path: encode the PDU, redact it, encode that, hash it. The two must agree on every input.

# More than 4300 digits: str() refuses it, and so must the encoders (built lazily: even the
# strategy's repr could not show it).
_huge_int = st.just(5000).map(lambda digits: 10**digits)
odd_strings = st.sampled_from(
    ["", "$", "$x", "@u:a", "!r:a", 'q"uote', "back\\slash", "ctl\x01\n", "déjà", "😀", "\ud800"]
)
leaf_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 2**63 - 1, 2**63])
    | _huge_int
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | odd_strings
)
any_json = st.recursive(
    leaf_values,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6) | odd_strings, children, max_size=3)
    ),
    max_leaves=12,
)
event_ids = st.sampled_from(["$p", "$q:a.example", "$" + "A" * 43, "$é" * 100]) | odd_strings
content_for_type = st.one_of(
    st.dictionaries(st.sampled_from(["body", "msgtype", "membership"]), st.text(max_size=5)),
    st.fixed_dictionaries(
        {"membership": st.sampled_from(["join", "invite"])},
        optional={
            "displayname": st.text(max_size=5),
            "join_authorised_via_users_server": st.just("@u:a"),
            "third_party_invite": st.sampled_from(
                [{"signed": {"a": 1}, "display_name": "x"}, {"display_name": "x"}, "not-a-dict"]
            ),
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "ban": st.integers(0, 100),
            "users": st.dictionaries(st.sampled_from(["@a:b", "@c:d"]), st.integers(0, 100)),
            "invite": st.just(0),
            "join_rule": st.sampled_from(["public", "restricted"]),
            "allow": st.just([{"type": "m.room_membership", "room_id": "!r:a"}]),
            "creator": st.just("@u:a"),
            "room_version": st.just("11"),
            "history_visibility": st.just("shared"),
            "aliases": st.just(["#a:b"]),
            "redacts": event_ids,
        },
    ),
    st.dictionaries(st.text(max_size=6) | odd_strings, any_json, max_size=3),
)
edge_lists = st.lists(event_ids, max_size=3) | st.lists(
    st.sampled_from(["$p", "$q"]), min_size=21, max_size=22
)
signatures = st.one_of(
    st.just({"a.example": {"ed25519:1": "sig"}}),
    st.dictionaries(
        st.sampled_from(["a.example", "b.example", 'q"', "😀"]),
        st.dictionaries(
            st.sampled_from(["ed25519:1", "ed25519:2"]), st.text(max_size=4) | leaf_values
        ),
        max_size=2,
    ),
    any_json,
)
field_overrides = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            [
                "m.room.message",
                "m.room.member",
                "m.room.create",
                "m.room.power_levels",
                "m.room.join_rules",
                "m.room.history_visibility",
                "m.room.redaction",
                "m.room.aliases",
            ]
        )
        | odd_strings,
        "content": content_for_type,
        "state_key": st.none() | odd_strings | st.just(""),
        "sender": st.sampled_from(["@u:a", "@é:😀", '@q"uote:a', "@ctl\x01:a", "u"]),
        "room_id": st.sampled_from(["!r:a", '!q"uote:a', "!é:a", "r"]) | odd_strings,
        "prev_events": edge_lists,
        "auth_events": edge_lists,
        "depth": st.sampled_from([0, 1, 2**53 - 1, 2**53, 2**63 - 1, 2**63, -1, True, 1.0]),
        "origin_server_ts": st.sampled_from([0, 1.5, -5]) | _huge_int | st.integers(),
        "hashes": st.sampled_from(
            [{"sha256": "h"}, {"sha256": 'q"'}, {"sha256": "h", "x": 0.5}, {"sha256": 1}, {}]
        ),
        "signatures": signatures,
        "unsigned": st.none() | st.just({"age": 5}) | any_json,
        "redacts": event_ids | any_json,
        "event_id": event_ids,
        "origin": st.just("a.example"),
        "membership": st.just("join"),
        "prev_state": st.just([]),
        "other": any_json,
        'q"uote': st.just(1),
    },
)


def _outcome(run: Any) -> Any:
    try:
        return run()
    except InvalidEventError as err:
        message = str(err)
        # Both encoders fail on the same unencodable values; which one is named first may differ.
        return "refused: " + ("cannot encode" if "cannot encode" in message else message)


def _fields(event: Event) -> tuple[Any, ...]:
    # Every attribute, with the frozen types made visible (repr shows FrozenDict and tuples).
    return tuple(
        repr(getattr(event, a.name)) if a.name == "content" else getattr(event, a.name)
        for a in attrs.fields(Event)
    )


def _agree(pdu: Any, version: str, *, backfilled: bool = False, trusted: bool = False) -> None:
    """Every way in (the general parser, the common-layout fast path through ``from_pdu`` and
    ``from_pdu_with_content_hash``) gives what ``parse_reference`` gives."""
    rv = room_version(version)
    trusted_id = None
    if trusted:
        trusted_id = pdu.get("event_id") if isinstance(pdu.get("event_id"), str) else "$trusted"
        if not trusted_id.startswith("$"):
            trusted_id = "$trusted"
        precheck = _outcome(lambda: _trusted_event_id(pdu, trusted_id))
        if precheck != trusted_id:  # the caller's ID itself is refused (over 255 bytes)
            assert _outcome(lambda: Event.from_trusted_pdu(pdu, rv, event_id=trusted_id)) == (
                precheck
            )
            return
    reference = _outcome(
        lambda: parse_reference(pdu, rv, backfilled=backfilled, trusted_id=trusted_id)
    )
    general = _outcome(
        lambda: _parse(
            pdu, rv, backfilled=backfilled, trusted_id=trusted_id, with_content_hash=True
        )
    )
    if trusted:
        public = _outcome(
            lambda: Event.from_trusted_pdu(pdu, rv, event_id=trusted_id, backfilled=backfilled)
        )
        with_hash = general
    else:
        public = _outcome(lambda: Event.from_pdu(pdu, rv, backfilled=backfilled))
        with_hash = _outcome(
            lambda: Event.from_pdu_with_content_hash(pdu, rv, backfilled=backfilled)
        )
    if isinstance(reference, str):
        assert general == reference
        assert public == reference
        assert with_hash == reference
        return
    for outcome in (general, with_hash):
        assert not isinstance(outcome, str), outcome
        event, digest = outcome
        assert _fields(event) == _fields(reference)
        assert digest == content_hash(reference.to_pdu())
    assert not isinstance(public, str), public
    assert _fields(public) == _fields(reference)


@given(st.sampled_from(ALL), field_overrides, st.sets(st.sampled_from(["state_key", "hashes"])))
def test_parser_agrees_with_the_reference(
    version: str, overrides: dict[str, Any], removed: set[str]
) -> None:
    """Valid PDUs with fields replaced: the same event (every field, the stored bytes, the
    content hash) or the same refusal as the plain parser, in every room version."""
    pdu = make_pdu(version)
    pdu.update(overrides)
    for key in removed:
        pdu.pop(key, None)
    _agree(pdu, version)
    _agree(pdu, version, backfilled=True)


@given(st.sampled_from(ALL), field_overrides)
def test_trusted_parser_agrees_with_the_reference(version: str, overrides: dict[str, Any]) -> None:
    pdu = make_pdu(version)
    pdu.update(overrides)
    _agree(pdu, version, trusted=True)


@given(st.sampled_from(ALL), json_values)
def test_parser_agrees_with_the_reference_on_any_json(version: str, value: Any) -> None:
    _agree(value, version)


valid_ids = st.sampled_from(["$p", "$" + "A" * 43, '$q"uote', "$back\\slash", "$é", "$😀", "$\x01"])
common_pdus = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "m.room.message",
                "m.room.member",
                "m.room.create",
                "m.room.power_levels",
                "m.room.join_rules",
                "m.room.redaction",
                'x"\\\n',
                "😀",
            ]
        ),
        "room_id": st.sampled_from(["!r:a", '!q"uote:a', "!é:😀", "!\t:a"]),
        "sender": st.sampled_from(["@u:a", '@q"uote:a', "@é:😀", "@\x7f:a"]),
        "content": content_for_type,
        "depth": st.integers(0, 2**53 - 1),
        "origin_server_ts": st.integers(-(2**64), 2**64) | _huge_int,
        "prev_events": st.lists(valid_ids, max_size=3),
        "auth_events": st.lists(valid_ids, max_size=3),
        "hashes": st.fixed_dictionaries({"sha256": st.text(max_size=6)})
        | st.just({"sha256": "h", "other": "x"}),
        "signatures": st.dictionaries(
            st.text(max_size=4),
            st.dictionaries(st.text(max_size=4), st.text(max_size=4) | leaf_values, max_size=2),
            max_size=2,
        ),
    },
    optional={"state_key": st.text(max_size=4) | odd_strings, "unsigned": any_json},
)


@given(st.sampled_from(ALL[2:]), common_pdus)
def test_common_layout_agrees_with_the_reference(version: str, pdu: dict[str, Any]) -> None:
    """Network PDUs of the usual shape (the parser's no-sort layout), with escapes, non-ASCII,
    numbers out of range and odd signatures in every place they can go."""
    _agree(pdu, version)


@pytest.mark.parametrize("version", ALL)
def test_synthetic_rooms_parse_as_the_reference_does(version: str) -> None:
    """Real events of every kind the generator makes, with unsigned data and a second
    signature on some: identical events, bytes, IDs and content hashes."""
    for i, event in enumerate(generate_room(version, events=150, members=15, seed=3)):
        pdu = event.to_pdu()
        if i % 3 == 1:
            pdu["unsigned"] = {"age": i, "replaces_state": "$x"}
        if i % 4 == 2:
            pdu["signatures"]["b.example"] = {"ed25519:k": "S" * 86}
        _agree(pdu, version)
        if int(version) >= 3 and not (version == "12" and event.type == "m.room.create"):
            assert _parse_common(pdu, room_version(version), False, False) is not None
        parsed, digest = Event.from_pdu_with_content_hash(pdu, version)
        assert digest == content_hash(pdu)
        assert parsed.event_id == event.event_id
        if i % 3 != 1 and i % 4 != 2:
            assert parsed == event


def test_content_hash_api_matches_both_paths() -> None:
    pdu = make_pdu("11", unsigned={"age": 3})
    pdu["hashes"] = {"sha256": unpadded_base64(content_hash(pdu))}
    event, digest = Event.from_pdu_with_content_hash(pdu, "11")
    assert event == Event.from_pdu(pdu, "11")
    assert unpadded_base64(digest) == pdu["hashes"]["sha256"]
    trusted = make_pdu("11", event_id="$readable")
    del trusted["hashes"]
    event, digest = Event.from_pdu_with_content_hash(trusted, "11", trusted=True)
    assert event == Event.from_trusted_pdu(trusted, "11")
    assert digest == content_hash(event.to_pdu())
    with pytest.raises(InvalidEventError, match="trusted import"):
        Event.from_pdu_with_content_hash(make_pdu("11"), "11", trusted=True)


def test_common_layout_keys_are_in_canonical_order() -> None:
    """The common layout writes its members in this fixed order: it must be the sorted one."""
    assert list(_COMMON_ORDER) == sorted(_COMMON_ORDER)
    assert frozenset(_COMMON_ORDER) == _COMMON_KEYS


@pytest.mark.parametrize("version", ["1", "11"])
def test_content_hash_when_a_cut_member_also_occurs_inside_content(version: str) -> None:
    """The given-ID path cuts hashes/signatures/unsigned out of the stored bytes by search; a
    copy of one inside the content makes the place ambiguous, and the plain way is taken."""
    pdu = make_pdu(version, unsigned={"age": 1})
    pdu["content"] = {"a": 1, "signatures": pdu["signatures"], "unsigned": {"age": 1}}
    pdu["hashes"] = {"sha256": unpadded_base64(content_hash(pdu))}
    if version == "11":
        pdu["event_id"] = "$given"
    event, digest = Event.from_pdu_with_content_hash(pdu, version, trusted=version == "11")
    assert digest == content_hash(event.to_pdu())
    assert unpadded_base64(digest) == pdu["hashes"]["sha256"]
