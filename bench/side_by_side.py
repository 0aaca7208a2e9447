"""Side by side: the two targets of a pair run at the same time, each with its own load generator process.

Why: on this shared 2-core host the machine's speed moves by ±20% within seconds, so two runs made one after
the other — even back to back, even ABBA (`ab.py`) — differ by more than the 10% the issues' targets are about.
Run at the same moment, both targets see the same host: whatever slows one slows the other, and the ratio of
their throughputs is what each one's own per-call work costs (the scheduler shares the cores fairly among the
busy processes, so the target that needs more CPU per call makes fewer calls). Each side: its server on its own
port, 8 sessions making sequential echo calls (every reply checked, as in `run.load`), counted over the same
fixed window — both load generators wait for one wall-clock start and stop at one deadline, so neither side
ever runs alone. p50 is over the calls of the window.

Fairness: the side started first alternates every round (an A/A run — one target against itself — gave the
second-started side 0.96× before this), and the processes are pinned crosswise (each core runs one side's server
and the other side's load generator). `--pair same` is that A/A run: its spread is the method's noise floor.

Usage: .venv/bin/python bench/side_by_side.py [--rounds 8] [--seconds 4] [--pair same|policy|modern|gateway ...]
[--no-pin] (`make bench` runs it for the same, modern and policy pairs after `run.py`; the report lands in
bench/results/side-by-side-latest.md.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import aiohttp
import run  # bench/run.py: targets, wait_http, free_port, the wire clients
from ab import PAIRS, Key

SAME = {  # A/A: one target against itself — the method's own noise floor (any ratio off 1.00 is the method)
    "same": [(("gateway merged", "streamable"), ("gateway merged", "streamable"))],
}
START_SLACK = 3.0  # seconds between launching the load generators and the common start (their imports)


async def window_load(
    base: str, target: run.Target, sessions: int, start_at: float, seconds: float
) -> dict[str, float]:
    """Sessions opened before `start_at`; calls counted from `start_at` to `start_at + seconds` (wall clock)."""
    latencies: list[float] = []
    wrong = 0
    deadline = start_at + seconds
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=target.headers) as http:

        async def one(index: int) -> None:
            nonlocal wrong
            client = await run.open_client(http, base, target, target.transport == "modern")
            await asyncio.sleep(max(0.0, start_at - time.time()))
            call_id = 0
            while time.time() < deadline:
                call_id += 1
                text = f"s{index}-c{call_id}"
                started = time.perf_counter()
                reply = await client.call(call_id % 1000 + 1, target.tool, {"text": text})
                took = time.perf_counter() - started
                reply = reply[-1] if isinstance(reply, list) else reply
                try:
                    ok = reply["id"] == call_id % 1000 + 1 and reply["result"]["content"][0]["text"] == text
                except (KeyError, IndexError, TypeError):
                    ok = False
                wrong += not ok
                if time.time() <= deadline:
                    latencies.append(took)
            if isinstance(client, run.LegacySSE):
                await client.close()

        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(sessions))), seconds + 120)
    return {
        "calls_per_s": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "wrong": wrong,
    }


def _target(key: Key, port: int) -> run.Target:
    return next(t for t in run.targets(port) if not isinstance(t, str) and (t.name, t.transport) == key)


def worker(args: argparse.Namespace) -> None:
    """One side's load generator (a process of its own): prints its window's figures as JSON."""
    target = _target((args.name, args.transport), args.port)
    stats = asyncio.run(window_load(f"http://127.0.0.1:{args.port}", target, args.sessions, args.start, args.seconds))
    sys.stdout.write(json.dumps(stats) + "\n")


def one_round(
    pair: tuple[Key, Key], sessions: int, seconds: float, first: int, pin: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Both sides at once. `first` is the side started (and whose load generator is launched) first — alternated
    by the caller, so neither side always gets the head start. With `pin`, the first side's server (and its
    child) runs on CPU 0 with its load generator on CPU 1, the other side the other way round: each core carries
    one server and one load generator, and a core that is faster this second speeds up both sides equally."""
    ports = [run.free_port()]
    while len(ports) < 2:
        port = run.free_port()
        if port not in ports:
            ports.append(port)
    order = [first, 1 - first]
    server_cpus = {order[0]: {0}, order[1]: {1}} if pin else {0: None, 1: None}
    loader_cpus = {side: ({1 - next(iter(cpus))} if cpus else None) for side, cpus in server_cpus.items()}
    servers: list[subprocess.Popen[bytes]] = []
    loaders: dict[int, subprocess.Popen[bytes]] = {}
    try:
        sides = [_target(key, port) for key, port in zip(pair, ports, strict=True)]
        servers += [run.start_server(sides[side], cpus=server_cpus[side]) for side in order]
        for side in order:
            base = f"http://127.0.0.1:{ports[side]}"
            run.wait_http(base + sides[side].ready)
            asyncio.run(run.load(base, sides[side], 2, 20))  # warm-up, one at a time
        start = time.time() + START_SLACK
        common = ["--seconds", str(seconds), "--sessions", str(sessions)]
        for side in order:
            target, port = sides[side], ports[side]
            loaders[side] = subprocess.Popen(
                [sys.executable, __file__, "--worker", target.name, target.transport, str(port), str(start), *common],
                cwd=run.ROOT,
                stdout=subprocess.PIPE,
                preexec_fn=run.pinned(loader_cpus[side]),
            )
        results = {}
        for side, loader in loaders.items():
            out, _ = loader.communicate(timeout=seconds + START_SLACK + 180)
            if loader.returncode != 0:
                raise RuntimeError(f"a load generator failed (exit {loader.returncode})")
            results[side] = json.loads(out)
        return results[0], results[1]
    finally:
        for loader in loaders.values():  # one side failed: the other's load generator is not left running
            if loader.poll() is None:
                loader.kill()
                loader.wait()
        for server in servers:
            run.stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="even, so each side starts first equally often")
    parser.add_argument("--seconds", type=float, default=4.0, help="the counted window of each round")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument(
        "--pair", choices=sorted({**PAIRS, **SAME}), action="append", help="repeatable; default modern, policy"
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="let the scheduler place the processes")
    parser.add_argument("--worker", nargs=4, metavar=("NAME", "TRANSPORT", "PORT", "START"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 2 or args.rounds % 2:
        parser.error(f"--rounds must be an even number ≥ 2 (each side starts first equally often), not {args.rounds}")
    if args.worker:
        name, transport, port, start = args.worker
        worker(argparse.Namespace(name=name, transport=transport, port=int(port), start=float(start), **vars(args)))
        return
    pairs = [pair for name in args.pair or ["modern", "policy"] for pair in {**PAIRS, **SAME}[name]]
    if not {0, 1} <= os.sched_getaffinity(0):
        args.pin = False  # crossing needs CPUs 0 and 1
    placement = (
        "CPUs crossed (each core: one side's server, the other side's load generator)"
        if args.pin
        else "processes not pinned"
    )
    lines = [
        f"Side by side {time.strftime('%Y-%m-%d %H:%M:%S')}: {args.rounds} rounds; per round both targets run at "
        f"once, {args.sessions} sessions each, calls counted over the same {args.seconds:g} s window; the side "
        f"started first alternates every round; {placement}",
        "",
        "| measured vs baseline | throughput per round | median | p50 per round | median | wrong replies |",
        "|---|---|---:|---|---:|---:|",
    ]
    for base, measured in pairs:
        rates, p50s, wrong = [], [], 0
        for round_no in range(args.rounds):
            b, m = one_round((base, measured), args.sessions, args.seconds, first=round_no % 2, pin=args.pin)
            rates.append(m["calls_per_s"] / b["calls_per_s"])
            p50s.append(m["p50_ms"] / b["p50_ms"])
            wrong += int(b["wrong"] + m["wrong"])
            sys.stderr.write(f"{' '.join(measured)} vs {' '.join(base)}: {b} {m}\n")
        lines.append(
            f"| {' '.join(measured)} vs {' '.join(base)} | {', '.join(f'{r:.2f}' for r in rates)} | "
            f"{statistics.median(rates):.2f}× | {', '.join(f'{r:.2f}' for r in p50s)} | "
            f"{statistics.median(p50s):.2f}× | {wrong} |"
        )
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    (run.RESULTS / "side-by-side-latest.md").write_text(text)


if __name__ == "__main__":
    main()
