"""The ``eventgraph`` command line, run in-process (eventgraph.cli)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from eventgraph import Event
from eventgraph.cli import COMMANDS, Command, build_parser, main
from eventgraph.synth import RoomShape, generate_room


def shape_rows(text: str) -> dict[str, str]:
    """The ``name  value`` rows of the first section of ``eventgraph demo``'s output."""
    rows = {}
    for line in text.splitlines()[1:]:
        if not line.startswith("  "):
            break
        name, value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        rows[name] = value
    return rows


def sections(text: str) -> dict[str, list[str]]:
    """The demo's sections: heading line -> its indented lines."""
    found: dict[str, list[str]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith(" "):
            found[heading].append(line)
        else:
            heading = line
            found[heading] = []
    return found


def walk_ids(lines: list[str]) -> list[tuple[int, str, str]]:
    """``(depth, event ID, type)`` of the demo's walk lines."""
    out = []
    for line in lines:
        _, depth, event_id, etype = line.split(maxsplit=4)[:4]
        out.append((int(depth), event_id, etype))
    return out


def test_demo_prints_the_shape_of_the_room_it_stored(capsys: pytest.CaptureFixture[str]) -> None:
    """``demo`` reports the generated room's real shape and the store's extremities."""
    assert main(["demo", "--events", "2000", "--members", "50", "--fork-rate", "0.05"]) == 0
    rows = shape_rows(capsys.readouterr().out)
    expected = RoomShape.measure(generate_room("11", events=2000, members=50, fork_rate=0.05))
    last = list(generate_room("11", events=2000, members=50, fork_rate=0.05))[-1]
    assert rows["events"] == "2,000"
    assert rows["room version"] == "11"
    assert rows["room"] == last.room_id
    assert rows["max depth"] == f"{expected.max_depth:,}"
    assert rows["forks"] == f"{expected.forks:,}"
    assert rows["merges"] == f"{expected.merges:,}"
    assert int(rows["forks"]) > 0
    assert rows["state events"] == f"{expected.state_events:,}"
    # Every fork is merged by the end, so the one forward extremity is the last event.
    assert rows["forward extremities"] == f"1: {last.event_id}"
    assert rows["backward extremities"] == "0"
    assert rows["store"] == "SqliteStore, 2,000 events"


def test_demo_defaults_are_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's ``eventgraph demo`` runs with its defaults (a few seconds at most)."""
    assert main(["demo"]) == 0
    rows = shape_rows(capsys.readouterr().out)
    assert rows["events"] == "5,000"
    seconds = float(rows["time"].split()[0])
    assert seconds < 10


@pytest.mark.parametrize("version", ["1", "3", "11", "12"])
def test_generate_writes_pdus_that_parse_to_the_same_ids(
    version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``generate`` writes one federation PDU per line; parsing gives back the same events."""
    argv = ["generate", "-V", version, "-n", "300", "-m", "15", "--seed", "4", "--fork-rate", "0.1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    expected = list(generate_room(version, events=300, members=15, seed=4, fork_rate=0.1))
    assert len(lines) == 300
    parsed = [Event.from_pdu(json.loads(line), version) for line in lines]
    assert [e.event_id for e in parsed] == [e.event_id for e in expected]
    assert [e.pdu_json for e in parsed] == [line.encode() for line in lines]
    assert f"wrote 300 PDUs of room {expected[0].room_id}" in captured.err
    assert f"room version {version}" in captured.err


def test_generate_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--output FILE`` writes the same bytes as standard output would."""
    out = tmp_path / "room.jsonl"
    assert main(["generate", "-n", "50", "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().err
    assert main(["generate", "-n", "50"]) == 0
    assert out.read_text("utf-8") == capsys.readouterr().out
    lines = out.read_bytes().splitlines()
    assert [Event.from_pdu(json.loads(line), "11").pdu_json for line in lines] == lines


def test_bad_knobs_are_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Library errors become ``eventgraph: error: ...`` and exit status 2, no traceback."""
    assert main(["generate", "--events", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "eventgraph: error: events must be at least 1, not 0\n"
    assert main(["demo", "--fork-width", "40"]) == 2
    assert "fork_width must be between 2 and 20" in capsys.readouterr().err


def test_argparse_refuses_unknown_versions_and_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Usage errors exit with status 2 through argparse."""
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "-V", "13"])
    assert exit_info.value.code == 2
    assert "invalid choice: '13'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_commands_table_drives_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """A new command is one table entry: the parser and ``main``'s dispatch follow it."""
    assert [c.name for c in COMMANDS] == ["demo", "generate"]
    calls: list[argparse.Namespace] = []

    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--x", type=int, default=1)

    def run(args: argparse.Namespace) -> int:
        calls.append(args)
        return 7

    parser = build_parser((*COMMANDS, Command("extra", "an extra command", add, run)))
    args = parser.parse_args(["extra", "--x", "3"])
    assert args.run(args) == 7
    assert calls[0].x == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    help_text = capsys.readouterr().out
    for name in ("demo", "generate", "extra"):
        assert name in help_text


def test_demo_stores_in_a_sqlite_file_or_in_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--db PATH`` keeps the room in a SQLite file; ``--store memory`` uses MemoryStore."""
    from eventgraph.stores.sqlite import SqliteStore

    db = tmp_path / "room.db"
    assert main(["demo", "--events", "300", "--members", "10", "--db", str(db)]) == 0
    rows = shape_rows(capsys.readouterr().out)
    assert rows["store"] == "SqliteStore, 300 events"
    with SqliteStore(db) as store:
        (room_id,) = store.room_ids()
        assert room_id == rows["room"]
        assert store.forward_extremities(room_id) == (rows["forward extremities"].split()[-1],)
        store.check_invariants()
    assert main(["demo", "--events", "300", "--members", "10", "--store", "memory"]) == 0
    assert shape_rows(capsys.readouterr().out)["store"] == "MemoryStore, 300 events"


def test_demo_shows_walks_and_state_at_an_old_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's backfill, gap fill and state-at-event sections are the library's answers on
    the stored room (issues 3 and 5), and the room really has concurrent forks."""
    from eventgraph.graph.walks import backfill, missing_events
    from eventgraph.state.state_at import current_state_ids, state_ids_before
    from eventgraph.stores.sqlite import SqliteStore

    db = tmp_path / "room.db"
    argv = ["demo", "-n", "1500", "-m", "60", "--fork-rate", "0.08", "--seed", "3", "--db", str(db)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = shape_rows(out)
    assert int(rows["concurrent forks"].split()[0]) > 0
    found = sections(out)
    (back_heading,) = [h for h in found if h.startswith("Backfill from the forward extremities")]
    (gap_heading,) = [h for h in found if h.startswith("Gap fill: missing events after ")]
    (state_heading,) = [h for h in found if h.startswith("State before ")]
    with SqliteStore(db) as store:
        room_id = rows["room"]
        tip = store.forward_extremities(room_id)
        expected = backfill(store, room_id, tip, 10)
        assert walk_ids(found[back_heading]) == [(e.depth, e.event_id, e.type) for e in expected]
        assert len(expected) == 10
        late = gap_heading.split()[5]
        gap = missing_events(store, room_id, [late], tip, limit=10)
        assert walk_ids(found[gap_heading]) == [(e.depth, e.event_id, e.type) for e in gap]
        assert len(gap) == 10
        old = state_heading.split()[2]
        then, now = state_ids_before(store, old), current_state_ids(store, room_id)
        table = {line.split()[0]: line.split() for line in found[state_heading][1:]}
        assert table["state"][2:4] == [f"{len(then):,}", f"{len(now):,}"]
        assert len(then) < len(now)
        create = then[("m.room.create", "")]
        assert table["m.room.create"][1:] == [create[:12] + "…", create[:12] + "…"]
        assert table["m.room.power_levels"][2] == now[("m.room.power_levels", "")][:12] + "…"
