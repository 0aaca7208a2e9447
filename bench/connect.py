"""What `harbor-connect` costs per call: the SDK Client through connect (stdio) against the same Client on
Streamable HTTP directly, both to one translate process, measured in the same run, rounds interleaved.

    .venv/bin/python bench/connect.py [--calls 300] [--rounds 3]

Prints p50/p95 latency of sequential `echo` calls for each path per round and the per-round ratio
connect / direct (its median last). Nothing is asserted: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Translate  # noqa: E402


async def _latencies(client: Client, calls: int) -> list[float]:
    await client.call_tool("echo", {"text": "warm"})
    out = []
    for i in range(calls):
        started = time.perf_counter()
        await client.call_tool("echo", {"text": f"call {i}"})
        out.append((time.perf_counter() - started) * 1000)
    return out


async def _direct(url: str, calls: int) -> list[float]:
    async with Client(url, mode="legacy") as client:
        return await _latencies(client, calls)


async def _connect(url: str, calls: int) -> list[float]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "gateway", "connect", url])
    async with Client(params, mode="legacy") as client:
        return await _latencies(client, calls)


def _describe(name: str, values: list[float]) -> str:
    p95 = statistics.quantiles(values, n=20)[18]
    return f"{name:8} p50 {statistics.median(values):6.2f} ms  p95 {p95:6.2f} ms"


async def main(calls: int, rounds: int) -> None:
    translate = Translate()
    url = translate.url + "/mcp"
    ratios = []
    try:
        for round_ in range(1, rounds + 1):
            direct = await _direct(url, calls)
            through = await _connect(url, calls)
            ratio = statistics.median(through) / statistics.median(direct)
            ratios.append(ratio)
            print(f"round {round_}: {_describe('direct', direct)} | {_describe('connect', through)} | p50 x{ratio:.2f}")
    finally:
        translate.stop()
    print(f"median of per-round p50 ratios (connect / direct): x{statistics.median(ratios):.2f} over {rounds} rounds")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    anyio.run(main, args.calls, args.rounds)
