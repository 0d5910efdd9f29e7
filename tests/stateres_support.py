"""Test-only helpers for state resolution: fixture loading and state at every event of a DAG.

State at an event belongs to another module (issue "state at event"); these helpers compute it
the slow, obvious way the spec defines it, with :func:`resolve_state` and :func:`check_auth`:
the state before E is the resolution of the states after E's ``prev_events``; E is rejected if
it fails the authorization rules against its own auth events or against the state before it
(server-server API "Checks performed on receipt of a PDU", checks 4 and 5); the state after E is
the state before, with E's key set to E if E is an accepted state event.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from eventgraph import AuthError, Event, EventFacts, MemoryStore, StateKey
from eventgraph.events.auth_selection import auth_types_for_event
from eventgraph.events.room_versions import RoomVersion, room_version
from eventgraph.state.authz import check_auth
from eventgraph.state.resolution import resolve_state

#: ``shared/fixtures`` beside the repository (the CI clone sits next to a copy of ``shared``).
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
RUMA = FIXTURES / "ruma-state-res"

#: The ruma batch scenarios: snapshot name -> fixture files, in order (its README).
BATCH_SCENARIOS: dict[str, list[str]] = {
    "minimal_private_chat": ["bootstrap-private-chat"],
    "minimal_public_chat": ["bootstrap-public-chat"],
    "origin_server_ts_tiebreak": ["bootstrap-private-chat", "origin-server-ts-tiebreak"],
    "ban_vs_power_levels": [
        "bootstrap-public-chat",
        "ban-vs-power-levels-alice",
        "ban-vs-power-levels-bob",
    ],
    "topic_vs_power_levels": [
        "bootstrap-public-chat",
        "topic-vs-power-levels-alice",
        "topic-vs-power-levels-bob",
    ],
    "power_levels_admin_vs_mod": [
        "bootstrap-public-chat",
        "power-levels-admin-vs-mod-alice",
        "power-levels-admin-vs-mod-bob",
    ],
    "topic_vs_ban": [
        "bootstrap-public-chat",
        "topic-vs-ban-common",
        "topic-vs-ban-alice",
        "topic-vs-ban-bob",
    ],
    "join_rules_vs_join": [
        "bootstrap-public-chat",
        "join-rules-vs-join-common",
        "join-rules-vs-join-alice",
        "join-rules-vs-join-ella",
    ],
    "concurrent_joins": [
        "bootstrap-public-chat",
        "concurrent-joins-charlie",
        "concurrent-joins-ella",
    ],
}


class FlagStore:
    """A MemoryStore whose ``rejected`` facts can be set after events are stored (tests only).

    The state-at-event helper learns an event is rejected only after it is stored (its state
    before needs the store), so the flag lives here rather than in the underlying store.
    """

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.rejected: dict[str, str] = {}

    def add_events(self, events: Iterable[Event]) -> None:
        self.inner.add_events(list(events))

    def get_events(self, event_ids: Collection[str], /) -> Mapping[str, Event]:
        return self.inner.get_events(event_ids)

    def get_facts(self, event_ids: Collection[str], /) -> Mapping[str, EventFacts]:
        facts = self.inner.get_facts(event_ids)
        rejected = self.rejected
        if not rejected:
            return facts
        return {
            i: attrs.evolve(f, rejected=rejected[i]) if i in rejected else f
            for i, f in facts.items()
        }


def topological(events: Sequence[Event]) -> list[Event]:
    """``events`` in topological order of ``prev_events`` (Kahn, ties by event ID)."""
    by_id = {e.event_id: e for e in events}
    waiting = {e.event_id: sum(1 for p in set(e.prev_event_ids) if p in by_id) for e in events}
    children: dict[str, list[str]] = {}
    for e in events:
        for p in set(e.prev_event_ids):
            if p in by_id:
                children.setdefault(p, []).append(e.event_id)
    heap = [i for i, n in waiting.items() if n == 0]
    heapq.heapify(heap)
    out: list[Event] = []
    while heap:
        i = heapq.heappop(heap)
        out.append(by_id[i])
        for c in children.get(i, ()):
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(heap, c)
    assert len(out) == len(events), "prev_events cycle"
    return out


@attrs.define
class RoomStates:
    """States before/after every event of one room, computed as events arrive."""

    rv: RoomVersion
    store: FlagStore = attrs.field(factory=FlagStore)
    before: dict[str, dict[StateKey, str]] = attrs.field(factory=dict)
    after: dict[str, dict[StateKey, str]] = attrs.field(factory=dict)
    events: dict[str, Event] = attrs.field(factory=dict)

    def add_batch(self, batch: Sequence[Event], *, one_by_one: bool) -> None:
        """Store and authorize ``batch`` (topologically ordered inside the batch)."""
        ordered = topological(batch)
        if not one_by_one:
            self.store.add_events(ordered)
        for ev in ordered:
            if one_by_one:
                self.store.add_events([ev])
            self._authorize(ev)

    def _authorize(self, ev: Event) -> None:
        self.events[ev.event_id] = ev
        prevs = [self.after[p] for p in ev.prev_event_ids if p in self.after]
        before = resolve_state(self.rv, prevs, self.store)
        self.before[ev.event_id] = before
        ok = _passes(self.rv, ev, self._own_auth_events(ev)) and _passes(
            self.rv, ev, self._auth_from_state(before, ev)
        )
        after = dict(before)
        if not ok:
            self.store.rejected[ev.event_id] = "auth"
        elif ev.state_key is not None:
            after[(ev.type, ev.state_key)] = ev.event_id
        self.after[ev.event_id] = after

    def _own_auth_events(self, ev: Event) -> list[Event]:
        got = self.store.get_events(ev.auth_event_ids)
        return [got[i] for i in ev.auth_event_ids if i in got]

    def _auth_from_state(self, state: Mapping[StateKey, str], ev: Event) -> list[Event]:
        keys = list(auth_types_for_event(self.rv, ev.type, ev.sender, ev.state_key, ev.content))
        if self.rv.room_id_is_create_event_id and ev.type != "m.room.create":
            keys.insert(0, ("m.room.create", ""))
        ids = [state[k] for k in keys if k in state]
        got = self.store.get_events(ids)
        return [got[i] for i in ids if i in got]

    def extremities(self) -> list[str]:
        """Events no other event cites as a prev event, sorted."""
        cited = {p for e in self.events.values() for p in e.prev_event_ids}
        return sorted(i for i in self.events if i not in cited)

    def resolve_extremities(self) -> dict[StateKey, str]:
        return resolve_state(self.rv, [self.after[i] for i in self.extremities()], self.store)


def _passes(rv: RoomVersion, ev: Event, auth_events: list[Event]) -> bool:
    try:
        check_auth(rv, ev, auth_events)
    except AuthError:
        return False
    return True


# -- ruma fixtures ------------------------------------------------------------------------------


def load_pdus(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    assert isinstance(data, list)
    return data


def fixture_version(pdus: Sequence[Mapping[str, Any]]) -> str:
    for pdu in pdus:
        if pdu.get("type") == "m.room.create":
            version = pdu.get("content", {}).get("room_version", "1")
            assert isinstance(version, str)
            return version
    raise AssertionError("no create event")


def to_events(
    pdus: Sequence[Mapping[str, Any]], version: str, depths: dict[str, int] | None = None
) -> list[Event]:
    """Trusted events from fixture PDUs; ``depth`` (absent in the fixtures) = 1 + max prev."""
    rv = room_version(version)
    depths = {} if depths is None else depths
    pending = {p["event_id"]: p for p in pdus}
    out: list[Event] = []
    # Fill depths in prev order (the files list events after their prev events).
    while pending:
        progressed = False
        for event_id in sorted(pending):
            pdu = pending[event_id]
            prevs = pdu.get("prev_events", [])
            if all(p in depths or p not in pending for p in prevs):
                depths[event_id] = 1 + max((depths.get(p, 0) for p in prevs), default=0)
                full = dict(pdu)
                full["depth"] = depths[event_id]
                if rv.identifier in ("1", "2"):
                    full["prev_events"] = [[p, {}] for p in prevs]
                    full["auth_events"] = [[a, {}] for a in pdu.get("auth_events", [])]
                out.append(Event.from_trusted_pdu(full, rv, backfilled=True))
                del pending[event_id]
                progressed = True
        assert progressed, "prev cycle in fixture"
    return out


def load_snapshot(name: str) -> dict[StateKey, str]:
    text = (RUMA / "snapshots" / f"{name}@resolved_state.snap").read_text()
    body = text.split("---", 2)[2]
    entries = json.loads(body)
    return {(e["type"], e["state_key"]): e["event_id"] for e in entries}
