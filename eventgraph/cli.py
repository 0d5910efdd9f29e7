"""The ``eventgraph`` command line: a thin edge over the library.

Rules of this module:

1. Each subcommand is one :class:`Command` in :data:`COMMANDS`: a name, a one-line help, a
   function that declares its options and a function that runs it. A later command is one more
   entry; :func:`main` needs no change.
2. Commands print results to standard output and diagnostics to standard error, and return an
   exit status: 0 on success, 2 on bad arguments or input (an
   :class:`~eventgraph.EventGraphError` is printed as ``eventgraph: error: ...``, never as a
   traceback).
3. The CLI holds no logic of its own beyond presentation: it calls the library.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO

import attrs

from .errors import EventGraphError, InternalError
from .events.event import Event
from .events.room_versions import KNOWN_ROOM_VERSIONS
from .graph.walks import backfill, missing_events
from .room import NoSignatureChecks, Room, Status
from .state.state_at import current_state_ids, state_ids_before
from .stores.memory import MemoryStore
from .stores.sqlite import SqliteStore
from .synth import RoomShape, SynthConfig, SynthStats
from .testing.rooms import room_memory_store

__all__ = ["COMMANDS", "Command", "main"]

#: Events handed to the ingest pipeline per ``Room.add`` call while streaming a room into it.
STORE_BATCH = 1000
#: The ``limit`` of the demo's backfill and gap fill.
DEMO_WALK_LIMIT = 10
#: The state keys the demo shows then and now, with the content field shown beside the ID.
DEMO_STATE_KEYS: tuple[tuple[tuple[str, str], str | None], ...] = (
    (("m.room.create", ""), None),
    (("m.room.power_levels", ""), None),
    (("m.room.join_rules", ""), "join_rule"),
    (("m.room.topic", ""), "topic"),
    (("m.room.name", ""), "name"),
)


@attrs.frozen
class Command:
    """One subcommand of ``eventgraph`` (rule 1).

    Attributes:
        name: the subcommand's name.
        help: a one-line description for ``eventgraph --help``.
        add_arguments: declares the subcommand's options on its parser.
        run: runs the subcommand with the parsed options; returns the exit status.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# -- shared options ----------------------------------------------------------------------------


def _add_room_options(parser: argparse.ArgumentParser, *, events: int, members: int) -> None:
    defaults = SynthConfig()
    room = parser.add_argument_group("synthetic room")
    room.add_argument(
        "--room-version",
        "-V",
        default=defaults.room_version,
        choices=list(KNOWN_ROOM_VERSIONS),
        metavar="VERSION",
        help=f"room version, 1–12 (default {defaults.room_version})",
    )
    room.add_argument(
        "--events", "-n", type=int, default=events, help=f"number of events (default {events})"
    )
    room.add_argument(
        "--members", "-m", type=int, default=members, help=f"distinct members (default {members})"
    )
    room.add_argument(
        "--seed", "-s", type=int, default=defaults.seed, help="random seed (default 0)"
    )
    room.add_argument(
        "--servers",
        type=int,
        default=defaults.servers,
        help=f"homeservers the members live on (default {defaults.servers})",
    )
    room.add_argument(
        "--fork-rate",
        type=float,
        default=defaults.fork_rate,
        help=f"probability that an event starts a fork (default {defaults.fork_rate})",
    )
    room.add_argument(
        "--fork-width",
        type=int,
        default=defaults.fork_width,
        help=f"most concurrent branches per fork (default {defaults.fork_width})",
    )
    room.add_argument(
        "--fork-length",
        type=int,
        default=defaults.fork_length,
        help=f"most events per branch (default {defaults.fork_length})",
    )
    room.add_argument(
        "--state-rate",
        type=float,
        default=defaults.state_rate,
        help=f"probability that an event changes state (default {defaults.state_rate})",
    )


def _room_config(args: argparse.Namespace) -> SynthConfig:
    return SynthConfig(
        room_version=args.room_version,
        events=args.events,
        members=args.members,
        seed=args.seed,
        servers=args.servers,
        fork_rate=args.fork_rate,
        fork_width=args.fork_width,
        fork_length=args.fork_length,
        state_rate=args.state_rate,
    )


# -- demo --------------------------------------------------------------------------------------


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    stores = parser.add_argument_group("store")
    stores.add_argument(
        "--db",
        default=":memory:",
        metavar="PATH",
        help="the SQLite database file to store the room in (default ':memory:'; an existing "
        "eventgraph database is added to)",
    )
    stores.add_argument(
        "--store",
        choices=("sqlite", "memory"),
        default="sqlite",
        help="the store: SqliteStore at --db (default) or MemoryStore",
    )
    _add_room_options(parser, events=5_000, members=200)


def _demo(args: argparse.Namespace) -> int:
    config = _room_config(args)
    if args.store == "memory":
        store: MemoryStore | SqliteStore = room_memory_store()
    else:
        store = SqliteStore(args.db)
    try:
        return _demo_in(config, store)
    finally:
        if isinstance(store, SqliteStore):
            store.close()


def _demo_in(config: SynthConfig, store: MemoryStore | SqliteStore) -> int:
    started = time.perf_counter()
    stats = SynthStats()
    room = Room(store, config.room_version, verifier=NoSignatureChecks())
    seen = _Seen(config.events)
    shape = RoomShape.measure(_into_room(config.stream(stats), room, seen))
    elapsed = time.perf_counter() - started
    room_id = seen.last.room_id
    forward = store.forward_extremities(room_id)
    backward = store.backward_extremities(room_id)
    rate = shape.events / elapsed if elapsed > 0 else float("inf")
    contests = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.by_contest.items()))
    rows = [
        ("room", room_id),
        ("room version", config.room_version),
        ("seed", str(config.seed)),
        ("events", f"{shape.events:,}"),
        ("state events", f"{shape.state_events:,}"),
        ("senders", f"{shape.senders:,}"),
        ("max depth", f"{shape.max_depth:,}"),
        ("forks", f"{shape.forks:,}"),
        ("merges", f"{shape.merges:,}"),
        ("concurrent forks", f"{stats.concurrent_forks:,} ({contests or 'no contests'})"),
        ("resolved changes", f"{stats.kept:,} kept, {stats.dropped:,} dropped"),
        ("forward extremities", f"{len(forward)}: {' '.join(forward)}"),
        ("backward extremities", str(len(backward))),
        ("store", f"{type(store).__name__}, {store.room_event_count(room_id):,} events"),
        ("time", f"{elapsed:.2f} s ({rate:,.0f} events/s)"),
    ]
    where = (
        "in memory" if isinstance(store, MemoryStore) or store.path == ":memory:" else store.path
    )
    print(f"A synthetic room, generated, ingested (as backfill) and stored ({where}):")
    _print_rows(rows)
    _print_walks(store, room_id, forward, seen)
    _print_state_at(store, room_id, seen.old)
    return 0


class _Seen:
    """What the demo remembers of the stream: the last event, an early one (a tenth of the way
    in) and a late one (nine tenths), for the walks and the state lookups."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.last: Event
        self.old: Event
        self.late: Event

    def see(self, event: Event) -> None:
        if self.count <= self.total // 10:
            self.old = event
        if self.count <= self.total * 9 // 10:
            self.late = event
        self.last = event
        self.count += 1


def _print_rows(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _event_line(event: Event) -> str:
    kind = event.type if event.state_key is None else f"{event.type} {event.state_key}".rstrip()
    return f"    depth {event.depth:>6}  {event.event_id}  {kind}"


def _print_walks(
    store: MemoryStore | SqliteStore, room_id: str, forward: Sequence[str], seen: _Seen
) -> None:
    """``/backfill`` from the forward extremities and ``/get_missing_events`` between a late
    event and the tip (issue 3; ``eventgraph.graph.walks``)."""
    page = backfill(store, room_id, forward, DEMO_WALK_LIMIT)
    print(f"Backfill from the forward extremities (limit {DEMO_WALK_LIMIT}), newest first:")
    for event in page:
        print(_event_line(event))
    gap = missing_events(store, room_id, [seen.late.event_id], forward, limit=DEMO_WALK_LIMIT)
    print(
        f"Gap fill: missing events after {seen.late.event_id} (depth {seen.late.depth}) up to "
        f"the tip (limit {DEMO_WALK_LIMIT}), oldest first:"
    )
    for event in gap:
        print(_event_line(event))


def _print_state_at(store: MemoryStore | SqliteStore, room_id: str, old: Event) -> None:
    """The state before an early event against the current state (issue 5)."""
    then = state_ids_before(store, old.event_id)
    now = current_state_ids(store, room_id)
    print(f"State before {old.event_id} (depth {old.depth}) and now:")
    events = store.get_events(sorted(set(then.values()) | set(now.values())))
    rows = [("state entries", f"{len(then):,}", f"{len(now):,}")]

    def joined(state: Mapping[tuple[str, str], str]) -> int:
        return sum(
            1
            for (etype, _), event_id in state.items()
            if etype == "m.room.member" and events[event_id].content.get("membership") == "join"
        )

    rows.append(("joined members", f"{joined(then):,}", f"{joined(now):,}"))
    for key, field in DEMO_STATE_KEYS:
        cells = []
        for state in (then, now):
            event_id = state.get(key)
            if event_id is None:
                cells.append("-")
                continue
            value = events[event_id].content.get(field) if field else None
            shown = f"{event_id[:12]}…" if len(event_id) > 13 else event_id
            cells.append(shown if value is None else f"{shown} ({_short(value)})")
        rows.append((key[0], cells[0], cells[1]))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"  {'':<{w0}}  {'then':<{w1}}  now")
    for name, a, b in rows:
        print(f"  {name:<{w0}}  {a:<{w1}}  {b}")


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def _into_room(events: Iterator[Event], room: Room, seen: _Seen) -> Iterator[Event]:
    """Pass ``events`` through, ingesting them with ``room`` in batches of :data:`STORE_BATCH`
    as backfill (every receipt check but soft failure; state groups for every event)."""
    batch: list[Event] = []
    for event in events:
        seen.see(event)
        batch.append(event)
        if len(batch) >= STORE_BATCH:
            _ingest(room, batch)
            batch = []
        yield event
    if batch:
        _ingest(room, batch)


def _ingest(room: Room, batch: list[Event]) -> None:
    report = room.add(batch, backfilled=True)
    refused = [o for o in report.outcomes if o.status not in (Status.ACCEPTED, Status.REJECTED)]
    if refused:
        first = refused[0]
        msg = f"the pipeline refused {first.event_id}: {first.status.value} ({first.reason})"
        raise InternalError(msg)


# -- generate ----------------------------------------------------------------------------------


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        "-o",
        default="-",
        metavar="FILE",
        help="where to write the JSON lines (default '-': standard output)",
    )
    _add_room_options(parser, events=1000, members=20)


def _generate(args: argparse.Namespace) -> int:
    config = _room_config(args)
    events = config.stream()
    if args.output == "-":
        count, room_id = _write_lines(events, sys.stdout, None)
        where = "standard output"
    else:
        with open(args.output, "wb") as out:
            count, room_id = _write_lines(events, None, out)
        where = args.output
    print(
        f"eventgraph: wrote {count:,} PDUs of room {room_id} "
        f"(room version {config.room_version}) to {where}",
        file=sys.stderr,
    )
    return 0


def _write_lines(
    events: Iterator[Event], text: IO[str] | None, binary: IO[bytes] | None
) -> tuple[int, str]:
    count = 0
    room_id = ""
    for event in events:
        line = event.pdu_json + b"\n"  # the federation PDU, as canonical JSON
        if binary is not None:
            binary.write(line)
        elif text is not None:
            text.write(line.decode("utf-8"))
        count += 1
        room_id = event.room_id
    return count, room_id


#: Every subcommand, in the order ``--help`` lists them (rule 1).
COMMANDS: tuple[Command, ...] = (
    Command(
        "demo",
        "generate a synthetic room, ingest it into a store (SQLite, --db), print its shape, "
        "a backfill, a gap fill and the state at an early event",
        _demo_arguments,
        _demo,
    ),
    Command(
        "generate",
        "write a synthetic room as JSON lines of federation PDUs",
        _generate_arguments,
        _generate,
    ),
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The argument parser of ``eventgraph`` with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="eventgraph",
        description="The Matrix room event graph: tools over the eventgraph library.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        command_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(command_parser)
        command_parser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``eventgraph`` command line with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status (rule 2); argparse's own usage errors exit with status 2.

    Complexity: that of the command run.

    >>> main(["generate", "--events", "2", "--room-version", "12"])  # doctest: +ELLIPSIS
    {"auth_events":[],"content":{"room_version":"12"},...,"type":"m.room.create"}
    {"auth_events":[],"content":{"displayname":"u0","membership":"join"},...}
    0
    """
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except EventGraphError as err:
        print(f"eventgraph: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``eventgraph generate | head``): stop quietly, as the Python
        # documentation recommends, pointing stdout at devnull so the exit flush cannot fail.
        _silence_stdout()
        return 1


def _silence_stdout() -> None:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing will be flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
