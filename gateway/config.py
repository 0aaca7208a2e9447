"""The gateway's configuration: pydantic models for the `mcpServers` file, and the loader that fills them.

Contract: `load_config` reads YAML or JSON (JSON is YAML), expands `${VAR}` and `${VAR:-default}` in
every string value (never in keys; `$${` writes a literal `${`; `:-` also applies to an empty variable),
resolves relative `cwd`, `audit.path` and `jwks_file` against the file's folder, and validates. Every
problem found is reported at once in a `ConfigError`, one line each, as `key.path: what is wrong`; a key
repeated within one mapping is an error too. The `mcpServers` block of a Claude Desktop config pastes in
unchanged; unknown keys are errors so that typos are reported, not ignored.

Server names must give distinct slugs (`gateway.core.naming.slug` of `prefix`, else of the name), since the
slug is what their tools are published under.

Secrets (tokens, HMAC secrets) are `SecretStr`, and servers' `env` and `headers` are left out of the
repr, so none of them appears in a repr, a log or an error; error messages never echo input values.
(`args` and `url` are shown: pass secrets through `env` or `headers`.) This module does no network I/O
and starts nothing.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml  # type: ignore[import-untyped]  # no stubs in the dev deps
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.core.addresses import is_loopback
from gateway.core.naming import slug

MiB = 1024 * 1024
DEFAULT_REDACT_KEYS = [
    "password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "cookie", "private_key",
]  # fmt: skip
_VARIABLE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


class ConfigError(ValueError):
    """The configuration cannot be used; `problems` lists each one as `key.path: what is wrong`."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"invalid configuration in {source}" if source else "invalid configuration"
        super().__init__(head + ":\n" + "\n".join(f"  {problem}" for problem in problems))


def _resolve_path(value: str | None, info: ValidationInfo) -> str | None:
    base = info.context.get("base_dir") if isinstance(info.context, dict) else None
    if value is None or base is None:
        return value
    return os.path.normpath(Path(base) / Path(value).expanduser())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolFilter(_Model):
    """Which of a server's tools are published, as fnmatch globs on the upstream's original names."""

    allow: list[str] = ["*"]
    deny: list[str] = []


class ServerConfig(_Model):
    """One upstream: a stdio child (`command`) or a remote server (`url`).

    Session modes: `shared` (one child for everyone: right for stateless servers), `per-session` (a child per
    client session), `per-identity` (a child per authenticated identity, shared by that identity's sessions:
    right for servers that keep per-user state). A child's environment is the safe part of the gateway's
    (`gateway.core.environment`), its `env_passthrough` names, and its `env`. Cline-style keys paste in with their
    meaning: `disabled` (= not `enabled`), `timeout` (= `request_timeout`), `transportType`, and `autoApprove`,
    which is accepted and ignored here: approving calls is the client's business, the gateway never prompts
    (restrict tools with `tools` or `policies` instead).
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=True)

    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = Field(default={}, repr=False)  # often holds secrets: kept out of repr and logs
    env_passthrough: list[str] = []  # variables of the gateway's own environment this child may see
    cwd: str | None = None
    url: str | None = None
    type: Literal["stdio", "sse", "http", "streamable-http"] | None = None
    headers: dict[str, str] = Field(default={}, repr=False)
    session_mode: Literal["shared", "per-session", "per-identity"] = "shared"
    request_timeout: float = Field(default=300, gt=0)
    startup_timeout: float = Field(default=30, gt=0)
    max_sessions: int | None = Field(default=None, gt=0)
    max_identities: int = Field(default=64, gt=0)
    identity_idle_timeout: float = Field(default=600, gt=0)
    header_to_env: dict[str, str] = {}  # request header → child env var (per-session and per-identity only)
    prefix: str | None = None
    tools: ToolFilter = ToolFilter()
    enabled: bool = True
    disabled: bool | None = None  # Cline's spelling of `enabled: false`
    timeout: float | None = Field(default=None, gt=0)  # Cline's spelling of `request_timeout` (seconds)
    transportType: Literal["stdio", "sse", "streamableHttp", "http"] | None = None  # Cline's `type`
    autoApprove: list[str] = []  # Cline's client-side approval list: accepted, no effect here (see above)

    @field_validator("cwd")
    @classmethod
    def _resolve_cwd(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _resolve_path(value, info)

    @model_validator(mode="after")
    def _check_transport(self) -> ServerConfig:
        self._apply_cline_keys()
        if self.header_to_env and self.session_mode == "shared":
            raise ValueError(
                "`header_to_env` needs `session_mode: per-session` or `per-identity`: a shared child cannot hold "
                "one caller's header"
            )
        for name in self.env_passthrough:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"`env_passthrough` takes variable names; {name!r} is not one")
        if (self.command is None) == (self.url is None):
            raise ValueError("set exactly one of `command` (a local stdio server) or `url` (a remote server)")
        if self.url is not None:
            if not re.match(r"^https?://[^/\s]+", self.url, re.IGNORECASE):
                raise ValueError("`url` must be an http:// or https:// URL")
            if self.type == "stdio":
                raise ValueError("`type: stdio` needs `command`, not `url`; use sse or http for a URL")
        elif self.type not in (None, "stdio"):
            raise ValueError(f"`type: {self.type}` needs `url`; a `command` server is stdio")
        return self

    def _apply_cline_keys(self) -> None:
        if self.disabled is not None:
            if "enabled" in self.model_fields_set and self.enabled == self.disabled:
                raise ValueError("`enabled` and `disabled` disagree; keep one of them")
            self.enabled = not self.disabled
        if self.timeout is not None:
            if "request_timeout" in self.model_fields_set and self.request_timeout != self.timeout:
                raise ValueError("`timeout` and `request_timeout` disagree; keep one of them")
            self.request_timeout = self.timeout
        if self.transportType is not None and self.type is None:
            self.type = {"streamableHttp": "http", "http": "http", "sse": "sse", "stdio": "stdio"}[self.transportType]  # type: ignore[assignment]

    @property
    def kind(self) -> Literal["stdio", "sse", "http"]:
        """The transport: stdio for `command`, sse or http (the default, also `streamable-http`) for `url`."""
        if self.command is not None:
            return "stdio"
        return "sse" if self.type == "sse" else "http"


class TokenConfig(_Model):
    """A static bearer token and the identity it stands for."""

    token: SecretStr = Field(min_length=16)
    identity: str = Field(min_length=1)
    scopes: list[str] = []


class JWTConfig(_Model):
    """JSON Web Tokens signed with an HMAC secret (HS256) or an RSA key (RS256: PEM, JWKS file or URL)."""

    algorithms: list[Literal["HS256", "RS256"]] = Field(default=["HS256"], min_length=1)
    secret: SecretStr | None = None
    public_key: str | None = None
    jwks_file: str | None = None
    jwks_url: str | None = None
    identity_claim: str = "sub"
    scopes_claim: str = "scope"
    audience: str | None = None
    issuer: str | None = None
    leeway: float = Field(default=30, ge=0)

    @field_validator("jwks_file")
    @classmethod
    def _resolve_jwks(cls, value: str | None, info: ValidationInfo) -> str | None:
        path = _resolve_path(value, info)
        if path is not None and not Path(path).is_file():
            raise ValueError(f"`jwks_file` {path} does not exist (or is not a file); write the issuer's JWKS there")
        return path

    @model_validator(mode="after")
    def _check_keys(self) -> JWTConfig:
        if "HS256" in self.algorithms and self.secret is None:
            raise ValueError("HS256 needs `secret` (pass it as ${ENV_VAR})")
        if self.secret is not None and len(self.secret.get_secret_value().encode()) < 32:
            raise ValueError("`secret` must be at least 32 bytes long for HS256 (RFC 7518 section 3.2)")
        sources = [s for s in (self.public_key, self.jwks_file, self.jwks_url) if s is not None]
        if "RS256" in self.algorithms and len(sources) != 1:
            raise ValueError("RS256 needs exactly one of `public_key`, `jwks_file` or `jwks_url`")
        if self.jwks_url is not None and not re.match(r"^https?://", self.jwks_url, re.IGNORECASE):
            raise ValueError("`jwks_url` must be an http:// or https:// URL")
        return self


OAuthAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def _check_url(value: str, what: str, *, path: bool) -> str:
    """An http(s) URL without query or fragment (and, unless `path`, without a path); https unless loopback."""
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL")
    if parts.query or parts.fragment or "#" in value:
        raise ValueError(f"{what} must not have a query or a fragment")
    if not path and parts.path not in ("", "/"):
        raise ValueError(
            f"{what} must be the gateway's public origin (e.g. https://harbor.example.com), without a path: "
            "each endpoint's resource is derived from it (…/mcp, …/servers/<name>/mcp)"
        )
    if parts.scheme.lower() == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"{what} must use https:// (plain http:// is only for loopback hosts)")
    return value


class OAuthConfig(_Model):
    """The gateway as an OAuth 2.1 resource server (RFC 9728, MCP authorization): access tokens are JWTs.

    `resource` is the gateway's public origin; the resource of each endpoint is derived from it
    (`<resource>/mcp`, `<resource>/servers/<name>/mcp`, `<resource>/sse`). A token is accepted when its
    `aud` names the endpoint's resource or the gateway's own, or, when `audience` is set, one of those values.
    `iss` must be one of `authorization_servers` (issuer identifiers, compared as strings); each issuer's keys
    come from `jwks_url` or from the `jwks_uri` of its RFC 8414 / OpenID metadata.
    """

    resource: str
    authorization_servers: list[str] = Field(min_length=1)
    scopes_supported: list[str] = []
    required_scopes: list[str] = []
    jwks_url: str | None = None
    audience: list[str] = []
    algorithms: list[OAuthAlgorithm] = Field(default=["RS256", "ES256"], min_length=1)
    identity_claim: str = "sub"
    scopes_claim: str = "scope"
    leeway: float = Field(default=30, ge=0)
    jwks_cache_seconds: float = Field(default=300, gt=0)  # keys are re-read in the background after this
    jwks_min_refresh_seconds: float = Field(default=10, ge=0)  # an unknown `kid` re-reads keys at most this often
    resource_name: str | None = None
    resource_documentation: str | None = None

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("resource")
    @classmethod
    def _check_resource(cls, value: str) -> str:
        parts = urlsplit(_check_url(value, "`resource`", path=False))
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}"  # the canonical form (RFC 8707, MCP)

    @field_validator("authorization_servers")
    @classmethod
    def _check_issuers(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            _check_url(value, f"entry [{index}]", path=True)
        if len(set(values)) != len(values):
            raise ValueError("lists an authorization server twice")
        return values

    @field_validator("jwks_url", "resource_documentation")
    @classmethod
    def _check_optional_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, "the URL", path=True)

    @model_validator(mode="after")
    def _check_consistency(self) -> OAuthConfig:
        if self.jwks_url is not None and len(self.authorization_servers) > 1:
            raise ValueError(
                "`jwks_url` names one key set but several `authorization_servers` are listed; drop it, and each "
                "server's keys are found from its metadata (jwks_uri)"
            )
        missing = [s for s in self.required_scopes if self.scopes_supported and s not in self.scopes_supported]
        if missing:
            raise ValueError(f"`required_scopes` {missing} are not in `scopes_supported`; add them there")
        return self


class AuthConfig(_Model):
    tokens: list[TokenConfig] = []
    jwt: JWTConfig | None = None
    oauth: OAuthConfig | None = None

    @field_validator("tokens")
    @classmethod
    def _check_distinct(cls, tokens: list[TokenConfig]) -> list[TokenConfig]:
        seen: dict[str, int] = {}
        for index, entry in enumerate(tokens):
            first = seen.setdefault(entry.token.get_secret_value(), index)
            if first != index:
                raise ValueError(f"entry [{index}] repeats the token of entry [{first}]; each token needs its own")
        return tokens


class PolicyRule(_Model):
    """Grants servers and tools to identities (name globs) or scopes; no identities nor scopes = everyone.

    `servers` globs match server slugs (the part of a public name before `__`), `tools` globs match the
    upstream's original tool names.
    """

    identities: list[str] = []
    scopes: list[str] = []
    servers: list[str] = ["*"]
    tools: list[str] = ["*"]


class Bucket(_Model):
    rate: float = Field(gt=0, description="tokens added per second")
    burst: int = Field(ge=1, description="bucket size: calls allowed at once")


class RateLimitsConfig(_Model):
    per_identity: Bucket | None = None
    per_identity_tool: Bucket | None = None
    overrides: dict[str, Bucket] = {}


class AuditConfig(_Model):
    path: str | None = None
    include_arguments: bool = False
    redact_keys: list[str] = DEFAULT_REDACT_KEYS
    redis_stream: bool = False  # with `gateway.state: redis://…`, also XADD each record to `<cluster>:audit`
    redis_maxlen: int = Field(default=100_000, ge=1)  # entries that stream keeps (approximately)

    @field_validator("path")
    @classmethod
    def _resolve_audit(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _resolve_path(value, info)


class ProbesConfig(_Model):
    """What `/readyz` tells a caller: `admin` (default) — status and counts, plus each server's state and last
    error for an admin (`harbor:admin` scope) or when auth is off; `open` — the details for everyone."""

    detail: Literal["admin", "open"] = "admin"


class MetricsConfig(_Model):
    """`/metrics` is open to scrapers, so it names no identity unless `identity_labels` is set."""

    identity_labels: bool = False


class GatewaySettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=4444, ge=0, le=65535)
    auth: AuthConfig | None = None
    policies: list[PolicyRule] = []
    rate_limits: RateLimitsConfig | None = None
    allow_origins: list[str] = []
    cors: list[str] = []
    audit: AuditConfig = AuditConfig()
    max_message_bytes: int = Field(default=16 * MiB, gt=0)
    keep_alive: float = Field(default=15, gt=0)
    page_size: int = Field(default=500, ge=1, le=100_000)  # items per page of merged tools/prompts/resources lists
    allow_unauthenticated: bool = False
    shutdown_grace: float = Field(default=3, ge=0)  # seconds calls in flight may take to finish on SIGINT/SIGTERM
    probes: ProbesConfig = ProbesConfig()
    metrics: MetricsConfig = MetricsConfig()
    allowed_hosts: list[str] = []  # Host names served besides loopback ones (a proxy's public name)
    # Shared state for replicas: `memory` (one process) or `redis://[:password@]host:port/db` (also rediss://)
    state: str = "memory"
    cluster: str = Field(default="harbor", pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # key prefix: clusters may share a Redis
    advertise: str | None = None  # the URL other replicas reach this one at (default: from host and port)
    replica: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # this replica's name

    @field_validator("state")
    @classmethod
    def _check_state(cls, value: str) -> str:
        if value == "memory":
            return value
        from gateway.cluster.connection import parse_state_url

        parse_state_url(value)  # raises ValueError saying what to fix
        return value

    @field_validator("advertise")
    @classmethod
    def _check_advertise(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError(
                f"{value!r} is not a replica address: give the origin other replicas reach this one at, "
                "e.g. http://${POD_IP}:4444 (no path)"
            )
        return value.rstrip("/")

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value or "/" in value or "://" in value or value != value.strip():
                raise ValueError(f"{value!r} is not a host name: give names like mcp.example.com (no scheme, no path)")
        return [v.lower() for v in values]


class HarborConfig(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mcpServers: dict[str, ServerConfig] = Field(  # the key Claude Desktop uses
        validation_alias=AliasChoices("mcpServers", "mcp_servers")
    )
    gateway: GatewaySettings = GatewaySettings()

    @field_validator("mcpServers")
    @classmethod
    def _check_servers(cls, servers: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        if not servers:
            raise ValueError("needs at least one server")
        owners: dict[str, str] = {}
        for name, server in servers.items():
            key = slug(server.prefix or name)
            if key in owners:
                raise ValueError(
                    f"servers {owners[key]!r} and {name!r} both publish as {key!r}; rename one or set `prefix`"
                )
            owners[key] = name
        return servers

    def slugs(self) -> dict[str, str]:
        """Server name → the slug its tools are published under (from `prefix` when set)."""
        return {name: slug(server.prefix or name) for name, server in self.mcpServers.items()}


def _key_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _expand_string(value: str, path: str, environ: Mapping[str, str], problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = _VARIABLE_BODY.match(match.group(1) or "")
        if match.group(1) is None or body is None:
            problems.append(f"{path}: malformed variable reference; write ${{NAME}} or ${{NAME:-default}}")
            return ""
        name, default = body.group(1), body.group(2)
        if environ.get(name):
            return environ[name]
        if default is not None:
            return default
        if name in environ:
            return ""
        problems.append(f"{path}: environment variable {name} is not set (set it, or write ${{{name}:-default}})")
        return ""

    return _VARIABLE.sub(replace, value)


def _expand(value: Any, loc: tuple[int | str, ...], environ: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(value, str):
        return _expand_string(value, _key_path(loc), environ, problems)
    if isinstance(value, Mapping):
        return {key: _expand(item, (*loc, str(key)), environ, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, (*loc, index), environ, problems) for index, item in enumerate(value)]
    return value


def _describe_error(error: Mapping[str, Any]) -> str:
    return _describe(error, HarborConfig)


def _describe(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    kind, message = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = "unknown key" + _suggest(str(loc[-1]), loc[:-1], model)
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "string_type":
        message = "must be a string (quote it in YAML)"
    elif kind == "too_short" and loc[-1:] == ("token",):
        message = "must be at least 16 characters long"
    return f"{_key_path(loc)}: {message}"


def _suggest(key: str, parent: tuple[Any, ...], model: type[BaseModel]) -> str:
    fields = _fields_at(parent, model)
    close = difflib.get_close_matches(key, fields, n=1)
    return f"; did you mean {close[0]!r}?" if close else (f"; expected one of {', '.join(fields)}" if fields else "")


def _fields_at(loc: tuple[Any, ...], model: type[BaseModel]) -> list[str]:
    current: Any = model
    for part in loc:  # parts that are not fields are list indexes or dict keys (server names)
        field = current.model_fields.get("mcpServers" if part == "mcp_servers" else part) if current else None
        if field is not None:
            current = _model_of(field.annotation)
    return list(current.model_fields) if current else []


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def parse_config(data: Mapping[str, Any], base_dir: Path, environ: Mapping[str, str] | None = None) -> HarborConfig:
    """Expand variables in already-parsed data, resolve paths against `base_dir`, and validate.

    Raises:
        ConfigError: every undefined variable and validation problem, each with its key path.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(["(top level): must be a mapping with an `mcpServers` key"])
    problems: list[str] = []
    expanded = _expand(data, (), os.environ if environ is None else environ, problems)
    try:
        config = HarborConfig.model_validate(expanded, context={"base_dir": base_dir})
    except ValidationError as exc:
        unset = tuple(problem.partition(": ")[0] + ":" for problem in problems)  # already explained
        problems += [line for line in map(_describe_error, exc.errors()) if not line.startswith(unset)]
        config = None
    if problems or config is None:
        raise ConfigError(problems) from None
    return config


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]  # untyped base
    """A safe loader that reports a repeated key (a server defined twice) instead of keeping the last one."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}; each key may appear once per mapping", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> HarborConfig:
    """Read, expand and validate a YAML or JSON config file.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML/JSON (the message gives the line), or
            does not validate.
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read the file: {getattr(exc, 'strerror', None) or exc}"], str(file)) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "syntax"
        problem = getattr(exc, "problem", None) or "not valid YAML or JSON"
        raise ConfigError([f"{where}: {problem}"], str(file)) from None
    if data is None:
        raise ConfigError(["(top level): the file is empty; it needs an `mcpServers` mapping"], str(file))
    try:
        return parse_config(data, file.resolve().parent, environ)
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(file)) from None
