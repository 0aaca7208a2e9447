"""Benchmark: each operation through MCP over stdio vs the same computation in-process, interleaved.

Usage: python bench/run_bench.py --rows 10000000   (or: make bench BENCH_ROWS=...)

Builds a synthetic dataset (4 numeric + 2 categorical columns), writes it as Parquet and CSV into a
temporary root, starts the server as a subprocess (DATA_ANALYSIS_ROOTS = that root) and times each
tool call with the SDK client. The in-process column calls the same domain functions (or, for loads,
the plain pandas readers), so the ratio is the MCP overhead: transport, JSON, threads. Peak RSS of the
server comes from /proc/<pid>/status (VmHWM). Results go to bench/results/ and stdout as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from mcp import Client, StdioServerParameters

from data_analysis_server import plots, profile, query, regression, sql

HERE = Path(__file__).resolve().parent


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": 0.5 * x1 + rng.normal(size=rows),
            "x3": rng.exponential(size=rows),
            "x4": rng.integers(0, 1000, size=rows).astype("float64"),
            "g100": pd.Categorical.from_codes(rng.integers(0, 100, size=rows), [f"g{i:02d}" for i in range(100)]),
            "cat": pd.Categorical.from_codes(rng.integers(0, 5, size=rows), list("abcde")),
        }
    )
    frame["y"] = 1.0 + 2.0 * frame["x1"] - 0.5 * frame["x3"] + rng.normal(size=rows)
    frame["g100"] = frame["g100"].astype("string")
    frame["cat"] = frame["cat"].astype("string")
    return frame


# The in-process and MCP runs of an operation alternate, so warm-up and this machine's drift (up to ±40%
# between identical runs) hit both columns alike. Two ratios are reported: best MCP time over best
# in-process time, and the median of the per-round ratios, which one lucky or unlucky run cannot move.
# Loads get LOAD_REPEATS rounds: a multi-GiB read varies most (page faults of fresh memory).
REPEATS = 3
LOAD_REPEATS = 7


def _seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def _mcp_seconds(client: Client, tool: str, args: dict[str, Any], drop: bool) -> float:
    start = time.perf_counter()
    result = await client.call_tool(tool, args)
    elapsed = time.perf_counter() - start
    if result.is_error:
        raise RuntimeError(result.content[0].text)
    if drop:
        await client.call_tool("drop_dataset", {"dataset_id": result.structured_content["dataset_id"]})
    return elapsed


async def compare(
    client: Client, local: Callable[[], Any], tool: str, args: dict[str, Any], drop: bool = False
) -> tuple[float, float, float]:
    """(best in-process s, best via-MCP s, median per-round ratio); N = LOAD_REPEATS rounds for loads."""
    here, there = [], []
    for _ in range(LOAD_REPEATS if drop else REPEATS):
        here.append(_seconds(local))
        there.append(await _mcp_seconds(client, tool, args, drop))
    return min(here), min(there), statistics.median(b / a for a, b in zip(here, there, strict=True))


def child_peak_rss_mb(parent: int) -> float | None:
    """VmHWM of our child server process (found by parent pid), in MiB."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != parent:
                continue
            status = (stat.parent / "status").read_text()
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if b"data_analysis_server" in cmd:
            line = next(s for s in status.splitlines() if s.startswith("VmHWM"))
            return int(line.split()[1]) / 1024
    return None


async def run(rows: int, root: Path) -> list[dict[str, Any]]:
    frame = make_frame(rows)
    small = frame.head(min(rows, 1_000_000)).copy()
    t = time.perf_counter()
    frame.to_parquet(root / "big.parquet")
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), root / "big.csv")
    small.to_parquet(root / "small.parquet")
    print(f"wrote data files in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    env = {**os.environ, "DATA_ANALYSIS_ROOTS": str(root), "DATA_ANALYSIS_MEMORY_BUDGET": str(16 * 2**30)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "data_analysis_server"], env=env, cwd=str(root))
    group_sql = "SELECT g100, avg(x1) AS m, count(*) AS n FROM big GROUP BY g100 ORDER BY g100"
    cols = ["x1", "x2", "x3", "x4", "y"]
    timings: dict[str, tuple[float, float, float]] = {}
    async with Client(params, read_timeout_seconds=600) as c:
        timings["load csv"] = await compare(
            c, lambda: pd.read_csv(root / "big.csv", engine="pyarrow"), "load_dataset", {"source": "big.csv"}, drop=True
        )
        timings["load parquet"] = await compare(
            c, lambda: pd.read_parquet(root / "big.parquet"), "load_dataset", {"source": "big.parquet"}, drop=True
        )
        ds = (await c.call_tool("load_dataset", {"source": "big.parquet", "name": "big"})).structured_content[
            "dataset_id"
        ]
        sid = (await c.call_tool("load_dataset", {"source": "small.parquet", "name": "small"})).structured_content[
            "dataset_id"
        ]
        timings["profile"] = await compare(c, lambda: profile.profile(frame), "profile", {"dataset_id": ds})
        agg = [{"column": "x1", "func": "mean"}]
        timings["query 100 groups"] = await compare(
            c,
            lambda: query.run_query(frame, group_by=["g100"], aggregations=agg),
            "query",
            {"dataset_id": ds, "group_by": ["g100"], "aggregations": agg},
        )
        timings["sql group-by"] = await compare(
            c, lambda: sql.run_sql({"big": frame}, group_sql, 100, 60), "sql", {"query": group_sql}
        )
        timings["correlate"] = await compare(
            c, lambda: profile.correlate(frame, cols), "correlate", {"dataset_id": ds, "columns": cols}
        )
        timings["ols 1M rows"] = await compare(
            c, lambda: regression.regress(small, "y", cols[:4]), "regress", {"dataset_id": sid, "y": "y", "x": cols[:4]}
        )
        timings["scatter 1M points"] = await compare(
            c,
            lambda: plots.render(small, plots.PlotSpec("scatter", x="x1", y="y")),
            "plot",
            {"dataset_id": sid, "kind": "scatter", "x": "x1", "y": "y"},
        )
        server_rss = child_peak_rss_mb(os.getpid())
    results: list[dict[str, Any]] = [
        {"operation": op, "in_process_s": here, "mcp_s": there, "ratio": there / here, "median_ratio": median}
        for op, (here, there, median) in timings.items()
    ]
    results.append({"operation": "peak RSS server (MiB)", "value": server_rss})
    results.append(
        {
            "operation": "peak RSS bench process (MiB)",
            "value": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="da-bench-") as tmp:
        results = anyio.run(run, args.rows, Path(tmp))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"bench-{args.rows}.json").write_text(json.dumps(results, indent=2))
    # The report is this script's output (it is not a stdio server), written as one block.
    lines = [f"\nrows: {args.rows:,}  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)\n"]
    lines += [
        "| operation | in-process (s) | via MCP stdio (s) | ratio of bests | median ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        if "ratio" in r:
            lines.append(
                f"| {r['operation']} | {r['in_process_s']:.3f} | {r['mcp_s']:.3f} | {r['ratio']:.2f}× "
                f"| {r['median_ratio']:.2f}× |"
            )
    for r in results:
        if "value" in r and r["value"] is not None:
            lines.append(f"| {r['operation']} | | {r['value']:.0f} | |")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
