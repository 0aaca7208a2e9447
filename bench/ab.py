"""A/B: bare translate vs the merged gateway endpoint, interleaved round by round, per-round ratios.

Usage: .venv/bin/python bench/ab.py [--rounds 5] [--pair gateway|policy|modern]

`make bench` keeps the best of 3 rounds per target, which one lucky round can move by ±20% on a shared
machine; the median of per-round ratios here says what the gateway's own per-call work costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import run  # bench/run.py: targets, run_target, free_port

Key = tuple[str, str]  # (target name, transport) in bench/run.py
PAIRS: dict[str, list[tuple[Key, Key]]] = {  # (baseline, measured) per line of the report
    "gateway": [
        (("translate shared", "streamable"), ("gateway merged", "streamable")),
        (("translate shared", "sse"), ("gateway merged", "sse")),
    ],
    "policy": [
        (("gateway merged", "streamable"), ("gateway merged + policy", "streamable")),
        (("gateway merged", "sse"), ("gateway merged + policy", "sse")),
    ],
    "modern": [  # 2026-07-28 stateless requests against handshake-era sessions, same child, same load
        (("translate shared", "streamable"), ("translate shared", "modern")),
        (("gateway merged", "streamable"), ("gateway merged", "modern")),
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--pair", choices=sorted(PAIRS), default="gateway", help="which targets to compare")
    args = parser.parse_args()
    pairs = PAIRS[args.pair]
    port = run.free_port()
    plan = {(t.name, t.transport): t for t in run.targets(port) if not isinstance(t, str)}
    keys = list(dict.fromkeys(key for pair in pairs for key in pair))
    rates: dict[Key, list[float]] = {key: [] for key in keys}
    p50s: dict[Key, list[float]] = {key: [] for key in keys}
    for _ in range(args.rounds):
        for key in keys:
            row = run.run_target(plan[key], port, args.sessions, args.calls)
            rates[key].append(float(row["calls_per_s"]))  # type: ignore[arg-type]
            p50s[key].append(float(row["p50_ms"]))  # type: ignore[arg-type]
    lines = [
        f"{name} {transport}: calls/s {[round(v) for v in rates[(name, transport)]]}, "
        f"median {statistics.median(rates[(name, transport)]):,.0f}; "
        f"p50 ms {[round(v, 2) for v in p50s[(name, transport)]]}"
        for name, transport in keys
    ]
    for base, measured in pairs:
        for label, series in (("throughput", rates), ("p50 latency", p50s)):
            ratios = [m / b for m, b in zip(series[measured], series[base], strict=True)]
            lines.append(
                f"{' '.join(measured)} / {' '.join(base)} {label}: per round {[round(r, 2) for r in ratios]}, "
                f"median {statistics.median(ratios):.2f}x"
            )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
