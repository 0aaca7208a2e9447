"""Children take turns to start, a few at a time.

A spawn storm — 32 per-session clients arriving together, or a gateway docking many servers — starts that many
interpreters at once. They share the CPU, so every one of them finishes its start late (together, at the time
of all the starts added up): the first client waits as long as the last, and on a slow machine all of them pass
their startup deadline and fail. Taking turns, `STARTS_AT_ONCE` at a time (one per core, at least two), lets
each child start at full speed: the first is ready after one start time and the last no later than before.

A turn ends when the child's handshake is over, or after `TURN_MAX` seconds: a child that hangs in its
handshake uses no CPU, and must not hold the others up for its whole startup deadline. Turns are counted per
event loop (each test runs its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator

STARTS_AT_ONCE = max(2, os.cpu_count() or 2)
TURN_MAX = 5.0  # seconds one start may hold its turn

_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def start_turn() -> AsyncIterator[None]:
    """Wait for a turn to start a child; it is given back on leaving the block or after `TURN_MAX` seconds."""
    loop = asyncio.get_running_loop()
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = asyncio.Semaphore(STARTS_AT_ONCE)
    await turns.acquire()
    given_back = False

    def give_back() -> None:
        nonlocal given_back
        if not given_back:
            given_back = True
            turns.release()

    timer = loop.call_later(TURN_MAX, give_back)
    try:
        yield
    finally:
        timer.cancel()
        give_back()
