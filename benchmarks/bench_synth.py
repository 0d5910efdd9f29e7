"""Synthetic room generation: events per second and peak memory, 10^4 to 10^6 events.

Each run generates one room of room version 11 with one member per ten events (10^6 events:
10^5 members), the default fork and state rates, and drops every event as it comes (the stream is
consumed, never kept). Each run is a fresh Python process, so its peak resident set size
(``resource.getrusage(...).ru_maxrss``) is its own; the table also gives the peak minus the
resident size of the process after imports and the warm-up (a 1,000-event room), which is what
the generator itself holds. Per size: ``n`` timed runs after that in-process warm-up; min /
median / max of the rate.

In the same run, the baseline: parsing the same events again with ``Event.from_pdu`` (the PDUs
are re-serialised by the generator, so parsing is the floor of what generating can cost), timed
on the first 10^4 events of the room.

Usage: ``python benchmarks/bench_synth.py [--sizes 10000,100000,1000000] [--repeat 3]``.
Raw rows go to ``benchmarks/results/synth.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "synth.txt"
VERSION = "11"


def one_run(events: int, members: int) -> dict[str, float]:
    """Generate one room in this process; return its figures."""
    from eventgraph import Event
    from eventgraph.synth import generate_room

    for _ in generate_room(VERSION, events=1000, members=100, seed=99):  # warm-up
        pass
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    count = 0
    sample: list[bytes] = []
    for event in generate_room(VERSION, events=events, members=members, seed=1):
        count += 1
        if len(sample) < 10_000:
            sample.append(event.pdu_json)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pdus = [json.loads(p) for p in sample]
    parse_started = time.perf_counter()
    for pdu in pdus:
        Event.from_pdu(pdu, VERSION)
    parse_us = (time.perf_counter() - parse_started) / len(pdus) * 1e6
    assert count == events
    return {
        "seconds": seconds,
        "rate": events / seconds,
        "us_per_event": seconds / events * 1e6,
        "parse_us": parse_us,
        "peak_mib": peak_kib / 1024,
        "base_mib": base_kib / 1024,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--members", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one_run(args.one, args.members)))
        return
    header = (
        f"# bench_synth: room version {VERSION}, members = events / 10, {args.repeat} runs "
        f"(fresh process each, 1,000-event warm-up); Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(header)
    columns = (
        "events     members  rate ev/s min/med/max        µs/event(med)  parse µs/event(med)  "
        "gen/parse  peak RSS MiB (max)  peak - base MiB (max)  seconds(med)"
    )
    print(columns)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        members = max(1, size // 10)
        runs = []
        for _ in range(args.repeat):
            stdout = subprocess.run(
                [sys.executable, __file__, "--one", str(size), "--members", str(members)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs.append(json.loads(stdout))
        rates = [r["rate"] for r in runs]
        us = statistics.median(r["us_per_event"] for r in runs)
        parse = statistics.median(r["parse_us"] for r in runs)
        peak = max(r["peak_mib"] for r in runs)
        held = max(r["peak_mib"] - r["base_mib"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        row = (
            f"{size:<10} {members:<8} {min(rates):8.0f} {statistics.median(rates):8.0f} "
            f"{max(rates):8.0f}   {us:13.1f}  {parse:19.1f}  {us / parse:8.2f}x  "
            f"{peak:18.1f}  {held:21.1f}  {seconds:12.1f}"
        )
        print(row, flush=True)
        rows.append(row)
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(f"{header}; {time.strftime('%Y-%m-%d %H:%M')}\n{columns}\n")
        for row in rows:
            out.write(row + "\n")


if __name__ == "__main__":
    main()
