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
   from the state *before* the event (server-server API "Auth events selection"): the main
   line's state, a branch's state (the fork point's plus the branch's own changes), or at a
   merge the resolution of the branches' states (rule 4). Every event is built, then kept only
   if :func:`eventgraph.state.authz.check_auth` allows it against exactly those auth events,
   which are that state's entries — so it passes against its auth events *and* against its
   state before. A refused draft becomes a message (``SynthStats.refused`` counts them).
   Exception, behind a knob: ``rejected_rate`` > 0 deliberately emits events that fail (an
   ordinary member renaming the room, with correctly selected auth events): a receiver
   *rejects* them; they change no state and are prev events of the next event like any other.
4. **Concurrent state.** With probability ``concurrent_state`` a fork is *contested*: its first
   two branches open with concurrent changes of the same state — a moderator's ban against the
   creator demoting that moderator (or the creator's ban against the creator promoting the
   target), a join-rule flip against a join, a topic war, a kick against the target's own
   membership change — and then send messages; otherwise only the first branch changes state
   (anything, power levels included). The state before a merge is the **real resolution** of
   the branches' states: :func:`eventgraph.state.resolution.resolve_state` of the room
   version. The tests hold the generator's state before every event equal to the spec's
   (whole-room ``resolve_state`` at every merge) and to the ingest pipeline's, in every room
   version.

   Resolving over the whole state costs O(state + its auth chains) per merge (≈0.2 s at 10^4
   members), so the generator resolves the fork's *scope*: the keys some branch changed, the
   create event, power levels and join rules, and the member keys of every sender and target
   of the branches' state events and of the fork point's entries of the changed keys — over a
   store holding the branches' state events, the fork point's entries of those keys, the auth
   events of all of these (each entry keeps its own, one level), and the power-levels chain
   from the current one down to the oldest one they name (the mainline a resolution walks;
   ``_Room.pl_history``). Keys outside the scope are unconflicted and no check of the
   resolution reads them. Why this is the whole answer: branch events take their auth events
   from the fork point's entries and their own branch, so the auth difference holds branch
   events and fork-point entries only — provided no entry names an event that lost an earlier
   resolution through a key that does not chain (topic, name, join rules). A contested branch
   therefore changes state once, so a winner never names a loser on its own branch. This is an
   argument, not a proof for every DAG the knobs allow; the tests check it on every room
   version. **Known gap:** a sweep of 97 rooms with contested forks at high rates (12 room
   versions x 8 seeds, 800 events, fork rate 0.1, state rate 0.5) matched the whole-room
   resolution in 96; the other, in room version 12, differs at one merge: state resolution
   v2.1 replays the *conflicted subgraph* (auth paths between conflicted events), which can
   pass through older events outside the scope.
5. Deterministic: the output depends only on the :class:`SynthConfig` (no set or dict iteration
   order, no clock); one :class:`random.Random` seeded with ``seed`` drives every choice.
6. Streaming: events are yielded in topological order (every event after its ``prev_events``
   and ``auth_events``) and never collected. The generator keeps the current state (one event
   per state key, with its auth events), the member pools, the open fork's branches (their
   state events) and the power-levels history (rule 4): memory grows with the number of
   members, the size of the open fork and the number of power-level changes (about 1% of the
   events with the default rates), not with the number of events.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

import attrs

from .errors import AuthError, InvalidRequestError
from .events.auth_selection import auth_types_for_event
from .events.canonical_json import JsonValue, encode_canonical_json
from .events.event import MAX_PREV_EVENTS, Event, StateKey
from .events.hashes import reference_hash, unpadded_base64
from .events.room_versions import EventFormat, RoomVersion, room_version
from .protocols import EventFacts
from .room import NoSignatureChecks
from .state.authz import check_auth
from .state.resolution import resolve_state

__all__ = ["RoomShape", "SynthConfig", "SynthStats", "generate_room"]

#: The generated events carry no signatures (rule 2): the checks skip signatures.
_NO_SIGNATURES = NoSignatureChecks()

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
            change: display name, topic, name, join rule, leave, rejoin, invite, kick, ban,
            unban, power levels.
        concurrent_state: the probability that a fork is contested: its first two branches
            change the same state concurrently, once each (module rule 4); otherwise only the
            first branch changes state. 0: no contests.
        rejected_rate: the probability that a main-line event is deliberately *rejected*
            material (module rule 3); 0 (the default) generates only allowed events.
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
    concurrent_state: float = 0.5
    rejected_rate: float = 0.0
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
        for name in ("fork_rate", "state_rate", "concurrent_state", "rejected_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                msg = f"{name} must be a probability between 0 and 1, not {value!r}"
                raise InvalidRequestError(msg)

    def stream(self, stats: SynthStats | None = None) -> Iterator[Event]:
        """Generate the room: its events in topological order, one at a time (rule 6).

        Args:
            stats: if given, updated as the room is generated (see :class:`SynthStats`).

        Complexity: O(events) time; O(members + open fork + power-level changes) memory.

        >>> config = SynthConfig(room_version="3", events=10, fork_rate=0.0)
        >>> [e.depth for e in config.stream()] == list(range(1, 11))
        True
        """
        room = _Room(self)
        if stats is not None:
            room.stats = stats
        return room.run()

    def stream_with_state(self) -> Iterator[tuple[Event, dict[StateKey, str], SynthStats]]:
        """:meth:`stream`, each event paired with the generator's state before it (event IDs)
        and the running :class:`SynthStats` — for tests and debugging.

        Complexity: O(events x state) time: each state is a fresh dict.

        >>> config = SynthConfig(room_version="11", events=4)
        >>> [sorted(before) for _, before, _ in config.stream_with_state()][3]
        [('m.room.create', ''), ('m.room.member', '@u0:hs0.example'), \
('m.room.power_levels', '')]
        """
        room = _Room(self, trace=True)
        for event in room.run():
            yield event, room.before, room.stats

    def stats(self) -> SynthStats:
        """Generate the room and return what its generation did (forks, contests, resolutions).

        Complexity: that of :meth:`stream`.

        >>> SynthConfig(events=2000, fork_rate=0.1, seed=5).stats().concurrent_forks > 0
        True
        """
        room = _Room(self)
        for _ in room.run():
            pass
        return room.stats


@attrs.define
class SynthStats:
    """What generating a room did (never part of the room: the same config gives the same
    stats).

    Attributes:
        resolutions: merges whose branches changed state, resolved with ``resolve_state``.
        concurrent_forks: merges where two or more branches changed state.
        contested_keys: state keys that two or more branches of one fork changed (summed).
        kept: branch state changes the merge's resolution kept (each branch's last entry per
            key).
        dropped: branch state changes the merge's resolution dropped.
        by_contest: contested forks by their opening contest (module rule 4).
        refused: drafts the authorization rules refused against their state before (each
            became a message instead).
        rejected: deliberately rejected events emitted (``rejected_rate``).
    """

    resolutions: int = 0
    concurrent_forks: int = 0
    contested_keys: int = 0
    kept: int = 0
    dropped: int = 0
    by_contest: dict[str, int] = attrs.field(factory=dict)
    refused: int = 0
    rejected: int = 0


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
    concurrent_state: float = 0.5,
    rejected_rate: float = 0.0,
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

    Complexity: O(events) time (each event costs a few canonical-JSON encodings and SHA-256s
    and one authorization check; each merge of branches that changed state, one state
    resolution of the fork's scope); O(members + open fork) memory, whatever the number of
    events.

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
        concurrent_state=concurrent_state,
        rejected_rate=rejected_rate,
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

_CREATE: StateKey = ("m.room.create", "")
_POWER: StateKey = ("m.room.power_levels", "")
_JOIN_RULES: StateKey = ("m.room.join_rules", "")
_MEMBER = "m.room.member"

#: ``(event_id, edge as it appears in a PDU, depth)``: an event other events may point at.
_Ref = tuple[str, JsonValue, int]
#: ``(event, edge as it appears in a PDU, its auth events)``: a state event of the generator's
#: state. The auth events are kept (one level: an event holds no other event) because a merge's
#: resolution may check the entry against its own auth events (rule 4).
_Entry = tuple[Event, JsonValue, tuple[Event, ...]]
#: ``(type, state_key, sender, content)``: an event before it has edges, hashes and an ID.
_Draft = tuple[str, str | None, str, dict[str, JsonValue]]
#: Reads the state the next event is drafted against: the main line's or a branch's.
_Look = Callable[[StateKey], "_Entry | None"]


def _localpart(user: str) -> str:
    return user[1 : user.index(":")]


def _levels_of(content: Mapping[str, JsonValue]) -> tuple[dict[str, int], int]:
    """The users' levels and the topic's level in a power-levels content."""
    users = content.get("users")
    events = content.get("events")
    levels = {u: int(v) for u, v in users.items()} if isinstance(users, Mapping) else {}
    topic = events.get("m.room.topic") if isinstance(events, Mapping) else None
    return levels, int(topic) if isinstance(topic, int) else MODERATOR_LEVEL


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


class _ScopeStore:
    """The events one merge's resolution reads (rule 4). An
    :class:`~eventgraph.protocols.EventReader` of two kinds of events: *walked* ones (the
    branches' state events, the fork point's entries in scope) have facts, so the auth-chain
    walks go through them; *checked* ones (the auth events of the walked entries, one level, and
    the mainline segment) are answered by ``get_events`` only — for the authorization checks
    that fall back on an event's own auth events and for the mainline walk — and the auth-chain
    walks stop at them as at any event outside the scope. Facts are built on first request
    (``arrival`` is 0: it is information only)."""

    __slots__ = ("_events", "_facts", "_walked")

    def __init__(self, walked: Iterable[Event], checked: Iterable[Event]) -> None:
        self._events: dict[str, Event] = {}
        self._walked: set[str] = set()
        for event in walked:
            self._events.setdefault(event.event_id, event)
            self._walked.add(event.event_id)
        for event in checked:
            self._events.setdefault(event.event_id, event)
        self._facts: dict[str, EventFacts] = {}

    def get_events(self, event_ids: Collection[str], /) -> Mapping[str, Event]:
        events = self._events
        return {i: events[i] for i in event_ids if i in events}

    def get_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        events, facts, walked = self._events, self._facts, self._walked
        answer: dict[str, EventFacts] = {}
        for i in event_ids:
            known = facts.get(i)
            if known is None:
                event = events.get(i)
                if event is None or i not in walked:
                    continue
                known = facts[i] = EventFacts(
                    event_id=i,
                    room_id=event.room_id,
                    depth=event.depth,
                    prev_event_ids=event.prev_event_ids,
                    auth_event_ids=event.auth_event_ids,
                    is_state=event.state_key is not None,
                    outlier=False,
                    rejected=None,
                    soft_failed=False,
                    arrival=0,
                )
            answer[i] = known
        return answer


class _Branch:
    """One branch of an open fork: its tip, its state changes over the fork point's state
    (``delta``), its state events in order, and what it may still send."""

    __slots__ = ("delta", "events", "free", "remaining", "script", "tip")

    def __init__(self, tip: _Ref, remaining: int, free: bool, script: list[_Script]) -> None:
        self.tip = tip
        self.remaining = remaining
        self.free = free  # may change state (else messages only)
        self.script = script  # contested first drafts (rule 4)
        self.delta: dict[StateKey, _Entry] = {}
        self.events: list[_Entry] = []


#: A contested first draft of a branch, drafted when the branch takes its first step.
_Script = Callable[[_Look], "_Draft | None"]


class _Fork:
    """A fork in progress: its branches and whether it was opened as a contested one."""

    __slots__ = ("branches", "contested")

    def __init__(self, branches: list[_Branch], contested: str | None) -> None:
        self.branches = branches
        self.contested = contested


class _Room:
    """The generator's bookkeeping: the state, member pools, power levels, branch tips.

    The *state* (``self.state``, one entry per key, each event with its PDU edge) is the
    authority: every draft is built into an event and kept only if
    :func:`~eventgraph.state.authz.check_auth` allows it against the auth events selected from
    the state before it (the main line's, or the branch's: fork point plus the branch's own
    changes). The *pools* (joined ordinary members, moderators, left, invited, banned) only
    propose candidates; they follow the main-line state (updated from every main-line state
    event and from every key a merge's resolution changed), so inside a fork a proposal may be
    stale for a branch, and then the check refuses it and the branch sends a message instead.
    """

    def __init__(self, config: SynthConfig, *, trace: bool = False) -> None:
        self.config = config
        self.rv: RoomVersion = room_version(config.room_version)
        self.v1_edges = self.rv.event_format is EventFormat.V1
        self.v12 = self.rv.room_id_is_create_event_id
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
        self.state: dict[StateKey, _Entry] = {}
        self.tips: list[_Ref] = []
        self.fork: _Fork | None = None
        self.ordinary = _Pool()
        self.mods = _Pool()
        self.left = _Pool()
        self.invited = _Pool()
        self.banned = _Pool()
        self.where: dict[str, _Pool] = {}
        self.pl_users: dict[str, int] = {}
        self.pl_events: dict[str, int] = {}
        #: Every power-levels event that was the state's, by ID: a resolution's mainline walks
        #: them (rule 4).
        self.pl_history: dict[str, Event] = {}
        self.stats = SynthStats()
        self.trace = trace
        #: With ``trace``: the state before the last event yielded (event IDs).
        self.before: dict[StateKey, str] = {}

    # -- helpers ------------------------------------------------------------------------------

    def user(self, n: int) -> str:
        return f"@u{n}:{self.servers[n % len(self.servers)]}"

    def words(self, low: int, high: int) -> str:
        rng = self.rng
        n = low + int(rng.random() * (high - low + 1))
        return " ".join(_WORDS[int(rng.random() * len(_WORDS))] for _ in range(n))

    def power_levels(
        self, users: Mapping[str, int], topic_level: int = MODERATOR_LEVEL
    ) -> dict[str, JsonValue]:
        events: dict[str, JsonValue] = dict(self.pl_events)
        events["m.room.topic"] = topic_level
        return {
            "ban": MODERATOR_LEVEL,
            "events": events,
            "events_default": 0,
            "invite": 0,
            "kick": MODERATOR_LEVEL,
            "redact": MODERATOR_LEVEL,
            "state_default": MODERATOR_LEVEL,
            "users": {u: users[u] for u in sorted(users)},
            "users_default": 0,
        }

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
        """A member with at least moderator power on the main line (the creator or a mod)."""
        n = int(self.rng.random() * (1 + len(self.mods)))
        return self.creator if n == 0 else self.mods.at(n - 1)

    def main_look(self, key: StateKey) -> _Entry | None:
        return self.state.get(key)

    def branch_look(self, branch: _Branch) -> _Look:
        delta, state = branch.delta, self.state

        def look(key: StateKey) -> _Entry | None:
            entry = delta.get(key)
            return entry if entry is not None else state.get(key)

        return look

    @staticmethod
    def levels(look: _Look) -> tuple[dict[str, int], int]:
        """The users' levels and the topic's level in the power levels of a state."""
        entry = look(_POWER)
        if entry is None:
            return {}, MODERATOR_LEVEL
        return _levels_of(entry[0].content)

    @staticmethod
    def join_rule(look: _Look) -> JsonValue:
        entry = look(_JOIN_RULES)
        return None if entry is None else entry[0].content.get("join_rule")

    # -- building and checking events ---------------------------------------------------------

    def build(
        self, draft: _Draft, prev: list[_Ref], look: _Look
    ) -> tuple[Event, _Ref, tuple[Event, ...], bool]:
        """Build, hash and parse one event with ``auth_events`` selected from the state ``look``
        reads (server-server API "Auth events selection"); say whether the authorization rules
        allow it against those auth events (which *are* that state's entries)."""
        event_type, state_key, sender, content = draft
        rv = self.rv
        keys = auth_types_for_event(rv, event_type, sender, state_key, content)
        chosen: list[Event] = []
        auth: list[JsonValue] = []
        for key in keys:
            entry = look(key)
            if entry is not None:
                chosen.append(entry[0])
                auth.append(entry[1])
        if self.v12 and event_type != "m.room.create":
            create = look(_CREATE)
            if create is not None:
                chosen.append(create[0])  # implied by the room ID (RV 12, MSC4291)
        self.ts += 1 + int(self.rng.random() * 5000)
        depth = 1
        for prev_ref in prev:
            if prev_ref[2] >= depth:
                depth = prev_ref[2] + 1
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
        if not (self.v12 and event_type == "m.room.create"):
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
        event_id = event.event_id
        if self.v1_edges:
            # RV 1–2 edges are [event_id, {"sha256": reference hash}] (pdu_v1.yaml).
            ref_hash = unpadded_base64(reference_hash(pdu, rv))
            ref: _Ref = (event_id, [event_id, {"sha256": ref_hash}], depth)
        else:
            ref = (event_id, event_id, depth)
        try:
            check_auth(rv, event, chosen, verifier=_NO_SIGNATURES)
        except AuthError:
            return event, ref, (), False
        return event, ref, tuple(chosen), True

    def attempt(
        self, draft: _Draft | None, prev: list[_Ref], look: _Look
    ) -> tuple[Event, _Ref, tuple[Event, ...]]:
        """The first of ``draft``, a message by a random member, a message by the creator that
        the rules allow against the state ``look`` reads (the creator is always joined)."""
        if draft is not None:
            event, ref, auth, allowed = self.build(draft, prev, look)
            if allowed:
                return self.accept(event, ref, auth)
            self.stats.refused += 1
        event, ref, auth, allowed = self.build(self.message(self.pick_joined()), prev, look)
        if not allowed:
            event, ref, auth, allowed = self.build(self.message(self.creator), prev, look)
            assert allowed, "the creator may always talk"
        return self.accept(event, ref, auth)

    def accept(
        self, event: Event, ref: _Ref, auth: tuple[Event, ...]
    ) -> tuple[Event, _Ref, tuple[Event, ...]]:
        self.count += 1
        if event.type == _MEMBER and event.state_key == self.user(self.next_user):
            self.next_user += 1  # a newcomer arrived
        return event, ref, auth

    # -- pools --------------------------------------------------------------------------------

    def track(self, event: Event) -> None:
        """Follow a change of the main-line state in the pools and levels."""
        content = event.content
        if event.type == _MEMBER and event.state_key is not None:
            self.place(event.state_key, content.get("membership"))
        elif event.type == "m.room.power_levels":
            self.pl_history[event.event_id] = event
            old = self.pl_users
            self.pl_users = _levels_of(content)[0]
            for user in sorted(set(old) | set(self.pl_users)):
                if old.get(user) != self.pl_users.get(user) and (
                    user in self.mods or user in self.ordinary
                ):
                    self.place(user, "join")

    def place(self, user: str, membership: JsonValue) -> None:
        if user == self.creator:
            return  # the creator is always joined (rule 4)
        pool = self.where.pop(user, None)
        if pool is not None:
            pool.remove(user)
        if membership == "join":
            level = self.pl_users.get(user, 0)
            pool = self.mods if level >= MODERATOR_LEVEL else self.ordinary
        elif membership == "invite":
            pool = self.invited
        elif membership == "leave":
            pool = self.left
        elif membership == "ban":
            pool = self.banned
        else:
            return
        pool.add(user)
        self.where[user] = pool

    # -- the room's life ----------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        for draft in self.setup():
            if self.count >= self.total:
                return
            yield self.main_line(draft)
        config = self.config
        while self.count < self.total:
            fork = self.fork
            if fork is None:
                remaining = self.total - self.count
                if (
                    remaining >= 3
                    and self.joined_count() >= 2
                    and self.rng.random() < config.fork_rate
                ):
                    self.start_fork(remaining)
                    continue
                if config.rejected_rate and self.rng.random() < config.rejected_rate:
                    rejected = self.rejected()
                    if rejected is not None:
                        yield rejected
                        continue
                yield self.main_line(self.next_draft(self.main_look))
            elif any(b.remaining for b in fork.branches):
                yield self.fork_step(fork)
            else:
                yield self.merge(fork)

    def main_line(self, draft: _Draft) -> Event:
        look = self.main_look
        if self.trace:
            self.before = {k: e[0].event_id for k, e in self.state.items()}
        event, ref, auth = self.attempt(draft, self.tips, look)
        key = event.state_tuple
        if key is not None:
            self.state[key] = (event, ref[1], auth)
            self.track(event)
        self.tips = [ref]
        return event

    def rejected(self) -> Event | None:
        """Rejected material (``rejected_rate``): a member without the power to do so renames
        the room. The event's auth events are the right selection, so a receiver rejects it
        against them (never merely soft-fails it); it changes no state and is a prev event of the
        next event like any other."""
        if not self.ordinary:
            return None
        sender = self.ordinary.pick(self.rng)
        draft: _Draft = ("m.room.name", "", sender, {"name": self.words(1, 3)})
        if self.trace:
            self.before = {k: e[0].event_id for k, e in self.state.items()}
        event, ref, _, allowed = self.build(draft, self.tips, self.main_look)
        assert not allowed, "an ordinary member may not rename the room"
        self.count += 1
        self.stats.rejected += 1
        self.tips = [ref]
        return event

    def setup(self) -> Iterator[_Draft]:
        rv = self.rv
        creator = self.creator
        create: dict[str, JsonValue] = {"room_version": rv.identifier}
        if not rv.implicit_room_creator:
            create["creator"] = creator  # RV 1–10: content.creator (removed in RV 11)
        yield ("m.room.create", "", creator, create)
        if self.v12:
            # RV 12: the room ID is the create event's ID with the "!" sigil (MSC4291).
            self.room_id = "!" + self.tips[0][0][1:]
        yield ("m.room.member", creator, creator, {"membership": "join", "displayname": "u0"})
        users: dict[str, int] = {}
        if not rv.creators_have_infinite_power:
            users[creator] = CREATOR_LEVEL  # RV 12: creators must not be listed
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
        yield ("m.room.power_levels", "", creator, self.power_levels(users))
        yield ("m.room.join_rules", "", creator, {"join_rule": "public"})
        yield ("m.room.history_visibility", "", creator, {"history_visibility": "shared"})

    def next_draft(self, look: _Look) -> _Draft:
        """The next event of the main line or of a branch that may change state."""
        rng = self.rng
        new_members = self.config.members - self.next_user
        # Newcomers arrive at an even pace over the first half of the room (or as fast as the
        # budget allows): the chance is what remains to arrive over the time left to do it.
        time_left = self.total // 2 - self.count
        if new_members > 0 and rng.random() * time_left < new_members:
            return self.newcomer(look)
        if rng.random() < self.config.state_rate:
            draft = self.state_change(look)
            if draft is not None:
                return draft
        return self.message(self.pick_joined())

    def message(self, sender: str) -> _Draft:
        return ("m.room.message", None, sender, {"msgtype": "m.text", "body": self.words(2, 14)})

    def join(self, user: str) -> _Draft:
        return (
            "m.room.member",
            user,
            user,
            {"membership": "join", "displayname": _localpart(user)},
        )

    def newcomer(self, look: _Look) -> _Draft:
        """The next user arrives: joins a public room, or is invited (always, if the join rule is
        ``invite``; now and then otherwise) by any member (invite level 0)."""
        user = self.user(self.next_user)
        if self.join_rule(look) != "public" or self.rng.random() < 0.15:
            return ("m.room.member", user, self.pick_joined(), {"membership": "invite"})
        return self.join(user)

    def state_change(self, look: _Look) -> _Draft | None:
        """A state change proposed from the pools, or ``None`` if the chosen kind has no
        candidate (the caller then sends a message). The check decides (``_Room``)."""
        rng = self.rng
        r = rng.random()
        if r < 0.22:  # display name: a join over a join
            user = self.pick_joined()
            return (
                "m.room.member",
                user,
                user,
                {"membership": "join", "displayname": self.words(1, 2)},
            )
        if r < 0.34:
            return self.topic(look)
        if r < 0.39:  # name: needs events["m.room.name"] = 50
            return ("m.room.name", "", self.pick_privileged(), {"name": self.words(1, 3)})
        if r < 0.43:  # join rules: back to public at once, to invite half as often
            if self.join_rule(look) == "public" and rng.random() < 0.5:
                return None
            return self.flip_join_rule(look)
        if r < 0.53:  # leave by oneself
            if not self.ordinary:
                return None
            user = self.ordinary.pick(rng)
            return ("m.room.member", user, user, {"membership": "leave"})
        if r < 0.62:  # rejoin after leaving or being kicked / unbanned (or be invited back)
            if not self.left:
                return None
            user = self.left.pick(rng)
            if self.join_rule(look) != "public":
                return ("m.room.member", user, self.pick_joined(), {"membership": "invite"})
            return self.join(user)
        if r < 0.67:  # invite someone who left
            if not self.left:
                return None
            user = self.left.pick(rng)
            return ("m.room.member", user, self.pick_joined(), {"membership": "invite"})
        if r < 0.74:  # an invitee answers: joins (mostly) or declines
            if not self.invited:
                return None
            user = self.invited.pick(rng)
            if rng.random() < 0.8:
                return self.join(user)
            return ("m.room.member", user, user, {"membership": "leave"})
        if r < 0.80:
            return self.kick()
        if r < 0.85:  # ban a joined or departed member
            pool = self.ordinary if not self.left or rng.random() < 0.5 else self.left
            if not pool:
                return None
            return self.ban(pool.pick(rng), self.pick_privileged())
        if r < 0.88:  # unban: a leave by someone with ban and kick power
            if not self.banned:
                return None
            user = self.banned.pick(rng)
            return ("m.room.member", user, self.pick_privileged(), {"membership": "leave"})
        return self.power_change(look)

    def topic(self, look: _Look) -> _Draft:
        level = self.levels(look)[1]
        sender = self.pick_joined() if level == 0 else self.pick_privileged()
        return ("m.room.topic", "", sender, {"topic": self.words(3, 10)})

    def flip_join_rule(self, look: _Look) -> _Draft:
        rule = "invite" if self.join_rule(look) == "public" else "public"
        return ("m.room.join_rules", "", self.pick_privileged(), {"join_rule": rule})

    def kick(self) -> _Draft | None:
        if not self.ordinary:
            return None
        user = self.ordinary.pick(self.rng)
        return ("m.room.member", user, self.pick_privileged(), {"membership": "leave"})

    def ban(self, user: str, sender: str) -> _Draft:
        return ("m.room.member", user, sender, {"membership": "ban"})

    def power_change(
        self, look: _Look, *, demote: str | None = None, promote: str | None = None
    ) -> _Draft:
        """The creator promotes, demotes, or moves the topic's level, starting from the power
        levels of the state ``look`` reads."""
        rng = self.rng
        users, topic_level = self.levels(look)
        r = rng.random()
        cap = 2 + self.config.members // 200
        if demote is not None:
            users.pop(demote, None)
        elif promote is not None:
            users[promote] = MODERATOR_LEVEL
        elif r < 0.4 and self.ordinary and len(self.mods) < cap:
            users[self.ordinary.pick(rng)] = MODERATOR_LEVEL
        elif r < 0.7 and self.mods:
            users.pop(self.mods.pick(rng), None)
        else:
            topic_level = 0 if topic_level else MODERATOR_LEVEL
        return ("m.room.power_levels", "", self.creator, self.power_levels(users, topic_level))

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
        contested = None
        scripts: list[list[_Script]] = [[] for _ in range(width)]
        if rng.random() < config.concurrent_state:
            contested, first, second = self.contest()
            scripts[0].append(first)
            scripts[1].append(second)
        tip = self.tips[0]
        branches = [
            _Branch(tip, lengths[i], i == 0 and contested is None, scripts[i]) for i in range(width)
        ]
        self.fork = _Fork(branches, contested)

    def contest(self) -> tuple[str, _Script, _Script]:
        """Two concurrent first drafts that contest the same state (rule 4)."""
        rng = self.rng
        kind = _CONTESTS[int(rng.random() * len(_CONTESTS))]
        if kind == "ban/power" and self.ordinary:
            target = self.ordinary.pick(rng)
            if self.mods:  # the creator demotes the moderator who bans
                mod = self.mods.pick(rng)
                return (
                    kind,
                    lambda look: self.power_change(look, demote=mod),
                    lambda look: self.ban(target, mod),
                )
            # the creator promotes the member whom the creator bans
            return (
                kind,
                lambda look: self.power_change(look, promote=target),
                lambda look: self.ban(target, self.creator),
            )
        if kind == "kick/membership" and self.ordinary:
            target = self.ordinary.pick(rng)
            kicker = self.pick_privileged()
            name = self.words(1, 2)
            return (
                kind,
                lambda look: ("m.room.member", target, kicker, {"membership": "leave"}),
                lambda look: (
                    "m.room.member",
                    target,
                    target,
                    {"membership": "join", "displayname": name},
                ),
            )
        if kind == "join rules/join":
            return kind, self.flip_join_rule, self.joiner
        return "topic war", self.topic, self.topic

    def joiner(self, look: _Look) -> _Draft:
        """A join the join rule of ``look`` allows: a newcomer's or a departed member's in a
        public room, an invitee's otherwise (else a newcomer is invited)."""
        if self.join_rule(look) == "public":
            if self.left and self.rng.random() < 0.5:
                return self.join(self.left.pick(self.rng))
            if self.next_user < self.config.members:
                return self.join(self.user(self.next_user))
        if self.invited:
            return self.join(self.invited.pick(self.rng))
        return self.newcomer(look)

    def fork_step(self, fork: _Fork) -> Event:
        active = [b for b in fork.branches if b.remaining]
        branch = active[int(self.rng.random() * len(active))]
        branch.remaining -= 1
        look = self.branch_look(branch)
        if branch.script:
            draft: _Draft | None = branch.script.pop(0)(look)
        elif branch.free:
            draft = self.next_draft(look)
        else:
            draft = self.message(self.pick_joined())
        if self.trace:
            self.before = {k: e[0].event_id for k, e in self.state.items()}
            self.before.update((k, e[0].event_id) for k, e in branch.delta.items())
        event, ref, auth = self.attempt(draft, [branch.tip], look)
        key = event.state_tuple
        if key is not None:
            entry = (event, ref[1], auth)
            branch.delta[key] = entry
            branch.events.append(entry)
        branch.tip = ref
        return event

    def merge(self, fork: _Fork) -> Event:
        """The event that lists every branch tip as a prev event; its state before is the
        resolution of the branches' states (rule 4)."""
        self.fork = None
        for key, entry in self.resolve(fork).items():
            if entry is None:
                del self.state[key]
            else:
                self.state[key] = entry
                self.track(entry[0])
        # Every branch has at least one event, so the tips are distinct.
        return self.main_line(self.message(self.pick_joined()))

    def resolve(self, fork: _Fork) -> dict[StateKey, _Entry | None]:
        """The keys whose entry the resolution of the branches' states changes (rule 4)."""
        branches = fork.branches
        self.tips = [b.tip for b in branches]
        changed = sorted({key for b in branches for key in b.delta})
        if not changed:
            return {}  # every branch's state is the fork point's
        state = self.state
        # The keys in scope: the changed ones, those the auth rules read for any event a
        # resolution may check, and the members sending or targeted by them (rule 4).
        scope = set(changed)
        scope.update((_CREATE, _POWER, _JOIN_RULES))
        entries: list[_Entry] = []
        for key in changed:
            entry = state.get(key)
            if entry is not None:
                entries.append(entry)
        for b in branches:
            entries.extend(b.events)
        for entry in entries:
            event = entry[0]
            scope.add((_MEMBER, event.sender))
            if event.type == _MEMBER and event.state_key is not None:
                scope.add((_MEMBER, event.state_key))
        keys = sorted(scope)
        known: dict[str, _Entry] = {}
        for key in keys:
            entry = state.get(key)
            if entry is not None:
                known[entry[0].event_id] = entry
        for b in branches:
            for entry in b.events:
                known[entry[0].event_id] = entry
        sets: list[dict[StateKey, str]] = []
        for b in branches:
            look = self.branch_look(b)
            one: dict[StateKey, str] = {}
            for key in keys:
                entry = look(key)
                if entry is not None:
                    one[key] = entry[0].event_id
            sets.append(one)
        # The store: the entries in scope and the branches' state events (walked), the auth
        # events of the entries and the mainline segment (checked; see _ScopeStore).
        walked = [entry[0] for entry in known.values()]
        checked = [a for entry in known.values() for a in entry[2]]
        checked.extend(self.mainline_segment(walked + checked))
        resolved = resolve_state(self.rv, sets, _ScopeStore(walked, checked))
        self.stats.resolutions += 1
        result: dict[StateKey, _Entry | None] = {}
        for key in keys:
            new_id = resolved.get(key)
            old = state.get(key)
            if new_id is None:
                if old is not None:
                    result[key] = None
            elif old is None or old[0].event_id != new_id:
                result[key] = known[new_id]
        self.count_contest(fork, branches, result)
        return result

    def mainline_segment(self, stored: list[Event]) -> list[Event]:
        """The power-levels events from the state's down to the oldest one ``stored`` events
        name as an auth event: the part of the mainline a resolution walks (rule 4).

        Complexity: O(power-level changes between them)."""
        history = self.pl_history
        wanted = {a for event in stored for a in event.auth_event_ids if a in history}
        entry = self.state.get(_POWER)
        segment: list[Event] = []
        current = None if entry is None else entry[0]
        while current is not None and wanted:
            wanted.discard(current.event_id)
            segment.append(current)
            parent = None
            for a in current.auth_event_ids:
                found = history.get(a)
                if found is not None:
                    parent = found
                    break
            current = parent
        return segment

    def count_contest(
        self, fork: _Fork, branches: list[_Branch], result: Mapping[StateKey, _Entry | None]
    ) -> None:
        stats = self.stats
        changing = [b for b in branches if b.delta]
        if len(changing) < 2:
            return
        stats.concurrent_forks += 1
        contested = sorted(
            {k for b in changing for k in b.delta if sum(k in c.delta for c in changing) > 1}
        )
        if contested:
            stats.contested_keys += len(contested)
        # A branch change the resolution dropped: its key's resolved entry is not that branch's.
        for b in changing:
            for key, entry in b.delta.items():
                won = result.get(key, self.state.get(key))
                if won is not None and won[0].event_id == entry[0].event_id:
                    stats.kept += 1
                else:
                    stats.dropped += 1
        if fork.contested is not None:
            stats.by_contest[fork.contested] = stats.by_contest.get(fork.contested, 0) + 1


_CONTESTS = ("ban/power", "join rules/join", "topic war", "kick/membership")
