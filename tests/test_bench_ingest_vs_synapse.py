"""The pure-Python parts of ``benchmarks/bench_ingest_vs_synapse.py``, without Synapse.

The benchmark's figures are only as good as two things Synapse's worker never sees: the sample
of PDUs written for it (every k-th PDU of each part, plus the auth events those name, in the
room's order) and the report's arithmetic (per-part and size-weighted overall figures, the
ratio against issue 5's 1.85x). The benchmark is loaded from its file, as its own directory
would be on ``sys.path`` when run as a script.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from eventgraph.synth import generate_room

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_ingest_vs_synapse", BENCHMARKS / "bench_ingest_vs_synapse.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def _parts(tmp_path: Path) -> tuple[list[Path], list[tuple[str, str]], list[dict[str, Any]]]:
    """A 300-event room in three pickled parts of 100 PDUs, with its IDs as outcomes."""
    events = list(generate_room("11", events=300, members=40, fork_rate=0.05, seed=3))
    pdus = [e.to_pdu() for e in events]
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"part{k}.pkl")
        paths[-1].write_bytes(pickle.dumps(pdus[100 * k : 100 * (k + 1)]))
    return paths, [(e.event_id, "accepted") for e in events], pdus


@pytest.mark.parametrize("every", [1, 7])
def test_write_pdus_writes_the_sample_and_the_auth_events_it_names(
    bench: ModuleType, tmp_path: Path, every: int
) -> None:
    paths, outcomes, pdus = _parts(tmp_path)
    out = tmp_path / "pdus.jsonl"
    measured, written = bench.write_pdus(paths, outcomes, every, out)
    items = [json.loads(line) for line in out.read_text().splitlines()]
    expected_measured = [i for i in range(300) if (i % 100) % every == 0]
    needed = {a for i in expected_measured for a in pdus[i]["auth_events"]}
    index = {event_id: i for i, (event_id, _) in enumerate(outcomes)}
    got = [index[item["id"]] for item in items]
    assert got == sorted(got)  # (the room's order)
    assert [index[x["id"]] for x in items if x["part"] >= 0] == expected_measured
    assert all(x["part"] == index[x["id"]] // 100 for x in items if x["part"] >= 0)
    assert {x["id"] for x in items if x["part"] < 0} == needed - {
        outcomes[i][0] for i in expected_measured
    }
    assert all(x["pdu"] == pdus[index[x["id"]]] and x["status"] == "accepted" for x in items)
    assert (measured, written) == (len(expected_measured), len(items))
    if every == 1:
        assert written == 300


def test_write_pdus_refuses_outcomes_of_another_length(bench: ModuleType, tmp_path: Path) -> None:
    paths, outcomes, _ = _parts(tmp_path)
    with pytest.raises(RuntimeError):
        bench.write_pdus(paths, [*outcomes, ("$x", "accepted")], 1, tmp_path / "x.jsonl")


def test_rows_weight_parts_by_size_and_read_the_target(bench: ModuleType) -> None:
    sizes = [3, 1]
    # Two rounds: ours in CPU seconds per part; Synapse's [part, measured, parse_us, auth_us].
    ours = [[300e-6, 50e-6], [150e-6, 70e-6]]  # µs/event: part 0: 100, 50; part 1: 50, 70
    theirs = [
        [[0, 3, 30.0, 20.0], [1, 1, 10.0, 10.0]],
        [[0, 3, 20.0, 20.0], [1, 1, 20.0, 20.0]],
    ]
    rows = [row.split() for row in bench.rows_for(sizes, ours, theirs)]
    assert [r[:2] for r in rows] == [["0", "3"], ["1", "1"], ["all", "4"]]
    part0, part1, overall = rows
    # Part 0: ours median 75, min 50; Synapse 50 and 40 per round: median 45, min 40.
    assert part0[2:4] == ["75.0", "50.0"]
    assert part0[7] == "45.0"
    assert part0[10] == "40.0"
    assert part0[11:13] == ["1.67x", "1.25x"]
    assert part0[-2:] == ["yes", "yes"]
    # Part 1: ours 60 / 50; Synapse 20 and 40: median 30, min 20 -> 2.00x and 2.50x, not met.
    assert part1[11:13] == ["2.00x", "2.50x"]
    assert part1[-2:] == ["no", "no"]
    # All: ours 350 / 4 = 87.5 and 220 / 4 = 55 µs (median 71.25); Synapse weighted by size:
    # parse (3*30 + 10) / 4 = 25 and 20, auth 17.5 and 20, sum 42.5 and 40 (median 41.25).
    assert overall[2:4] == ["71.2", "55.0"]
    assert overall[5:8] == ["22.5", "18.8", "41.2"]
    assert overall[13] == f"{bench.TARGET * 41.25:.1f}"


def test_compare_verdicts_reports_each_kind_of_difference(bench: ModuleType) -> None:
    outcomes = [
        ("$a", "accepted"),
        ("$b", "soft_failed"),
        ("$c", "rejected"),
        ("$d", "rejected"),
        ("$e", "accepted"),
        ("$f", "outlier"),
    ]
    measured = {"$a", "$b", "$c", "$d", "$f"}
    refused = {"$b": "AuthError: 403: no", "$d": "AuthError: 403: no"}
    lines = bench.compare_verdicts(outcomes, measured, refused)
    assert lines[0] == (
        "# auth verdicts: 5 events measured; 2 refused by Synapse; 1 accepted or soft-failed by "
        "ours but refused by Synapse; 1 rejected by ours (check 4 or 5) but accepted by Synapse "
        "against their auth events; not accepted by ours: outlier=1, rejected=2"
    )
    assert lines[1:] == [
        "#   refused by Synapse, soft_failed by ours: $b AuthError: 403: no",
        "#   rejected by ours, accepted by Synapse: $c",
    ]
