"""HTTP judges against a real local fake provider: both API shapes, repair, timeouts, 429, cache, no key leaks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest

from mcp_eval_server.errors import JudgeFailedError, JudgeUnavailableError
from mcp_eval_server.judges.base import Criterion
from mcp_eval_server.judges.providers import parse_retry_after
from mcp_eval_server.judges.registry import JudgeRegistry
from mcp_eval_server.judgments import compare_responses, judge_response
from mcp_eval_server.store import Store
from tests.conftest import make_settings
from tests.fake_provider import FakeProvider, Reply, last_user_text

pytestmark = pytest.mark.anyio
CRIT = [Criterion("accuracy", "is it right", 2.0, 1, 5), Criterion("clarity", "is it clear", 1.0, 1, 5)]
GOOD = json.dumps(
    {"scores": {"accuracy": {"reasoning": "ok", "score": 5}, "clarity": {"reasoning": "meh", "score": 2}}}
)


def registry(tmp_path: Path, provider: FakeProvider, **env: str) -> JudgeRegistry:
    settings = make_settings(tmp_path, provider.url, **env)
    return JudgeRegistry(settings, Store(settings.db_path))


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_both_api_shapes_give_validated_scores_usage_and_cost(
    tmp_path: Path, provider: FakeProvider, name: str
) -> None:
    reg = registry(tmp_path, provider)
    reg.settings.judges[name].price_in_per_mtok, reg.settings.judges[name].price_out_per_mtok = 1.0, 4.0
    provider.script = [Reply(text=GOOD, usage=(1000, 50))]
    judge = reg.resolve(name, None, "no sampling")
    with anyio.fail_after(10):
        result = await judge_response(judge, "Paris is the capital of France.", CRIT, prompt="Capital of France?")
    await reg.aclose()
    assert [s["score"] for s in result["scores"]] == [5, 2]
    assert result["overall"] == pytest.approx((2 * 1.0 + 1 * 0.25) / 3)
    usage = judge.usage.summary()
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"]) == (1, 1000, 50)
    assert usage["cost_usd"] == pytest.approx(0.0012)
    req = provider.requests[0]
    assert req["body"]["temperature"] == 0
    if name == "openai":
        assert req["path"] == "/v1/chat/completions"
        assert req["headers"]["authorization"] == "Bearer sk-test-openai-SECRET-0123456789"
        assert req["body"]["response_format"] == {"type": "json_object"}
        assert req["body"]["messages"][0]["role"] == "system"
    else:
        assert req["path"] == "/v1/messages"
        assert req["headers"]["x-api-key"] == "sk-ant-test-SECRET-0123456789"
        assert req["headers"]["anthropic-version"] == "2023-06-01"
        assert "system" in req["body"] and req["body"]["messages"][0]["role"] == "user"


async def test_malformed_json_gets_one_repair_request(tmp_path: Path, provider: FakeProvider) -> None:
    reg = registry(tmp_path, provider)
    provider.script = [Reply(text='{"scores": {"accuracy": {"score": 5}'), Reply(text="```json\n" + GOOD + "\n```")]
    judge = reg.resolve("openai", None, None)
    with anyio.fail_after(10):
        result = await judge_response(judge, "x", CRIT)
    await reg.aclose()
    assert [s["score"] for s in result["scores"]] == [5, 2]
    repair = provider.requests[1]["body"]["messages"]
    assert repair[-2]["role"] == "assistant" and "malformed" in repair[-1]["content"]
    assert judge.usage.summary()["calls"] == 2


async def test_out_of_scale_twice_fails_instead_of_guessing(tmp_path: Path, provider: FakeProvider) -> None:
    reg = registry(tmp_path, provider)
    bad = json.dumps({"scores": {"accuracy": {"score": 9}, "clarity": {"score": 2}}})
    provider.script = [Reply(text=bad), Reply(text="not json at all")]
    with anyio.fail_after(10), pytest.raises(JudgeFailedError, match="invalid verdict twice"):
        await judge_response(reg.resolve("anthropic", None, None), "x", CRIT)
    await reg.aclose()
    assert "must be an integer from 1 to 5, got 9" in provider.requests[1]["body"]["messages"][-1]["content"]


async def test_429_with_retry_after_is_honoured(tmp_path: Path, provider: FakeProvider) -> None:
    reg = registry(tmp_path, provider)
    provider.script = [Reply(status=429, headers={"retry-after": "1"}, raw_body='{"error": "rate"}'), Reply(text=GOOD)]
    start = time.monotonic()
    with anyio.fail_after(10):
        await judge_response(reg.resolve("openai", None, None), "x", CRIT)
    await reg.aclose()
    assert time.monotonic() - start >= 0.95
    assert len(provider.requests) == 2


async def test_timeout_fails_with_a_clear_message_after_retries(tmp_path: Path, provider: FakeProvider) -> None:
    # per-attempt timeouts live inside the total deadline: two 0.3 s attempts (plus 0.5 s backoff) fit in 5 s
    env = {"MCP_EVAL_TIMEOUT_S": "5", "MCP_EVAL_ATTEMPT_TIMEOUT_S": "0.3", "MCP_EVAL_MAX_RETRIES": "1"}
    reg = registry(tmp_path, provider, **env)
    provider.script = [Reply(text=GOOD, delay_s=1.0), Reply(text=GOOD, delay_s=1.0)]
    with anyio.fail_after(10), pytest.raises(JudgeFailedError, match="timed out") as info:
        await judge_response(reg.resolve("openai", None, None), "x", CRIT)
    await reg.aclose()
    assert len(provider.requests) == 2
    assert "SECRET" not in str(info.value)


async def test_http_error_body_is_reported_without_the_key(tmp_path: Path, provider: FakeProvider) -> None:
    reg = registry(tmp_path, provider)
    provider.script = [Reply(status=401, raw_body='{"error": "bad key sk-test-openai-SECRET-0123456789"}')]
    with anyio.fail_after(10), pytest.raises(JudgeFailedError, match="HTTP 401") as info:
        await judge_response(reg.resolve("openai", None, None), "x", CRIT)
    await reg.aclose()
    assert "SECRET" not in str(info.value) and len(provider.requests) == 1  # 401 is not retried


async def test_non_api_body_is_a_judge_failure(tmp_path: Path, provider: FakeProvider) -> None:
    reg = registry(tmp_path, provider)
    provider.script = [Reply(raw_body='{"unexpected": true}')]
    with anyio.fail_after(10), pytest.raises(JudgeFailedError, match="not a openai response"):
        await judge_response(reg.resolve("openai", None, None), "x", CRIT)
    await reg.aclose()


async def test_identical_calls_are_served_from_the_sqlite_cache(tmp_path: Path, provider: FakeProvider) -> None:
    reg = registry(tmp_path, provider)
    provider.script = [Reply(text=GOOD)]
    with anyio.fail_after(10):
        first = await judge_response(reg.resolve("openai", None, None), "same", CRIT)
        judge = reg.resolve("openai", None, None)
        second = await judge_response(judge, "same", CRIT)
    await reg.aclose()
    assert first["scores"] == second["scores"]
    assert len(provider.requests) == 1
    assert judge.usage.summary()["cache_hits"] == 1
    # the cache survives a restart (new store on the same file)
    reg2 = JudgeRegistry(reg.settings, Store(reg.settings.db_path))
    with anyio.fail_after(10):
        await judge_response(reg2.resolve("openai", None, None), "same", CRIT)
    await reg2.aclose()
    assert len(provider.requests) == 1
    assert "SECRET" not in reg.settings.db_path.read_bytes().decode("latin-1")


async def test_pairwise_swap_counts_only_consistent_wins(tmp_path: Path, provider: FakeProvider) -> None:
    reg = registry(tmp_path, provider)
    judge = reg.resolve("openai", None, None)
    # position-biased judge: always says "A"
    provider.script = [Reply(text='{"reasoning": "r", "winner": "A"}')] * 2
    with anyio.fail_after(10):
        biased = await compare_responses(judge, "p", "first", "second")
    # consistent judge: prefers "good" in whichever slot it is (both orders are sent concurrently, so answer by content)
    provider.responder = lambda req: Reply(
        text=json.dumps({"reasoning": "r", "winner": "A" if "A:\n<<<\ngood" in last_user_text(req) else "B"})
    )
    with anyio.fail_after(10):
        consistent = await compare_responses(judge, "p", "good", "bad")
    await reg.aclose()
    assert (biased["winner"], biased["consistent"], biased["position_consistency"]) == ("tie", False, 0.0)
    assert (consistent["winner"], consistent["consistent"], consistent["position_consistency"]) == ("A", True, 1.0)
    seen = sorted(last_user_text(r).index("good") < last_user_text(r).index("bad") for r in provider.requests[-2:])
    assert seen == [False, True]  # one call saw "good" first, the other really saw it second


def test_unavailable_judges_are_never_substituted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # no keys at all
    reg = JudgeRegistry(settings, None)
    with pytest.raises(JudgeUnavailableError) as info:
        reg.resolve("openai", None, "the connected client did not declare the sampling capability")
    text = str(info.value)
    assert "OPENAI_API_KEY is not set" in text and "No other judge was substituted" in text
    assert "client: the connected client did not declare the sampling capability" in text
    with pytest.raises(JudgeUnavailableError, match="judge 'client' is not available"):
        reg.resolve(None, None, "the connected client did not declare the sampling capability")
    with pytest.raises(JudgeUnavailableError, match="no judge of that name"):
        reg.resolve("gpt-judge", None, None)
    assert reg.resolve("heuristic", None, None).describe()["method"] == "heuristic"


def test_default_judge_rules(tmp_path: Path) -> None:
    assert JudgeRegistry(make_settings(tmp_path), None).default_name() == "client"
    one_key = make_settings(tmp_path, ANTHROPIC_API_KEY="k")
    assert JudgeRegistry(one_key, None).default_name() == "anthropic"
    explicit = make_settings(tmp_path, ANTHROPIC_API_KEY="k", MCP_EVAL_DEFAULT_JUDGE="heuristic")
    assert JudgeRegistry(explicit, None).default_name() == "heuristic"


def test_judges_file_adds_keyless_local_judges(tmp_path: Path) -> None:
    path = tmp_path / "judges.json"
    path.write_text(
        json.dumps(
            {
                "default": "llama",
                "judges": {"llama": {"kind": "openai", "model": "llama3.1", "base_url": "http://127.0.0.1:11434/v1"}},
            }
        )
    )
    reg = JudgeRegistry(make_settings(tmp_path, MCP_EVAL_JUDGES_FILE=str(path)), None)
    listed = {j["name"]: j for j in reg.describe_all(None)}
    assert listed["llama"]["usable"] and listed["llama"]["default"]
    assert all("SECRET" not in json.dumps(j) for j in listed.values())


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), (None, 0.5), ("999", 30.0), ("-4", 0.0)])
def test_retry_after_parsing(value: str | None, expected: float) -> None:
    assert parse_retry_after(value, 0.5) == expected


async def test_azure_style_judge_sends_api_key_header_and_api_version(tmp_path: Path, provider: FakeProvider) -> None:
    path = tmp_path / "judges.json"
    path.write_text(
        json.dumps(
            {
                "judges": {
                    "azure": {
                        "kind": "openai",
                        "model": "gpt-4o",
                        "base_url": provider.url + "/openai/deployments/gpt-4o",
                        "api_key_env": "AZURE_OPENAI_KEY",
                        "auth": "api-key",
                        "query": {"api-version": "2024-10-21"},
                    }
                }
            }
        )
    )
    settings = make_settings(tmp_path, MCP_EVAL_JUDGES_FILE=str(path), AZURE_OPENAI_KEY="azure-SECRET")
    reg = JudgeRegistry(settings, None)
    provider.script = [Reply(text=GOOD)]
    with anyio.fail_after(10):
        await judge_response(reg.resolve("azure", None, None), "x", CRIT)
    await reg.aclose()
    req = provider.requests[0]
    assert req["path"] == "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    assert req["headers"]["api-key"] == "azure-SECRET" and "authorization" not in req["headers"]


def test_file_judge_with_a_missing_key_variable_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "judges.json"
    path.write_text(
        json.dumps(
            {
                "judges": {
                    "azure": {
                        "kind": "openai",
                        "model": "m",
                        "base_url": "https://example.invalid/v1",
                        "api_key_env": "AZURE_OPENAI_KEY",
                    }
                }
            }
        )
    )
    reg = JudgeRegistry(make_settings(tmp_path, MCP_EVAL_JUDGES_FILE=str(path)), None)
    with pytest.raises(JudgeUnavailableError, match="AZURE_OPENAI_KEY is not set"):
        reg.resolve("azure", None, None)
