"""Layer 4: the ingest pipeline that keeps a store consistent as events arrive.

Rules of this module (server-server API "Checks performed on receipt of a PDU", "Rejection",
"Soft failure"; digest §8.1–8.4):

1. Every PDU of a batch goes through the receipt checks in the spec's order: (1) format and size
   (:meth:`Event.from_pdu`), with the event ID computed from the reference hash (RV 3+) or read
   and checked (RV 1–2), and the event's room; (2) signatures, through a pluggable
   :class:`~eventgraph.state.authz.SignatureVerifier` (the keys are the host's); (3) the content
   hash — on a mismatch the event is *redacted* and processed in its redacted form; (4) the
   authorization rules against the event's own ``auth_events`` (fail: rejected; a rejected auth
   event rejects the event, rule ``auth_events.rejected``); (5) against the state before the
   event (fail: rejected); (6) against the current state (fail: soft failed; skipped for
   backfilled events, as Synapse does, and when the event's ``prev_events`` are the forward
   extremities, where the current state *is* the state before).
2. A batch may come in any order: the valid events are sorted topologically over their
   ``prev_events`` and ``auth_events`` inside the batch (ties: depth, then event ID). Events on a
   cycle (forgeable with RV 1–2 IDs) are invalid.
3. An event whose ``auth_events`` are not all known is not stored (``missing_auth``): missing is
   not invalid, so the host fetches the auth chain (``/event_auth``) and offers it again. An event
   some of whose ``prev_events`` have no known state (unknown, or outliers) is stored as a
   *parked outlier* after checks 1–4; when a later event gives every prev a state, the parked
   event is connected (checks 5–6, state groups) in the same call. A host that fetched the state
   at the gap (``/state_ids``, as Synapse does: digest §8.5) passes it as ``state_before``.
4. Writes: every outcome depends only on the events before it in topological order, and the
   store is always exactly what ingesting a *prefix* of that order would give — never a half
   event. Events on the common path (their prevs share one known state, no resolution, no
   given state, not parked) are checked against the store *plus the events still pending*
   (their events, flags, state groups and the forward extremities they leave) and written
   together, at most ``_PENDING_LIMIT`` per atomic store write (one call instead of one per
   event). Every other event first writes what is pending, then makes its own atomic write
   (the event, its flags, its new state groups, the resolutions it computed, its
   parked/unparked status), so state resolution and the auth-chain index only ever read
   stored events. Everything that can refuse a batch as a whole (malformed arguments) is
   checked before the first write; a refused event (invalid, missing auth) writes nothing; if
   a write fails, none of its events is stored (nor any later one), and after any other error
   the events processed before it are written before the error propagates. Memory stays
   bounded for batches of any size.
5. Forward and backward extremities are the store's (protocols ``GraphReader``): forward
   extremities exclude outliers, rejected and soft-failed events.
6. Every input item gets one :class:`Outcome`; parked events connected by the batch get one more
   in :attr:`IngestReport.connected`.
7. Fast paths give the plain path's answers with less work (``_Run.fast_paths``; a
   differential test runs both on generated rooms): signature presence (default verifier)
   is read from the decoded PDU, and the content hash comes from the encoding check 1 makes
   anyway (:meth:`Event.from_pdu_with_content_hash`); a check against the same set of auth
   events as a check that passed is not run again
   (``check_auth`` depends on the set, not the order); check 6 reads the current state's
   entries without resolving when each key the event's auth events are selected from has the
   same event in every extremity's state (every algorithm keeps the unconflicted state) or is
   in no extremity's state and has no event in the room at all (a store with
   :class:`~eventgraph.protocols.StateKeyPresenceReader`; a resolution only brings in keys of
   its inputs and of their auth chains), and resolves (cached by the set of input groups)
   otherwise; state entries read from stored
   groups and the rejection flags of connected events are remembered for the call (both are
   immutable); common-path events are written in batches (rule 4); a resolution of stored
   groups is computed on the keys where they can differ
   (:func:`~eventgraph.state.group_resolution.resolve_groups`, exact; whole states when it
   declines) and stored as its changes to the closest input.

Decisions where the spec is silent (following Synapse):

- A soft-failed state event still updates the state after it (the spec: soft-failed events are
  "otherwise handled as usual"; Synapse stores their state group).
- With no forward extremity (every accepted event is gone) there is no current state to compare
  with and check 6 is skipped.
- Events in the state that the store flags as rejected (possible only if a resolution re-admitted
  them) are not passed to the authorization rules, which require non-rejected auth events.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Literal, TypeVar

import attrs

from .errors import AuthError, EventGraphError, InvalidRequestError
from .events.auth_selection import auth_types_for_event
from .events.event import Event, StateKey
from .events.hashes import content_hash, unpadded_base64
from .events.redaction import redact
from .events.room_versions import EventIdFormat, RoomVersion, room_version
from .protocols import (
    EventStateGroups,
    FlaggedEventsReader,
    RoomStore,
    StateGroupChangesReader,
    StateGroupDraft,
    StateKeyPresenceReader,
    StateWrite,
)
from .state.authz import SignaturePresenceVerifier, SignatureVerifier, check_auth
from .state.group_resolution import differing_keys, resolve_groups
from .state.resolution import resolve_state

__all__ = [
    "IngestReport",
    "NoSignatureChecks",
    "Outcome",
    "Room",
    "Status",
    "ingest",
]

_V = TypeVar("_V")

#: The most events whose write waits for the events after them (rule 4).
_PENDING_LIMIT = 256

#: The rule name of an event rejected because one of its auth events was rejected
#: (RV 1–11 auth rule 2.3 / RV 12 rule 3.3, enforced here because the caller of ``check_auth``
#: must pass only non-rejected auth events).
REJECTED_AUTH_EVENT_RULE = "auth_events.rejected"


class Status(enum.Enum):
    """What happened to one PDU (digest §8.1–8.4)."""

    #: Passed every check; in the DAG with its state.
    ACCEPTED = "accepted"
    #: Failed the authorization rules against its auth events or the state before it; stored
    #: with its reason, never a forward extremity, never changes state.
    REJECTED = "rejected"
    #: Passed checks 1–5 but fails against the current state; stored, not a forward extremity.
    SOFT_FAILED = "soft_failed"
    #: Stored as a parked outlier: some ``prev_events`` have no known state yet.
    OUTLIER = "outlier"
    #: Already stored (or repeated in the batch): nothing changed.
    DUPLICATE = "duplicate"
    #: Dropped (bad format or size, bad signature, another room, on a cycle): nothing stored.
    INVALID = "invalid"
    #: Not stored: some ``auth_events`` are unknown (fetch them, then offer the event again).
    MISSING_AUTH = "missing_auth"


@attrs.frozen
class Outcome:
    """The fate of one PDU.

    Attributes:
        index: the position of the PDU in the input, or ``None`` for a parked event of an earlier
            call connected by this one.
        event_id: the event's ID (``None`` if the PDU was too malformed to have one).
        status: what happened.
        reason: the failed rule for ``REJECTED``/``SOFT_FAILED`` (an ``AuthError.rule``), the
            reason for ``INVALID``/``DUPLICATE``, the missing IDs for ``MISSING_AUTH`` and
            ``OUTLIER``; else ``None``.
        redacted: the content hash did not match, so the redacted form was processed.
    """

    index: int | None
    event_id: str | None
    status: Status
    reason: str | None = None
    redacted: bool = False


@attrs.frozen
class IngestReport:
    """The outcomes of one :meth:`Room.add` call.

    Attributes:
        outcomes: one per input item, in input order.
        connected: parked events of earlier calls connected by this one, in processing order.
    """

    outcomes: tuple[Outcome, ...]
    connected: tuple[Outcome, ...] = ()

    def by_event_id(self) -> dict[str, Outcome]:
        """The final outcome of each event ID (connections override an earlier parking)."""
        out: dict[str, Outcome] = {}
        for outcome in (*self.outcomes, *self.connected):
            if outcome.event_id is not None and (
                outcome.status is not Status.DUPLICATE or outcome.event_id not in out
            ):
                out[outcome.event_id] = outcome
        return out

    def count(self, status: Status) -> int:
        """How many final outcomes (:meth:`by_event_id`) have ``status``."""
        return sum(1 for o in self.by_event_id().values() if o.status is status)


@attrs.frozen
class NoSignatureChecks:
    """A :class:`~eventgraph.state.authz.SignatureVerifier` that checks **nothing**.

    Every event counts as signed by every server, and every third-party-invite signature as
    valid. For trusted imports (database exports, fixtures without signatures) and synthetic
    rooms only — never for network input.

    >>> NoSignatureChecks().third_party_invite_signed({}, ())
    True
    """

    def event_signed_by(self, event: Event, server_name: str) -> bool:
        """Always ``True``."""
        return True

    def third_party_invite_signed(self, signed: Mapping[str, object], public_keys: object) -> bool:
        """Always ``True``."""
        return True


class Room:
    """One room of a store, and the pipeline that ingests its events.

    Args:
        store: a store with the state-group protocols (``MemoryStore``).
        version: the room version.
        room_id: the room; ``None`` adopts the room of the first valid event.
        verifier: the signature checks of receipt check 2 and of the auth rules. The default,
            :class:`~eventgraph.state.authz.SignaturePresenceVerifier`, checks only that the
            servers that must sign (the sender's; the event ID's in RV 1–2; the authorising
            server of a restricted join) left a signature — **it does not verify any
            signature cryptographically**; hosts pass a verifier holding their keys.
            :class:`NoSignatureChecks` checks nothing (trusted imports).

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room_pdus, room_memory_store
        >>> store = room_memory_store()
        >>> room = Room(store, "11", verifier=NoSignatureChecks())
        >>> pdus = tiny_room_pdus()
        >>> report = room.add(reversed(pdus))   # any order
        >>> [o.status.value for o in report.outcomes].count("accepted") == len(pdus)
        True
        >>> room.add(pdus[:1]).outcomes[0].status
        <Status.DUPLICATE: 'duplicate'>
    """

    def __init__(
        self,
        store: RoomStore,
        version: str | RoomVersion,
        *,
        room_id: str | None = None,
        verifier: SignatureVerifier | None = None,
    ) -> None:
        self._store = store
        self._version = room_version(version)
        self._room_id = room_id
        self._verifier: SignatureVerifier = (
            verifier if verifier is not None else SignaturePresenceVerifier()
        )

    @property
    def room_id(self) -> str | None:
        """The room's ID (``None`` until the first valid event when not given)."""
        return self._room_id

    @property
    def version(self) -> RoomVersion:
        """The room version."""
        return self._version

    def add(
        self,
        pdus: Iterable[object],
        *,
        backfilled: bool = False,
        trusted: bool = False,
        state_before: Mapping[str, Mapping[StateKey, str]] | None = None,
    ) -> IngestReport:
        """Ingest a batch of PDUs (module rules 1–6).

        Args:
            pdus: PDUs as decoded JSON (federation format), or already built :class:`Event`
                values (check 1 already passed; a trusted event without ``hashes`` skips the
                hash check).
            backfilled: the PDUs come from ``/backfill``: the ``prev_events``/``auth_events``
                counts are not limited and check 6 (soft failure) is skipped.
            trusted: the *trusted import* path (:meth:`Event.from_trusted_pdu`): each PDU's
                ``event_id`` field is its ID and ``hashes``/``signatures`` may be absent (then
                the hash check is skipped). Never for network input.
            state_before: for events some of whose ``prev_events`` have no known state, the
                state before the event as the host established it (for instance by resolving
                the ``/state_ids`` answers for the missing prevs with the states after the known
                ones, as Synapse does; digest §8.5). Ignored for events whose prevs all have
                state.

        Returns:
            One outcome per PDU, plus the parked events this batch connected.

        Raises:
            InvalidRequestError: ``state_before`` is malformed; nothing was written.

        After any other error raised by an algorithm, the events processed before it are stored
        and the rest are not; if a store write fails, its events (and the later ones) are not
        stored (module rule 4: the store holds a prefix of the processing order).

        Spec: server-server API "Checks performed on receipt of a PDU", "Rejection", "Soft
        failure", "Room State Resolution" (digest §7.1, §8.1–8.5).

        Complexity: per event, a bounded number of store reads, O(auth events) for the checks,
        O(1) state-group work, and one store write per ``_PENDING_LIMIT`` common-path events —
        plus one state resolution for each merge of distinct states that is not cached yet,
        and, for check 6, one per new set of forward extremities whose states disagree at a
        key the event's auth events come from. The topological sort costs O(n log n) for n
        PDUs.
        """
        overrides = _check_overrides(state_before)
        run = _Run(self, backfilled, overrides)
        return run.ingest(list(pdus), trusted)

    # -- conveniences -------------------------------------------------------------------------

    def _adopt(self, room_id: str) -> bool:
        if self._room_id is None:
            self._room_id = room_id
        return self._room_id == room_id


def ingest(
    store: RoomStore,
    version: str | RoomVersion,
    pdus: Iterable[object],
    *,
    verifier: SignatureVerifier | None = None,
    backfilled: bool = False,
    trusted: bool = False,
    state_before: Mapping[str, Mapping[StateKey, str]] | None = None,
) -> IngestReport:
    """Ingest PDUs of one room into ``store``: ``Room(store, version, ...).add(pdus, ...)``.

    See :meth:`Room.add` for the arguments, outcomes and errors.

    Spec: server-server API "Checks performed on receipt of a PDU" (digest §8.1).

    Complexity: as :meth:`Room.add`.

    Examples:
        >>> from eventgraph.testing.rooms import tiny_room_pdus, room_memory_store
        >>> store = room_memory_store()
        >>> report = ingest(store, "11", tiny_room_pdus(), verifier=NoSignatureChecks())
        >>> {o.status for o in report.outcomes}
        {<Status.ACCEPTED: 'accepted'>}
    """
    room = Room(store, version, verifier=verifier)
    return room.add(pdus, backfilled=backfilled, trusted=trusted, state_before=state_before)


# -- the run of one batch ------------------------------------------------------------------------


def _check_overrides(
    state_before: Mapping[str, Mapping[StateKey, str]] | None,
) -> dict[str, dict[StateKey, str]]:
    if state_before is None:
        return {}
    if not isinstance(state_before, Mapping):
        raise InvalidRequestError("state_before must map event IDs to states")
    out: dict[str, dict[StateKey, str]] = {}
    for event_id, state in state_before.items():
        if type(event_id) is not str or not isinstance(state, Mapping):
            raise InvalidRequestError("state_before must map event IDs to states")
        for key, value in state.items():
            if not (
                type(key) is tuple
                and len(key) == 2
                and type(key[0]) is str
                and type(key[1]) is str
                and type(value) is str
            ):
                msg = f"the state before {event_id} has a malformed entry {key!r}: {value!r}"
                raise InvalidRequestError(msg)
        out[event_id] = dict(state)
    return out


@attrs.frozen
class _Delta:
    """A drafted group's state as changes (``None``: removed) to a stored group's."""

    base: int
    changes: Mapping[StateKey, str | None]

    def entries(
        self,
        keys: Sequence[StateKey],
        read: Callable[[int, Sequence[StateKey]], Mapping[StateKey, str]],
    ) -> dict[StateKey, str]:
        """The entries at ``keys``, reading the base group's with ``read``."""
        changes = self.changes
        rest = [k for k in keys if k not in changes]
        out = dict(read(self.base, rest)) if rest else {}
        for k in keys:
            if k in changes and (v := changes[k]) is not None:
                out[k] = v
        return out


_NO_CHANGES: Mapping[StateKey, str | None] = {}
_NOTHING_IN_HAND: Mapping[int, dict[StateKey, str] | _Delta] = {}


@attrs.define
class _Candidate:
    index: int
    event: Event
    redacted: bool


class _Run:
    """One call of :meth:`Room.add` (private, short-lived)."""

    #: Take the shortcuts that give the same answers with less work (module rule 7). ``False``
    #: runs the plain path, which the differential tests compare with.
    fast_paths: bool = True

    def __init__(
        self, room: Room, backfilled: bool, overrides: dict[str, dict[StateKey, str]]
    ) -> None:
        self.room = room
        self.store = room._store
        self.rv = room._version
        self.verifier = room._verifier
        self.backfilled = backfilled
        self.overrides = overrides
        self.connected: list[Outcome] = []
        self._draft = 0
        self.fast_paths = _Run.fast_paths
        self._changes_reader = (
            self.store if isinstance(self.store, StateGroupChangesReader) else None
        )
        self._presence_reader = (
            self.store if isinstance(self.store, StateKeyPresenceReader) else None
        )
        self._flags_reader = self.store if isinstance(self.store, FlaggedEventsReader) else None
        self._lookups: dict[int, dict[StateKey, str | None]] = {}
        # The stored auth events and prev events' state groups the batch names, read in one
        # call each before its events are processed (fast path: both are immutable once
        # stored, see ``_prefetch``).
        self._stored_events: dict[str, Event] = {}
        self._stored_groups: dict[str, EventStateGroups] = {}
        self._with_children: set[str] = set()
        self._awaited: set[str] = set()
        self._rejected: dict[str, bool] = {}
        # Events checked on the common path, not written yet (rule 4): their write, and what
        # later events read of them.
        self._pending: dict[str, Event] = {}
        self._pending_rejected: dict[str, str] = {}
        self._pending_soft_failed: list[str] = []
        self._pending_drafts: list[StateGroupDraft] = []
        self._pending_groups: dict[str, EventStateGroups] = {}
        # A pending draft: the stored group it builds on, and every change since that group.
        self._pending_states: dict[int, _Delta] = {}
        # The keys of the pending state events, whatever their flags (``_unresolved_ids``).
        self._pending_keys: set[StateKey] = set()
        # The room's forward extremities as the store will have them once the pending events
        # are written (loaded when the first event becomes pending).
        self._forward: set[str] | None = None
        # The default verifier only looks for signatures: read them from the decoded PDU
        # instead of letting it decode the canonical JSON again for every server.
        self.presence_only = type(self.verifier) is SignaturePresenceVerifier
        # NoSignatureChecks answers True for every server: check 2 has nothing to ask it.
        self.signs_everything = type(self.verifier) is NoSignatureChecks

    # -- receipt checks 1–3 ---------------------------------------------------------------------

    def ingest(self, items: list[object], trusted: bool) -> IngestReport:
        outcomes: list[Outcome | None] = [None] * len(items)
        candidates: dict[str, _Candidate] = {}
        for index, item in enumerate(items):
            result = self._receive(index, item, trusted)
            if isinstance(result, Outcome):
                outcomes[index] = result
            elif result.event.event_id in candidates:
                outcomes[index] = Outcome(
                    index, result.event.event_id, Status.DUPLICATE, "repeated in the batch"
                )
            else:
                candidates[result.event.event_id] = result
        # Already stored?
        facts = self.store.get_facts(list(candidates))
        parked = self.store.get_parked_children(
            sorted({p for c in candidates.values() for p in c.event.prev_event_ids})
        )
        parked_ids = {e for children in parked.values() for e in children}
        for event_id, f in facts.items():
            if not f.outlier or event_id in parked_ids:
                c = candidates.pop(event_id)
                why = "already stored" if not f.outlier else "already parked, waiting for prevs"
                outcomes[c.index] = Outcome(c.index, event_id, Status.DUPLICATE, why)
        order, cyclic = _topological(candidates)
        # Children stored before their parent arrives (in earlier calls: inside the batch a
        # parent comes first) send the parent down the plain path; one read for the batch.
        self._with_children = {e for e, kids in self.store.get_children(order).items() if kids}
        # The events parked outliers wait for (module rule 3): those stored before this call,
        # plus the prevs of events parked by it (added as they are parked).
        self._awaited = {e for e, kids in self.store.get_parked_children(order).items() if kids}
        if self.fast_paths:
            self._prefetch([candidates[e].event for e in order])
        for event_id in cyclic:
            c = candidates[event_id]
            outcomes[c.index] = Outcome(
                c.index, event_id, Status.INVALID, "its prev or auth events form a cycle"
            )
        try:
            for event_id in order:
                c = candidates[event_id]
                outcomes[c.index] = self._process(c.event, c.index, c.redacted, None)
        except BaseException:
            # The events processed before the error are stored (rule 4); a failed write of
            # pending events is not tried again (they were taken off before it).
            self._flush()
            raise
        self._flush()
        assert all(o is not None for o in outcomes)
        return IngestReport(tuple(o for o in outcomes if o is not None), tuple(self.connected))

    def _receive(self, index: int, item: object, trusted: bool) -> Outcome | _Candidate:
        rv = self.rv
        digest: bytes | None = None  # the content hash, when parsing gave it (check 3)
        try:
            if isinstance(item, Event):
                event = item
                if event.room_version is not rv:
                    msg = f"the event is of room version {event.room_version.identifier}"
                    return Outcome(index, event.event_id, Status.INVALID, msg)
            elif self.fast_paths and type(item) is dict:
                # Check 1: format and size; the event ID (RV 3+: from the reference hash); and
                # the content hash of check 3 from the same encoding.
                event, digest = Event.from_pdu_with_content_hash(
                    item, rv, backfilled=self.backfilled, trusted=trusted
                )
            elif trusted:
                event = Event.from_trusted_pdu(item, rv, backfilled=self.backfilled)
            else:
                event = Event.from_pdu(item, rv, backfilled=self.backfilled)
        except EventGraphError as err:
            event_id = item.get("event_id") if isinstance(item, Mapping) else None
            return Outcome(
                index,
                event_id if type(event_id) is str else None,
                Status.INVALID,
                f"format: {err.message}",
            )
        if not self.room._adopt(event.room_id):
            msg = f"the event is of room {event.room_id}, not {self.room.room_id}"
            return Outcome(index, event.event_id, Status.INVALID, msg)
        # The decoded PDU the event was parsed from (the same JSON as ``event.pdu_json``).
        decoded = item if type(item) is dict and self.fast_paths else None
        # Check 2: signatures, through the host's verifier.
        for server in () if self.signs_everything else _required_signers(event, rv):
            signed = None
            if decoded is not None and self.presence_only:
                signed = _signature_present(decoded, server)
            if signed is None:
                signed = self.verifier.event_signed_by(event, server)
            if not signed:
                msg = f"signature: not signed by {server}"
                return Outcome(index, event.event_id, Status.INVALID, msg)
        # Check 3: the content hash; a mismatch keeps the redacted form.
        source = decoded if decoded is not None else event.to_pdu()
        hashes = source.get("hashes")
        if hashes is None:
            return _Candidate(index, event, False)  # trusted import without hashes
        expected = hashes.get("sha256") if isinstance(hashes, dict) else None
        if digest is None:
            digest = content_hash(event.to_pdu())
        if expected == unpadded_base64(digest):
            return _Candidate(index, event, False)
        pdu = event.to_pdu()
        try:
            pruned = redact(pdu, rv)
            if rv.event_id_format is EventIdFormat.SERVER_ASSIGNED or trusted:
                redacted = Event.from_trusted_pdu(
                    pruned, rv, event_id=event.event_id, backfilled=True
                )
            else:
                redacted = Event.from_pdu(pruned, rv, backfilled=True)
        except EventGraphError as err:
            msg = f"content hash mismatch and the redacted form is invalid: {err.message}"
            return Outcome(index, event.event_id, Status.INVALID, msg)
        return _Candidate(index, redacted, True)

    # -- checks 4–6, state, the write ----------------------------------------------------------

    def _process(
        self, event: Event, index: int | None, redacted: bool, known_rejection: str | None
    ) -> Outcome:
        """Run checks 4–6 on one event, write it, then connect what it unblocks."""
        outcome, connected = self._process_one(event, index, redacted, known_rejection)
        if connected and event.event_id in self._awaited:
            self._connect_waiters(event.event_id)
        return outcome

    def _process_one(
        self, event: Event, index: int | None, redacted: bool, known_rejection: str | None
    ) -> tuple[Outcome, bool]:
        store = self.store
        event_id = event.event_id
        was_parked = index is None
        if self.fast_paths and not was_parked:
            pended = self._pend(event, index, redacted)
            if pended is not None:
                return pended, True
        # The plain path reads and writes the store itself: write what is pending first.
        self._flush()
        self._forward = None
        rejection = known_rejection
        if not was_parked:
            auth_ids = event.auth_event_ids
            auth = store.get_events(auth_ids)
            missing = [a for a in auth_ids if a not in auth]
            if missing:
                reason = "missing auth events: " + ", ".join(sorted(set(missing)))
                return Outcome(index, event_id, Status.MISSING_AUTH, reason, redacted), False
            # Check 4: the auth rules against the event's own auth events.
            rejection = self._check_against(event, auth_ids, auth)

        prevs = tuple(dict.fromkeys(event.prev_event_ids))
        groups = store.get_event_state_groups(prevs)
        lacking = [p for p in prevs if p not in groups]
        override = self.overrides.get(event_id)
        if lacking and override is None:
            if was_parked:
                return Outcome(index, event_id, Status.OUTLIER), False
            store.add_events_with_state(
                [event],
                outliers=[event_id],
                rejected={event_id: rejection} if rejection is not None else None,
                state=StateWrite(parked=frozenset((event_id,))),
            )
            self._awaited.update(event.prev_event_ids)
            if rejection is not None:
                return Outcome(index, event_id, Status.REJECTED, rejection, redacted), False
            reason = "waiting for the state after " + ", ".join(sorted(lacking))
            return Outcome(index, event_id, Status.OUTLIER, reason, redacted), False

        drafts: list[StateGroupDraft] = []
        resolutions: dict[frozenset[int], int] = {}
        in_hand: dict[int, dict[StateKey, str] | _Delta] = {}

        # The state before the event (digest §7.1).
        if override is not None:
            base = groups[prevs[0]].after if prevs[0] in groups else None
            before = self._new_group(drafts, in_hand, base, dict(override))
        else:
            distinct = sorted({groups[p].after for p in prevs})
            if not distinct:
                before = self._new_group(drafts, in_hand, None, {})
            elif len(distinct) == 1:
                before = distinct[0]
            else:
                before = self._resolved_group(distinct, drafts, in_hand, resolutions)

        soft_failed: str | None = None
        # The auth events of the last check that passed: a later check against the same events
        # has the same answer (check_auth sees a set of distinct events, whatever their order).
        passed = frozenset(event.auth_event_ids) if rejection is None else None
        if rejection is None:
            # Check 5: against the state before the event.
            ids = self._state_ids(event, before, in_hand)
            if not self._same_events(ids, passed):
                rejection = self._check_ids(event, ids)
                passed = frozenset(ids)
        if rejection is None and not self.backfilled:
            # Check 6: against the current state.
            current = self._current_ids(event, prevs, before, drafts, in_hand, resolutions)
            if current is not None and not self._same_events(current, passed):
                soft_failed = self._check_ids(event, current)

        after = before
        key = event.state_tuple
        if key is not None and rejection is None:
            after = self._draft_id()
            drafts.append(StateGroupDraft(after, event.room_id, before, {key: event_id}))
        store.add_events_with_state(
            [event],
            rejected={event_id: rejection} if rejection is not None else None,
            soft_failed=[event_id] if soft_failed is not None else (),
            state=StateWrite(
                groups=tuple(drafts),
                event_groups={event_id: EventStateGroups(before, after)},
                resolutions=resolutions,
                unparked=frozenset((event_id,)) if was_parked else frozenset(),
            ),
        )
        if rejection is not None:
            outcome = Outcome(index, event_id, Status.REJECTED, rejection, redacted)
        elif soft_failed is not None:
            outcome = Outcome(index, event_id, Status.SOFT_FAILED, soft_failed, redacted)
        else:
            outcome = Outcome(index, event_id, Status.ACCEPTED, None, redacted)
        if was_parked:
            self.connected.append(outcome)
        return outcome, True

    def _connect_waiters(self, first: str) -> None:
        """Connect parked events whose prevs now all have state (module rule 3), iteratively."""
        store = self.store
        heap: list[tuple[int, str]] = []
        queued: set[str] = set()

        def push_children(event_id: str) -> None:
            for child in store.get_parked_children((event_id,)).get(event_id, ()):
                if child not in queued:
                    queued.add(child)
                    facts = store.get_facts((child,)).get(child)
                    heapq.heappush(heap, (facts.depth if facts is not None else 0, child))

        push_children(first)
        while heap:
            _, event_id = heapq.heappop(heap)
            queued.discard(event_id)
            event = store.get_events((event_id,)).get(event_id)
            facts = store.get_facts((event_id,)).get(event_id)
            if event is None or facts is None or not facts.outlier:
                continue
            _, connected = self._process_one(event, None, False, facts.rejected)
            if connected:
                push_children(event_id)

    # -- helpers ----------------------------------------------------------------------------------

    def _draft_id(self) -> int:
        self._draft -= 1
        return self._draft

    def _new_group(
        self,
        drafts: list[StateGroupDraft],
        in_hand: dict[int, dict[StateKey, str] | _Delta],
        base: int | None,
        state: dict[StateKey, str],
    ) -> int:
        """A draft group holding ``state``, as a delta on ``base`` when there is one."""
        changes: dict[StateKey, str | None]
        if base is None:
            changes = dict(state)
        else:
            old = self.store.get_state((base,))[base]
            changes = _diff(old, state)
            if not changes:
                return base
        draft = self._draft_id()
        room_id = self.room.room_id
        assert room_id is not None
        drafts.append(StateGroupDraft(draft, room_id, base, changes))
        in_hand[draft] = state
        return draft

    def _resolved_group(
        self,
        distinct: Sequence[int],
        drafts: list[StateGroupDraft],
        in_hand: dict[int, dict[StateKey, str] | _Delta],
        resolutions: dict[frozenset[int], int],
    ) -> int:
        """The group of the resolution of ``distinct`` groups: cached, an input, or a draft
        delta on the closest input (digest §7.1; Synapse ``_make_state_cache_entry``)."""
        inputs = frozenset(distinct)
        if inputs in resolutions:
            return resolutions[inputs]
        cached = self.store.get_resolutions((inputs,)).get(inputs)
        if cached is not None:
            return cached
        scoped = resolve_groups(self.rv, distinct, self.store) if self.fast_paths else None
        if scoped is not None:
            if not scoped.changes:
                group = scoped.base
            else:
                group = self._draft_id()
                room_id = self.room.room_id
                assert room_id is not None
                drafts.append(StateGroupDraft(group, room_id, scoped.base, scoped.changes))
                in_hand[group] = _Delta(scoped.base, scoped.changes)
            resolutions[inputs] = group
            return group
        states = self.store.get_state(distinct)
        resolved = resolve_state(self.rv, [states[g] for g in distinct], self.store, trusted=True)
        differing = self._differing_keys(distinct)
        best: tuple[int, int] | None = None
        best_changes: dict[StateKey, str | None] = {}
        for g in distinct:
            changes = None if differing is None else _diff_at(states[g], resolved, differing)
            if changes is None:
                changes = _diff(states[g], resolved)
            if best is None or (len(changes), g) < best:
                best, best_changes = (len(changes), g), changes
        assert best is not None
        if not best_changes:
            group = best[1]
        else:
            group = self._draft_id()
            room_id = self.room.room_id
            assert room_id is not None
            drafts.append(StateGroupDraft(group, room_id, best[1], best_changes))
            in_hand[group] = resolved
        resolutions[inputs] = group
        return group

    def _differing_keys(self, groups: Sequence[int]) -> set[StateKey] | None:
        """A superset of the keys where the states of stored ``groups`` differ, from the store
        when it can tell cheaply (fast path), else ``None``."""
        reader = self._changes_reader
        if reader is None or not self.fast_paths:
            return None
        return differing_keys(reader, groups)

    def _current_ids(
        self,
        event: Event,
        prevs: tuple[str, ...],
        before: int,
        drafts: list[StateGroupDraft],
        in_hand: dict[int, dict[StateKey, str] | _Delta],
        resolutions: dict[frozenset[int], int],
    ) -> list[str] | None:
        """The auth events of ``event`` in the current state (:meth:`_state_ids`), or ``None``
        when check 6 need not run (the current state is the state before the event)."""
        room_id = self.room.room_id
        assert room_id is not None
        extremities = self.store.forward_extremities(room_id)
        if not extremities or set(extremities) == set(prevs):
            return None
        groups = self.store.get_event_state_groups(extremities)
        distinct = sorted({g.after for g in groups.values()})
        if not distinct or distinct == [before]:
            return None
        if len(distinct) == 1:
            return self._state_ids(event, distinct[0], in_hand)
        if self.fast_paths:
            inputs = frozenset(distinct)
            cached = resolutions.get(inputs)
            if cached is None:
                cached = self.store.get_resolutions((inputs,)).get(inputs)
            if cached is not None:
                return self._state_ids(event, cached, in_hand)
            known = self._unresolved_ids(event, distinct)
            if known is not None:
                return known
        current = self._resolved_group(distinct, drafts, in_hand, resolutions)
        return self._state_ids(event, current, in_hand)

    def _unresolved_ids(self, event: Event, distinct: Sequence[int]) -> list[str] | None:
        """The auth events of ``event`` in the resolution of the stored or pending groups
        ``distinct`` when they are known without resolving (fast path), else ``None``.

        They are known when, at every key the event's auth events are selected from, either
        (a) every state has the same event, or (b) no state has the key and the room has no
        event at all for it (stored or pending, whatever its flags). Then the resolution has
        (a) that event and (b) nothing at the key, in every algorithm (digest §7.2–7.4):

        - (a) Every algorithm keeps the unconflicted state. v1: "R := union of the states
          excluding conflicting events"; v2 and v2.1 step 5: "overwrite with every key from
          the unconflicted state map".
        - (b) A key is in the result only if it is in the unconflicted state map or some event
          of the set being resolved has it. A key in no input state is in neither the
          unconflicted state map nor the conflicted state set (both are made of the inputs'
          entries). v1 resolves only the conflicted keys, each to one of its conflicting
          events. v2 and v2.1 add the *auth difference* ("the union of the auth chains of the
          events in each state, minus their intersection"; v2.1 also the *conflicted
          subgraph*, events on auth paths between conflicted events), and every event of
          that full conflicted set that passes the iterative auth checks is written at its
          own key. Every such event is an auth event, transitively, of an event of an input
          state, so a stored event of this room (an event is stored only once its auth events
          are; an auth event of another room fails auth rules and only stored events are
          read). Rejected events count too: the spec re-checks them in the full conflicted
          set (:mod:`eventgraph.state.resolution` rule 4), so the store's answer counts every
          stored event. The event being checked is no input's auth event unless it is stored
          (a parked outlier being connected), and then the store counts it: that check simply
          resolves.
        """
        if not self.fast_paths:
            return None
        keys = self._auth_keys(event)
        first = self._entries(distinct[0], keys)
        # Equal entries at ``keys``: each key is in every state with one event, or in none.
        if any(self._entries(g, keys) != first for g in distinct[1:]):
            return None
        absent = [k for k in keys if k not in first]
        if absent:
            reader = self._presence_reader
            room_id = self.room.room_id
            if reader is None or room_id is None:
                return None
            if any(k in self._pending_keys for k in absent):
                return None
            if reader.get_present_state_keys(room_id, absent):
                return None
        return self._usable([first[k] for k in keys if k in first], event)

    def _auth_keys(self, event: Event) -> tuple[StateKey, ...]:
        return auth_types_for_event(
            self.rv, event.type, event.sender, event.state_key, event.content
        )

    def _state_ids(
        self, event: Event, group: int, in_hand: Mapping[int, dict[StateKey, str] | _Delta]
    ) -> list[str]:
        """The auth events of ``event`` selected from the state of ``group`` (digest §8.1
        checks 5–6: "based on the state"), without the rejected ones."""
        keys = self._auth_keys(event)
        drafted = in_hand.get(group) if in_hand else None
        state: Mapping[StateKey, str]
        if drafted is None:
            if self.fast_paths:
                return self._usable(self._ids_at(group, keys), event)
            state = self._entries(group, keys)
        elif isinstance(drafted, _Delta):
            state = drafted.entries(keys, self._entries)
        else:
            state = drafted
        return self._usable([state[k] for k in keys if k in state], event)

    def _ids_at(self, group: int, keys: Sequence[StateKey]) -> list[str]:
        """The entries of a stored or pending group's state at ``keys`` (those it has), in the
        order of ``keys`` (fast path): :meth:`_entries` without building mappings, for the
        checks of every event."""
        drafted = self._pending_states.get(group)
        if drafted is None:
            base, changes = group, _NO_CHANGES
        else:
            base, changes = drafted.base, drafted.changes
        known = self._read(base, [k for k in keys if k not in changes] if changes else keys)
        out: list[str] = []
        for k in keys:
            v = changes[k] if k in changes else known[k]
            if v is not None:
                out.append(v)
        return out

    def _read(self, group: int, keys: Sequence[StateKey]) -> dict[StateKey, str | None]:
        """What was read of a stored group's entries in this call (``None``: no entry), with
        ``keys`` among them: those not read yet are read in one store call (fast path; stored
        groups never change)."""
        known = self._lookups.get(group)
        if known is None:
            known = self._lookups[group] = {}
        missing = [k for k in keys if k not in known]
        if missing:
            found = self.store.get_state((group,), missing).get(group, {})
            for k in missing:
                known[k] = found.get(k)
        return known

    def _entries(self, group: int, keys: Sequence[StateKey]) -> Mapping[StateKey, str]:
        """The entries of a stored or pending group's state at ``keys`` (those it has)."""
        if not self.fast_paths:
            return self.store.get_state((group,), keys).get(group, {})
        drafted = self._pending_states.get(group)
        if drafted is not None:
            return drafted.entries(keys, self._entries)
        known = self._read(group, keys)
        return {k: v for k in keys if (v := known[k]) is not None}

    def _usable(self, ids: list[str], event: Event) -> list[str]:
        if self.rv.room_id_is_create_event_id and event.type != "m.room.create":
            ids.append("$" + event.room_id[1:])  # RV 12: the create event is implied
        rejected = self._rejected
        usable: list[str] = []
        for i in ids:
            known = rejected.get(i)
            if known is False or (known is None and self._rejection(i) is False):
                usable.append(i)
        return usable

    def _rejection(self, event_id: str) -> bool | None:
        """Whether a stored event is rejected (``None``: not stored). The flag of a connected
        event never changes (an outlier's may, when it is connected), so the fast path
        remembers it."""
        known = self._rejected.get(event_id)
        if known is None:
            if event_id in self._pending:
                return event_id in self._pending_rejected
            facts = self.store.get_facts((event_id,)).get(event_id)
            if facts is None:
                return None
            known = facts.rejected is not None
            if self.fast_paths and not facts.outlier:
                self._rejected[event_id] = known
        return known

    def _same_events(self, ids: Sequence[str], passed: frozenset[str] | None) -> bool:
        """Whether ``ids`` are the distinct events of a check that passed (fast path)."""
        return (
            self.fast_paths
            and passed is not None
            and len(ids) == len(passed)
            and passed.issuperset(ids)
        )

    def _check_ids(self, event: Event, ids: Sequence[str]) -> str | None:
        return self._check_against(event, ids, self._events(ids))

    def _prefetch(self, events: Sequence[Event]) -> None:
        """Read, in one call each, what the checks of ``events`` (the batch, in order) will
        ask of the store about events stored before this call: their auth events, those
        events' rejection flags, and the state groups of their prev events (fast path).

        Each is immutable once stored: an event never changes; a connected event's rejection
        flag and state groups are final (an outlier's flag may change when it is connected, so
        outliers' flags are not kept; an event without groups yet is asked again). So the
        answers equal those of the per-event reads they replace; the batch's own events are
        not stored yet and are skipped here (they are read as pending events). Design rule:
        the pipeline talks to the store a batch at a time (few round trips for a SQL store).
        """
        batch = {e.event_id for e in events}
        auth_ids = {a for e in events for a in e.auth_event_ids}
        auth_ids.difference_update(batch)
        prev_ids = {p for e in events for p in e.prev_event_ids}
        prev_ids.difference_update(batch)
        store = self.store
        if auth_ids:
            wanted = sorted(auth_ids)
            found = store.get_events(wanted)
            self._stored_events.update(found)
            rejected = self._rejected
            flags = self._flags_reader
            if flags is not None:
                # Every event found is connected and not rejected, but the few outliers and
                # rejected events read here and set right below.
                rejected.update(dict.fromkeys(found, False))
                read = flags.get_flagged_facts(wanted)
            else:
                read = store.get_facts(wanted)
            for event_id, facts in read.items():
                if facts.outlier:
                    rejected.pop(event_id, None)  # (an outlier's flag may change: not kept)
                else:
                    rejected[event_id] = facts.rejected is not None
        if prev_ids:
            self._stored_groups.update(store.get_event_state_groups(sorted(prev_ids)))

    def _events(self, ids: Sequence[str]) -> Mapping[str, Event]:
        """The stored or pending events among ``ids``: those read by :meth:`_prefetch` or
        written by this call, the pending ones, and the store for any other."""
        known = self._stored_events
        pending = self._pending
        out: dict[str, Event] = {}
        missing: list[str] | None = None
        for i in ids:
            ev = known.get(i)
            if ev is None:
                ev = pending.get(i)
                if ev is None:
                    if missing is None:
                        missing = []
                    missing.append(i)
                    continue
            out[i] = ev
        if missing:
            out.update(self.store.get_events(missing))
        return out

    def _groups(self, event_ids: Sequence[str]) -> Mapping[str, EventStateGroups]:
        """The state groups of the stored or pending events among ``event_ids``: pending
        first, then those read by :meth:`_prefetch`, then the store."""
        return _known_first(self._pending_groups, event_ids, self._stored_state_groups)

    def _stored_state_groups(self, event_ids: Sequence[str]) -> Mapping[str, EventStateGroups]:
        return _known_first(self._stored_groups, event_ids, self.store.get_event_state_groups)

    # -- the common path, written in batches (rule 4) ----------------------------------------

    def _pend(self, event: Event, index: int | None, redacted: bool) -> Outcome | None:
        """Checks 4–6 and the state groups of an event on the common path — its prevs share
        one known state, no resolution is needed, no state was given for it — with its write
        left pending; ``None`` (nothing done) when the event needs the plain path."""
        event_id = event.event_id
        room_id = self.room._room_id
        if event_id in self.overrides or room_id is None:
            return None
        auth_ids = event.auth_event_ids
        auth = self._events(auth_ids)
        distinct_auth = frozenset(auth_ids)
        if len(auth) < len(distinct_auth):
            return None  # missing auth events: the plain path reports them
        listed = event.prev_event_ids
        prevs: tuple[str, ...]
        if len(listed) == 1:
            # One prev (most events): :meth:`_groups` without building mappings.
            prevs = listed
            (prev,) = listed
            only = self._pending_groups.get(prev) or self._stored_groups.get(prev)
            if only is None:
                only = self.store.get_event_state_groups(prevs).get(prev)
                if only is None:
                    return None
            before = only.after
        else:
            prevs = tuple(dict.fromkeys(listed))
            groups = self._groups(prevs)
            if not prevs or len(groups) < len(prevs):
                return None
            afters = {g.after for g in groups.values()}
            if len(afters) != 1:
                return None  # a resolution
            (before,) = afters
        if event_id in self._with_children:
            return None  # children stored before it (given state)
        if self._forward is None:
            self._forward = set(self.store.forward_extremities(room_id))
        # Check 4: the auth rules against the event's own auth events.
        rejection = self._check_against(event, auth_ids, auth, distinct_auth)
        passed = distinct_auth if rejection is None else None
        if rejection is None:
            # Check 5: against the state before the event.
            ids = self._state_ids(event, before, _NOTHING_IN_HAND)
            if not self._same_events(ids, passed):
                rejection = self._check_ids(event, ids)
                passed = frozenset(ids)
        soft_failed: str | None = None
        if rejection is None and not self.backfilled:
            # Check 6: against the current state.
            current = self._pending_current_ids(event, prevs, before)
            if current is False:
                return None
            if current is not None and not self._same_events(current, passed):
                soft_failed = self._check_ids(event, current)

        after = before
        key = event.state_tuple
        if key is not None and rejection is None:
            after = self._draft_id()
            self._pending_drafts.append(StateGroupDraft(after, room_id, before, {key: event_id}))
            base = self._pending_states.get(before)
            if base is None:
                self._pending_states[after] = _Delta(before, {key: event_id})
            else:
                self._pending_states[after] = _Delta(base.base, {**base.changes, key: event_id})
        self._pending[event_id] = event
        self._rejected[event_id] = rejection is not None  # connected: the flag is final
        if key is not None:
            self._pending_keys.add(key)
        self._pending_groups[event_id] = EventStateGroups(before, after)
        if rejection is not None:
            self._pending_rejected[event_id] = rejection
            outcome = Outcome(index, event_id, Status.REJECTED, rejection, redacted)
        elif soft_failed is not None:
            self._pending_soft_failed.append(event_id)
            outcome = Outcome(index, event_id, Status.SOFT_FAILED, soft_failed, redacted)
        else:
            # memory.py rule 3, for an event without stored children.
            self._forward.difference_update(event.prev_event_ids)
            self._forward.add(event_id)
            outcome = Outcome(index, event_id, Status.ACCEPTED, None, redacted)
        if len(self._pending) >= _PENDING_LIMIT:
            self._flush()
        return outcome

    def _pending_current_ids(
        self, event: Event, prevs: tuple[str, ...], before: int
    ) -> list[str] | Literal[False] | None:
        """:meth:`_current_ids` over the store and the pending events; ``False`` when a
        resolution would be needed (the plain path computes it)."""
        assert self._forward is not None
        extremities = self._forward
        if not extremities or (len(extremities) == len(prevs) and extremities.issuperset(prevs)):
            return None  # (``prevs`` has no repeats)
        groups = self._groups(sorted(extremities))
        distinct = sorted({g.after for g in groups.values()})
        if not distinct or distinct == [before]:
            return None
        if len(distinct) == 1:
            return self._state_ids(event, distinct[0], {})
        if all(g > 0 for g in distinct):
            inputs = frozenset(distinct)
            cached = self.store.get_resolutions((inputs,)).get(inputs)
            if cached is not None:
                return self._state_ids(event, cached, {})
        known = self._unresolved_ids(event, distinct)
        return False if known is None else known

    def _flush(self) -> None:
        """Write the pending events, their flags and state groups in one atomic call."""
        if not self._pending:
            return
        events = list(self._pending.values())
        write = StateWrite(groups=tuple(self._pending_drafts), event_groups=self._pending_groups)
        rejected = self._pending_rejected
        soft_failed = self._pending_soft_failed
        self._pending = {}
        self._pending_rejected = {}
        self._pending_soft_failed = []
        self._pending_drafts = []
        self._pending_groups = {}
        self._pending_states = {}
        self._pending_keys = set()
        self._forward = None
        self.store.add_events_with_state(
            events, rejected=rejected or None, soft_failed=soft_failed, state=write
        )
        if self.fast_paths:
            # Stored now, and immutable (see _prefetch): later events of the call read them here.
            self._stored_events.update({e.event_id: e for e in events})

    def _check_against(
        self,
        event: Event,
        auth_ids: Sequence[str],
        auth: Mapping[str, Event],
        distinct: Collection[str] | None = None,
    ) -> str | None:
        """The failed rule of the auth rules against the given auth events, or ``None``
        (``distinct``: the set of ``auth_ids``, if the caller has it)."""
        if len(set(auth_ids) if distinct is None else distinct) != len(auth_ids):
            return "auth_events.duplicate"
        rejected = self._rejected
        for a in auth_ids:
            known = rejected.get(a)
            if known or (known is None and self._rejection(a)):
                return REJECTED_AUTH_EVENT_RULE
        try:
            check_auth(self.rv, event, [auth[a] for a in auth_ids], verifier=self.verifier)
        except AuthError as err:
            return err.rule
        return None


def _known_first(
    known: Mapping[str, _V], ids: Sequence[str], read: Callable[[Sequence[str]], Mapping[str, _V]]
) -> Mapping[str, _V]:
    """The values of ``ids`` found in ``known`` (pending events' values, or those read
    already), the rest read with one call of ``read``."""
    if not known:
        return read(ids)
    out = {i: known[i] for i in ids if i in known}
    if len(out) < len(ids):
        out.update(read([i for i in ids if i not in out]))
    return out


def _diff(old: Mapping[StateKey, str], new: Mapping[StateKey, str]) -> dict[StateKey, str | None]:
    """The changes that turn ``old`` into ``new`` (``None`` removes a key)."""
    changes: dict[StateKey, str | None] = {k: v for k, v in new.items() if old.get(k) != v}
    for k in old:
        if k not in new:
            changes[k] = None
    return changes


def _diff_at(
    old: Mapping[StateKey, str], new: Mapping[StateKey, str], keys: Collection[StateKey]
) -> dict[StateKey, str | None] | None:
    """:func:`_diff` of an input state of a resolution and its result, looking only at
    ``keys`` — a superset of the keys where the inputs differ — or ``None`` when the result
    has keys no input has (then compare whole states).

    Every algorithm keeps the unconflicted state (rule 7), so outside ``keys`` the result holds
    every entry of ``old``; if it also holds as many entries there, it holds nothing else."""
    inside_old = sum(1 for k in keys if k in old)
    inside_new = sum(1 for k in keys if k in new)
    if len(new) - inside_new != len(old) - inside_old:
        return None
    changes: dict[StateKey, str | None] = {}
    for k in sorted(keys):
        value = new.get(k)
        if old.get(k) != value:
            changes[k] = value
    return changes


def _signature_present(pdu: Mapping[str, object], server: str) -> bool | None:
    """What :meth:`SignaturePresenceVerifier.event_signed_by` answers for the event decoded as
    ``pdu``: whether ``signatures[server]`` is a non-empty object; ``None`` when the PDU holds
    values of other types than the decoder makes (then ask the verifier)."""
    signatures = pdu.get("signatures")
    if signatures is None:
        return False
    if type(signatures) is not dict:
        return None
    by_server = signatures.get(server)
    if by_server is None:
        return False
    if type(by_server) is not dict:
        return None
    return bool(by_server)


def _required_signers(event: Event, rv: RoomVersion) -> list[str]:
    """The servers whose signatures receipt check 2 requires (server-server API "Validating
    hashes and signatures on received events"): the sender's; in RV 1–2 the event ID's; for an
    RV 8+ join through ``join_authorised_via_users_server``, that user's."""
    servers = [event.sender_domain]
    if rv.event_id_format is EventIdFormat.SERVER_ASSIGNED and ":" in event.event_id:
        servers.append(event.event_id.split(":", 1)[1])
    if rv.restricted_join_rule and event.type == "m.room.member":
        via = event.content.get("join_authorised_via_users_server")
        if event.content.get("membership") == "join" and isinstance(via, str) and ":" in via:
            servers.append(via.split(":", 1)[1])
    return servers if len(servers) == 1 else list(dict.fromkeys(servers))


def _topological(candidates: Mapping[str, _Candidate]) -> tuple[list[str], list[str]]:
    """Kahn's algorithm over prev and auth edges inside the batch (module rule 2).

    Returns the order (ready events by depth, then event ID) and the events left on cycles.

    Kahn's algorithm taking the least ready event by (depth, event ID) gives the least
    topological order in that key. So when the events sorted by the key are already a
    topological order (every parent inside the batch sorts before its child — the usual
    batch, depth growing along the edges), that sorted order is the answer, and it is
    checked in one pass instead of running the heap (:func:`_kahn`, the general way).
    """
    ordered = sorted([(c.event.depth, e) for e, c in candidates.items()])
    place = {e: i for i, (_, e) in enumerate(ordered)}
    for event_id, c in candidates.items():
        here = place[event_id]
        for parent in c.event.prev_event_ids:
            if place.get(parent, -1) >= here:
                return _kahn(candidates)
        for parent in c.event.auth_event_ids:
            if place.get(parent, -1) >= here:
                return _kahn(candidates)
    return [e for _, e in ordered], []


def _kahn(candidates: Mapping[str, _Candidate]) -> tuple[list[str], list[str]]:
    """:func:`_topological` by Kahn's algorithm with a heap (any batch, cycles included)."""
    indegree: dict[str, int] = dict.fromkeys(candidates, 0)
    children: dict[str, list[str]] = {}
    for event_id, c in candidates.items():
        # A parent listed twice (in both lists) counts twice, and is a child's parent twice:
        # its indegree still reaches 0 exactly when its last parent is placed.
        n = 0
        for parent in (*c.event.prev_event_ids, *c.event.auth_event_ids):
            if parent in candidates:
                n += 1  # a self-loop is a cycle: never placed
                if parent != event_id:
                    children.setdefault(parent, []).append(event_id)
        if n:
            indegree[event_id] = n
    heap = [(candidates[e].event.depth, e) for e, d in indegree.items() if d == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        _, event_id = heapq.heappop(heap)
        order.append(event_id)
        for child in children.get(event_id, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(heap, (candidates[child].event.depth, child))
    done = set(order)
    cyclic = sorted(e for e in candidates if e not in done)
    return order, cyclic
