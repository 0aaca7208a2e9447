"""A/B: bare translate vs the merged gateway endpoint, interleaved round by round, per-round ratios.

Usage: .venv/bin/python bench/ab.py [--rounds 5] [--pair gateway|policy]

`make bench` keeps the best of 3 rounds per target, which one lucky round can move by ±20% on a shared
machine; the median of per-round ratios here says what the gateway's own per-call work costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import run  # bench/run.py: targets, run_target, free_port

PAIRS = {
    "gateway": ("translate shared", "gateway merged"),
    "policy": ("gateway merged", "gateway merged + policy"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--pair", choices=sorted(PAIRS), default="gateway", help="which two targets to compare")
    args = parser.parse_args()
    pair = PAIRS[args.pair]
    port = run.free_port()
    plan = {(t.name, t.transport): t for t in run.targets(port) if not isinstance(t, str)}
    keys = [(name, transport) for transport in ("streamable", "sse") for name in pair]
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    p50s: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    for _ in range(args.rounds):
        for key in keys:
            row = run.run_target(plan[key], port, args.sessions, args.calls)
            rates[key].append(float(row["calls_per_s"]))  # type: ignore[arg-type]
            p50s[key].append(float(row["p50_ms"]))  # type: ignore[arg-type]
    lines = []
    for (name, transport), values in rates.items():
        lines.append(
            f"{name} {transport}: calls/s {[round(v) for v in values]}, median {statistics.median(values):,.0f}; "
            f"p50 ms {[round(v, 2) for v in p50s[(name, transport)]]}"
        )
    for transport in ("streamable", "sse"):
        for label, series in (("throughput", rates), ("p50 latency", p50s)):
            base, gate = (series[(name, transport)] for name in pair)
            ratios = [g / b for g, b in zip(gate, base, strict=True)]
            lines.append(
                f"{pair[1]} / {pair[0]} {label} ({transport}): per round {[round(r, 2) for r in ratios]}, "
                f"median {statistics.median(ratios):.2f}x"
            )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
