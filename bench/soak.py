"""`make soak`: translate and the gateway under minutes of session churn — no wrong reply, no error, flat memory.

Each of N workers loops: open a session (Streamable HTTP and legacy SSE in turn), make a few echo calls with
ids 1..k, end the session (DELETE, or close the SSE stream), open the next. So sessions, their outboxes,
routes and resumable streams are created and torn down thousands of times while calls flow. The server's
RSS is sampled every few seconds; growth after the warm-up is what would reveal a leak, and once every
client has ended its sessions the server must count none open. Exit status 1 when any reply is wrong, any
call fails, a session is left open, or RSS grows by more than `--max-growth-mb` after the warm-up.

Usage: .venv/bin/python bench/soak.py [--seconds 120] [--workers 8] [--calls 20]
       [--target translate|gateway|translate-per-session|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import aiohttp
import run  # bench/run.py: the echo child, the gateway config, readiness, RSS

from tests.e2e.rawclient import LegacySSE, Streamable  # importable: run.py puts the repo root on sys.path

WARM_UP_S = 15.0  # RSS growth is measured from here: caches, pools and the allocator have settled
SAMPLE_EVERY_S = 5.0


@dataclass
class Tally:
    sessions: int = 0
    calls: int = 0
    wrong: int = 0
    errors: list[str] = field(default_factory=list)


async def _worker(base: str, index: int, calls: int, deadline: float, tool: str, tally: Tally) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        round_no = 0
        while time.monotonic() < deadline:
            round_no += 1
            sse = (index + round_no) % 2 == 0
            try:
                client: LegacySSE | Streamable
                if sse:
                    client = LegacySSE(http, base)
                    await client.connect()
                else:
                    client = Streamable(http, base + "/mcp")
                await client.initialize()
                for call_id in range(1, calls + 1):
                    text = f"w{index}-r{round_no}-c{call_id}"
                    reply = await client.call(call_id, tool, {"text": text})
                    reply = reply[-1] if isinstance(reply, list) else reply
                    try:
                        ok = reply["id"] == call_id and reply["result"]["content"][0]["text"] == text
                    except (KeyError, IndexError, TypeError):
                        ok = False
                    tally.wrong += not ok
                    tally.calls += 1
                if isinstance(client, LegacySSE):
                    await client.close()
                else:
                    await client.delete()
                tally.sessions += 1
            except Exception as exc:  # a failure is a result to report, and the loop goes on
                tally.errors.append(f"{type(exc).__name__}: {exc}"[:200])


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _sample(pid: int, deadline: float, samples: list[tuple[float, float]], started: float) -> None:
    while time.monotonic() < deadline:
        samples.append((round(time.monotonic() - started, 1), run.rss_mb(pid)))
        await asyncio.sleep(SAMPLE_EVERY_S)


async def _soak(base: str, pid: int, args: argparse.Namespace, tool: str) -> tuple[Tally, list[tuple[float, float]]]:
    tally, samples = Tally(), []
    started = time.monotonic()
    deadline = started + args.seconds
    await asyncio.gather(
        _sample(pid, deadline, samples, started),
        *(_worker(base, i, args.calls, deadline, tool, tally) for i in range(args.workers)),
    )
    samples.append((round(time.monotonic() - started, 1), run.rss_mb(pid)))
    return tally, samples


def _sessions_left(url: str, wait_s: float = 10.0) -> int:
    """Open sessions the server still counts once every client has ended its own (0 when none leaked)."""
    deadline = time.monotonic() + wait_s
    while True:
        with urllib.request.urlopen(url, timeout=5) as resp:
            left = int(json.loads(resp.read())["sessions"])
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def soak(target: str, args: argparse.Namespace) -> dict[str, object]:
    port = run.free_port()
    if target.startswith("translate"):
        argv = [run.PY, "-m", "gateway.translate", "--stdio", run.CHILD, "--port", str(port), "--log-level", "warning"]
        if target == "translate-per-session":  # a child per session: spawning and reaping under churn
            argv += ["--session-mode", "per-session"]
        ready, tool = "/readyz", "echo"
    else:
        config = run.hub_config(1)
        argv = [
            run.PY,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        ready, tool = "/readyz?strict=1", "echo-0__echo"
    proc = subprocess.Popen(argv, cwd=run.ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        run.wait_http(base + ready)
        fds_before = _fds(proc.pid)
        tally, samples = asyncio.run(_soak(base, proc.pid, args, tool))
        left = _sessions_left(base + "/readyz")
        fds_after = _fds(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    settled = [rss for t, rss in samples if t >= WARM_UP_S] or [samples[-1][1]]
    growth = settled[-1] - settled[0]
    return {
        "target": target,
        "seconds": args.seconds,
        "workers": args.workers,
        "sessions": tally.sessions,
        "calls": tally.calls,
        "calls_per_s": round(tally.calls / args.seconds),
        "wrong": tally.wrong,
        "errors": len(tally.errors),
        "first_errors": tally.errors[:5],
        "rss_mb_after_warm_up": settled[0],
        "rss_mb_end": settled[-1],
        "rss_mb_peak": max(rss for _, rss in samples),
        "rss_growth_mb": round(growth, 1),
        "sessions_left": left,
        "fds": [fds_before, fds_after],
        "rss_samples": samples,
        "ok": tally.wrong == 0 and not tally.errors and growth <= args.max_growth_mb and left == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--calls", type=int, default=20, help="calls per session before it is ended")
    parser.add_argument("--target", choices=["translate", "gateway", "translate-per-session", "both"], default="both")
    parser.add_argument("--max-growth-mb", type=float, default=10.0)
    args = parser.parse_args()
    targets = ["translate", "gateway"] if args.target == "both" else [args.target]
    results = [soak(target, args) for target in targets]
    lines = [
        f"Soak finished {time.strftime('%Y-%m-%d %H:%M:%S')}: {args.workers} workers, {args.calls} calls per session, "
        f"{args.seconds:g} s per target (sessions alternate Streamable HTTP and legacy SSE)",
        "",
        "| target | sessions | calls | calls/s | wrong | errors | sessions left open | RSS after warm-up → end (peak) MB "
        "| growth MB | open fds before → after | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['target']} | {r['sessions']:,} | {r['calls']:,} | {r['calls_per_s']:,} | {r['wrong']} | "
            f"{r['errors']} | {r['sessions_left']} | {r['rss_mb_after_warm_up']:.1f} → {r['rss_mb_end']:.1f} ({r['rss_mb_peak']:.1f}) | "
            f"{r['rss_growth_mb']:+.1f} | {r['fds'][0]} → {r['fds'][1]} | {'yes' if r['ok'] else 'NO'} |"  # type: ignore[index]
        )
    for r in results:
        for error in r["first_errors"]:  # type: ignore[attr-defined]
            lines.append(f"- {r['target']} error: {error}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    (run.RESULTS / "soak.json").write_text(json.dumps(results, indent=2))
    (run.RESULTS / "soak.md").write_text(text)
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
