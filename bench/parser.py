"""fastsio with the JSON parser and with ``parser="msgpack"``: fan-out and echo, the same events
(``{"t": <ns>, "pad": "..."}``) through the C load generator, which speaks socket.io-msgpack-parser
with ``--msgpack``. Same machinery as bench/run.py (its ``setup`` and ``run_one``: server pinned to
CPU 0, load generator to CPU 1, a snapshot of fastsio/); the two parsers alternate inside every
round (which one goes first alternates too), so the ratios are taken between neighbouring runs.

    .venv/bin/python bench/parser.py [--rounds 3] [--quick] [--no-readme]

Writes its table into bench/README.md between ``<!-- parser:start -->`` and ``<!-- parser:end -->``
(not with --quick); raw results go to bench/results/parser-*.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py, next to this file
from run import DASH, TIMES, Scenario, Variant, cell, fmt, paired, per_cpu, values

START, END = "<!-- parser:start -->", "<!-- parser:end -->"
VARIANTS = [
    Variant("fastsio", "json"),
    Variant("fastsio", "msgpack", ("--msgpack",), ("--msgpack",)),
]
RECOVERY_VARIANTS = [
    Variant("fastsio", "json", ("--recovery",)),
    Variant("fastsio", "msgpack", ("--recovery", "--msgpack"), ("--msgpack",)),
]


def scenarios(quick: bool) -> list[Scenario]:
    d, w = ("2", "1") if quick else ("5", "2")
    echo = [("acks_per_s", "acks/s", "rate"), ("p50_us", "round trip p50", "us"),
            ("p99_us", "round trip p99", "us")]
    return [
        Scenario("parser-fanout-1000-w16", "fan-out N=1000 W=16",
                 run.fanout_args(1000, 16, d, w), run.FAN, variants=VARIANTS, group="parser"),
        Scenario("parser-fanout-1000-w1", "fan-out N=1000 W=1",
                 run.fanout_args(1000, 1, d, w), run.FAN, variants=VARIANTS, group="parser"),
        Scenario("parser-fanout-1000-w16-recovery", "fan-out N=1000 W=16, recovery on",
                 run.fanout_args(1000, 16, d, w), run.FAN, variants=RECOVERY_VARIANTS,
                 group="parser"),
        # Binary: the tick's 1 KiB pad as bytes. JSON: a BINARY_EVENT, its text packet and one
        # attachment frame per delivery; msgpack: one binary frame, the bytes inside.
        Scenario("parser-binary-1000-w16", "fan-out N=1000 W=16, 1 KiB binary pad",
                 run.fanout_args(1000, 16, d, w, "--pad", "1024", "--event", "bcastbin"),
                 run.FAN, variants=VARIANTS, group="parser"),
        Scenario("parser-echo-50", "echo 50 clients",
                 ["echo", "--clients", "50", "--duration", d, "--warmup", w], echo,
                 variants=VARIANTS, group="parser"),
    ]


def table(results: list[dict[str, Any]], scs: list[Scenario]) -> str:
    head = ("| scenario | metric | JSON | msgpack | msgpack ÷ JSON "
            "| msgpack ÷ JSON in each round |\n|---|---|---|---|---|---|\n")
    rows = []
    for sc in scs:
        rate = sc.metrics[0][0]
        for metric, label, kind in sc.metrics:
            j = values(results, "fastsio", sc.key, metric, "json")
            m = values(results, "fastsio", sc.key, metric, "msgpack")
            each = paired(results, sc.key, metric, variants=("msgpack", "json"))
            rows.append(f"| {sc.title} | {label} | {cell(j, kind)} | {cell(m, kind)} "
                        f"| {run.ratio_cell(m, j)} | {each} |")
        j = per_cpu(results, "fastsio", sc.key, rate, "json")
        m = per_cpu(results, "fastsio", sc.key, rate, "msgpack")
        each = paired(results, sc.key, rate, per_cpu_share=True, variants=("msgpack", "json"))
        rows.append(f"| {sc.title} | {sc.metrics[0][1]} per server CPU-second | {cell(j, 'rate')} "
                    f"| {cell(m, 'rate')} | {run.ratio_cell(m, j)} | {each} |")
    return head + "\n".join(rows) + "\n"


def health(results: list[dict[str, Any]], scs: list[Scenario]) -> str:
    """Is the load generator the limit (it must not be)? Medians over rounds, JSON / msgpack."""
    head = ("| scenario | server CPU % | loadgen CPU % | other tasks on server core % "
            "| other tasks on loadgen core % | ticks with a recovery offset % "
            "| missing deliveries |\n|---|---|---|---|---|---|---|\n")
    rows = []
    for sc in scs:
        def pair(metric: str, sc: Scenario = sc) -> str:
            out = []
            for name in ("json", "msgpack"):
                xs = values(results, "fastsio", sc.key, metric, name)
                out.append(fmt(statistics.median(xs), "pct") if xs else DASH)
            return " / ".join(out)

        missing = sum(int(r.get("missing_deliveries", 0) or 0)
                      for r in results if r["scenario"] == sc.key)
        rows.append(f"| {sc.title} | {pair('server_cpu_pct')} | {pair('loadgen_cpu_pct')} "
                    f"| {pair('other_on_server_core_pct')} | {pair('other_on_loadgen_core_pct')} "
                    f"| {pair('ticks_with_offset_pct')} | {missing} |")
    return head + "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=None, help="default 3 (--quick: 1)")
    ap.add_argument("--quick", action="store_true", help="1 round, short runs; README untouched")
    ap.add_argument("--no-readme", dest="readme", action="store_false")
    ap.add_argument("--quiet-wait", type=float, default=None)
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    quiet = args.quiet_wait if args.quiet_wait is not None else (1.0 if args.quick else 3.0)
    scs = scenarios(args.quick)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results: list[dict[str, Any]] = []
    try:
        run.setup()
        raw = run.RESULTS / f"parser-{stamp}{'-quick' if args.quick else ''}.jsonl"
        with raw.open("w") as fh:
            for rnd in range(1, rounds + 1):
                for sc in scs:
                    assert sc.variants is not None
                    order = sc.variants if rnd % 2 else sc.variants[::-1]
                    for v in order:
                        rec = run.run_one(v, sc, rnd, quiet)
                        results.append(rec)
                        fh.write(json.dumps(rec) + "\n")
                        fh.flush()
                        m = sc.metrics[0][0]
                        run.log(f"round {rnd} {sc.key} {v.name}: "
                                f"{rec.get('error') or f'{m} {rec.get(m, 0):.0f}'}")
    finally:
        import shutil

        shutil.rmtree(run.SNAPSHOT, ignore_errors=True)
    block = "\n".join([
        f"Measured {dt.date.today().isoformat()} ({run.SNAPSHOT_GIT}), {rounds} round(s); cells"
        f" median (min{DASH}max); ratios msgpack ÷ JSON ({TIMES}), then per round:",
        "",
        table(results, scs),
        "How to trust these (medians, JSON / msgpack):",
        "",
        health(results, scs),
    ])
    print(block)
    if args.readme and not args.quick:
        text = run.README.read_text()
        new = f"{START}\n{block.rstrip()}\n{END}"
        if START in text and END in text:
            i, j = text.index(START), text.index(END) + len(END)
            text = text[:i] + new + text[j:]
        else:
            title = "## Parsers: JSON and msgpack (`bench/parser.py`)"
            text = f"{text.rstrip()}\n\n{title}\n\n{new}\n"
        run.README.write_text(text)


if __name__ == "__main__":
    main()
