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
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import synapse.event_auth  # noqa: F401  (imported first: synapse.state imports it circularly)
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


def main() -> None:
    loaded: Any = None
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
        else:
            raise ValueError(request["op"])
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
