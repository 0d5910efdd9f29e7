"""The iterative auth checks of state resolution, over events already loaded in memory.

Rules of this module:

1. It decides nothing about the authorization rules itself: every decision is
   :func:`eventgraph.state.authz.check_auth`'s, given the auth events this module selects.
2. The auth events of an event checked against a state are the state's entries for the keys of
   the "Auth events selection" (server-server API), plus — in room version 12 — the create event
   the ``room_id`` implies. A key missing from the state is filled from the event's own
   ``auth_events`` if that auth event is not rejected (v2 "Iterative auth checks").
3. It never touches a store: the caller loads the events first, in batches.
4. An answer known without running the rules is not recomputed: an event the store does not
   mark as rejected passed the rules against its own auth events on receipt (server-server API
   "Checks performed on receipt of a PDU", check 4 — the state resolution spec relies on the
   same fact: "no events rejected due to failure to auth against their auth chain should appear
   in the process"). The rules are a pure function of the event and its auth events, so when the
   auth events selected from the state are exactly the event's own, the event passes. Events
   marked rejected are always checked in full.
5. The auth events are handed to the rules as the mapping the rules build anyway
   (``authz._check_selected``), skipping :func:`check_auth`'s checks of the list, when what those
   checks verify holds by construction: each selected event is filed under its own
   ``(type, state_key)`` and is of the event's room (so no duplicates and nothing unselected),
   the create event is there (RV 12: the one the room ID names) and the event is not a create
   event. Otherwise the list goes through :func:`check_auth` whole. :meth:`AuthChecker.
   allowed_plain` is the path without this shortcut; a property test holds the two equal.
6. :meth:`AuthChecker.apply` (the iterative checks) looks each state entry up and vets it (rule
   5) once per call, not once per event reading it, and hands the rules the map of vetted
   entries itself — exact because the rules read only the keys the selection picks for the
   event (property tests hold them to it, on generated rooms and on the whole auth-rule table).
   Its answers and counts are :meth:`AuthChecker.allowed`'s (a property test holds them equal
   to :meth:`AuthChecker.allowed_plain` applied event by event).
7. In :meth:`AuthChecker.apply`, the commonest events on rule 5's path are decided inline, in
   the rules' own order and with their own helpers, instead of through
   ``authz._check_selected``: a self-join under the ``public`` join rule of a user not banned,
   a self-leave, a kick or ban of another user, and a state event of a type with no rule of
   its own (a joined sender, the required level, ``@`` state keys). Anything else — an
   authorising user (member rule 2), a room that does not federate, other join rules — goes
   the general way. Tests hold them to the rules on the whole auth-rule table
   (``test_authz``) and on generated rooms (``test_stateres_fastpaths``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, MutableMapping
from typing import Final

from ..errors import AuthError
from ..events.auth_selection import auth_types_for_event
from ..events.event import Event, StateKey
from ..events.room_versions import RoomVersion
from .authz import (
    _DEFAULT_VERIFIER,
    _NAMED_DEFAULTS,
    Level,
    _check_selected,
    _Create,
    _create_of,
    _Levels,
    _levels_of,
    _user_level,
    check_auth,
)

__all__ = ["AuthChecker"]

_CREATE: StateKey = ("m.room.create", "")
_POWER_LEVELS: StateKey = ("m.room.power_levels", "")
_JOIN_RULES: StateKey = ("m.room.join_rules", "")
_MEMBER = "m.room.member"
_VIA = "join_authorised_via_users_server"
#: Types whose rules go beyond the joined sender, the required level and the '@' state keys
#: (the general way of rule 7): power levels, third-party invites, aliases (RV 1–5),
#: redactions (RV 1–2) and the create event.
_GENERAL_TYPES: Final = frozenset(
    {
        "m.room.power_levels",
        "m.room.third_party_invite",
        "m.room.aliases",
        "m.room.redaction",
        "m.room.create",
    }
)


class AuthChecker:
    """Checks events against a running state, counting the checks.

    Attributes:
        checks: how many events were checked.
        known: how many of those were answered by rule 4 (no need to run the rules).
    """

    __slots__ = (
        "_fallback",
        "_keys",
        "_last_create",
        "_levels",
        "_levels_fn",
        "_rv",
        "checks",
        "events",
        "known",
        "rejected",
    )

    def __init__(
        self,
        rv: RoomVersion,
        events: Mapping[str, Event],
        rejected: Collection[str],
        *,
        fallback_to_own_auth_events: bool = True,
    ) -> None:
        self._rv = rv
        self.events = events
        self.rejected = rejected
        self._fallback = fallback_to_own_auth_events
        self._keys: dict[str, tuple[StateKey, ...]] = {}
        self._levels: dict[str, _Levels] = {}
        self._levels_fn = _memoised_levels(self._levels)
        # The create event :meth:`apply` last handed to the rules, parsed.
        self._last_create: tuple[object, _Create | None] = (_UNSET, None)
        self.checks = 0
        self.known = 0

    def auth_keys(self, ev: Event) -> tuple[StateKey, ...]:
        """The state keys ``ev``'s auth events are selected from (rule 2), memoised.

        Spec: server-server API "Auth events selection": every event but the create event
        selects the create event, the power levels and the sender's membership; an
        ``m.room.member`` event also the target's membership and, for ``join``, ``invite`` and
        ``knock``, the join rules (invites with a third-party invite and restricted joins add
        a key: :func:`~eventgraph.events.auth_selection.auth_types_for_event` answers for
        those, and for the create event). In room version 12 the create event is not selected
        but implied by the room ID; it is looked up in the state all the same (rule 2). The
        order is ``auth_types_for_event``'s (a test holds the two equal).
        """
        keys = self._keys.get(ev.event_id)
        if keys is None:
            keys = self._keys[ev.event_id] = self._select(ev)
        return keys

    def _select(self, ev: Event) -> tuple[StateKey, ...]:
        """:meth:`auth_keys`, not memoised."""
        etype = ev.type
        keys: tuple[StateKey, ...]
        if etype != _MEMBER and etype != "m.room.create":
            keys = (_CREATE, _POWER_LEVELS, (_MEMBER, ev.sender))
        else:
            target = ev.state_key
            membership = ev.content.get("membership")
            if (
                etype == _MEMBER
                and target is not None
                and membership != "invite"
                and (
                    membership != "join"
                    or not self._rv.restricted_join_rule
                    or "join_authorised_via_users_server" not in ev.content
                )
            ):
                sender = ev.sender
                keys = (_CREATE, _POWER_LEVELS, (_MEMBER, sender))
                if target != sender:
                    keys += ((_MEMBER, target),)
                if membership == "join" or membership == "knock":
                    keys += (_JOIN_RULES,)
            else:
                keys = auth_types_for_event(self._rv, etype, ev.sender, target, ev.content)
                if self._rv.room_id_is_create_event_id and etype != "m.room.create":
                    keys = (_CREATE, *keys)
        return keys

    _auth_keys = auth_keys

    def needed_keys(self, event_ids: Iterable[str]) -> set[StateKey]:
        """The state keys the checks of ``event_ids`` may read (to load them in one batch)."""
        return self.select_all(map(self.events.__getitem__, event_ids))

    def select_all(self, evs: Iterable[Event], power: list[str] | None = None) -> set[StateKey]:
        """:meth:`auth_keys` of each event (memoised for the checks), and a set holding their
        union: the state keys the checks of ``evs`` may read, to load them in one batch.
        ``power``: a list the power events among ``evs`` are appended to, in order, if given.

        Spec (``power``): v2 "Power events": a state event of type ``m.room.power_levels`` or
        ``m.room.join_rules``, or an ``m.room.member`` whose membership is ``leave`` or ``ban``
        and whose sender does not match its ``state_key``
        (:func:`~eventgraph.state.resolution._is_power_event`).

        One loop with :meth:`auth_keys`'s commonest selections inline (state resolution calls
        it once on the whole full conflicted set, with ``power``: the type, sender, state key
        and membership it reads are the selection's); a test holds the two equal.
        """
        memo = self._keys
        needed: set[StateKey] = {_CREATE, _POWER_LEVELS}
        add = needed.add
        restricted = self._rv.restricted_join_rule
        select = self._select
        for ev in evs:
            etype = ev.type
            keys: tuple[StateKey, ...]
            if etype != _MEMBER:
                if etype == "m.room.create":
                    keys = select(ev)
                    needed.update(keys)
                else:
                    sender_key = (_MEMBER, ev.sender)
                    keys = (_CREATE, _POWER_LEVELS, sender_key)
                    add(sender_key)
                    if (
                        power is not None
                        and (etype == "m.room.power_levels" or etype == "m.room.join_rules")
                        and ev.state_key is not None
                    ):
                        power.append(ev.event_id)
            else:
                target = ev.state_key
                content = ev.content
                membership = content.get("membership")
                if (
                    target is None
                    or membership == "invite"
                    or (membership == "join" and restricted and _VIA in content)
                ):
                    keys = select(ev)  # (no power event: not a leave or a ban)
                    needed.update(keys)
                else:
                    sender = ev.sender
                    sender_key = (_MEMBER, sender)
                    add(sender_key)
                    if target != sender:
                        target_key = (_MEMBER, target)
                        add(target_key)
                        keys = (_CREATE, _POWER_LEVELS, sender_key, target_key)
                        if power is not None and (membership == "leave" or membership == "ban"):
                            power.append(ev.event_id)
                    else:
                        keys = (_CREATE, _POWER_LEVELS, sender_key)
                    if membership == "join" or membership == "knock":
                        keys += (_JOIN_RULES,)
                        add(_JOIN_RULES)
            memo[ev.event_id] = keys
        return needed

    def auth_events(self, state: Mapping[StateKey, str], ev: Event) -> list[Event]:
        """The auth events of ``ev`` against ``state`` (rule 2), in selection order."""
        events = self.events
        keys = self._auth_keys(ev)
        chosen: dict[StateKey, Event] = {}
        for key in keys:
            event_id = state.get(key)
            auth = events.get(event_id) if event_id is not None else None
            if auth is not None:
                chosen[key] = auth
        if len(chosen) < len(keys) and self._fallback:
            self._fill_from_own(ev, keys, chosen)
        return [chosen[k] for k in keys if k in chosen]

    def allowed(self, state: Mapping[StateKey, str], event_id: str) -> bool:
        """Whether the event passes the authorization rules against ``state``."""
        self.checks += 1
        return self._decide(state, self.events[event_id])

    def _decide(self, state: Mapping[StateKey, str], ev: Event) -> bool:
        """:meth:`allowed`, uncounted."""
        events = self.events
        event_id = ev.event_id
        keys = self._keys.get(event_id)
        if keys is None:
            keys = self.auth_keys(ev)
        # Rule 2 with rule 5's fast path: the selected events keyed by the key they were
        # selected for, used as they are only when each is filed under its own key.
        chosen: dict[StateKey, Event] = {}
        room_id = ev.room_id
        plain = False
        get = state.get
        for key in keys:
            auth_id = get(key)
            auth = events.get(auth_id) if auth_id is not None else None
            if auth is not None:
                chosen[key] = auth
                if auth.type != key[0] or auth.state_key != key[1] or auth.room_id != room_id:
                    plain = True  # filed under another key or room: let check_auth judge it
        if len(chosen) < len(keys) and self._fallback and self._fill_from_own(ev, keys, chosen):
            plain = True  # an own auth event of another room: let check_auth judge it
        if plain:
            return self._allowed_listed(ev, [chosen[k] for k in keys if k in chosen])
        own = ev.auth_event_ids
        if len(chosen) == len(own) and event_id not in self.rejected:
            # Distinct keys, each its event's own: distinct events, so "all of them among its
            # own auth events" with equal counts is set equality.
            for auth in chosen.values():
                if auth.event_id not in own:
                    break
            else:
                self.known += 1  # rule 4: these are its own auth events, which it passed
                return True
        create = chosen.get(_CREATE)
        if (
            create is None
            or ev.type == "m.room.create"
            or (
                self._rv.room_id_is_create_event_id
                and (create.event_id != "$" + room_id[1:] or not ev.implied_create_auth)
            )
        ):
            return self._run_check_auth(ev, [chosen[k] for k in keys if k in chosen])
        try:
            # Rule 5: what check_auth verifies about the list holds by construction here.
            _check_selected(self._rv, ev, chosen, create, _DEFAULT_VERIFIER, self._levels_fn)
        except AuthError:
            return False
        return True

    def _fill_from_own(
        self, ev: Event, keys: tuple[StateKey, ...], chosen: dict[StateKey, Event]
    ) -> bool:
        """Fill the keys missing from the state from ``ev``'s own auth events (rule 2); true if
        one filled in is of another room than ``ev``.

        Spec: v2 "Iterative auth checks": "If a (event_type, state_key) key that is required
        for checking the authorization rules is not present in the state, then the appropriate
        state event from the event's auth_events is used if the auth event is not rejected."
        """
        events = self.events
        rejected = self.rejected
        foreign = False
        missing = {k for k in keys if k not in chosen}
        for event_id in ev.auth_event_ids:
            auth = events.get(event_id)
            if auth is None or event_id in rejected or auth.state_key is None:
                continue
            key = (auth.type, auth.state_key)
            if key in missing:
                missing.discard(key)
                chosen[key] = auth
                foreign = foreign or auth.room_id != ev.room_id
        return foreign

    def _allowed_listed(self, ev: Event, auth: list[Event]) -> bool:
        """:meth:`allowed` without rule 5's fast path, given the auth events of rule 2."""
        own = ev.auth_event_ids
        if (
            len(auth) == len(own)
            and ev.event_id not in self.rejected
            and {a.event_id for a in auth} == set(own)
        ):
            self.known += 1  # rule 4: these are its own auth events, which it passed
            return True
        return self._run_check_auth(ev, auth)

    def allowed_plain(self, state: Mapping[StateKey, str], event_id: str) -> bool:
        """:meth:`allowed` the plain way (rules 2 and 4, then :func:`check_auth` on a list);
        the reference the fast path is tested against."""
        ev = self.events[event_id]
        self.checks += 1
        return self._allowed_listed(ev, self.auth_events(state, ev))

    def _run_check_auth(self, ev: Event, auth: list[Event]) -> bool:
        """:func:`check_auth` on the auth events as a list, every list rule checked."""
        try:
            check_auth(self._rv, ev, auth)
        except AuthError:
            return False
        return True

    def sender_power(self, ev: Event) -> float:
        """The power level of ``ev``'s sender, judged from ``ev``'s own (loaded) auth events
        (see :meth:`power_sort_keys`)."""
        return -self.power_sort_keys((ev,))[ev.event_id][0]

    def power_sort_keys(self, evs: Iterable[Event]) -> dict[str, tuple[float, int, str]]:
        """Each event's comparison key of the reverse topological power ordering:
        ``(-sender power, origin_server_ts, event_id)``, by event ID.

        Spec: v2 "Reverse topological power ordering": "x's sender has greater power level
        than y's sender, when looking at their respective auth_events". The definitions are the
        authorization rules' (:func:`eventgraph.state.authz.sender_power_level`): the last
        ``m.room.power_levels`` and ``m.room.create`` events (state key ``""``) among the loaded
        auth events; no power levels event, the creator 100 and others 0; room version 12
        creators, infinity. The parsed create and power levels events are reused while they
        repeat from one event to the next (they mostly do), so there is no memo per event.
        """
        events_get = self.events.get
        rv = self._rv
        levels_of = self._levels_fn
        last_create: Event | None = None
        create_info: _Create | None = None
        last_pl: Event | None = None
        levels: _Levels | None = None
        infinite = rv.creators_have_infinite_power
        keys: dict[str, tuple[float, int, str]] = {}
        for ev in evs:
            pl: Event | None = None
            create: Event | None = None
            if infinite:  # (the creators' infinite power needs the create event: one scan)
                for a in ev.auth_event_ids:
                    auth = events_get(a)
                    if auth is not None and auth.state_key == "":
                        etype = auth.type
                        if etype == "m.room.power_levels":
                            pl = auth
                        elif etype == "m.room.create":
                            create = auth
            else:  # (the create event is read only with no power levels event, below)
                for a in ev.auth_event_ids:
                    auth = events_get(a)
                    if (
                        auth is not None
                        and auth.type == "m.room.power_levels"
                        and auth.state_key == ""
                    ):
                        pl = auth
            if pl is not last_pl:
                last_pl = pl
                levels = None if pl is None else levels_of(rv, pl)
            event_id = ev.event_id
            level: Level
            if levels is not None and not infinite:
                # ``_user_level``'s last step, inline (the usual case: a power levels event
                # and no infinitely powerful creators, so the create event is not read).
                listed = levels.users.get(ev.sender)
                level = levels.resolved["users_default"] if listed is None else listed
            else:
                if not infinite:  # no power levels event: the creator's 100
                    for a in ev.auth_event_ids:
                        auth = events_get(a)
                        if (
                            auth is not None
                            and auth.type == "m.room.create"
                            and auth.state_key == ""
                        ):
                            create = auth
                if create is not last_create:
                    last_create = create
                    create_info = None if create is None else _create_of(rv, create)
                level = _user_level(rv, ev.sender, create_info, levels)
            keys[event_id] = (-level, ev.origin_server_ts, event_id)
        return keys

    def apply(self, state: MutableMapping[StateKey, str], ordered: Iterable[str]) -> None:
        """The iterative auth checks: apply each event of ``ordered`` that passes, in order.

        Spec: v2 "Iterative auth checks": "iterating through the event list and applying the
        state event to the room state if the state event is allowed by the authorization
        rules. If the state event is not allowed ... the event is ignored."

        Rule 6: the answers are :meth:`allowed`'s, but each state entry read is looked up and
        vetted once per call, not once per event that reads it. ``vetted`` maps a state key to
        its entry's event: the loaded event filed under that key and of the room, or ``None``
        for an entry absent or not loaded — or filed under another key or of another room,
        whose key is then in ``odd``. The rules read only the keys the auth events selection
        picks (a property test holds them to it) and ``None`` reads as absent, so ``vetted``
        itself is the auth events mapping handed to them — when every key of the event is
        vetted, none in ``odd`` and none needs a fallback to its own auth events (rule 2);
        otherwise the event goes the way of :meth:`allowed`. Rule 4 is judged in the loop that
        reads the entries: the selected events are the event's own when they are all among
        its auth events and as many. (One loop, with the checks inline: this is the hot path
        of state resolution.)
        """
        events = self.events
        keys_of = self._keys
        rejected = self.rejected
        fallback = self._fallback
        rv = self._rv
        v12 = rv.room_id_is_create_event_id
        infinite = rv.creators_have_infinite_power
        levels_fn = self._levels_fn
        vetted: dict[StateKey, Event | None] = {}
        vetted_get = vetted.get
        odd: set[StateKey] = set()
        # The create and power levels events last handed to the rules, parsed (they change
        # only when such an event is applied); the create event's kept from the last call.
        last_create, create_info = self._last_create
        last_pl: object = _UNSET
        levels: _Levels | None = None
        # What rule 7 reads of ``levels``: the named levels (defaults filled in), the events'
        # levels, and the users' (``users_get`` is ``None`` when ``_user_level`` answers: no
        # power levels event, or creators infinitely powerful).
        named: Mapping[str, int] = _NAMED_DEFAULTS
        event_levels: Mapping[str, int] = _NO_LEVELS
        users_get: Callable[[str, int], int] | None = None
        users_default = 0
        state_get = state.get
        events_get = events.get
        room_id: str | None = None
        checks = known = 0
        for event_id in ordered:
            ev = events[event_id]
            state_key = ev.state_key
            if state_key is None:
                continue
            checks += 1
            ev_room = ev.room_id
            if room_id is None:
                room_id = ev_room
            if ev_room != room_id:  # another room (never in state resolution): no vetting
                ok = self._decide(state, ev)
            else:
                try:
                    keys = keys_of[event_id]
                except KeyError:
                    keys = self.auth_keys(ev)
                own = ev.auth_event_ids
                # Rule 4 judged on the way: how many keys have no entry, and whether an entry
                # is not among the event's own auth events.
                missing = 0
                stranger = False
                for key in keys:
                    entry = vetted_get(key, _UNSET)
                    if entry is _UNSET:
                        auth_id = state_get(key)
                        entry = events_get(auth_id) if auth_id is not None else None
                        if entry is not None and (
                            entry.type != key[0]
                            or entry.state_key != key[1]
                            or entry.room_id != room_id
                        ):
                            odd.add(key)
                            entry = None
                        vetted[key] = entry
                    if entry is None:
                        missing += 1
                    elif entry.event_id not in own:  # type: ignore[attr-defined]  # an Event
                        stranger = True
                amap: Mapping[StateKey, Event | None] = vetted
                foreign = False
                if odd:
                    foreign = not odd.isdisjoint(keys)
                if missing and fallback and not foreign:
                    # Rule 2's fallback: a key absent from the state takes the event's own
                    # auth event filed under it, if not rejected (the first such one).
                    fills: dict[StateKey, Event] | None = None
                    for auth_id in own:
                        auth = events_get(auth_id)
                        if auth is None or auth.state_key is None or auth_id in rejected:
                            continue
                        key = (auth.type, auth.state_key)
                        if (
                            key in keys
                            and vetted[key] is None
                            and (fills is None or key not in fills)
                        ):
                            if auth.room_id != room_id:
                                foreign = True  # of another room: let check_auth judge it
                                break
                            if fills is None:
                                fills = {}
                            fills[key] = auth
                    if fills:
                        amap = {}  # (a plain loop: a comprehension is a function call)
                        for key in keys:
                            amap[key] = vetted[key]
                        amap.update(fills)
                        missing -= len(fills)  # filled with its own auth events
                if foreign:
                    ok = self._decide(state, ev)
                elif not stranger and len(keys) - missing == len(own) and event_id not in rejected:
                    # Distinct keys, each its event's own: distinct events, all among its own
                    # auth events and as many.
                    known += 1  # rule 4: its own auth events, which it passed
                    ok = True
                else:
                    create = amap.get(_CREATE)
                    if (
                        create is None
                        or ev.type == "m.room.create"
                        or (
                            v12
                            and (create.event_id != "$" + room_id[1:] or not ev.implied_create_auth)
                        )
                    ):
                        ok = self._decide(state, ev)
                    else:
                        if create is not last_create:
                            last_create = create
                            create_info = _create_of(rv, create)
                        pl = amap.get(_POWER_LEVELS)
                        if pl is not last_pl:
                            last_pl = pl
                            if pl is None:
                                levels = None
                                named, event_levels, users_get = _NAMED_DEFAULTS, _NO_LEVELS, None
                            else:
                                levels = levels_fn(rv, pl)
                                named, event_levels = levels.resolved, levels.events
                                if not infinite:
                                    users_get = levels.users.get
                                    users_default = named["users_default"]
                        assert create_info is not None
                        # Rule 7: the commonest cases decided inline, as the rules decide them
                        # (``_user_level`` and ``_named_level`` inline when ``users_get``).
                        fast: bool | None = None
                        etype = ev.type
                        if create_info.federate_false:
                            pass  # rule 3 / 4 (m.federate) first: the general way
                        elif etype == _MEMBER:
                            content = ev.content
                            # Member rule 2 (RV 8+, an authorising user) needs the general way.
                            if _VIA in content:
                                pass
                            elif state_key == ev.sender:
                                member = amap.get((_MEMBER, state_key))
                                had = None if member is None else member.content.get("membership")
                                membership = content.get("membership")
                                if membership == "join":
                                    jr = amap.get(_JOIN_RULES)
                                    if (
                                        jr is not None
                                        and jr.content.get("join_rule") == "public"
                                        and had != "ban"
                                    ):
                                        fast = True  # join rules 2, 3, 6 (rule 1 also allows)
                                elif membership == "leave":
                                    # Leave rule 1: leaving oneself (RV 7+: also from knock).
                                    fast = (
                                        had == "join"
                                        or had == "invite"
                                        or (had == "knock" and rv.knock_join_rule)
                                    )
                            else:
                                membership = content.get("membership")
                                if membership == "leave" or membership == "ban":
                                    # Leave rules 2–5 (a kick, an unban) and ban rules 1–3.
                                    sender = ev.sender
                                    member = amap.get((_MEMBER, sender))
                                    if member is None or member.content.get("membership") != "join":
                                        fast = False
                                    else:
                                        level: Level
                                        target_level: Level
                                        if users_get is None:
                                            level = _user_level(rv, sender, create_info, levels)
                                        else:
                                            level = users_get(sender, users_default)
                                        target = amap.get((_MEMBER, state_key))
                                        if membership == "leave" and (
                                            target is not None
                                            and target.content.get("membership") == "ban"
                                            and level < named["ban"]
                                        ):
                                            fast = False  # leave rule 3: unbanning
                                        elif (
                                            level < named["ban" if membership == "ban" else "kick"]
                                        ):
                                            fast = False
                                        else:
                                            if users_get is None:
                                                target_level = _user_level(
                                                    rv, state_key, create_info, levels
                                                )
                                            else:
                                                target_level = users_get(state_key, users_default)
                                            fast = target_level < level
                        elif etype not in _GENERAL_TYPES:
                            # Rules 6 / 5 (joined sender), 8 / 7 (required level), 9 / 8 ('@').
                            sender = ev.sender
                            member = amap.get((_MEMBER, sender))
                            if member is None or member.content.get("membership") != "join":
                                fast = False
                            else:
                                required = event_levels.get(etype)
                                if required is None:
                                    required = named["state_default"]
                                if users_get is None:
                                    level = _user_level(rv, sender, create_info, levels)
                                else:
                                    level = users_get(sender, users_default)
                                fast = required <= level and (
                                    state_key[:1] != "@" or state_key == sender
                                )
                        if fast is not None:
                            ok = fast
                        else:
                            try:
                                # Rule 5: what check_auth verifies about the list holds here.
                                _check_selected(
                                    rv,
                                    ev,
                                    amap,  # type: ignore[arg-type]  # None: absent
                                    create,
                                    _DEFAULT_VERIFIER,
                                    levels_fn,
                                    (create_info, levels),
                                )
                                ok = True
                            except AuthError:
                                ok = False
            if ok:
                key = (ev.type, state_key)
                state[key] = event_id
                if ev_room == room_id:
                    vetted[key] = ev  # filed under its own key, of the room
                    if odd:
                        odd.discard(key)
                else:
                    vetted.pop(key, None)
        self._last_create = (last_create, create_info)
        self.checks += checks
        self.known += known


def _memoised_levels(memo: dict[str, _Levels]) -> Callable[[RoomVersion, Event], _Levels]:
    """:func:`~eventgraph.state.authz._levels_of` memoised in ``memo`` (by event ID): parsed
    power levels kept for a checker's lifetime (one resolution), as the bounded process-wide
    memo of :mod:`~eventgraph.state.authz` would be swept by resolutions with more power-levels
    events than its bound, parsing each again.

    A function closing over the memo, not a bound method kept on the checker: that would make
    a reference cycle (checker -> method -> checker), so every checker, with its memos, would
    outlive its resolution until the cyclic collector ran (a test holds resolutions free of
    cyclic garbage).
    """
    get = memo.get

    def levels_of(rv: RoomVersion, ev: Event) -> _Levels:
        levels = get(ev.event_id)
        if levels is None:
            levels = memo[ev.event_id] = _levels_of(rv, ev)
        return levels

    return levels_of


_UNSET: Final = object()
_NO_LEVELS: Final[Mapping[str, int]] = {}
