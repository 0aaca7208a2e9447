"""A/B: bare translate vs the merged gateway endpoint, interleaved round by round, per-round ratios.

Usage: .venv/bin/python bench/ab.py [--rounds 5] [--pair gateway|policy|modern ...]

On a shared 2-core host one target's throughput moves by ±20% from one run to the next, seconds apart, so a
ratio of two single runs says little about a 10% effect. Here the two targets of a pair run back to back, every
other round in the opposite order (ABBA: neither side always gets the warmer or the quieter moment), and the
median of the per-round ratios is reported. That still leaves ±5% on the median of 11 rounds here;
`side_by_side.py` (which `make bench` runs) removes the host's drift by running both at once. The report also
lands in bench/results/ab-latest.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

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
    parser.add_argument(
        "--pair", choices=sorted(PAIRS), action="append", help="which targets to compare (repeatable; default gateway)"
    )
    args = parser.parse_args()
    pairs = [pair for name in args.pair or ["gateway"] for pair in PAIRS[name]]
    port = run.free_port()
    plan = {(t.name, t.transport): t for t in run.targets(port) if not isinstance(t, str)}
    keys = list(dict.fromkeys(key for pair in pairs for key in pair))
    rates: dict[Key, list[float]] = {key: [] for key in keys}
    p50s: dict[Key, list[float]] = {key: [] for key in keys}
    for round_no in range(args.rounds):
        for key in keys if round_no % 2 == 0 else keys[::-1]:
            row = run.run_target(plan[key], port, args.sessions, args.calls)
            if "error" in row:  # a failed run is reported, and its round left out of the ratios
                sys.stderr.write(f"round {round_no + 1}: {' '.join(key)}: {row['error']}\n")
            rates[key].append(float(row.get("calls_per_s", "nan")))  # type: ignore[arg-type]
            p50s[key].append(float(row.get("p50_ms", "nan")))  # type: ignore[arg-type]
    lines = [
        f"{name} {transport}: calls/s {[round(v) if v == v else 'failed' for v in rates[(name, transport)]]}, "
        f"p50 ms {[round(v, 2) if v == v else 'failed' for v in p50s[(name, transport)]]}"
        for name, transport in keys
    ]
    for base, measured in pairs:
        for label, series in (("throughput", rates), ("p50 latency", p50s)):
            ratios = [m / b for m, b in zip(series[measured], series[base], strict=True) if m == m and b == b]
            lines.append(
                f"{' '.join(measured)} / {' '.join(base)} {label}: per round {[round(r, 2) for r in ratios]}, "
                f"median {statistics.median(ratios) if ratios else float('nan'):.2f}x"
            )
    header = (
        f"A/B {time.strftime('%Y-%m-%d %H:%M:%S')}: {args.rounds} rounds, {args.sessions} sessions × {args.calls} "
        "calls per target, pairs back to back (ABBA)"
    )
    text = "\n".join([header, *lines]) + "\n"
    sys.stdout.write(text)
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    (run.RESULTS / "ab-latest.md").write_text(text)


if __name__ == "__main__":
    main()
