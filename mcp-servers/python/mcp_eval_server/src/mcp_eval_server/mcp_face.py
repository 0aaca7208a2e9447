"""How a domain function becomes an MCP tool of this server: result mapping, strict arguments, client sampling.

`tool_result` is the one place domain outcomes become MCP results: a result model becomes `structuredContent` plus
a text content that starts with one `Warning: <message>` line per warning; `EvalError` becomes an `isError` result
whose text says what to fix; `JudgePending` becomes an "input required" result. `StrictTool` closes every input schema
(`additionalProperties: false`, nested objects too) and refuses an unknown argument name with the closest valid one
before any work. `sampling` gives the `client` judge its way to the host's model: `sampling/createMessage` on
handshake-era connections, "input required" rounds on stateless 2026-07-28 ones (see `judges/sampling.py`).

Never: print (stdout is the wire), or let an unexpected exception reach the client as a bare "Error executing tool".
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import warnings
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import anyio
from mcp import types
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict

from mcp_eval_server.errors import EvalError, JudgeFailedError, JudgePending
from mcp_eval_server.judges.registry import JudgeRegistry
from mcp_eval_server.judges.sampling import CreateMessage, SamplingRounds
from mcp_eval_server.result_warnings import text_prefix
from mcp_eval_server.strict_arguments import close_schema, unknown_keys

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


# The replay state of the current stateless tool call, set by `_sampling` and read by `_tool` on `JudgePending`.
_ROUNDS: ContextVar[SamplingRounds | None] = ContextVar("mcp_eval_sampling_rounds", default=None)


def tool_result(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The one place domain outcomes become MCP results.

    A result model -> `structuredContent` plus a text content led by its `Warning:` lines. `EvalError` -> an
    `isError` result whose text says what to fix. `JudgePending` (stateless sampling) -> an "input required" result
    carrying the judge's open questions and the answers so far. Anything else is a bug: logged with its traceback
    and reported as an `isError` result that names the exception, never a bare "Error executing tool".
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _ROUNDS.set(None)
        try:
            return _result(await fn(*args, **kwargs))  # type: ignore[return-value]
        except EvalError as exc:
            raise ToolError(str(exc)) from exc
        except JudgePending as exc:
            rounds = _ROUNDS.get()
            if rounds is None or not rounds.pending:
                raise ToolError("internal error: the judge is waiting but asked nothing") from exc
            return types.InputRequiredResult(  # type: ignore[return-value]
                input_requests={key: _sampling_request(*q) for key, q in rounds.pending.items()},
                request_state=rounds.state(),
            )
        except (ToolError, MCPError):
            raise
        except Exception as exc:
            logger.exception("tool %s failed unexpectedly", fn.__name__)
            raise ToolError(
                f"{fn.__name__} failed on an unexpected {type(exc).__name__}: {str(exc)[:300]}. "
                "This is a bug in the server; please report it with the arguments."
            ) from exc
        finally:
            _ROUNDS.reset(token)

    wrapper.__doc__ = inspect.cleandoc(fn.__doc__ or "")  # the tool description, without source indentation
    return wrapper


def _result(model: Any) -> Any:
    """A result model as `CallToolResult`: structured content, and text that starts with its warnings."""
    if not isinstance(model, BaseModel):
        return model
    data = model.model_dump(mode="json")
    text = text_prefix(data.get("warnings", [])) + json.dumps(data, ensure_ascii=False, indent=2)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=data)


class StrictTool(Tool):
    """A tool whose input schema is closed and whose unknown argument names are a tool error naming the closest
    valid name (pydantic would drop them silently: `alternativ: greater` would answer the two-sided question)."""

    @classmethod
    def from_function(cls, fn: Callable[..., Any], **kwargs: Any) -> Tool:  # type: ignore[override]
        tool = super().from_function(fn, **kwargs)
        base = tool.fn_metadata.arg_model
        strict: type[BaseModel] = type(
            base.__name__,
            (base,),
            {"__module__": base.__module__, "model_config": ConfigDict(extra="forbid", arbitrary_types_allowed=True)},
        )
        tool.fn_metadata.arg_model = strict  # type: ignore[assignment]
        tool.parameters = close_schema(strict.model_json_schema(by_alias=True))
        return tool

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        problems = unknown_keys(self.fn_metadata.pre_parse_json(arguments), self.parameters)
        if problems:
            raise ToolError(f"{self.name}: " + "; ".join(problems))
        return await super().run(arguments, context, convert_result=convert_result)


def _sampling_request(system: str, messages: list[dict[str, str]], max_tokens: int) -> types.CreateMessageRequest:
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=_sampling_messages(messages), system_prompt=system, max_tokens=max_tokens, temperature=0.0
        )
    )


def _sampling_messages(messages: list[dict[str, str]]) -> list[types.SamplingMessage]:
    return [
        types.SamplingMessage(role=m["role"], content=types.TextContent(type="text", text=m["content"]))  # type: ignore[arg-type]
        for m in messages
    ]


def _text_of(result: types.CreateMessageResult | Any) -> str:
    content = getattr(result, "content", None)
    if not isinstance(content, types.TextContent):
        raise JudgeFailedError("the client's model did not reply with text content")
    return content.text


def _stateless_sampling(ctx: Context) -> CreateMessage:
    """Replay sampling for 2026-07-28 connections: answers so far come from the request state and this round."""
    rounds = SamplingRounds.from_state(ctx.request_state)
    for key, response in (ctx.input_responses or {}).items():
        rounds.answers[key] = [_text_of(response), getattr(response, "model", "") or "host model"]
    _ROUNDS.set(rounds)
    return rounds.create


def sampling(
    ctx: Context, timeout_s: float = 120.0, registry: JudgeRegistry | None = None
) -> tuple[CreateMessage | None, str | None]:
    """A sampling function for the `client` judge, or None and the reason it cannot work on this connection.

    A client (or a gateway in front of it) that declares sampling but rejects the request makes the `client` judge
    unavailable: the error then lists the judges that are usable, as when sampling was never declared.
    """
    caps = ctx.client_capabilities
    if caps is None or caps.sampling is None:
        return None, "the connected client did not declare the sampling capability"
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return _stateless_sampling(ctx), None

    async def create(system: str, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, str]:
        try:
            with anyio.fail_after(timeout_s), warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                result = await ctx.session.create_message(
                    _sampling_messages(messages),
                    max_tokens=max_tokens,
                    system_prompt=system,
                    temperature=0.0,
                    related_request_id=ctx.request_id,
                )
        except MCPError as exc:
            why = f"the client rejected the sampling request ({exc})"
            if registry is not None:
                raise registry.unavailable("client", why, why) from exc
            raise JudgeFailedError(why) from exc
        except TimeoutError as exc:
            raise JudgeFailedError(
                f"the client did not answer the sampling request within {timeout_s}s "
                "(the judge-call deadline, MCP_EVAL_TIMEOUT_S)"
            ) from exc
        return _text_of(result), result.model

    return create, None


Register = Callable[[types.ToolAnnotations], Callable[[Callable[..., Any]], Callable[..., Any]]]


def collect(tools: list[Tool]) -> Register:
    """A `@tool(annotations)` decorator that appends a `StrictTool` to `tools`."""

    def tool(annotations: types.ToolAnnotations) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            tools.append(StrictTool.from_function(fn, annotations=annotations))
            return fn

        return register

    return tool
