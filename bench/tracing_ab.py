"""A/B: what traces cost translate — off (the default) and on (OTLP/HTTP to a local receiver) — interleaved
round by round, medians of calls/s and p50 with ratios to the first variant, all measured in this run.

Usage: .venv/bin/python bench/tracing_ab.py [--rounds 5] [--base DIR]

`--base DIR` adds, as the reference, translate from another checkout (e.g. `git worktree add /tmp/base
<commit before the tracing hooks>`), which shows what the hooks cost while tracing is off.
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import threading

import run  # bench/run.py: targets, run_target, free_port


class _Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that accepts and drops every export."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--base", default=None, help="a checkout whose translate is the reference")
    args = parser.parse_args()
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    port = run.free_port()
    plain = next(
        t
        for t in run.targets(port)
        if isinstance(t, run.Target) and (t.name, t.transport) == ("translate shared", "streamable")
    )
    otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}"}
    variants = {}
    if args.base:
        variants["base checkout"] = run.Target("base", "streamable", plain.argv, "/mcp", env={"PYTHONPATH": args.base})
    variants["tracing off"] = run.Target("off", "streamable", plain.argv, "/mcp")
    variants["tracing on (otlp)"] = run.Target("on", "streamable", plain.argv, "/mcp", env=otlp)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    p50s: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, target in variants.items():
            row = run.run_target(target, port, args.sessions, args.calls)
            rates[name].append(float(row["calls_per_s"]))  # type: ignore[arg-type]
            p50s[name].append(float(row["p50_ms"]))  # type: ignore[arg-type]
    reference = next(iter(variants))
    rate0, p500 = statistics.median(rates[reference]), statistics.median(p50s[reference])
    for name in variants:
        rate, p50 = statistics.median(rates[name]), statistics.median(p50s[name])
        print(
            f"{name:18s} calls/s {[round(v) for v in rates[name]]} median {rate:,.0f} ({rate / rate0:.2f}x)  "
            f"p50 ms {[round(v, 2) for v in p50s[name]]} median {p50:.2f} ({p50 / p500:.2f}x)"
        )
    sink.shutdown()


if __name__ == "__main__":
    main()
