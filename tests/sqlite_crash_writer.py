"""A writer process for the SqliteStore crash test (run: python -m tests.sqlite_crash_writer).

Arguments: the database path and a seed. It stores :func:`crash_batches` one ``add_events`` call
at a time, printing ``committed <n>`` after the n-th call returns, until it is killed.
"""

from __future__ import annotations

import sys

from eventgraph.stores.sqlite import SqliteStore
from tests.stores import Batch, random_batches

__all__ = ["crash_batches", "main"]


def crash_batches(seed: int) -> list[Batch]:
    """The batches the writer stores: large enough that a kill often lands inside one."""
    return random_batches(seed, batches=16, size=300, prefix="$c")


def main(argv: list[str]) -> None:
    """Store the batches of ``argv[2]`` (a seed) into the database at ``argv[1]``."""
    path, seed = argv[1], int(argv[2])
    batches = crash_batches(seed)
    with SqliteStore(path) as store:
        print("ready", flush=True)
        for n, batch in enumerate(batches, start=1):
            batch.add_to(store)
            print(f"committed {n}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv)
