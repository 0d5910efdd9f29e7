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

from eventgraph import AuthError, Event, EventFacts, EventReader, MemoryStore, StateKey
from eventgraph.events.auth_selection import auth_types_for_event
from eventgraph.events.room_versions import RoomVersion, StateResAlgorithm, room_version
from eventgraph.graph.auth_chain import (
    bfs_auth_chain_difference,
    bfs_auth_chain_ids,
    bfs_conflicted_subgraph,
)
from eventgraph.state.authz import check_auth, sender_power_level
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


# -- the reference resolution -------------------------------------------------------------------


def reference_resolve_v2(
    rv: RoomVersion, sets: Sequence[Mapping[StateKey, str]], store: EventReader
) -> dict[StateKey, str]:
    """State resolution v2 / v2.1 transcribed from the spec step by step, slowly (tests only).

    Each step is the spec's sentence done the obvious way: the partition by the definition,
    auth chains by breadth-first walks, the power events' ancestors from their whole auth
    chains, Kahn's algorithm re-sorting every candidate at each step, every event checked with
    :func:`check_auth` on a list selected from the state (no shortcut for events whose auth
    events are their own), mainline depths by walking each event's power-levels chain.
    Decisions of :mod:`eventgraph.state.resolution` it shares: the auth difference counts each
    set's own events (``inclusive``), rejected events of the full set are replayed like others.
    For well-formed rooms (no cycles, every event of one room, a create event in every set).

    Spec: ``rooms/fragments/v2-state-res.md``; ``rooms/v12.md`` "State resolution" (v2.1).
    """
    v21 = rv.state_res is StateResAlgorithm.V2_1
    keys = {k for s in sets for k in s}
    # "Unconflicted state map and conflicted state set".
    unconflicted = {k: sets[0][k] for k in keys if all(k in s and s[k] == sets[0][k] for s in sets)}
    conflicted = {s[k] for s in sets for k in s if k not in unconflicted}
    if not conflicted:
        return unconflicted
    # "Auth difference", "Full conflicted set" (v2.1: with the conflicted state subgraph).
    full = set(conflicted)
    full |= bfs_auth_chain_difference(store, [list(s.values()) for s in sets], inclusive=True)
    if v21:
        full |= bfs_conflicted_subgraph(store, conflicted)
    events = dict(store.get_events(sorted(full)))
    full = {e for e in full if e in events and events[e].state_key is not None}
    facts = store.get_facts(sorted(full | {a for e in full for a in events[e].auth_event_ids}))
    rejected = {e for e, f in facts.items() if f.rejected is not None}

    def load(ids: Iterable[str]) -> None:
        events.update(store.get_events(sorted(set(ids) - events.keys())))

    load(a for e in full for a in events[e].auth_event_ids)

    def is_power(ev: Event) -> bool:
        # "Power events".
        return ev.type in ("m.room.power_levels", "m.room.join_rules") or (
            ev.type == "m.room.member"
            and ev.content.get("membership") in ("leave", "ban")
            and ev.sender != ev.state_key
        )

    # "Reverse topological power ordering" of the power events with the events of their auth
    # chains that are in the full conflicted set.
    power = {e for e in full if is_power(events[e])}
    power |= full & bfs_auth_chain_ids(store, power)

    def power_key(e: str) -> tuple[float, int, str]:
        ev = events[e]
        own = [events[a] for a in ev.auth_event_ids if a in events]
        return (-sender_power_level(rv, ev, own), ev.origin_server_ts, e)

    ordered: list[str] = []
    left = set(power)
    while left:
        ready = [e for e in left if not set(events[e].auth_event_ids) & (left - {e})]
        first = min(ready, key=power_key)
        ordered.append(first)
        left.remove(first)

    def check(state: dict[StateKey, str], e: str) -> None:
        # "Iterative auth checks": the auth events selected from the state; a key missing
        # from it is taken from the event's own auth events if that one is not rejected.
        ev = events[e]
        wanted = list(auth_types_for_event(rv, ev.type, ev.sender, ev.state_key, ev.content))
        if rv.room_id_is_create_event_id and ev.type != "m.room.create":
            wanted.insert(0, ("m.room.create", ""))
        load(state[k] for k in wanted if k in state)
        chosen: dict[StateKey, Event] = {}
        for k in wanted:
            if k in state and state[k] in events:
                chosen[k] = events[state[k]]
        own = [events[a] for a in ev.auth_event_ids if a in events and a not in rejected]
        for a in own:
            if a.state_key is not None and (a.type, a.state_key) in wanted:
                chosen.setdefault((a.type, a.state_key), a)
        if _passes(rv, ev, [chosen[k] for k in wanted if k in chosen]):
            assert ev.state_key is not None
            state[(ev.type, ev.state_key)] = e

    state: dict[StateKey, str] = {} if v21 else dict(unconflicted)
    for e in ordered:
        check(state, e)
    # "Mainline ordering" of the other events, by the resolved power levels.

    def pl_parent(e: str) -> str | None:
        load(events[e].auth_event_ids)
        for a in events[e].auth_event_ids:
            if a in events and events[a].type == "m.room.power_levels" and a != e:
                return a
        return None

    mainline: list[str] = []
    p = state.get(("m.room.power_levels", ""))
    while p is not None and p in events and p not in mainline:
        mainline.append(p)
        p = pl_parent(p)

    def mainline_depth(e: str) -> int:
        seen: set[str] = set()
        p = pl_parent(e)
        while p is not None and p in events and p not in seen:
            if p in mainline:
                return len(mainline) - mainline.index(p)
            seen.add(p)
            p = pl_parent(p)
        return 0

    rest = sorted(full - power, key=lambda e: (mainline_depth(e), events[e].origin_server_ts, e))
    for e in rest:
        check(state, e)
    # "Finally, the unconflicted state map is applied."
    state.update(unconflicted)
    return state


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
