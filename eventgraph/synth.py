"""Synthetic rooms: deterministic, valid room DAGs of any room version, streamed.

The generator plays a small homeserver cluster that creates a room and lets it live: members
join (by themselves or after an invite), talk, change their display names, leave, rejoin, get
kicked, banned and unbanned; moderators change the topic and the name; the creator promotes and
demotes moderators and moves the topic's power level. Now and then the room *forks*: several
branches grow concurrently from one event and a later event lists all their tips as
``prev_events`` (a merge).

Rules of this module:

1. Every event is built as a federation PDU and goes through :meth:`Event.from_pdu`, so its
   format is checked and its event ID is computed by the one code path that reads network input.
   Its content hash (``hashes.sha256``) is correct (server-server API "Calculating the content
   hash for an event"); its ``depth`` is the largest depth of its ``prev_events`` plus one (the
   create event has depth 1, as Synapse gives it); room versions 1–2 carry ``$<n>.<room>:<server>``
   event IDs and ``[event_id, {"sha256": reference hash}]`` edge pairs (``pdu_v1.yaml``).
2. ``signatures`` is ``{}``: eventgraph holds no signing keys; verifying signatures is the
   host's hook in the ingest pipeline. Everything else a receiving server checks holds.
3. ``auth_events`` are chosen by :func:`~eventgraph.events.auth_selection.auth_types_for_event`
   from the state *before* the event on its branch (server-server API "Auth events selection").
   Every event is allowed by the authorization rules of its room version against those auth
   events and against that state (the generator only attempts actions the rules allow: see
   ``_Room`` for the bookkeeping that guarantees it; the tests check every event with
   :func:`eventgraph.state.authz.check_auth`).
4. The generator needs no state resolution to know the state after a merge: only the first
   branch of a fork changes state, the others only send messages (each message branch has its
   own sender, joined at the fork point), and the first branch keeps to changes that every
   state resolution algorithm resolves to that branch's own state. So the state after a merge
   is the state of the first branch, and the tests check it with
   :func:`eventgraph.state.resolution.resolve_state`. Concretely, inside a fork: no power-level
   changes (v2 replays power events first, so a demotion would undo an earlier topic); no kick
   or ban of a member who already sent a state event on the branch (same reason); and in room
   version 1 (state resolution v1, which stops at the first member event failing against the
   partly resolved state) only display names, topics and names.
5. Deterministic: the output depends only on the :class:`SynthConfig` (no set or dict iteration
   order, no clock); one :class:`random.Random` seeded with ``seed`` drives every choice.
6. Streaming: events are yielded in topological order (every event after its ``prev_events``
   and ``auth_events``) and never collected. The generator keeps the current state (one entry per
   state key), the branch tips and the member pools: memory grows with the number of members,
   not with the number of events.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from .errors import InvalidRequestError
from .events.auth_selection import auth_types_for_event
from .events.canonical_json import JsonValue, encode_canonical_json
from .events.event import MAX_PREV_EVENTS, Event
from .events.hashes import reference_hash, unpadded_base64
from .events.room_versions import EventFormat, RoomVersion, StateResAlgorithm, room_version

__all__ = ["RoomShape", "SynthConfig", "generate_room"]

#: Power levels of the generated rooms (spec: ``m.room.power_levels`` schema defaults, made
#: explicit). The creator has 100 (RV 1–11) or infinite power (RV 12); moderators 50.
MODERATOR_LEVEL = 50
CREATOR_LEVEL = 100

_WORDS = (
    "hello",
    "matrix",
    "room",
    "graph",
    "event",
    "state",
    "fork",
    "merge",
    "today",
    "lunch",
    "release",
    "review",
    "ship",
    "thanks",
    "👍",
    "déjà",
    "vu",
    "see",
    "you",
    "later",
)


@attrs.frozen(kw_only=True)
class SynthConfig:
    """The knobs of a synthetic room. Frozen: a value names one room exactly.

    Attributes:
        room_version: the room version identifier, ``"1"`` … ``"12"``.
        events: how many events the room has in total (the create event included).
        members: how many distinct users ever join or are invited (the creator included).
        seed: the seed of the pseudo-random choices; the same config gives the same room.
        servers: how many homeservers the members are spread over (``hs0.example`` …).
        fork_rate: the probability that an event on the main line starts a fork.
        fork_width: the most concurrent branches of a fork (at least 2, at most 20).
        fork_length: the most events on one branch of a fork.
        state_rate: the probability that an event (other than a new member's join) is a state
            change: display name, topic, name, leave, rejoin, invite, kick, ban, unban, power
            levels.
        start_ts: ``origin_server_ts`` of the create event, in milliseconds.

    Raises:
        InvalidRequestError: a knob is out of range (unknown room versions raise
            :class:`~eventgraph.UnsupportedRoomVersionError`).

    >>> SynthConfig(room_version="12", events=100).members
    20
    >>> SynthConfig(events=0)
    Traceback (most recent call last):
    ...
    eventgraph.errors.InvalidRequestError: events must be at least 1, not 0
    """

    room_version: str = "11"
    events: int = 1000
    members: int = 20
    seed: int = 0
    servers: int = 3
    fork_rate: float = 0.02
    fork_width: int = 3
    fork_length: int = 8
    state_rate: float = 0.15
    start_ts: int = 1_700_000_000_000

    def __attrs_post_init__(self) -> None:
        room_version(self.room_version)
        for name, low, high in (
            ("events", 1, None),
            ("members", 1, None),
            ("servers", 1, None),
            ("fork_width", 2, MAX_PREV_EVENTS),
            ("fork_length", 1, None),
            ("start_ts", 0, 2**53 - 1 - 10**12),
        ):
            value = getattr(self, name)
            if type(value) is not int or value < low or (high is not None and value > high):
                bound = f"at least {low}" if high is None else f"between {low} and {high}"
                msg = f"{name} must be {bound}, not {value!r}"
                raise InvalidRequestError(msg)
        if type(self.seed) is not int:
            raise InvalidRequestError(f"seed must be an integer, not {self.seed!r}")
        for name in ("fork_rate", "state_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                msg = f"{name} must be a probability between 0 and 1, not {value!r}"
                raise InvalidRequestError(msg)

    def stream(self) -> Iterator[Event]:
        """Generate the room: its events in topological order, one at a time (rule 6).

        Complexity: O(events) time; O(members) memory.

        >>> config = SynthConfig(room_version="3", events=10, fork_rate=0.0)
        >>> [e.depth for e in config.stream()] == list(range(1, 11))
        True
        """
        return _Room(self).run()


def generate_room(
    version: str = "11",
    *,
    events: int = 1000,
    members: int = 20,
    seed: int = 0,
    servers: int = 3,
    fork_rate: float = 0.02,
    fork_width: int = 3,
    fork_length: int = 8,
    state_rate: float = 0.15,
    start_ts: int = 1_700_000_000_000,
) -> Iterator[Event]:
    """Generate a valid synthetic room of room version ``version`` as a stream of events.

    A shorthand for ``SynthConfig(room_version=version, ...).stream()``; see
    :class:`SynthConfig` for the knobs and the module rules for what "valid" means.

    The events come in topological order (each after its ``prev_events`` and ``auth_events``),
    so they can be stored as they come. The first events are the create event, the creator's
    join, the power levels, the join rules (``public``) and the history visibility
    (``shared``); a room of fewer events is a prefix of that.

    Spec: server-server API "PDUs", "Auth events selection", "Calculating the content hash for
    an event", "Calculating the reference hash for an event"; the room version pages.

    Complexity: O(events) time (each event costs a few canonical-JSON encodings and SHA-256s);
    O(members) memory, whatever the number of events.

    Raises:
        InvalidRequestError: a knob is out of range (raised at once, not when iterating).
        UnsupportedRoomVersionError: unknown room version.

    >>> events = list(generate_room("11", events=40, members=6, seed=7))
    >>> len(events), events[0].type, events[1].content["membership"]
    (40, 'm.room.create', 'join')
    >>> [e.event_id for e in generate_room("11", events=40, members=6, seed=7)] == [
    ...     e.event_id for e in events]
    True
    >>> next(generate_room("12")).room_id[1:] == next(generate_room("12")).event_id[1:]
    True
    """
    config = SynthConfig(
        room_version=version,
        events=events,
        members=members,
        seed=seed,
        servers=servers,
        fork_rate=fork_rate,
        fork_width=fork_width,
        fork_length=fork_length,
        state_rate=state_rate,
        start_ts=start_ts,
    )
    return config.stream()


@attrs.frozen(kw_only=True)
class RoomShape:
    """The shape of a room DAG, measured over a stream of its events.

    Attributes:
        events: the number of events.
        state_events: how many of them are state events.
        max_depth: the largest ``depth``.
        forks: events that are a ``prev_event`` of two or more events.
        merges: events with two or more ``prev_events``.
        senders: distinct senders.

    >>> RoomShape.measure(generate_room("10", events=200, fork_rate=0.2, seed=3)).forks > 0
    True
    """

    events: int
    state_events: int
    max_depth: int
    forks: int
    merges: int
    senders: int

    @classmethod
    def measure(cls, events: Iterable[Event]) -> RoomShape:
        """Measure the shape of the DAG made of ``events`` (any order).

        Complexity: O(events) time; memory O(distinct event IDs named as prev events).
        """
        children: dict[str, int] = {}
        senders: set[str] = set()
        count = state = max_depth = merges = forks = 0
        for event in events:
            count += 1
            state += event.state_key is not None
            max_depth = max(max_depth, event.depth)
            senders.add(event.sender)
            if len(event.prev_event_ids) > 1:
                merges += 1
            for prev in event.prev_event_ids:
                seen = children.get(prev, 0)
                if seen == 1:
                    forks += 1
                children[prev] = seen + 1
        return cls(
            events=count,
            state_events=state,
            max_depth=max_depth,
            forks=forks,
            merges=merges,
            senders=len(senders),
        )


# -- the generator -----------------------------------------------------------------------------

#: The share of :meth:`_Room.state_change` kinds that are display names, topics and names.
_SIMPLE_KINDS = 0.42
#: The share of :meth:`_Room.state_change` kinds that are not power-level changes.
_NO_POWER_KINDS = 0.90

#: ``(event_id, edge as it appears in a PDU, depth)``: an event other events may point at.
_Ref = tuple[str, JsonValue, int]
#: ``(type, state_key, sender, content)``: an event before it has edges, hashes and an ID.
_Draft = tuple[str, str | None, str, dict[str, JsonValue]]


def _localpart(user: str) -> str:
    return user[1 : user.index(":")]


class _Pool:
    """A list of users with O(1) add, remove and uniform choice (swap-remove), insertion-ordered.

    Choices depend only on the sequence of operations, never on hashing.
    """

    __slots__ = ("_index", "_items")

    def __init__(self) -> None:
        self._items: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, user: str) -> bool:
        return user in self._index

    def add(self, user: str) -> None:
        self._index[user] = len(self._items)
        self._items.append(user)

    def remove(self, user: str) -> None:
        i = self._index.pop(user)
        last = self._items.pop()
        if last != user:
            self._items[i] = last
            self._index[last] = i

    def pick(self, rng: random.Random) -> str:
        return self._items[int(rng.random() * len(self._items))]

    def at(self, i: int) -> str:
        return self._items[i]


class _Fork:
    """A fork in progress: branch 0 may change state; the others send messages (rule 4).

    ``state_senders`` are the senders of branch 0's state events so far. State resolution v2
    replays the kicks and bans of a branch (power events) before its other state events, so a
    topic, name or invite whose sender the same branch later kicks or bans would not survive
    the merge. Such senders are therefore not kicked or banned until the fork is merged.

    ``staying`` are the message branches' senders: they stay joined until the merge, so that a
    server which receives branch 0 first does not soft-fail their messages (server-server API
    "Soft failure").
    """

    __slots__ = ("msg_auth", "msg_senders", "remaining", "state_senders", "staying", "tips")

    def __init__(
        self, tips: list[_Ref], remaining: list[int], msg_senders: list[str], msg_auth: list[Any]
    ) -> None:
        self.tips = tips
        self.remaining = remaining
        self.msg_senders = msg_senders
        self.msg_auth = msg_auth
        self.state_senders: set[str] = set()
        self.staying = frozenset(msg_senders)


class _Room:
    """The generator's bookkeeping: current state, member pools, power levels, branch tips.

    Membership invariants the actions rely on (so every event passes the auth rules):
    ``ordinary`` and ``mods`` are joined members (power 0 and ``MODERATOR_LEVEL``); the creator is
    joined and never leaves; ``left`` may rejoin or be invited (join rule ``public``);
    ``invited`` may join or decline; ``banned`` may only be unbanned. Moderators never leave, so
    every kick, ban and topic change has a joined sender with enough power.
    """

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.rv: RoomVersion = room_version(config.room_version)
        self.v1_edges = self.rv.event_format is EventFormat.V1
        self.simple_forks = self.rv.state_res is StateResAlgorithm.V1
        self.rng = random.Random(config.seed)
        self.total = config.events
        self.count = 0
        self.ts = config.start_ts
        self.servers = [f"hs{i}.example" for i in range(config.servers)]
        self.room_token = "".join(
            self.rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            for _ in range(18)
        )
        self.room_id = f"!{self.room_token}:{self.servers[0]}"
        self.creator = self.user(0)
        self.next_user = 1
        self.state: dict[tuple[str, str], _Ref] = {}
        self.tips: list[_Ref] = []
        self.fork: _Fork | None = None
        self.ordinary = _Pool()
        self.mods = _Pool()
        self.left = _Pool()
        self.invited = _Pool()
        self.banned = _Pool()
        self.pl_users: dict[str, int] = {}
        self.pl_events: dict[str, int] = {}
        self.topic_level = MODERATOR_LEVEL

    # -- helpers ------------------------------------------------------------------------------

    def user(self, n: int) -> str:
        return f"@u{n}:{self.servers[n % len(self.servers)]}"

    def words(self, low: int, high: int) -> str:
        rng = self.rng
        n = low + int(rng.random() * (high - low + 1))
        return " ".join(_WORDS[int(rng.random() * len(_WORDS))] for _ in range(n))

    def power_levels(self) -> dict[str, JsonValue]:
        events: dict[str, JsonValue] = dict(self.pl_events)
        events["m.room.topic"] = self.topic_level
        return {
            "ban": MODERATOR_LEVEL,
            "events": events,
            "events_default": 0,
            "invite": 0,
            "kick": MODERATOR_LEVEL,
            "redact": MODERATOR_LEVEL,
            "state_default": MODERATOR_LEVEL,
            "users": dict(self.pl_users),
            "users_default": 0,
        }

    def level(self, user: str) -> int:
        if user == self.creator:
            return CREATOR_LEVEL
        return self.pl_users.get(user, 0)

    def joined_count(self) -> int:
        return 1 + len(self.mods) + len(self.ordinary)

    def pick_joined(self) -> str:
        n = int(self.rng.random() * self.joined_count())
        if n == 0:
            return self.creator
        n -= 1
        if n < len(self.mods):
            return self.mods.at(n)
        return self.ordinary.at(n - len(self.mods))

    def pick_privileged(self) -> str:
        """A joined member with at least moderator power (the creator or a moderator)."""
        n = int(self.rng.random() * (1 + len(self.mods)))
        return self.creator if n == 0 else self.mods.at(n - 1)

    def auth_edges(self, draft: _Draft, state: dict[tuple[str, str], _Ref]) -> list[JsonValue]:
        event_type, state_key, sender, content = draft
        # Server-server API "Auth events selection" (digest §6.1), from the state before.
        keys = auth_types_for_event(self.rv, event_type, sender, state_key, content)
        return [state[k][1] for k in keys if k in state]

    # -- building events ----------------------------------------------------------------------

    def emit(self, draft: _Draft, prev: list[_Ref], auth: list[JsonValue]) -> tuple[Event, _Ref]:
        """Build, hash and parse one event; it becomes the next event of the stream."""
        event_type, state_key, sender, content = draft
        rv = self.rv
        self.ts += 1 + int(self.rng.random() * 5000)
        depth = 1
        for ref in prev:
            if ref[2] >= depth:
                depth = ref[2] + 1
        # PDU depth: "the maximum depth of the prev_events, plus one" (pdu schemas, digest §4.3).
        depth = min(depth, rv.max_depth)
        pdu: dict[str, JsonValue] = {
            "auth_events": auth,
            "content": content,
            "depth": depth,
            "origin_server_ts": self.ts,
            "prev_events": [ref[1] for ref in prev],
            "sender": sender,
            "type": event_type,
        }
        if not (rv.room_id_is_create_event_id and event_type == "m.room.create"):
            pdu["room_id"] = self.room_id  # RV 12: omitted from the create event (MSC4291)
        if state_key is not None:
            pdu["state_key"] = state_key
        if self.v1_edges:
            server = sender.split(":", 1)[1]
            pdu["event_id"] = f"${self.count}.{self.room_token}:{server}"
        # Content hash: canonical JSON of the PDU without hashes, signatures, unsigned (§4.6).
        digest = hashlib.sha256(encode_canonical_json(pdu)).digest()
        pdu["hashes"] = {"sha256": unpadded_base64(digest)}
        pdu["signatures"] = {}  # rule 2: no keys
        event = Event.from_pdu(pdu, rv)
        self.count += 1
        event_id = event.event_id
        if self.v1_edges:
            # RV 1–2 edges are [event_id, {"sha256": reference hash}] (pdu_v1.yaml).
            ref_hash = unpadded_base64(reference_hash(pdu, rv))
            return event, (event_id, [event_id, {"sha256": ref_hash}], depth)
        return event, (event_id, event_id, depth)

    def apply_state(self, event: Event, ref: _Ref) -> None:
        if event.state_key is not None:
            self.state[(event.type, event.state_key)] = ref

    # -- the room's life ----------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        for draft in self.setup():
            if self.count >= self.total:
                return
            yield self.main_line(draft)
        while self.count < self.total:
            fork = self.fork
            if fork is None:
                remaining = self.total - self.count
                if (
                    remaining >= 3
                    and self.joined_count() >= 2
                    and self.rng.random() < self.config.fork_rate
                ):
                    self.start_fork(remaining)
                    continue
                yield self.main_line(self.next_draft())
            elif any(fork.remaining):
                yield self.fork_step(fork)
            else:
                yield self.merge(fork)

    def main_line(self, draft: _Draft) -> Event:
        event, ref = self.emit(draft, self.tips, self.auth_edges(draft, self.state))
        self.apply_state(event, ref)
        self.tips = [ref]
        return event

    def setup(self) -> Iterator[_Draft]:
        rv = self.rv
        creator = self.creator
        create: dict[str, JsonValue] = {"room_version": rv.identifier}
        if not rv.implicit_room_creator:
            create["creator"] = creator  # RV 1–10: content.creator (removed in RV 11)
        yield ("m.room.create", "", creator, create)
        if rv.room_id_is_create_event_id:
            # RV 12: the room ID is the create event's ID with the "!" sigil (MSC4291).
            self.room_id = "!" + self.tips[0][0][1:]
        yield ("m.room.member", creator, creator, {"membership": "join", "displayname": "u0"})
        if not rv.creators_have_infinite_power:
            self.pl_users[creator] = CREATOR_LEVEL  # RV 12: creators must not be listed
        self.pl_events = {
            "m.room.avatar": MODERATOR_LEVEL,
            "m.room.canonical_alias": MODERATOR_LEVEL,
            "m.room.encryption": CREATOR_LEVEL,
            "m.room.history_visibility": CREATOR_LEVEL,
            "m.room.name": MODERATOR_LEVEL,
            "m.room.power_levels": CREATOR_LEVEL,
            "m.room.server_acl": CREATOR_LEVEL,
            # RV 12 (MSC4289): the tombstone's level must be above state_default.
            "m.room.tombstone": 150 if rv.creators_have_infinite_power else CREATOR_LEVEL,
        }
        yield ("m.room.power_levels", "", creator, self.power_levels())
        yield ("m.room.join_rules", "", creator, {"join_rule": "public"})
        yield ("m.room.history_visibility", "", creator, {"history_visibility": "shared"})

    def next_draft(self, *, in_fork: bool = False) -> _Draft:
        """The next event of the main line (or of the state branch of a fork)."""
        rng = self.rng
        new_members = self.config.members - self.next_user
        # Newcomers arrive at an even pace over the first half of the room (or as fast as the
        # budget allows): the chance is what remains to arrive over the time left to do it.
        time_left = self.total // 2 - self.count
        # Room version 1 resolves a merge with state resolution v1, whose member and power-level
        # passes stop at the first event that fails against the partly resolved state. Its forks
        # keep to changes every algorithm resolves to the first branch's state (rule 4):
        # display names of members joined at the fork, topic and name.
        simple = in_fork and self.simple_forks
        if not simple and new_members > 0 and rng.random() * time_left < new_members:
            return self.newcomer()
        if rng.random() < self.config.state_rate:
            kinds = (_SIMPLE_KINDS if simple else _NO_POWER_KINDS) if in_fork else 1.0
            draft = self.state_change(kinds)
            if draft is not None:
                return draft
        return self.message(self.pick_joined())

    def message(self, sender: str) -> _Draft:
        return ("m.room.message", None, sender, {"msgtype": "m.text", "body": self.words(2, 14)})

    def newcomer(self) -> _Draft:
        user = self.user(self.next_user)
        self.next_user += 1
        if self.rng.random() < 0.15:
            # Invite by any joined member (invite level 0); the invitee answers later.
            self.invited.add(user)
            return ("m.room.member", user, self.pick_joined(), {"membership": "invite"})
        self.ordinary.add(user)
        return (
            "m.room.member",
            user,
            user,
            {"membership": "join", "displayname": _localpart(user)},
        )

    def state_change(self, kinds: float) -> _Draft | None:
        """One state change the auth rules allow, or ``None`` if the chosen kind has no
        candidate (the caller then sends a message). ``kinds`` < 1 keeps to the first kinds."""
        rng = self.rng
        r = rng.random() * kinds
        join = {"membership": "join"}
        if r < 0.25:  # display name: a join over a join (member rules: join, "public")
            user = self.pick_joined()
            return ("m.room.member", user, user, {**join, "displayname": self.words(1, 2)})
        if r < 0.37:  # topic: needs the topic's level
            sender = self.pick_joined() if self.topic_level == 0 else self.pick_privileged()
            return ("m.room.topic", "", sender, {"topic": self.words(3, 10)})
        if r < 0.42:  # name: needs state_default-ish level (events["m.room.name"] = 50)
            return ("m.room.name", "", self.pick_privileged(), {"name": self.words(1, 3)})
        if r < 0.55:  # leave by oneself
            if not self.ordinary:
                return None
            user = self.ordinary.pick(rng)
            if self.fork is not None and user in self.fork.staying:
                return None
            self.ordinary.remove(user)
            self.left.add(user)
            return ("m.room.member", user, user, {"membership": "leave"})
        if r < 0.65:  # rejoin after leaving or being kicked / unbanned
            if not self.left:
                return None
            user = self.left.pick(rng)
            self.left.remove(user)
            self.ordinary.add(user)
            return ("m.room.member", user, user, {**join, "displayname": _localpart(user)})
        if r < 0.70:  # invite someone who left
            if not self.left:
                return None
            user = self.left.pick(rng)
            self.left.remove(user)
            self.invited.add(user)
            return ("m.room.member", user, self.pick_joined(), {"membership": "invite"})
        if r < 0.77:  # an invitee answers: joins (mostly) or declines
            if not self.invited:
                return None
            user = self.invited.pick(rng)
            self.invited.remove(user)
            if rng.random() < 0.8:
                self.ordinary.add(user)
                return ("m.room.member", user, user, {**join, "displayname": _localpart(user)})
            self.left.add(user)
            return ("m.room.member", user, user, {"membership": "leave"})
        if r < 0.83:  # kick: sender >= kick level, target below the sender
            if not self.ordinary:
                return None
            user = self.ordinary.pick(rng)
            if self.fork is not None and (
                user in self.fork.state_senders or user in self.fork.staying
            ):
                return None
            self.ordinary.remove(user)
            self.left.add(user)
            return ("m.room.member", user, self.pick_privileged(), {"membership": "leave"})
        if r < 0.87:  # ban a joined or departed member
            pool = self.ordinary if not self.left or rng.random() < 0.5 else self.left
            if not pool:
                return None
            user = pool.pick(rng)
            if self.fork is not None and (
                user in self.fork.state_senders or user in self.fork.staying
            ):
                return None
            pool.remove(user)
            self.banned.add(user)
            return ("m.room.member", user, self.pick_privileged(), {"membership": "ban"})
        if r < 0.90:  # unban: a leave by someone with ban and kick power
            if not self.banned:
                return None
            user = self.banned.pick(rng)
            self.banned.remove(user)
            self.left.add(user)
            return ("m.room.member", user, self.pick_privileged(), {"membership": "leave"})
        return self.power_change()

    def power_change(self) -> _Draft | None:
        """The creator promotes, demotes, or moves the topic's level (PL rules: every old and
        new value is at most the creator's level, and no user at or above it is touched)."""
        rng = self.rng
        r = rng.random()
        cap = 2 + self.config.members // 200
        if r < 0.4 and self.ordinary and len(self.mods) < cap:
            user = self.ordinary.pick(rng)
            self.ordinary.remove(user)
            self.mods.add(user)
            self.pl_users[user] = MODERATOR_LEVEL
        elif r < 0.7 and self.mods:
            user = self.mods.pick(rng)
            self.mods.remove(user)
            self.ordinary.add(user)
            del self.pl_users[user]
        else:
            self.topic_level = 0 if self.topic_level else MODERATOR_LEVEL
        return ("m.room.power_levels", "", self.creator, self.power_levels())

    # -- forks --------------------------------------------------------------------------------

    def start_fork(self, remaining: int) -> None:
        """Open a fork at the current tip; the budget always leaves room for the merge."""
        rng = self.rng
        config = self.config
        width = 2 + int(rng.random() * (config.fork_width - 1))
        width = min(width, remaining - 1)
        lengths = [1 + int(rng.random() * config.fork_length) for _ in range(width)]
        budget = remaining - 1  # the merge
        for i in range(width):
            lengths[i] = min(lengths[i], budget - (width - 1 - i))
            budget -= lengths[i]
        # Each message branch gets one sender joined at the fork point; its auth events are the
        # state before every event of that branch, since the branch changes no state (rule 4).
        senders = [self.pick_joined() for _ in range(width - 1)]
        auth = [self.auth_edges(self.message(s), self.state) for s in senders]
        self.fork = _Fork([self.tips[0]] * width, lengths, senders, auth)

    def fork_step(self, fork: _Fork) -> Event:
        active = [i for i, n in enumerate(fork.remaining) if n]
        branch = active[int(self.rng.random() * len(active))]
        fork.remaining[branch] -= 1
        if branch == 0:
            draft = self.next_draft(in_fork=True)
            event, ref = self.emit(draft, [fork.tips[0]], self.auth_edges(draft, self.state))
            self.apply_state(event, ref)
            if event.state_key is not None:
                fork.state_senders.add(event.sender)
        else:
            draft = self.message(fork.msg_senders[branch - 1])
            event, ref = self.emit(draft, [fork.tips[branch]], fork.msg_auth[branch - 1])
        fork.tips[branch] = ref
        return event

    def merge(self, fork: _Fork) -> Event:
        """The event that lists every branch tip as a prev event (the state is branch 0's)."""
        self.fork = None
        draft = self.message(self.pick_joined())
        # Every branch has at least one event, so the tips are distinct.
        event, ref = self.emit(draft, fork.tips, self.auth_edges(draft, self.state))
        self.tips = [ref]
        return event
