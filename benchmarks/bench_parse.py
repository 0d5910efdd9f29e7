"""Parse + validate + event ID of typical PDUs with ``Event.from_pdu``, against bare hashing.

For each room version, the PDUs of one synthetic room (``eventgraph.synth``: messages, member
events, topics, power levels, merges) are given an ed25519-sized signature, as every PDU has over
federation, and decoded to dicts once. Each repetition then times, over the same dicts:

* ``from_pdu``: ``Event.from_pdu(pdu, version)`` — format checks, frozen content, the stored
  canonical JSON and the event ID (RV 3+: redaction, canonical JSON, SHA-256);
* ``bare``: ``sha256(canonicaljson.encode_canonical_json(pdu))`` with the canonicaljson package
  — the bare cost of canonical JSON + SHA-256 of the same events, the baseline the targets use;
* ``before``: the plain parser ``from_pdu`` replaced (``eventgraph.events._reference``: encode
  the PDU, redact, encode again, SHA-256), measured in the same run for a before/after ratio;
* ``receipt``: ``Event.from_pdu_with_content_hash`` — ``from_pdu`` plus the content hash that
  receipt check 3 compares, from the same encoding (what the ingest pipeline needs per PDU).

Targets (issue 2): ``from_pdu`` at most 16 µs per event (Synapse's Rust event class on this kind
of machine, ``research/synapse-bench.md``) and at most 2.5x ``bare``.

All four run interleaved in each repetition, so they see the same machine load. Medians are
reported; the ratios compare medians of the same run (CPU time is the steadier on a shared
machine).

Usage: ``python benchmarks/bench_parse.py [--events N] [--repeat R] [--versions 1,4,11,12]``.
Raw rows go to ``benchmarks/results/parse.txt``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import canonicaljson

from eventgraph import Event, room_version
from eventgraph.events._reference import parse_reference
from eventgraph.synth import generate_room

RESULTS = Path(__file__).parent / "results" / "parse.txt"
SIGNATURE = {"hs0.example": {"ed25519:a_abcd": "S" * 86}}  # the size of a real signature
SYNAPSE_US = 16.0
RATIO_TARGET = 2.5


def typical_pdus(version: str, events: int) -> list[dict[str, Any]]:
    """The PDUs of a synthetic room, signed with a dummy signature of the real size."""
    pdus = []
    for event in generate_room(version, events=events, members=events // 10, seed=1):
        pdu = json.loads(event.pdu_json)
        sender_server = pdu["sender"].split(":", 1)[1]
        pdu["signatures"] = {sender_server: SIGNATURE["hs0.example"]}
        pdus.append(pdu)
    return pdus


def time_per_event(run: Callable[[], object], count: int) -> tuple[float, float]:
    """Wall and CPU (process) time per event, in µs."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return (
        (time.perf_counter() - wall) / count * 1e6,
        (time.process_time() - cpu) / count * 1e6,
    )


def measure(version: str, pdus: Sequence[dict[str, Any]], repeat: int) -> dict[str, list[float]]:
    rv = room_version(version)

    def parse() -> None:
        from_pdu = Event.from_pdu
        for pdu in pdus:
            from_pdu(pdu, version)

    def before() -> None:
        for pdu in pdus:
            parse_reference(pdu, rv, backfilled=False, trusted_id=None)

    def receipt() -> None:
        with_hash = Event.from_pdu_with_content_hash
        for pdu in pdus:
            with_hash(pdu, version)

    def bare() -> None:
        encode = canonicaljson.encode_canonical_json
        sha256 = hashlib.sha256
        for pdu in pdus:
            sha256(encode(pdu)).digest()

    runs = (("from_pdu", parse), ("bare", bare), ("before", before), ("receipt", receipt))
    for _, run in runs:
        run()  # warm-up
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        # Interleaved, so all see the same machine load.
        for name, run in runs:
            wall, cpu = time_per_event(run, len(pdus))
            times.setdefault(name, []).append(wall)
            times.setdefault(name + "_cpu", []).append(cpu)
    return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--versions", default="1,3,4,10,11,12")
    args = parser.parse_args(argv)
    rows = []
    verdicts = []
    header = (
        f"# bench_parse: {args.events} events per version, {args.repeat} runs after a warm-up; "
        f"µs per event (min/median/max) of wall time, then median CPU time; "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(header)
    columns = (
        "version  bytes/event  from_pdu min/med/max      bare min/med/max        ratio(median)"
        "   cpu: from_pdu(med)  bare(med)  ratio   before(med) after/before"
        "   receipt(med) receipt/bare"
    )
    print(columns)
    for version in args.versions.split(","):
        pdus = typical_pdus(version, args.events)
        size = statistics.mean(len(canonicaljson.encode_canonical_json(p)) for p in pdus)
        times = measure(version, pdus, args.repeat)
        parse, bare = times["from_pdu"], times["bare"]
        ratio = statistics.median(parse) / statistics.median(bare)
        names = ("from_pdu", "bare", "before", "receipt")
        cpu = {name: statistics.median(times[name + "_cpu"]) for name in names}
        row = (
            f"{version:>7}  {size:11.0f}  "
            f"{min(parse):6.2f} {statistics.median(parse):6.2f} {max(parse):6.2f}     "
            f"{min(bare):6.2f} {statistics.median(bare):6.2f} {max(bare):6.2f}     "
            f"{ratio:5.2f}x          {cpu['from_pdu']:6.2f}     {cpu['bare']:6.2f}  "
            f"{cpu['from_pdu'] / cpu['bare']:5.2f}x    {cpu['before']:6.2f}      "
            f"{cpu['from_pdu'] / cpu['before']:5.2f}x       {cpu['receipt']:6.2f}       "
            f"{cpu['receipt'] / cpu['bare']:5.2f}x"
        )
        print(row, flush=True)
        rows.append(row)
        ok = statistics.median(parse) <= SYNAPSE_US and ratio <= RATIO_TARGET
        verdicts.append(f"RV {version}: {'meets' if ok else 'misses'} the targets")
    print("; ".join(verdicts))
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(f"{header}; {time.strftime('%Y-%m-%d %H:%M')}\n{columns}\n")
        for row in rows:
            out.write(row + "\n")


if __name__ == "__main__":
    main()
