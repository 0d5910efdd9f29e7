"""State resolution against the ruma-state-res fixtures (../shared/fixtures/ruma-state-res).

Origin: the data files of the Rust project ruma (crate ``ruma-state-res``, its integration tests
``tests/it/resolve/``), MIT-licensed, used unchanged as acceptance data; see the README there.

Batch scenarios: every event is authorized and its state computed in topological order (the
spec's definition of state at an event, :mod:`tests.stateres_support`), then the states after
the final forward extremities are resolved and compared with the snapshot. The answer must be
the same whether events arrive one by one, file by file, or all at once. State-map scenarios
(MSC4297 problems A and B): the given state sets are resolved with v2.0 (room version 11 PDUs)
and v2.1 (room version 12 PDUs); the answers differ, as the snapshots say.
"""

from __future__ import annotations

import json

import pytest

from eventgraph import MemoryStore, StateKey
from eventgraph.state.resolution import resolve_state

from .stateres_support import (
    BATCH_SCENARIOS,
    RUMA,
    RoomStates,
    fixture_version,
    load_pdus,
    load_snapshot,
    to_events,
)

pytestmark = pytest.mark.skipif(
    not RUMA.is_dir(), reason=f"shared fixtures not found at {RUMA} (clone shared/ beside repo)"
)


def _run(files: list[str], mode: str) -> dict[StateKey, str]:
    batches = [load_pdus(RUMA / "fixtures" / f"{name}.json") for name in files]
    version = fixture_version(batches[0])
    depths: dict[str, int] = {}
    events = [to_events(b, version, depths) for b in batches]
    room = RoomStates(rv=events[0][0].room_version)
    if mode == "all_at_once":
        room.add_batch([e for batch in events for e in batch], one_by_one=False)
    elif mode == "file_by_file":
        for batch in events:
            room.add_batch(batch, one_by_one=False)
    else:
        for batch in events:
            room.add_batch(batch, one_by_one=True)
    return room.resolve_extremities()


@pytest.mark.parametrize("mode", ["event_by_event", "file_by_file", "all_at_once"])
@pytest.mark.parametrize("snapshot", sorted(BATCH_SCENARIOS))
def test_batch_scenario(snapshot: str, mode: str) -> None:
    """The resolved state of the final forward extremities equals ruma's snapshot."""
    expected = load_snapshot(snapshot)
    assert _run(BATCH_SCENARIOS[snapshot], mode) == expected


MSC4297: list[tuple[str, str, list[str], str]] = [
    (
        "msc4297_problem_a_state_res_v2_0",
        "MSC4297-problem-A",
        ["state-bob", "state-charlie"],
        "pdus-v11",
    ),
    (
        "msc4297_problem_a_state_res_v2_1",
        "MSC4297-problem-A",
        ["state-bob", "state-charlie"],
        "pdus-v12",
    ),
    (
        "msc4297_problem_b_state_res_v2_0",
        "MSC4297-problem-B",
        ["state-eve", "state-zara"],
        "pdus-v11",
    ),
    (
        "msc4297_problem_b_state_res_v2_1",
        "MSC4297-problem-B",
        ["state-eve", "state-zara"],
        "pdus-v12",
    ),
]


def _state_map_scenario(folder: str, states: list[str], pdus_name: str) -> dict[StateKey, str]:
    pdus = load_pdus(RUMA / "fixtures" / folder / f"{pdus_name}.json")
    version = fixture_version(pdus)
    events = to_events(pdus, version)
    by_id = {e.event_id: e for e in events}
    store = MemoryStore()
    store.add_events(events)
    state_sets = []
    for name in states:
        ids = json.loads((RUMA / "fixtures" / folder / f"{name}.json").read_text())
        state_sets.append({(by_id[i].type, by_id[i].state_key or ""): i for i in ids})
    return resolve_state(version, state_sets, store)


@pytest.mark.parametrize(("snapshot", "folder", "states", "pdus"), MSC4297)
def test_msc4297_state_map_scenario(
    snapshot: str, folder: str, states: list[str], pdus: str
) -> None:
    """The MSC4297 problems resolve as ruma's snapshots say (v2.0 for v11, v2.1 for v12)."""
    assert _state_map_scenario(folder, states, pdus) == load_snapshot(snapshot)


@pytest.mark.parametrize("folder", ["MSC4297-problem-A", "MSC4297-problem-B"])
def test_msc4297_v20_and_v21_differ(folder: str) -> None:
    """The point of MSC4297: the same state sets resolve differently under v2.0 and v2.1."""
    states = ["state-bob", "state-charlie"] if folder.endswith("A") else ["state-eve", "state-zara"]
    v20 = _state_map_scenario(folder, states, "pdus-v11")
    v21 = _state_map_scenario(folder, states, "pdus-v12")
    assert v20 != v21
