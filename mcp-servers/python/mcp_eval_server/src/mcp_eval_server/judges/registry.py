"""Resolve a judge name to a judge, or fail loudly: there is no silent substitution.

Names: every configured HTTP judge (`openai`, `anthropic`, entries of the judges file), `client` (MCP sampling) and
`heuristic`. With no name, the default is `MCP_EVAL_DEFAULT_JUDGE`; without that, the single usable HTTP judge if
there is exactly one, else `client`. When the chosen judge cannot be used, `JudgeUnavailableError` lists every judge
with whether it is usable and why not, which judges are usable now and how to enable each of the others (which
variable to set, and that behind the Harbor gateway it must reach the server through its `env` or
`env_passthrough`). The caller decides. `heuristic` is never chosen unless named.

The pooled httpx client is created on the first HTTP judge call, never at start-up.
"""

from __future__ import annotations

from typing import Any

import httpx

from mcp_eval_server.config import JudgeConfig, Settings
from mcp_eval_server.errors import JudgeUnavailableError
from mcp_eval_server.judges.base import Backend, Judge
from mcp_eval_server.judges.heuristic import HeuristicJudge
from mcp_eval_server.judges.llm import LLMJudge
from mcp_eval_server.judges.providers import HTTPBackend
from mcp_eval_server.judges.sampling import CreateMessage, SamplingBackend
from mcp_eval_server.store import Store


class JudgeRegistry:
    """Configured judges plus `client` and `heuristic`; one per server process."""

    def __init__(self, settings: Settings, store: Store | None) -> None:
        self.settings = settings
        self.store = store
        self._http: httpx.AsyncClient | None = None

    def http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.timeout_s, connect=min(10.0, self.settings.timeout_s)),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def describe_all(self, sampling_reason: str | None) -> list[dict[str, Any]]:
        """Every judge with `usable` and, when not, `reason` and `enable`; `sampling_reason` is None when sampling
        works."""
        env = self.settings.env
        out = []
        for cfg in self.settings.judges.values():
            reason = cfg.unusable_reason(env)
            out.append(
                {
                    "name": cfg.name,
                    "kind": cfg.kind,
                    "model": cfg.model,
                    "base_url": cfg.base_url,
                    "usable": reason is None,
                    "reason": reason,
                    "enable": None if reason is None else _enable_hint(cfg),
                }
            )
        out.append(
            {
                "name": "client",
                "kind": "client",
                "model": "host model via MCP sampling",
                "usable": sampling_reason is None,
                "reason": sampling_reason,
                "enable": None
                if sampling_reason is None
                else "connect with an MCP client that supports sampling (VS Code does), or configure an HTTP judge",
            }
        )
        out.append(
            {
                "name": "heuristic",
                "kind": "heuristic",
                "model": None,
                "usable": True,
                "reason": "lexical statistics, not a model; used only when named",
                "enable": None,
            }
        )
        default = self.default_name()
        for entry in out:
            entry["default"] = entry["name"] == default
        return out

    def default_name(self) -> str:
        if self.settings.default_judge:
            return self.settings.default_judge
        env = self.settings.env
        usable = [c.name for c in self.settings.judges.values() if c.unusable_reason(env) is None]
        return usable[0] if len(usable) == 1 else "client"

    def unavailable(self, name: str, why: str, sampling_reason: str | None) -> JudgeUnavailableError:
        """The error for judge `name`: why, which judges are usable now, and how to enable the others."""
        judges = self.describe_all(sampling_reason)
        usable = [j["name"] for j in judges if j["usable"]]
        lines = [f"- {j['name']}: {j['reason']}; to enable it, {j['enable']}" for j in judges if not j["usable"]]
        return JudgeUnavailableError(
            f"judge {name!r} is not available: {why}. No other judge was substituted.\n"
            f"Usable now: {', '.join(usable)} (heuristic = lexical statistics, not a model).\n"
            "Not usable:\n" + "\n".join(lines) + "\nPass judge=<name> with a usable judge (list_judges shows the same)."
        )

    def resolve(
        self, name: str | None, create: CreateMessage | None, sampling_reason: str | None, use_cache: bool = True
    ) -> Judge:
        """A fresh judge instance (its usage meter counts this tool call only).

        Raises:
            JudgeUnavailableError: unknown name, missing key, or `client` without sampling.
        """
        chosen = name or self.default_name()
        if chosen == "heuristic":
            return HeuristicJudge()
        if chosen == "client":
            if create is None:
                raise self.unavailable(
                    chosen, sampling_reason or "the client did not declare sampling", sampling_reason
                )
            return LLMJudge(SamplingBackend(create))
        cfg = self.settings.judges.get(chosen)
        if cfg is None:
            raise self.unavailable(
                chosen, "no judge of that name is configured (add it to MCP_EVAL_JUDGES_FILE)", sampling_reason
            )
        if (reason := cfg.unusable_reason(self.settings.env)) is not None:
            raise self.unavailable(chosen, reason, sampling_reason)
        backend: Backend = HTTPBackend(
            cfg,
            cfg.api_key(self.settings.env),
            self.http_client(),
            self.store,
            self.settings.max_retries,
            deadline_s=self.settings.timeout_s,
            attempt_timeout_s=self.settings.attempt_timeout_s,
            use_cache=use_cache,
        )
        return LLMJudge(backend)


def _enable_hint(cfg: JudgeConfig) -> str:
    """How to make an HTTP judge usable, in words a user can act on."""
    where = "in the server's environment (behind the Harbor gateway: the server's env or env_passthrough)"
    if cfg.name == "openai" and cfg.api_key_env == "OPENAI_API_KEY":
        return f"set OPENAI_API_KEY {where}, or OPENAI_BASE_URL to a local OpenAI-compatible server (no key needed)"
    if cfg.api_key_env:
        return f"set {cfg.api_key_env} {where}"
    return f"give it an api_key_env in MCP_EVAL_JUDGES_FILE and set that variable {where}"
