"""`make bench` (second part): gateway replicas behind nginx, and what Redis costs on the hot path.

Load: 16 Streamable HTTP sessions × 400 sequential `tools/call echo` each through the shipped nginx example
(plain round robin, so every session's calls are spread over every replica), every reply checked. Variants,
each measured in the same run, in interleaved rounds (best round kept, wrong replies summed):

- 1 replica, `state: memory` — the single-process gateway behind the same proxy (the Redis-cost baseline);
- 1 replica, `state: redis://…` — the same with shared state: the p50 difference is what Redis costs a call;
- 2 replicas, `state: redis://…` — the scale-out ratio against 1 replica with Redis.

redis-server and nginx are Debian's (`make services`), started on free loopback ports in a temp folder by the
test harness classes (`tests/cluster/harness.py`). Results print as Markdown and go to
bench/results/replicas.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import run as bench  # noqa: E402 - the load generator and target shape of bench/run.py

from tests.cluster.harness import Nginx, RedisServer, Replicas, find_binary  # noqa: E402

ECHO = ROOT / "bench" / "echo_child.py"
VARIANTS = (("1 replica, memory", 1, False), ("1 replica, Redis", 1, True), ("2 replicas, Redis", 2, True))


def config(directory: Path, state: str) -> Path:
    path = directory / f"harbor-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(
        "mcpServers:\n"
        f'  echo:\n    command: {sys.executable}\n    args: ["{ECHO}"]\n'
        "gateway:\n  host: 127.0.0.1\n  audit: {path: null}\n"
        f"  state: {state}\n  cluster: b{uuid.uuid4().hex[:8]}\n"
        "  advertise: http://127.0.0.1:${HARBOR_PORT}\n"
    )
    return path


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (/proc/<pid>/stat; a process gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def measure(directory: Path, redis: RedisServer, replicas: int, shared: bool, sessions: int, calls: int) -> dict:
    state = redis.url if shared else "memory"
    path = config(directory, state)
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(path), "--port", "{port}"]
    argv += ["--log-level", "warning"]
    group = Replicas(
        argv, replicas, directory / uuid.uuid4().hex[:8], env={"HARBOR_PORT": "{port}"}, health_path="/readyz?strict=1"
    )
    proxy = Nginx(directory / uuid.uuid4().hex[:8], group.addresses)
    try:
        target = bench.Target("replicas", "streamable", [], "/mcp", tool="echo__echo")
        asyncio.run(bench.load(proxy.url, target, 4, 50))  # warm-up: connections, first-call caches
        gateways = [p.pid for p in group.procs if p is not None]
        parts = {
            "gateways": gateways,
            "children": [c for pid in gateways for c in bench._children(pid)],
            "nginx": [proxy.proc.pid, *bench._children(proxy.proc.pid)] if proxy.proc else [],
            "redis": [redis.proc.pid] if redis.proc else [],
        }
        before = {name: cpu_seconds(pids) for name, pids in parts.items()}
        client_before = time.process_time()
        started = time.perf_counter()
        row = asyncio.run(bench.load(proxy.url, target, sessions, calls))
        elapsed = time.perf_counter() - started
        cpu = {name: cpu_seconds(pids) - before[name] for name, pids in parts.items()}
        cpu["client"] = time.process_time() - client_before
        total_calls = sessions * calls
        row["cpu_us_per_call"] = {name: round(seconds / total_calls * 1e6, 1) for name, seconds in cpu.items()}
        row["cores_busy"] = round(sum(cpu.values()) / elapsed, 2)  # of os.cpu_count(): is the machine the limit?
        return row
    finally:
        proxy.stop()
        group.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    missing = [name for name in ("redis-server", "nginx") if find_binary(name) is None]
    if missing:
        sys.exit(f"bench/replicas.py needs {' and '.join(missing)}: run `make services`")
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="harbor-bench-replicas-") as temp:
        directory = Path(temp)
        redis = RedisServer(directory / "redis").start()
        try:
            for round_no in range(1, args.rounds + 1):
                for name, count, shared in VARIANTS:
                    row = measure(directory, redis, count, shared, args.sessions, args.calls)
                    print(f"round {round_no}: {name}: {json.dumps(row)}", flush=True)
                    kept = best.get(name)
                    wrong = int(row["wrong"]) + (int(kept["wrong"]) if kept else 0)
                    if kept is None or row["calls_per_s"] > kept["calls_per_s"]:
                        kept = row
                    best[name] = {**kept, "wrong": wrong}
        finally:
            redis.stop()
    memory, one, two = (best[name] for name, _, _ in VARIANTS)
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "load": f"{args.sessions} sessions x {args.calls} echo calls through nginx, best of {args.rounds} rounds",
        "variants": best,
        "scale_out_ratio": two["calls_per_s"] / one["calls_per_s"],
        "redis_p50_cost_ms": one["p50_ms"] - memory["p50_ms"],
    }
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    (bench.RESULTS / "replicas.json").write_text(json.dumps(report, indent=2))
    print(
        "\n| variant | calls/s | p50 ms | p99 ms | wrong | cores busy | CPU µs per call: gateways / children / "
        "nginx / Redis / load generator |\n|---|---:|---:|---:|---:|---:|---|"
    )
    for name, row in best.items():
        us = row["cpu_us_per_call"]
        split = " / ".join(f"{us[k]:.0f}" for k in ("gateways", "children", "nginx", "redis", "client"))
        print(
            f"| {name} | {row['calls_per_s']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['wrong']} "
            f"| {row['cores_busy']:.2f} of {os.cpu_count()} | {split} |"
        )
    print(
        f"\n2 replicas vs 1 (both with Redis): {report['scale_out_ratio']:.2f}x throughput; "
        f"Redis vs memory (1 replica): {report['redis_p50_cost_ms']:+.2f} ms p50"
    )


if __name__ == "__main__":
    main()
