"""No cross-talk: 32 sessions × 200 calls, every session reusing ids 1..200, replies out of order.

`mixed`: half the clients speak 2026-07-28 (no session: each request stands alone, bridged onto the same
handshake-era child) and half keep a handshake-era session, all at once.

Each call's text names its session and call, so any reply delivered to the wrong client, or under the
wrong id, is caught. `sleep` calls make the child answer out of order; four calls run at once per
session, so ids interleave within a session as well as across sessions.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp
import anyio
import pytest

from tests.conftest import Translate
from tests.e2e.rawclient import LegacySSE, Modern, Streamable, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SESSIONS = 32
CALLS = 200
PER_SESSION_CONCURRENCY = 4


def _plan(session: int) -> list[tuple[int, str, dict[str, object], str]]:
    rng = random.Random(session)
    plan = []
    for call_id in range(1, CALLS + 1):
        text = f"s{session}-c{call_id}"
        if rng.random() < 0.3:
            plan.append((call_id, "sleep", {"ms": rng.randint(0, 4), "text": text}, text))
        else:
            plan.append((call_id, "echo", {"text": text}, text))
    return plan


async def _run_session(make_client, index: int) -> list[str]:  # type: ignore[no-untyped-def]
    client = await make_client()
    wrong: list[str] = []
    queue = list(_plan(index))

    async def worker() -> None:
        while queue:
            call_id, tool, args, expected = queue.pop(0)
            reply = await client.call(call_id, tool, args)
            reply = reply[-1] if isinstance(reply, list) else reply
            if reply.get("id") != call_id or "result" not in reply or text_of(reply) != expected:
                wrong.append(f"session {index} call {call_id}: {reply}")

    await asyncio.gather(*(worker() for _ in range(PER_SESSION_CONCURRENCY)))
    if isinstance(client, LegacySSE):
        await client.close()
    elif isinstance(client, Streamable):
        await client.delete()
    return wrong


@pytest.mark.parametrize("mode", ["shared", "per-session"])
@pytest.mark.parametrize("transport", ["streamable", "sse", "mixed"])
async def test_every_reply_reaches_its_own_client(translate: type[Translate], mode: str, transport: str) -> None:
    t = translate("--session-mode", mode, "--max-sessions", str(SESSIONS), ready_path="/healthz")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        made = iter(range(SESSIONS))

        async def make_client():  # type: ignore[no-untyped-def]
            if transport == "mixed" and next(made) % 2:
                return Modern(http, t.url + "/mcp")
            if transport == "sse":
                client = LegacySSE(http, t.url)
                await client.connect()
            else:
                client = Streamable(http, t.url + "/mcp")
            await client.initialize()
            return client

        with anyio.fail_after(180):
            results = await asyncio.gather(*(_run_session(make_client, i) for i in range(SESSIONS)))
    wrong = [w for r in results for w in r]
    assert wrong == [], f"{len(wrong)} wrong replies, first: {wrong[:3]}"
