"""One total deadline per judge call, no cached failures, `no_cache`, null usage when unknown, judge-unavailable text.

The hanging provider is a real TCP server that accepts and never answers (`SilentProvider`). The fast tests shrink
the deadline; `test_default_budget_is_60_s_for_every_attempt_together` proves what the defaults give, and the real
60 s case runs under `make test-slow` (marker `slow`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest

from mcp_eval_server.config import load_settings
from mcp_eval_server.errors import JudgeFailedError, JudgeUnavailableError
from mcp_eval_server.judges.base import Completion, Criterion, UsageMeter
from mcp_eval_server.judges.providers import HTTPBackend
from mcp_eval_server.judges.registry import JudgeRegistry
from mcp_eval_server.judges.sampling import SamplingBackend
from mcp_eval_server.judgments import judge_response
from mcp_eval_server.store import Store
from tests.conftest import make_settings
from tests.fake_provider import FakeProvider, Reply, SilentProvider

pytestmark = pytest.mark.anyio
CRIT = [Criterion("accuracy", "is it right", 1.0, 1, 5)]
GOOD = json.dumps({"scores": {"accuracy": {"reasoning": "ok", "score": 4}}})


def _registry(tmp_path: Path, url: str, **env: str) -> JudgeRegistry:
    settings = make_settings(tmp_path, url, **env)
    return JudgeRegistry(settings, Store(settings.db_path))


async def test_a_provider_that_never_answers_fails_within_the_deadline_not_per_attempt(tmp_path: Path) -> None:
    # defaults except the deadline: 3 retries, no per-attempt cap. Old code: 4 attempts x 1.5 s + backoffs = 9.5 s
    with SilentProvider() as silent:
        reg = _registry(tmp_path, silent.url, MCP_EVAL_TIMEOUT_S="1.5")
        started = time.monotonic()
        with anyio.fail_after(15), pytest.raises(JudgeFailedError, match=r"within the 1\.5 s deadline") as info:
            await judge_response(reg.resolve("openai", None, None), "x", CRIT)
        elapsed = time.monotonic() - started
        await reg.aclose()
    assert 1.4 <= elapsed < 2.5, elapsed
    assert "MCP_EVAL_TIMEOUT_S" in str(info.value) and "SECRET" not in str(info.value)


async def test_per_attempt_timeouts_retry_inside_the_one_deadline(tmp_path: Path) -> None:
    with SilentProvider() as silent:
        env = {"MCP_EVAL_TIMEOUT_S": "2", "MCP_EVAL_ATTEMPT_TIMEOUT_S": "0.4"}
        reg = _registry(tmp_path, silent.url, **env)
        started = time.monotonic()
        with anyio.fail_after(15), pytest.raises(JudgeFailedError):
            await judge_response(reg.resolve("anthropic", None, None), "x", CRIT)
        elapsed = time.monotonic() - started
        await reg.aclose()
    assert elapsed < 2.6 and silent.connections >= 2  # it retried, and stopped at the deadline


async def test_a_retry_after_longer_than_the_deadline_fails_at_once(tmp_path: Path, provider: FakeProvider) -> None:
    provider.script = [Reply(status=429, headers={"retry-after": "20"}, raw_body='{"error": "rate"}')]
    reg = _registry(tmp_path, provider.url, MCP_EVAL_TIMEOUT_S="5")
    started = time.monotonic()
    with anyio.fail_after(10), pytest.raises(JudgeFailedError, match="past the 5 s deadline"):
        await judge_response(reg.resolve("openai", None, None), "x", CRIT)
    await reg.aclose()
    assert time.monotonic() - started < 2 and len(provider.requests) == 1


def test_default_budget_is_60_s_for_every_attempt_together(tmp_path: Path) -> None:
    settings = load_settings({"MCP_EVAL_DB": str(tmp_path / "d.sqlite3"), "OPENAI_API_KEY": "k"})
    assert (settings.timeout_s, settings.attempt_timeout_s, settings.max_retries) == (60.0, None, 3)
    backend = JudgeRegistry(settings, None).resolve("openai", None, None).backend  # type: ignore[attr-defined]
    assert isinstance(backend, HTTPBackend)
    assert backend.deadline_s == 60.0 and backend.attempt_timeout_s is None
    # the first attempt may use the whole budget, never more: nothing is left for a second one
    timeout = backend._attempt_timeout(time.monotonic() + backend.deadline_s)
    assert 59.9 < timeout.read <= 60.0


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_nonsense_deadline_is_a_config_error(tmp_path: Path, value: str) -> None:
    from mcp_eval_server.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="MCP_EVAL"):
        load_settings({"MCP_EVAL_DB": str(tmp_path / "d.sqlite3"), "MCP_EVAL_TIMEOUT_S": value})


async def test_a_bad_judge_reply_is_not_cached(tmp_path: Path, provider: FakeProvider) -> None:
    reg = _registry(tmp_path, provider.url)
    provider.script = [Reply(text="not json"), Reply(text="still not json")]
    with anyio.fail_after(10), pytest.raises(JudgeFailedError, match="invalid verdict twice"):
        await judge_response(reg.resolve("openai", None, None), "same input", CRIT)
    provider.script = [Reply(text=GOOD)]
    with anyio.fail_after(10):
        again = await judge_response(reg.resolve("openai", None, None), "same input", CRIT)
    await reg.aclose()
    assert again["scores"][0]["score"] == 4  # old code replayed the cached garbage and failed forever
    assert len(provider.requests) == 3


async def test_a_cached_reply_that_does_not_validate_is_forgotten(tmp_path: Path, provider: FakeProvider) -> None:
    reg = _registry(tmp_path, provider.url)
    provider.script = [Reply(text=GOOD)]
    with anyio.fail_after(10):
        await judge_response(reg.resolve("openai", None, None), "x", CRIT)
    assert reg.store is not None
    reg.store.conn.execute("UPDATE judge_cache SET reply = 'garbage'")  # as an older version would have stored it
    provider.script = [Reply(text=GOOD)]
    with anyio.fail_after(10):
        healed = await judge_response(reg.resolve("openai", None, None), "x", CRIT)
    rows = reg.store.conn.execute("SELECT reply FROM judge_cache").fetchall()
    await reg.aclose()
    assert healed["scores"][0]["score"] == 4
    assert "garbage" not in {r[0] for r in rows}


async def test_no_cache_asks_the_provider_and_stores_nothing(tmp_path: Path, provider: FakeProvider) -> None:
    reg = _registry(tmp_path, provider.url)
    provider.responder = lambda req: Reply(text=GOOD)
    with anyio.fail_after(10):
        await judge_response(reg.resolve("openai", None, None), "x", CRIT)
        fresh = reg.resolve("openai", None, None, use_cache=False)
        await judge_response(fresh, "x", CRIT)
        await judge_response(reg.resolve("openai", None, None, use_cache=False), "y", CRIT)
    assert reg.store is not None
    cached = reg.store.conn.execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0]
    await reg.aclose()
    assert len(provider.requests) == 3 and fresh.usage.summary()["cache_hits"] == 0
    assert cached == 1  # only the first, cached call stored its reply


async def test_sampling_usage_reports_null_tokens_not_zero() -> None:
    async def create(system: str, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, str]:
        return GOOD, "host-model"

    backend = SamplingBackend(create)
    meter = UsageMeter()
    meter.add(await backend.complete("s", [{"role": "user", "content": "u"}]))
    usage = meter.summary()
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"], usage["cost_usd"]) == (1, None, None, None)
    assert "no token counts" in usage["unknown_reason"]
    partial = UsageMeter()
    partial.add(Completion("t", "m", 10, 5))
    partial.add(Completion("t", "m", None, None))
    assert partial.summary()["input_tokens"] is None  # a partial sum would look like a real total
    assert UsageMeter().summary()["input_tokens"] == 0  # no calls: zero is the true total


def test_judge_unavailable_says_which_judges_are_usable_and_how_to_enable_the_others(tmp_path: Path) -> None:
    reg = JudgeRegistry(make_settings(tmp_path, ANTHROPIC_API_KEY="k"), None)
    with pytest.raises(JudgeUnavailableError) as info:
        reg.resolve("openai", None, "the connected client did not declare the sampling capability")
    text = str(info.value)
    assert "Usable now: anthropic, heuristic" in text
    assert "- openai: OPENAI_API_KEY is not set; to enable it, set OPENAI_API_KEY" in text
    assert "env_passthrough" in text and "OPENAI_BASE_URL" in text
    assert "- client: the connected client did not declare the sampling capability; to enable it" in text
