"""Settings from the environment and an optional judges file; nothing here touches the network.

Environment (all optional):
    MCP_EVAL_DB                 SQLite path for runs and the judge cache; `{identity}` in it becomes HARBOR_IDENTITY
    HARBOR_IDENTITY             the gateway identity this process serves (per-identity children), default anonymous
    MCP_EVAL_DEFAULT_JUDGE      judge used when a tool call names none
    MCP_EVAL_JUDGES_FILE        JSON file of extra judges (see README)
    MCP_EVAL_DATA_ROOTS         os.pathsep-separated folders `run_eval` may read JSONL from (default: cwd)
    MCP_EVAL_TIMEOUT_S          total deadline of one judge call, every retry included (default 60)
    MCP_EVAL_ATTEMPT_TIMEOUT_S  cap of one HTTP attempt inside that deadline (default: whatever is left)
    MCP_EVAL_MAX_RETRIES, MCP_EVAL_CONCURRENCY
    OPENAI_API_KEY, OPENAI_BASE_URL, MCP_EVAL_OPENAI_MODEL          -> judge "openai"
    ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, MCP_EVAL_ANTHROPIC_MODEL -> judge "anthropic"

API keys are read from the environment at call time through `api_key_env`, kept out of every model dump and
never logged: a `JudgeConfig` only stores the variable's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from mcp_eval_server.errors import InvalidInputError

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com"


def identity_slug(identity: str) -> str:
    """A file-name-safe form of an identity; distinct identities never map to the same name (hash suffix)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", identity)[:64] or "_"
    if safe == identity:
        return safe
    return f"{safe}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


def default_db_path(env: Mapping[str, str]) -> Path:
    """`$MCP_EVAL_DB` (with `{identity}` replaced by the slug of `$HARBOR_IDENTITY`, default `anonymous`), else
    `$XDG_DATA_HOME/harbor/mcp_eval_server/eval.sqlite3` (XDG default ~/.local/share)."""
    if env.get("MCP_EVAL_DB"):
        raw = env["MCP_EVAL_DB"].replace("{identity}", identity_slug(env.get("HARBOR_IDENTITY") or "anonymous"))
        return Path(raw).expanduser()
    base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "harbor" / "mcp_eval_server" / "eval.sqlite3"


class JudgeConfig(BaseModel):
    """One HTTP judge. `api_key_env` names the variable holding the key; the key itself is never stored here."""

    name: str
    kind: Literal["openai", "anthropic"]
    model: str
    base_url: str
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)  # e.g. Azure's {"api-version": "2024-10-21"}
    auth: Literal["bearer", "api-key"] = "bearer"  # Azure keys go in an `api-key` header
    price_in_per_mtok: float | None = None
    price_out_per_mtok: float | None = None
    json_mode: bool = True
    max_tokens: int = 1024
    key_required: bool | None = None  # None: required for Anthropic and api.openai.com, optional for local servers

    def api_key(self, env: Mapping[str, str]) -> str | None:
        """The key from the environment, or None; callers must never log or return it."""
        return env.get(self.api_key_env) if self.api_key_env else None

    def unusable_reason(self, env: Mapping[str, str]) -> str | None:
        """Why this judge cannot be called now, or None when it can (checked without any network call)."""
        needs_key = self.key_required
        if needs_key is None:
            needs_key = self.kind == "anthropic" or self.base_url.rstrip("/") == OPENAI_DEFAULT_URL
        if needs_key and not self.api_key(env):
            return f"{self.api_key_env or 'an API key variable'} is not set"
        return None


class Settings(BaseModel):
    """Everything configurable, resolved once at start-up from the environment."""

    db_path: Path
    default_judge: str | None = None
    judges: dict[str, JudgeConfig] = Field(default_factory=dict)
    data_roots: list[Path] = Field(default_factory=list)
    timeout_s: float = Field(60.0, gt=0, description="total deadline of one judge call, retries included")
    attempt_timeout_s: float | None = Field(None, gt=0, description="cap of one HTTP attempt within the deadline")
    max_retries: int = Field(3, ge=0)
    concurrency: int = 8
    env: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)


def _env_judges(env: Mapping[str, str]) -> dict[str, JudgeConfig]:
    judges = {
        "openai": JudgeConfig(
            name="openai",
            kind="openai",
            model=env.get("MCP_EVAL_OPENAI_MODEL", "gpt-4o-mini"),
            base_url=env.get("OPENAI_BASE_URL", OPENAI_DEFAULT_URL),
            api_key_env="OPENAI_API_KEY",
        ),
        "anthropic": JudgeConfig(
            name="anthropic",
            kind="anthropic",
            model=env.get("MCP_EVAL_ANTHROPIC_MODEL", "claude-3-5-haiku-latest"),
            base_url=env.get("ANTHROPIC_BASE_URL", ANTHROPIC_DEFAULT_URL),
            api_key_env="ANTHROPIC_API_KEY",
        ),
    }
    return judges


def _file_judges(path: Path) -> tuple[dict[str, JudgeConfig], str | None]:
    """Read `{"default": name?, "judges": {name: {...}}}`.

    Raises:
        InvalidInputError: the file is missing, not JSON, or a judge entry is invalid.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        # a file judge that names a key variable needs that key unless it says otherwise
        judges = {
            name: JudgeConfig(name=name, **({"key_required": "api_key_env" in spec} | spec))
            for name, spec in raw.get("judges", {}).items()
        }
    except (OSError, json.JSONDecodeError, ValidationError, TypeError, AttributeError) as exc:
        raise InvalidInputError(f"MCP_EVAL_JUDGES_FILE {path} is not a valid judges file: {exc}") from exc
    return judges, raw.get("default")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `env` (default `os.environ`).

    Raises:
        InvalidInputError: a numeric variable or the judges file is invalid.
    """
    env = dict(os.environ if env is None else env)
    judges = _env_judges(env)
    default = env.get("MCP_EVAL_DEFAULT_JUDGE") or None
    if env.get("MCP_EVAL_JUDGES_FILE"):
        extra, file_default = _file_judges(Path(env["MCP_EVAL_JUDGES_FILE"]).expanduser())
        judges |= extra
        default = default or file_default
    roots = [Path(p).expanduser().resolve() for p in env.get("MCP_EVAL_DATA_ROOTS", "").split(os.pathsep) if p]
    try:
        return Settings(
            db_path=default_db_path(env),
            default_judge=default,
            judges=judges,
            data_roots=roots or [Path.cwd().resolve()],
            timeout_s=float(env.get("MCP_EVAL_TIMEOUT_S", 60)),
            attempt_timeout_s=float(env["MCP_EVAL_ATTEMPT_TIMEOUT_S"])
            if env.get("MCP_EVAL_ATTEMPT_TIMEOUT_S")
            else None,
            max_retries=int(env.get("MCP_EVAL_MAX_RETRIES", 3)),
            concurrency=int(env.get("MCP_EVAL_CONCURRENCY", 8)),
            env=env,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        raise InvalidInputError(f"invalid MCP_EVAL_* setting: {exc}") from exc
