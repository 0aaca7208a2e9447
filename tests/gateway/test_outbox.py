"""The SSE outbox: a slow reader is judged by what it did not ask for, never by its own replies."""

from __future__ import annotations

import pytest

from gateway.transports._outbox import REPLY_FACTOR, SSEOutbox

pytestmark = pytest.mark.anyio


async def test_replies_to_the_clients_own_requests_do_not_count_as_a_slow_reader() -> None:
    outbox = SSEOutbox("s", limit=10)
    for n in range(100):
        assert outbox.put({"jsonrpc": "2.0", "id": n, "result": {}})
    assert not outbox.overflowed
    for _ in range(10):
        assert outbox.put({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})
    assert not outbox.put({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})
    assert outbox.overflowed


async def test_reading_frees_room_for_notifications() -> None:
    outbox = SSEOutbox("s", limit=2)
    outbox.put({"jsonrpc": "2.0", "method": "a"})
    outbox.put({"jsonrpc": "2.0", "method": "b"})
    await outbox.get()
    assert outbox.put({"jsonrpc": "2.0", "method": "c"}) and not outbox.overflowed


async def test_a_client_that_never_reads_its_replies_is_still_bounded() -> None:
    outbox = SSEOutbox("s", limit=4)
    accepted = sum(outbox.put({"jsonrpc": "2.0", "id": n, "result": {}}) for n in range(4 * REPLY_FACTOR + 5))
    assert accepted == 4 * REPLY_FACTOR and outbox.overflowed
