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
from collections.abc import Callable, Iterator, Sequence
from typing import IO

import attrs

from .errors import EventGraphError
from .events.event import Event
from .events.room_versions import KNOWN_ROOM_VERSIONS
from .protocols import EventWriter
from .stores.memory import MemoryStore
from .stores.sqlite import SqliteStore
from .synth import RoomShape, SynthConfig

__all__ = ["COMMANDS", "Command", "main"]

#: Events handed to the store per ``add_events`` call while streaming a room into it.
STORE_BATCH = 1000


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
    _add_room_options(parser, events=10_000, members=300)


def _demo(args: argparse.Namespace) -> int:
    config = _room_config(args)
    if args.store == "memory":
        store: MemoryStore | SqliteStore = MemoryStore()
    else:
        store = SqliteStore(args.db)
    try:
        return _demo_in(config, store)
    finally:
        if isinstance(store, SqliteStore):
            store.close()


def _demo_in(config: SynthConfig, store: MemoryStore | SqliteStore) -> int:
    started = time.perf_counter()
    last: list[Event] = []
    shape = RoomShape.measure(_into_store(config.stream(), store, last))
    elapsed = time.perf_counter() - started
    room_id = last[0].room_id
    forward = store.forward_extremities(room_id)
    backward = store.backward_extremities(room_id)
    rate = shape.events / elapsed if elapsed > 0 else float("inf")
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
        ("forward extremities", f"{len(forward)}: {' '.join(forward)}"),
        ("backward extremities", str(len(backward))),
        ("store", f"{type(store).__name__}, {store.room_event_count(room_id):,} events"),
        ("time", f"{elapsed:.2f} s ({rate:,.0f} events/s)"),
    ]
    where = (
        "in memory" if isinstance(store, MemoryStore) or store.path == ":memory:" else store.path
    )
    print(f"A synthetic room, generated and stored ({where}):")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    return 0


def _into_store(events: Iterator[Event], store: EventWriter, last: list[Event]) -> Iterator[Event]:
    """Pass ``events`` through, adding them to ``store`` in batches of :data:`STORE_BATCH`;
    ``last`` ends up holding the last event."""
    batch: list[Event] = []
    for event in events:
        last[:] = [event]
        batch.append(event)
        if len(batch) >= STORE_BATCH:
            store.add_events(batch)
            batch = []
        yield event
    if batch:
        store.add_events(batch)


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
        "generate a synthetic room into a store (SQLite, --db) and print its shape",
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
