"""The long fuzz run (not collected by pytest: its name does not start with ``test_``).

    python tests/fuzz_long.py --minutes 10            # uvloop, then asyncio, 5 minutes each
    python tests/fuzz_long.py --minutes 30 --loop uvloop --examples 2000

Runs the fuzzers of ``tests/clients/fuzz.py`` (the harness that ``tests/test_fuzz.py`` runs
briefly: HTTP bytes, WebSocket frames, polling bodies; the same server, the same well-behaved
clients, the same checks) round after round until the time is up, then the checks that need the
cases over (every connection closed by the server, nothing of the cases left, memory back). A
falsifying example does not stop the run: it is printed (hypothesis's minimal example and its
reproduce blob) and counted as a finding; the run exits non-zero if there was any. A JSON summary
goes to ``--json`` if given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import settings

from tests.clients.fuzz import MEMORY_SLACK, QUICK, Harness, run_fuzz
from tests.clients.loops import LOOPS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total, split between loops")
    parser.add_argument("--loop", choices=LOOPS, action="append",
                        help="event loop(s) to fuzz (default: all)")
    parser.add_argument("--examples", type=int, default=200,
                        help="cases per fuzzer per round (hypothesis max_examples)")
    parser.add_argument("--json", type=Path, help="write a summary here")
    args = parser.parse_args()
    loops = args.loop or list(reversed(LOOPS))
    profile = settings(QUICK, max_examples=args.examples)
    budget = args.minutes * 60 / len(loops)
    findings: list[str] = []
    summary: dict[str, object] = {"minutes": args.minutes, "loops": {}}
    for loop in loops:
        print(f"== {loop}: fuzzing for {budget / 60:.1f} min", flush=True)

        def on_error(fuzzer: str, exc: BaseException, loop: str = loop) -> None:
            text = "".join(traceback.format_exception(exc))
            findings.append(f"[{loop} {fuzzer}] {text}")
            print(f"!! finding in {loop}/{fuzzer}:\n{text}", flush=True)

        started = time.monotonic()
        with Harness(loop) as h:
            try:
                # The checks after the cases take about 15 s: stop fuzzing before the budget.
                report = run_fuzz(h, profile, until=started + max(30.0, budget - 15),
                                  on_error=on_error)
            except AssertionError as exc:
                on_error("invariants", exc)
                continue
            problems = h.take_problems([-1] * len(h.good))
            if report.objects:
                problems.append(f"objects left: {report.objects}")
            if report.memory > MEMORY_SLACK:
                problems.append(f"fastsio memory left: {report.memory} B, top sites "
                                f"{report.memory_sites}")
            for p in problems:
                on_error("invariants", AssertionError(p))
        print(report.line(), flush=True)
        summary["loops"][loop] = {  # type: ignore[index]
            "cases": dict(report.cases),
            "total": sum(report.cases.values()),
            "seconds": round(report.seconds, 1),
            "good_round_trips": report.good,
            "slowest_good_round_trip": round(report.worst, 3),
            "memory_left": report.memory,
            "memory_sites": report.memory_sites,
            "objects_left": report.objects,
            "outcomes": dict(sorted(report.outcomes.items())),
        }
    summary["findings"] = findings
    total = sum(v["total"] for v in summary["loops"].values())  # type: ignore[attr-defined]
    print(f"== {total} cases, {len(findings)} finding(s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
