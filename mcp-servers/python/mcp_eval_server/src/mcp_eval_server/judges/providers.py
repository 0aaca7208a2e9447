"""HTTP judge backends: OpenAI-compatible chat completions and Anthropic Messages over one pooled httpx client.

OpenAI-compatible covers OpenAI, Azure (base URL + `headers`), Ollama, vLLM and LM Studio. Requests use
temperature 0 and, where supported, JSON mode. One judge call has one total deadline (`deadline_s`, from
MCP_EVAL_TIMEOUT_S, default 60 s) that covers every attempt, backoff and `retry-after` wait: an attempt gets at most
the time that is left (and at most `attempt_timeout_s` when set), a wait that would end past the deadline is not
started, and an outer cancel scope enforces the bound whatever the transport does. Within it, 429/5xx/408/409
are retried honouring `retry-after` (capped), timeouts and connection errors with exponential backoff. Identical
requests are answered from the SQLite cache unless `use_cache` is off; a reply is stored only after the judge
validated it (`remember`), so a bad reply is never served again.

Never: log or return the API key or request headers; call the network before the first judge request.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import time
from typing import Any

import anyio
import httpx

from mcp_eval_server.config import JudgeConfig
from mcp_eval_server.errors import JudgeFailedError
from mcp_eval_server.judges.base import MAX_RETRY_AFTER_S, Completion
from mcp_eval_server.store import Store

logger = logging.getLogger(__name__)
ANTHROPIC_VERSION = "2023-06-01"
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}


def parse_retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a `retry-after` header (delta-seconds or HTTP date), capped at MAX_RETRY_AFTER_S."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        seconds = parsed.timestamp() - time.time() if parsed else default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class HTTPBackend:
    """One configured HTTP judge; shares the process-wide pooled `httpx.AsyncClient`."""

    def __init__(
        self,
        cfg: JudgeConfig,
        api_key: str | None,
        client: httpx.AsyncClient,
        store: Store | None,
        max_retries: int,
        deadline_s: float = 60.0,
        attempt_timeout_s: float | None = None,
        use_cache: bool = True,
    ) -> None:
        self.cfg = cfg
        self.name: str = cfg.name
        self.kind: str = cfg.kind
        self.model: str = cfg.model
        self._key = api_key
        self._client = client
        self._max_retries = max_retries
        self.deadline_s = deadline_s
        self.attempt_timeout_s = attempt_timeout_s
        self._cache = store if use_cache else None

    def __repr__(self) -> str:  # keeps the key out of tracebacks and logs
        return f"HTTPBackend(name={self.name!r}, kind={self.kind!r}, model={self.model!r})"

    def _request(self, system: str, messages: list[dict[str, str]]) -> tuple[str, dict[str, str], dict[str, Any]]:
        cfg = self.cfg
        base = cfg.base_url.rstrip("/")
        headers = {"content-type": "application/json", **cfg.headers}
        if cfg.kind == "anthropic":
            url = base + "/v1/messages"
            headers["anthropic-version"] = ANTHROPIC_VERSION
            if self._key:
                headers["x-api-key"] = self._key
            body: dict[str, Any] = {
                "model": cfg.model,
                "system": system,
                "messages": messages,
                "max_tokens": cfg.max_tokens,
                "temperature": 0,
            }
            return url, headers, body
        url = base + "/chat/completions"
        if self._key and cfg.auth == "api-key":
            headers["api-key"] = self._key
        elif self._key:
            headers["authorization"] = f"Bearer {self._key}"
        body = {
            "model": cfg.model,
            "messages": [{"role": "system", "content": system}, *messages],
            "temperature": 0,
            "max_tokens": cfg.max_tokens,
        }
        if cfg.json_mode:
            body["response_format"] = {"type": "json_object"}
        return url, headers, body

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _cache_key(self, url: str, body: dict[str, Any]) -> str:
        blob = json.dumps([self.kind, url, body], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _cost(self, tokens_in: int | None, tokens_out: int | None) -> float | None:
        p_in, p_out = self.cfg.price_in_per_mtok, self.cfg.price_out_per_mtok
        if p_in is None or p_out is None or tokens_in is None or tokens_out is None:
            return None
        return (tokens_in * p_in + tokens_out * p_out) / 1e6

    def _parse(self, data: Any) -> tuple[str, int | None, int | None, str]:
        """(text, input tokens, output tokens, model) from either API shape.

        Raises:
            JudgeFailedError: the provider's body is not the documented shape.
        """
        try:
            if self.kind == "anthropic":
                text = "".join(b["text"] for b in data["content"] if b.get("type") == "text")
                usage = data.get("usage") or {}
                return text, usage.get("input_tokens"), usage.get("output_tokens"), data.get("model", self.model)
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
            return text, usage.get("prompt_tokens"), usage.get("completion_tokens"), data.get("model", self.model)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise JudgeFailedError(
                f"judge {self.name!r}: the provider's reply is not a {self.kind} response "
                f"({type(exc).__name__}: {exc}); "
                "check base_url points at the API root"
            ) from exc

    async def complete(self, system: str, messages: list[dict[str, str]]) -> Completion:
        """Send one chat request (or answer it from the cache), within the total deadline.

        Raises:
            JudgeFailedError: deadline exceeded, retries exhausted, a non-retryable HTTP status, or an unreadable body.
        """
        url, headers, body = self._request(system, messages)
        key = self._cache_key(url, body)
        if self._cache is not None and (hit := self._cache.cache_get(key)) is not None:
            c_text, c_in, c_out, c_model = hit
            return Completion(c_text, c_model, c_in, c_out, self._cost(c_in, c_out), cached=True, cache_key=key)
        response = await self._send_within_deadline(url, headers, body)
        try:
            data = response.json()
        except ValueError as exc:
            raise JudgeFailedError(
                f"judge {self.name!r}: provider returned non-JSON body (HTTP {response.status_code})"
            ) from exc
        text, t_in, t_out, model = self._parse(data)
        return Completion(text, model, t_in, t_out, self._cost(t_in, t_out), cache_key=key)

    def remember(self, completion: Completion) -> None:
        """Store a reply the judge accepted, so an identical request is answered from the cache."""
        if self._cache is not None and completion.cache_key and not completion.cached:
            c = completion
            self._cache.cache_put(c.cache_key, c.text, c.input_tokens, c.output_tokens, c.model)  # type: ignore[arg-type]

    def forget(self, completion: Completion) -> None:
        """Drop a cached reply the judge rejected (e.g. stored by an older version)."""
        if self._cache is not None and completion.cache_key and completion.cached:
            self._cache.cache_delete(completion.cache_key)

    async def _send_within_deadline(self, url: str, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
        deadline = time.monotonic() + self.deadline_s
        attempts: list[str] = []
        try:
            with anyio.fail_after(self.deadline_s):
                return await self._send(url, headers, body, deadline, attempts)
        except TimeoutError as exc:
            raise JudgeFailedError(self._deadline_message(attempts)) from exc

    def _deadline_message(self, attempts: list[str]) -> str:
        tried = "; ".join(attempts) if attempts else "the first attempt got no answer"
        return (
            f"judge {self.name!r} ({self.kind} at {self.cfg.base_url}) gave no verdict within the "
            f"{self.deadline_s:g} s deadline for one judge call (MCP_EVAL_TIMEOUT_S; it covers every retry): {tried}. "
            "Check that the provider answers, or raise MCP_EVAL_TIMEOUT_S for a slow model."
        )

    def _attempt_timeout(self, deadline: float) -> httpx.Timeout:
        left = max(deadline - time.monotonic(), 0.001)
        per_attempt = min(left, self.attempt_timeout_s or left)
        return httpx.Timeout(per_attempt, connect=min(10.0, per_attempt))

    async def _send(
        self, url: str, headers: dict[str, str], body: dict[str, Any], deadline: float, attempts: list[str]
    ) -> httpx.Response:
        last = "no attempt made"
        for attempt in range(self._max_retries + 1):
            backoff = min(0.5 * 2**attempt, MAX_RETRY_AFTER_S)
            timeout = self._attempt_timeout(deadline)
            try:
                response = await self._client.post(
                    url, headers=headers, json=body, params=self.cfg.query, timeout=timeout
                )
            except httpx.TimeoutException:
                last = f"attempt {attempt + 1} timed out after {timeout.read:.3g} s"
            except httpx.TransportError as exc:
                last = f"attempt {attempt + 1}: connection failed ({type(exc).__name__})"
            else:
                if response.status_code < 400:
                    return response
                last = f"attempt {attempt + 1}: HTTP {response.status_code}: {self._redact(response.text[:200])}"
                if response.status_code not in _RETRY_STATUS:
                    break
                backoff = parse_retry_after(response.headers.get("retry-after"), backoff)
            attempts.append(last)
            logger.warning("judge %s attempt %d failed: %s", self.name, attempt + 1, last)
            if attempt < self._max_retries:
                if time.monotonic() + backoff >= deadline:
                    last += f"; the next retry (after {backoff:g} s) would end past the {self.deadline_s:g} s deadline"
                    break
                await anyio.sleep(backoff)
        raise JudgeFailedError(f"judge {self.name!r} ({self.kind} at {self.cfg.base_url}) failed: {last}")
