"""Same-run baseline: Synapse's state resolution on the rooms our benchmarks build.

Runs under a *separate* Python environment that has ``matrix-synapse`` installed (never the
project's: Synapse is not a dependency of eventgraph, and none of its code is copied here).
``bench_stateres.py --synapse-python PATH`` starts this script with that interpreter and talks
to it over stdin/stdout, one JSON object per line:

* ``{"op": "load", "version": "11", "path": F}``: F holds one JSON line per event of the room,
  in creation order (a topological order), then a last line ``{"state_sets": [...]}`` with the
  two state sets as lists of ``[type, state_key, event_id]``. Answer: ``{"events": n}``.
* ``{"op": "time", "repeat": n}``: n resolutions of the loaded state sets by Synapse's
  ``synapse.state.v2.resolve_events_with_store`` (v2 and v2.1 by the room version), each timed
  with ``time.process_time`` after one untimed warm-up. Answer: ``{"cpu_ms": [...],
  "walk_ms": [...], "answer": [[type, key, id], ...]}``: per resolution its CPU time and the
  part spent in the store's auth chain walk (below), and the answer in the benchmark's own
  event IDs, so that the caller can check it is its own.

The events are remade as Synapse events of the same room version. Their event IDs are reference
hashes in Synapse (room versions 3 and later), so the IDs are mapped: each event is made after
the events it names, with their Synapse IDs in its ``prev_events`` and ``auth_events`` (and, in
room version 12, the room ID of the create event's new ID). Tie-breaks by event ID may then
order some events differently; the work is the same.

The store is the one research/synapse-bench.md measured with: events from a dict, and the auth
chain difference (and v2.1's conflicted subgraph) computed by a plain walk over the events'
``auth_events`` (Synapse's production store reads a chain cover index from its database
instead; in its test store, as here, the walk is part of the time).

Per-event costs (``bench_ingest_vs_synapse.py``): Synapse's work on each received PDU before
any storage — parsing it into an event with its event ID, and the authorization rules against
the event's own auth events (spec, server-server API, "Checks performed on receipt of a PDU",
check 4; room version 11 authorization rules) — on exactly the PDUs our pipeline ingests:

* ``{"op": "load_pdus", "version": "11", "path": F}``: F holds one JSON line per PDU, in the
  order our pipeline took them, ``{"id": ours, "status": s, "part": k, "pdu": {...}}``: our
  event ID, our pipeline's outcome, and the part of the room the PDU is measured in (``-1``:
  not measured, only the auth event of a measured one). Every PDU is made into a Synapse event
  (untimed) for the store the auth rules read from, marked rejected where our pipeline rejected
  it (Synapse too stores rejected events, and its auth rules refuse them as auth events).
  Answer: ``{"events": n, "measured": m, "id_differences": [[ours, theirs], ...],
  "unparsed": [[ours, error], ...]}`` (IDs compared for every PDU; empty lists when all agree).
* ``{"op": "time_pdus"}``: per part, the CPU time (``time.process_time``) of (a) making each
  measured PDU into an event with ``make_event_from_dict`` and reading its ``event_id``, and
  (b) on those events, ``check_state_independent_auth_rules`` (with the store) then
  ``check_state_dependent_auth_rules`` against the events named by ``auth_events``, as Synapse's
  federation handler calls them. Answer: ``{"parts": [[part, events, parse_us, auth_us], ...],
  "rejected": [[ours, message], ...]}`` with µs per event, and the events Synapse's rules
  refused. The loaded store is frozen out of the cyclic collector (``gc.freeze()``, as Synapse
  does at start-up).

These PDUs carry our event IDs in ``prev_events`` and ``auth_events``. Synapse's IDs are the
same reference hashes (room versions 3 and later), so nothing is remapped; the store is keyed by
our IDs so that an ID difference (reported) cannot hide the auth check of later events.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from typing import Any

import synapse.event_auth  # (imported first: synapse.state imports it circularly)
from synapse.api.errors import SynapseError
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
from synapse.events import make_event_from_dict
from synapse.state import v2
from synapse.storage.databases.main.event_federation import StateDifference


class _Clock:
    async def sleep(self, duration: Any) -> None:
        return None


class _Store:
    """Synapse's state resolution store protocol over a dict of events."""

    def __init__(self, events: dict[str, Any]) -> None:
        self.events = events
        self.walk_cpu = 0.0  # (seconds spent in get_auth_chain_difference, for the caller)

    async def get_events(self, event_ids: Any, allow_rejected: bool = False) -> dict[str, Any]:
        return {e: self.events[e] for e in event_ids if e in self.events}

    def _chain(self, start: set[str]) -> set[str]:
        """The auth chain of ``start`` (without ``start``), by a plain walk."""
        seen: set[str] = set()
        todo = [a for e in start for a in self.events[e].auth_event_ids()]
        while todo:
            e = todo.pop()
            if e in seen:
                continue
            seen.add(e)
            todo.extend(self.events[e].auth_event_ids())
        return seen

    async def get_auth_chain_difference(
        self,
        room_id: str,
        state_sets: list[set[str]],
        conflicted_state: set[str] | None,
        additional: set[str] | None,
    ) -> StateDifference:
        c0 = time.process_time()
        chains = [self._chain(s) | s for s in state_sets]  # (the state events count too)
        difference = set().union(*chains) - set(chains[0]).intersection(*chains[1:])
        subgraph = None
        if conflicted_state is not None:
            subgraph = self._subgraph(conflicted_state | (additional or set()))
        self.walk_cpu += time.process_time() - c0
        return StateDifference(auth_difference=difference, conflicted_subgraph=subgraph)

    def _subgraph(self, conflicted: set[str]) -> set[str]:
        """The events on an auth path between two conflicted events (v2.1), plainly: the auth
        closure of the conflicted events, kept where a conflicted event is below."""
        closure = self._chain(conflicted) | conflicted
        order = sorted(closure, key=lambda e: self.events[e].depth)
        reaches: set[str] = set()
        for e in order:  # (auth events have lower depths in these rooms)
            if e in conflicted or any(a in reaches for a in self.events[e].auth_event_ids()):
                reaches.add(e)
        return reaches


def _load(request: dict[str, Any]) -> tuple[Any, _Store, list[dict[Any, str]], dict[str, str]]:
    rv = KNOWN_ROOM_VERSIONS[request["version"]]
    ours_to_theirs: dict[str, str] = {}
    room_ids: dict[str, str] = {}
    events: dict[str, Any] = {}
    sets: list[dict[Any, str]] = []
    with open(request["path"], encoding="utf-8") as f:
        for line in f:
            pdu = json.loads(line)
            if "state_sets" in pdu:
                sets = [{(t, k): ours_to_theirs[e] for t, k, e in s} for s in pdu["state_sets"]]
                break
            ours = pdu.pop("event_id")
            pdu["prev_events"] = [ours_to_theirs[e] for e in pdu["prev_events"]]
            pdu["auth_events"] = [ours_to_theirs[e] for e in pdu["auth_events"]]
            if "room_id" in pdu and pdu["room_id"] in room_ids:
                pdu["room_id"] = room_ids[pdu["room_id"]]
            pdu.setdefault("hashes", {"sha256": "x"})
            pdu.setdefault("signatures", {})
            event = make_event_from_dict(pdu, rv)
            ours_to_theirs[ours] = event.event_id
            if pdu["type"] == "m.room.create" and "room_id" not in pdu:  # (v12)
                room_ids["!" + ours[1:]] = event.room_id
            events[event.event_id] = event
    theirs_to_ours = {t: o for o, t in ours_to_theirs.items()}
    return rv, _Store(events), sets, theirs_to_ours


def _resolve(rv: Any, store: _Store, sets: list[dict[Any, str]]) -> dict[Any, str]:
    room_id = next(iter(store.events.values())).room_id
    coroutine = v2.resolve_events_with_store(_Clock(), room_id, rv, sets, None, store)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise RuntimeError("the resolution waited for something")


class _AuthStore:
    """The one store method Synapse's state-independent auth rules call, over a dict."""

    def __init__(self) -> None:
        self.events: dict[str, Any] = {}

    async def get_events(
        self,
        event_ids: Any,
        redact_behaviour: Any = None,
        get_prev_content: bool = False,
        allow_rejected: bool = False,
    ) -> dict[str, Any]:
        events = self.events
        return {
            e: events[e]
            for e in event_ids
            if e in events and (allow_rejected or events[e].rejected_reason is None)
        }


class _Pdus:
    """The PDUs of ``load_pdus``: the store of events, and the measured PDUs by part."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.rv = KNOWN_ROOM_VERSIONS[request["version"]]
        self.store = _AuthStore()
        self.parts: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        self.id_differences: list[list[str]] = []
        self.unparsed: list[list[str]] = []
        with open(request["path"], encoding="utf-8") as f:
            for line in f:
                item = json.loads(line)
                ours, pdu = item["id"], item["pdu"]
                rejected = "auth_error" if item["status"] == "rejected" else None
                try:
                    event = make_event_from_dict(pdu, self.rv, rejected_reason=rejected)
                    theirs = event.event_id
                except (SynapseError, ValueError) as e:
                    self.unparsed.append([ours, str(e)])
                    continue
                if theirs != ours:
                    self.id_differences.append([ours, theirs])
                self.store.events[ours] = event
                if item["part"] >= 0:
                    self.parts.setdefault(item["part"], []).append((ours, pdu))

    def summary(self) -> dict[str, Any]:
        return {
            "events": len(self.store.events),
            "measured": sum(len(p) for p in self.parts.values()),
            "id_differences": self.id_differences,
            "unparsed": self.unparsed,
        }

    def time(self) -> dict[str, Any]:
        """Parse, then auth, each part's PDUs, timed per part (see the module docstring)."""
        rv, store, events = self.rv, self.store, self.store.events
        independent = synapse.event_auth.check_state_independent_auth_rules
        dependent = synapse.event_auth.check_state_dependent_auth_rules
        parts: list[list[float]] = []
        rejected: list[list[str]] = []
        for part, items in sorted(self.parts.items()):
            pdus = [pdu for _, pdu in items]
            c0 = time.process_time()
            made = []
            for pdu in pdus:
                event = make_event_from_dict(pdu, rv)
                event.event_id  # noqa: B018  (the reference hash: part of the parse)
                made.append(event)
            c1 = time.process_time()
            for event, (ours, _) in zip(made, items, strict=True):
                try:
                    _run(independent(store, event))
                    dependent(event, [events[a] for a in event.auth_event_ids()])
                except RuntimeError as e:  # (AuthError; or an auth event missing from the store)
                    rejected.append([ours, f"{type(e).__name__}: {e}"])
            c2 = time.process_time()
            n = len(pdus)
            parts.append([part, n, (c1 - c0) * 1e6 / n, (c2 - c1) * 1e6 / n])
        return {"parts": parts, "rejected": rejected}


def _run(coroutine: Any) -> Any:
    """The value of a coroutine that never waits (our store answers at once)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine waited for something")


def main() -> None:
    loaded: Any = None
    pdus: _Pdus | None = None
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "load":
            loaded = _load(request)
            reply: dict[str, Any] = {"events": len(loaded[1].events)}
        elif request["op"] == "time":
            rv, store, sets, back = loaded
            answer = _resolve(rv, store, sets)  # (warm-up, untimed: caches warm again)
            cpu, walk = [], []
            for _ in range(request["repeat"]):
                store.walk_cpu = 0.0
                c0 = time.process_time()
                _resolve(rv, store, sets)
                cpu.append((time.process_time() - c0) * 1000)
                walk.append(store.walk_cpu * 1000)
            reply = {
                "cpu_ms": cpu,
                "walk_ms": walk,
                "answer": [[t, k, back[e]] for (t, k), e in answer.items()],
            }
        elif request["op"] == "load_pdus":
            pdus = None  # (the previous room's events go first)
            gc.unfreeze()
            pdus = _Pdus(request)
            # As Synapse at start-up (synapse.app._base): what is loaded leaves the collector's
            # generations, as our side freezes its store after each batch.
            gc.collect()
            gc.freeze()
            reply = pdus.summary()
        elif request["op"] == "time_pdus":
            assert pdus is not None
            reply = pdus.time()
        else:
            raise ValueError(request["op"])
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
