"""State resolution's fast paths against the plain ways (hypothesis, differential).

- The iterative auth checks hand the selected auth events to the rules as a mapping, skipping
  ``check_auth``'s checks of the list when they hold by construction (``_checker`` rule 5):
  compared with the plain path (a list through ``check_auth``) on generated rooms, against
  their real states and against scrambled ones (keys filed under other events or unknown IDs,
  missing keys, extra rejected flags), with some events swapped for copies in another room.
- Two state sets are partitioned by the symmetric difference of their items views, and only
  the entries of later sets not equal to the first set's are type-checked: compared with the
  definitions, and bad entries anywhere still refused.
- The sort keys of the reverse topological power ordering (the sender power, parsed create
  and power levels events reused from one event to the next), against ``sender_power_level``.
- The power events with their ancestors in the full conflicted set, found in memory with at
  most one auth-chain query from the walk's exits, against the definition (auth chains of all
  power events from the store).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eventgraph import AuthError, Event, InvalidRequestError, MemoryStore, StateKey
from eventgraph.events.canonical_json import JsonValue
from eventgraph.events.room_versions import room_version
from eventgraph.graph.auth_chain import auth_chain_difference, auth_chain_ids, conflicted_subgraph
from eventgraph.state._checker import AuthChecker
from eventgraph.state.authz import _DEFAULT_VERIFIER, _check_selected, sender_power_level
from eventgraph.state.resolution import (
    _checked,
    _is_power_event,
    _partition_v2,
    _power_events_with_ancestors,
    _resolve,
    _Stats,
    _validated,
)
from eventgraph.testing import make_event

from .stateres_support import RoomStates
from .test_stateres_properties import rooms


def _scrambled(
    room: RoomStates, state: dict[StateKey, str], data: st.DataObject
) -> dict[StateKey, str]:
    """``state`` with some keys dropped and some filed under other events of the room."""
    out = dict(state)
    ids = sorted(room.events)
    keys = sorted(out)
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=3)) if keys else []:
        out.pop(key, None)
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=3)) if keys else []:
        # Mostly an event of the key's type under another state key (the subtle case).
        same_type = [i for i in ids if room.events[i].type == key[0]]
        out[key] = data.draw(st.sampled_from(same_type or ids) | st.sampled_from([*ids, "$x"]))
    return out


def _in_other_room(ev: Event) -> Event:
    """A copy of ``ev`` (same ID, type, state key, sender, content, edges) in another room."""
    if ev.room_version.room_id_is_create_event_id and ev.type == "m.room.create":
        return ev  # its room is its own ID
    return make_event(
        ev.event_id,
        room_id="!elsewhere:x",
        version=ev.room_version,
        prev=ev.prev_event_ids,
        auth=[
            a for a in ev.auth_event_ids if not ev.implied_create_auth or a != ev.auth_event_ids[-1]
        ],
        depth=ev.depth,
        type=ev.type,
        state_key=ev.state_key,
        sender=ev.sender,
        content=ev.content,
        origin_server_ts=ev.origin_server_ts,
    )


@settings(max_examples=300)
@given(room=rooms, data=st.data(), scramble=st.booleans())
def test_fast_auth_checks_equal_plain_ones(
    room: RoomStates, data: st.DataObject, scramble: bool
) -> None:
    """``AuthChecker.allowed`` answers (and counts) as ``allowed_plain`` for every event of the
    room against a state of the room, scrambled or not."""
    state = room.after[data.draw(st.sampled_from(sorted(room.after)))]
    if scramble:
        state = _scrambled(room, state, data)
    events = dict(room.store.get_events(sorted(room.events)))
    for event_id in data.draw(st.lists(st.sampled_from(sorted(events)), max_size=2)):
        events[event_id] = _in_other_room(events[event_id])
    rejected = set(room.store.rejected)
    if data.draw(st.booleans()):  # flags the store does not have: always checked in full
        rejected.update(data.draw(st.lists(st.sampled_from(sorted(events)), max_size=3)))
    fallback = room.rv.identifier != "1"
    fast = AuthChecker(room.rv, events, rejected, fallback_to_own_auth_events=fallback)
    plain = AuthChecker(room.rv, events, rejected, fallback_to_own_auth_events=fallback)
    for event_id in sorted(events):
        assert fast.allowed(state, event_id) == plain.allowed_plain(state, event_id), event_id
    assert (fast.checks, fast.known) == (plain.checks, plain.known)


@settings(max_examples=300)
@given(room=rooms, data=st.data(), scramble=st.booleans())
def test_apply_equals_plain_checks(room: RoomStates, data: st.DataObject, scramble: bool) -> None:
    """``AuthChecker.apply`` (entries vetted once per call, ``_checker`` rule 7) leaves the
    state, the check count and the rule-4 count that ``allowed_plain`` applied event by event
    does, from a state of the room (scrambled or not) over a random list of its events."""
    state = room.after[data.draw(st.sampled_from(sorted(room.after)))]
    if scramble:
        state = _scrambled(room, state, data)
    events = dict(room.store.get_events(sorted(room.events)))
    for event_id in data.draw(st.lists(st.sampled_from(sorted(events)), max_size=2)):
        events[event_id] = _in_other_room(events[event_id])
    rejected = set(room.store.rejected)
    if data.draw(st.booleans()):
        rejected.update(data.draw(st.lists(st.sampled_from(sorted(events)), max_size=3)))
    ordered = data.draw(st.lists(st.sampled_from(sorted(events)), max_size=20))
    fallback = room.rv.identifier != "1"
    fast = AuthChecker(room.rv, events, rejected, fallback_to_own_auth_events=fallback)
    plain = AuthChecker(room.rv, events, rejected, fallback_to_own_auth_events=fallback)
    got = dict(state)
    fast.apply(got, ordered)
    assert got == _applied_plainly(plain, events, state, ordered)
    assert (fast.checks, fast.known) == (plain.checks, plain.known)


def _applied_plainly(
    plain: AuthChecker,
    events: Mapping[str, Event],
    state: Mapping[StateKey, str],
    ordered: list[str],
) -> dict[StateKey, str]:
    """The iterative auth checks the plain way: ``allowed_plain`` event by event on a copy of
    ``state``, each state event that passes applied."""
    out = dict(state)
    for event_id in ordered:
        ev = events[event_id]
        if ev.state_key is not None and plain.allowed_plain(out, event_id):
            out[(ev.type, ev.state_key)] = event_id
    return out


@settings(max_examples=300)
@given(room=rooms, data=st.data())
def test_apply_in_several_calls_equals_plain_checks(room: RoomStates, data: st.DataObject) -> None:
    """One checker's ``apply`` called several times (as state resolution does, steps 2 and 4;
    the parsed create event kept from one call to the next), each on a state of the room or on
    the state the last call left, answers and counts as ``allowed_plain`` event by event."""
    events = room.store.get_events(sorted(room.events))
    rejected = set(room.store.rejected)
    fallback = room.rv.identifier != "1"
    fast = AuthChecker(room.rv, events, rejected, fallback_to_own_auth_events=fallback)
    plain = AuthChecker(room.rv, events, rejected, fallback_to_own_auth_events=fallback)
    got = dict(room.after[data.draw(st.sampled_from(sorted(room.after)))])
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.booleans()):
            got = dict(room.after[data.draw(st.sampled_from(sorted(room.after)))])
        ordered = data.draw(st.lists(st.sampled_from(sorted(events)), max_size=12))
        expected = _applied_plainly(plain, events, got, ordered)
        fast.apply(got, ordered)
        assert got == expected
        assert (fast.checks, fast.known) == (plain.checks, plain.known)


_level_values = st.sampled_from([0, 10, 50, 60, 75, 100])
_USERS = ["@a:x", "@b:x", "@c:x", "@d:x"]


@settings(max_examples=300)
@given(
    version=st.sampled_from(["6", "10", "11", "12"]),
    named=st.fixed_dictionaries(
        {},
        optional={
            "kick": _level_values,
            "ban": _level_values,
            "state_default": _level_values,
            "users_default": st.sampled_from([0, 10, 50]),
        },
    ),
    user_levels=st.lists(st.none() | _level_values, min_size=4, max_size=4),
    topic_level=st.none() | _level_values,
    with_levels=st.booleans(),
    actions=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 3),
            st.sampled_from(["leave", "ban", "join", "m.room.topic", "m.test.state"]),
        ),
        min_size=1,
        max_size=10,
    ),
)
# An unban below the ban level and at the kick level; a ban by an RV 12 creator (not in users).
@example("11", {"kick": 10, "ban": 75}, [100, 50, None, None], None, True, [(1, 3, "leave")])
@example("12", {}, [None, 50, None, None], None, True, [(0, 1, "ban")])
def test_apply_reads_levels_as_the_rules(
    version: str,
    named: dict[str, int],
    user_levels: list[int | None],
    topic_level: int | None,
    with_levels: bool,
    actions: list[tuple[int, int, str]],
) -> None:
    """``AuthChecker.apply``'s inline rule-7 cases (kicks, bans, unbans, leaves, joins, state
    events; the named levels and the users' levels read inline) against ``allowed_plain`` over
    generated power levels (kick, ban, state and users defaults, users' levels, an event's
    level; no power levels event; RV 12 creators): events flagged rejected, so that only the
    state decides (no rule 4, no fallback)."""
    v12 = version == "12"
    room = "!create" if v12 else "!r:x"
    made: list[Event] = []

    def add(type_: str, key: str, sender: str, content: dict[str, JsonValue]) -> Event:
        ev = make_event(
            f"${len(made)}" if made else "$create",
            room_id=room,
            version=version,
            type=type_,
            state_key=key,
            sender=sender,
            content=content,
            origin_server_ts=len(made),
        )
        made.append(ev)
        return ev

    state: dict[StateKey, str] = {}

    def put(ev: Event) -> None:
        state[(ev.type, ev.state_key or "")] = ev.event_id

    put(add("m.room.create", "", _USERS[0], {"room_version": version, "creator": _USERS[0]}))
    put(add("m.room.join_rules", "", _USERS[0], {"join_rule": "public"}))
    if with_levels:
        users: dict[str, JsonValue] = {
            u: lv
            for u, lv in zip(_USERS, user_levels, strict=True)
            if lv is not None and not (v12 and u == _USERS[0])
        }
        content: dict[str, JsonValue] = {**named, "users": users}
        if topic_level is not None:
            content["events"] = {"m.room.topic": topic_level}
        put(add("m.room.power_levels", "", _USERS[0], content))
    for user in _USERS[:3]:
        put(add("m.room.member", user, user, {"membership": "join"}))
    put(add("m.room.member", _USERS[3], _USERS[0], {"membership": "ban"}))  # to unban
    ordered = []
    for sender, target, kind in actions:
        if kind in ("leave", "ban"):
            ev = add("m.room.member", _USERS[target], _USERS[sender], {"membership": kind})
        elif kind == "join":
            ev = add("m.room.member", _USERS[target], _USERS[target], {"membership": "join"})
        elif kind == "m.room.topic":
            ev = add(kind, "", _USERS[sender], {"topic": "t"})
        else:
            ev = add(kind, _USERS[target], _USERS[sender], {})
        ordered.append(ev.event_id)
    events = {ev.event_id: ev for ev in made}
    rv = made[0].room_version
    fast = AuthChecker(rv, events, set(ordered), fallback_to_own_auth_events=False)
    plain = AuthChecker(rv, events, set(ordered), fallback_to_own_auth_events=False)
    got = dict(state)
    fast.apply(got, ordered)
    for event_id in ordered:
        ev = events[event_id]
        if plain.allowed_plain(state, event_id):
            put(ev)
    assert got == state
    assert (fast.checks, fast.known) == (plain.checks, plain.known)


class _Reads(dict[tuple[str, str], Event]):
    """A dict that records the keys read with ``get``."""

    def __init__(self, entries: dict[tuple[str, str], Event]) -> None:
        super().__init__(entries)
        self.read: set[tuple[str, str]] = set()

    def get(self, key: tuple[str, str], default: object = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


@settings(max_examples=300)
@given(room=rooms, data=st.data(), scramble=st.booleans())
def test_rules_read_only_selected_keys(
    room: RoomStates, data: st.DataObject, scramble: bool
) -> None:
    """The rules after the list checks (``authz._check_selected``) read only the keys the auth
    events selection picks (and the create event): ``AuthChecker.apply`` hands them a mapping
    of every vetted state entry, which is exact only because of this."""
    state = room.after[data.draw(st.sampled_from(sorted(room.after)))]
    if scramble:
        state = _scrambled(room, state, data)
    events = room.store.get_events(sorted(room.events))
    checker = AuthChecker(room.rv, events, set(room.store.rejected))
    for event_id in sorted(events):
        ev = events[event_id]
        if ev.type == "m.room.create":
            continue
        keys = checker.auth_keys(ev)
        chosen = {(a.type, a.state_key or ""): a for a in checker.auth_events(state, ev)}
        create = chosen.get(("m.room.create", ""))
        if create is None:
            continue
        amap = _Reads(chosen)
        with contextlib.suppress(AuthError):
            _check_selected(room.rv, ev, amap, create, _DEFAULT_VERIFIER)
        assert amap.read <= set(keys), (event_id, amap.read - set(keys))


# -- partition and input check -------------------------------------------------------------

_keys = st.tuples(st.sampled_from(["m.room.member", "m.room.topic", "t"]), st.sampled_from("ab"))
_sets = st.dictionaries(_keys, st.sampled_from(["$1", "$2", "$3"]), max_size=6)


@given(sets=st.lists(_sets, min_size=2, max_size=4))
def test_partition_equals_the_definition(sets: list[dict[StateKey, str]]) -> None:
    """The partition (two sets: by the items views' symmetric difference, with or without the
    input check's keys) equals the spec's definition, key by key."""
    keys = {k for s in sets for k in s}
    expected_unconflicted = {
        k: sets[0][k] for k in keys if all(k in s and s[k] == sets[0][k] for s in sets)
    }
    expected_keys = keys - expected_unconflicted.keys()
    expected_values = [{s[k] for k in expected_keys if k in s} for s in sets]
    checked, differing = _validated(sets)
    assert checked == sets
    for given_differing in (None, differing if len(sets) == 2 else None):
        got = _partition_v2(sets, given_differing)
        assert got == (expected_unconflicted, expected_keys, expected_values)
        # The conflicted state set: every value of a key not unconflicted.
        assert set().union(*got[2]) == {s[k] for s in sets for k in s if k in expected_keys}


class _Str(str):
    __slots__ = ()


@pytest.mark.parametrize(
    "bad",
    [
        {("a",): "$x"},
        {("a", "b"): 1},
        {("a", "b"): ["$unhashable"]},
        {("a", 1): "$x"},
        {"ab": "$x"},
        {("a", "b", "c"): "$x"},
    ],
)
def test_bad_entries_of_later_sets_are_refused(bad: dict[object, object]) -> None:
    """Only entries equal to the first set's skip the entry check; any other bad one raises."""
    first = {("m.room.create", ""): "$c"}
    with pytest.raises(InvalidRequestError):
        _validated([first, {**first, **bad}])
    with pytest.raises(InvalidRequestError):
        _validated([{**first, **bad}, first])


class _LyingLength(Mapping[object, object]):
    """A mapping that claims one entry fewer than it iterates."""

    def __init__(self, entries: dict[object, object]) -> None:
        self._entries = entries

    def __getitem__(self, key: object) -> object:
        return self._entries[key]

    def __iter__(self) -> Iterator[object]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries) - 1


@pytest.mark.parametrize("wrap", [types.MappingProxyType, _LyingLength])
@pytest.mark.parametrize(
    "bad", [{("a", "b"): 1}, {("a", 1): "$x"}, {"ab": "$x"}, {("a", "b", "c"): "$x"}]
)
def test_bad_entries_of_other_mappings_are_refused(
    wrap: Callable[[dict[object, object]], Mapping[object, object]], bad: dict[object, object]
) -> None:
    """A first set that is not a dict is checked on copies of its views (whose lengths a dict
    guarantees equal): a bad entry is refused whatever the mapping says its length is."""
    first: dict[object, object] = {("m.room.create", ""): "$c", ("m.room.topic", ""): "$t"}
    with pytest.raises(InvalidRequestError):
        _validated([wrap({**first, **bad}), first])
    assert _validated([wrap(first), first])[1] == set()


def test_entries_equal_to_the_first_sets_are_taken_as_those() -> None:
    """An equal ``str`` subclass in a later set counts as the first set's ``str``."""
    first = {("m.room.create", ""): "$c", ("m.room.topic", ""): "$t"}
    second = {("m.room.create", ""): _Str("$c"), ("m.room.topic", ""): "$u"}
    sets, differing = _validated([first, second])
    assert differing == {("m.room.topic", "")}
    unconflicted, conflicted_keys, values = _partition_v2(sets, differing)
    assert unconflicted == {("m.room.create", ""): "$c"}
    assert type(unconflicted[("m.room.create", "")]) is str
    assert conflicted_keys == {("m.room.topic", "")}
    assert values == [{"$t"}, {"$u"}]


_odd_keys = st.sampled_from(
    [("a",), ("a", 1), "ab", ("a", "b", "c"), (_Str("t"), "a"), ("t", _Str("b")), (1, "a")]
)
_odd_values = st.sampled_from(["$1", "$2", _Str("$1"), _Str("$4"), 1, None])
_odd_sets = st.dictionaries(_keys | _odd_keys, st.sampled_from(["$1", "$2", "$3"]) | _odd_values)


def _good_entry(key: object, value: object) -> bool:
    return (
        type(value) is str
        and type(key) is tuple
        and len(key) == 2
        and type(key[0]) is str
        and type(key[1]) is str
    )


@settings(max_examples=300)
@given(first=_sets | _odd_sets, second=_sets | _odd_sets, unhashable=st.booleans())
def test_split_of_two_sets_equals_the_definition(
    first: dict[Any, Any], second: dict[Any, Any], unhashable: bool
) -> None:
    """Two sets' input check, with the differing keys and each set's values at them found in
    the same loop (``_checked``), against the definitions: refused exactly when an entry of the
    first set, or one of the second not equal to an entry of the first, is not
    ``(str, str) -> str``; otherwise the keys not equal in both and the values there."""
    if unhashable:
        second = {**second, ("t", "u"): ["$x"]}
    sets = [first, second]
    # The first set is checked whole, a key's first element equal to an earlier key's taken
    # as that one (``_check_keys_values``: the first elements are checked as the keys of
    # ``dict(keys)``); then the entries of either set not equal to one of the other, exactly.
    earliest: dict[object, object] = {}
    for k in first:
        if type(k) is tuple and len(k) == 2:
            earliest.setdefault(k[0], k[0])
    expected_ok = (
        all(
            _good_entry(k, v)
            or (
                _good_entry((earliest[k[0]], k[1]), v)
                if type(k) is tuple and len(k) == 2
                else False
            )
            for k, v in first.items()
        )
        and all(_good_entry(k, v) or (k, v) in second.items() for k, v in first.items())
        and all(_good_entry(k, v) or (k, v) in first.items() for k, v in second.items())
    )
    if not expected_ok:
        with pytest.raises(InvalidRequestError):
            _checked(sets)
        return
    checked, split = _checked(sets)
    assert checked == sets
    assert split is not None
    differing = {k for k in first.keys() | second.keys() if (k, first.get(k)) not in second.items()}
    differing |= {k for k in second if (k, second[k]) not in first.items()}
    assert split == (
        differing,
        [
            {first[k] for k in differing if k in first},
            {second[k] for k in differing if k in second},
        ],
    )
    for value in split[1][0] | split[1][1]:
        assert type(value) is str
    assert _partition_v2(sets, *split) == _partition_v2(sets)


@given(room=rooms, data=st.data())
def test_power_sort_keys_equal_sender_power_level(room: RoomStates, data: st.DataObject) -> None:
    """``AuthChecker.power_sort_keys`` (the parsed create and power levels events reused while
    they repeat) gives ``(-sender_power_level, origin_server_ts, event_id)`` over each event's
    loaded auth events, for the room's events in a random order, and ``sender_power`` the
    level of one event."""
    events = room.store.get_events(sorted(room.events))
    checker = AuthChecker(room.rv, events, set())
    order = data.draw(st.permutations(sorted(events)))
    expected = {}
    for event_id in order:
        ev = events[event_id]
        auth = [events[a] for a in ev.auth_event_ids if a in events]
        level = sender_power_level(room.rv, ev, auth)
        expected[event_id] = (-level, ev.origin_server_ts, event_id)
        assert checker.sender_power(ev) == level, event_id
    assert checker.power_sort_keys(events[e] for e in order) == expected


_SENDERS = ["@a:x", "@b:x", "@c:x"]


@settings(max_examples=300)
@given(
    version=st.sampled_from(["1", "10", "11", "12"]),
    pl_users=st.lists(
        st.dictionaries(st.sampled_from(_SENDERS[1:]), st.integers(-5, 120), max_size=2),
        min_size=1,
        max_size=3,
    ),
    odd_pl_key=st.booleans(),
    checked=st.lists(
        st.tuples(
            st.sampled_from(_SENDERS),
            st.lists(st.sampled_from(["$c1", "$c2", "$p0", "$p1", "$p2", "$m", "$nope"])),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_power_sort_keys_read_the_last_create_and_power_levels(
    version: str,
    pl_users: list[dict[str, int]],
    odd_pl_key: bool,
    checked: list[tuple[str, list[str]]],
) -> None:
    """``AuthChecker.power_sort_keys`` over auth events lists with several create and power
    levels events (the last of each counts), one power levels event under another state key
    (not one), another state event and unknown IDs, against ``sender_power_level``."""
    creates = [
        make_event(
            f"$c{i}",
            room_id="!r:x",
            version=version,
            type="m.room.create",
            state_key="",
            sender=_SENDERS[i - 1],
            content={"creator": _SENDERS[i - 1]},
        )
        for i in (1, 2)
    ]
    pls = [
        make_event(
            f"$p{i}",
            room_id="!r:x",
            version=version,
            type="m.room.power_levels",
            state_key="x" if odd_pl_key and i == 0 else "",
            sender="@a:x",
            content={"users": cast(JsonValue, users), "users_default": i},
        )
        for i, users in enumerate(pl_users)
    ]
    member = make_event(
        "$m",
        room_id="!r:x",
        version=version,
        type="m.room.member",
        state_key="@b:x",
        sender="@b:x",
        content={"membership": "join"},
    )
    events = {ev.event_id: ev for ev in [*creates, *pls, member]}
    evs = [
        make_event(
            f"$e{i}",
            room_id="!r:x",
            version=version,
            type="m.room.topic",
            state_key="",
            sender=sender,
            auth=auth,
            origin_server_ts=i,
        )
        for i, (sender, auth) in enumerate(checked)
    ]
    checker = AuthChecker(room_version(version), events, set())
    expected = {}
    for ev in evs:
        auth = [events[a] for a in ev.auth_event_ids if a in events]
        level = sender_power_level(version, ev, auth)
        expected[ev.event_id] = (-level, ev.origin_server_ts, ev.event_id)
    assert checker.power_sort_keys(evs) == expected


# -- power events and their ancestors in the full conflicted set --------------------------------


@settings(max_examples=200)
@given(room=rooms, data=st.data())
def test_power_ancestors_equal_the_auth_chain_definition(
    room: RoomStates, data: st.DataObject
) -> None:
    """The power events with their ancestors in the full conflicted set, found mostly in
    memory, equal power ∪ (full conflicted set ∩ auth chains of power) from the store."""
    ids = sorted(room.after)
    picked = data.draw(st.lists(st.sampled_from(ids), min_size=2, max_size=4))
    sets = [room.after[i] for i in picked]
    inclusive = data.draw(st.booleans())  # the argument holds for either reading
    _, _, values = _partition_v2(sets)
    conflicted_ids = sorted(set().union(*values))
    full = set(conflicted_ids)
    difference = auth_chain_difference(
        room.store, [list(s.values()) for s in sets], inclusive=inclusive
    )
    full |= difference
    if room.rv.identifier == "12":
        full |= conflicted_subgraph(room.store, conflicted_ids)
    events = room.store.get_events(sorted(full))
    full_ids = sorted(e for e in full if e in events and events[e].state_key is not None)
    power = [e for e in full_ids if _is_power_event(events[e])]
    expected = set(power) | (set(full_ids) & auth_chain_ids(room.store, power))
    # Only the full set loaded: the exits' auth chains come from the store.
    got = _power_events_with_ancestors(room.store, events, power, full, full_ids, difference)
    assert got == expected
    # Some or all of the room loaded (unknown IDs known absent): walked in memory if it can.
    loaded = dict(room.store.get_events(sorted(room.events)))
    for event_id in data.draw(st.lists(st.sampled_from(sorted(loaded)), max_size=3)):
        if event_id not in full:
            loaded.pop(event_id, None)
    absent = {a for ev in loaded.values() for a in ev.auth_event_ids} - room.events.keys()
    got = _power_events_with_ancestors(
        room.store, loaded, power, full, full_ids, difference, absent
    )
    assert got == expected


def test_power_ancestor_reached_only_through_an_unconflicted_event() -> None:
    """A conflicted join below a power event only through unconflicted events (the power
    event's sender joined after an invite by that user) is found through the walk's exits:
    it is ordered with the power events, as the definition says."""
    alice, sam, tess = "@alice:x", "@sam:x", "@tess:x"

    def ev(eid: str, etype: str, key: str, sender: str, content: dict[str, JsonValue],
           auth: tuple[str, ...], prev: str, ts: int) -> Event:  # fmt: skip
        return make_event(eid, room_id="!r:x", version="10", type=etype, state_key=key,
                          sender=sender, content=content, auth=auth, prev=(prev,) if prev else (),
                          depth=ts + 1, origin_server_ts=ts)  # fmt: skip

    pl = {"users": {alice: 100, sam: 100}}
    store = MemoryStore()
    store.add_events([
        ev("$c", "m.room.create", "", alice, {"creator": alice}, (), "", 0),
        ev("$a", "m.room.member", alice, alice, {"membership": "join"}, ("$c",), "$c", 1),
        ev("$pl0", "m.room.power_levels", "", alice, pl, ("$c", "$a"), "$a", 2),
        ev("$jr", "m.room.join_rules", "", alice, {"join_rule": "public"},
           ("$c", "$pl0", "$a"), "$pl0", 3),
        ev("$t0", "m.room.member", tess, tess, {"membership": "join"},
           ("$c", "$pl0", "$jr"), "$jr", 4),
        ev("$i", "m.room.member", sam, tess, {"membership": "invite"},
           ("$c", "$pl0", "$t0", "$jr"), "$t0", 5),
        ev("$y", "m.room.member", sam, sam, {"membership": "join"},
           ("$c", "$pl0", "$i", "$jr"), "$i", 6),
        # Branch 1: sam changes the power levels. Branch 2: tess changes her display name.
        ev("$p", "m.room.power_levels", "", sam, {**pl, "ban": 40}, ("$c", "$pl0", "$y"),
           "$y", 7),
        ev("$t1", "m.room.member", tess, tess, {"membership": "join", "displayname": "T"},
           ("$c", "$pl0", "$t0", "$jr"), "$y", 8),
    ])  # fmt: skip
    base = {("m.room.create", ""): "$c", ("m.room.member", alice): "$a",
            ("m.room.join_rules", ""): "$jr", ("m.room.member", sam): "$y"}  # fmt: skip
    s1 = {**base, ("m.room.power_levels", ""): "$p", ("m.room.member", tess): "$t0"}
    s2 = {**base, ("m.room.power_levels", ""): "$pl0", ("m.room.member", tess): "$t1"}
    difference = auth_chain_difference(store, [list(s1.values()), list(s2.values())],
                                       inclusive=True)  # fmt: skip
    assert difference == {"$p", "$t1"}
    full = {"$p", "$pl0", "$t0", "$t1"}
    events = store.get_events(sorted(full))
    got = _power_events_with_ancestors(
        store, events, ["$p", "$pl0"], full, sorted(full), difference
    )
    assert got == {"$p", "$pl0", "$t0"} == {"$p", "$pl0"} | (full & auth_chain_ids(store, ["$p"]))
    everything = store.get_events(["$c", "$a", "$pl0", "$jr", "$t0", "$i", "$y", "$p", "$t1"])
    got = _power_events_with_ancestors(
        store, everything, ["$p", "$pl0"], full, sorted(full), difference
    )
    assert got == {"$p", "$pl0", "$t0"}  # the same, walked in memory
    stats = _Stats()
    _resolve("10", [s1, s2], store, stats)
    assert stats.power_events == 3


@given(room=rooms)
def test_select_all_equals_auth_keys(room: RoomStates) -> None:
    """``AuthChecker.select_all`` (the commonest selections inline) memoises, for every event,
    the keys ``auth_keys`` selects (held to ``auth_types_for_event`` in ``test_authz``), returns
    a set holding their union, and lists the power events (``_is_power_event``) in order —
    of the room's events and of odd ones (non-state power-levels and join-rules events,
    memberships that are not strings, self-bans, invites)."""
    events = dict(room.store.get_events(sorted(room.events)))
    v = room.rv
    odd = [
        make_event("$o1", version=v, type="m.room.power_levels", content={}),
        make_event("$o2", version=v, type="m.room.join_rules", content={}),
        *(
            make_event(
                eid,
                version=v,
                type="m.room.member",
                state_key=target,
                sender="@s:x",
                content={"membership": membership},
            )
            for eid, target, membership in (
                ("$o3", "@t:x", ["ban"]),  # not a string
                ("$o4", "@s:x", "ban"),  # a self-ban
                ("$o5", "@t:x", "invite"),
                ("$o6", "@t:x", "leave"),  # a kick
            )
        ),
        make_event("$o7", version=v, type="m.room.join_rules", state_key="", content={}),
    ]
    events.update((ev.event_id, ev) for ev in odd)
    fast = AuthChecker(room.rv, events, set())
    plain = AuthChecker(room.rv, events, set())
    power: list[str] = []
    needed = fast.select_all((events[e] for e in sorted(events)), power)
    for event_id in sorted(events):
        keys = plain.auth_keys(events[event_id])
        assert fast.auth_keys(events[event_id]) == keys, event_id
        assert needed.issuperset(keys)
    assert power == [e for e in sorted(events) if _is_power_event(events[e])]
