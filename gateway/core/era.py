"""The 2026-07-28 protocol era: recognising a modern request and checking its envelope, as pure functions.

A modern request is a self-contained POST: no `initialize`, no session. Its protocol version, client
capabilities and client info travel in every request's `params._meta` (`META_*` keys) and are mirrored in HTTP
headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` for the methods that name something). `envelope`
runs the spec's validation ladder over one decoded request and returns its `Envelope` or a `Rejection` with the
JSON-RPC code the spec assigns (and `HTTP_STATUS` gives the status for it): missing envelope keys -32602, a
header that disagrees with the body -32020, an unsupported version -32022 with `data.supported`. The rungs and
their order follow the `mcp` SDK's `mcp.shared.inbound` (the reference), reimplemented here because importing
the SDK would load its web stack below the transport layer. `param_header_rejection` checks the `Mcp-Param-*`
headers of a `tools/call` against the tool's `x-mcp-header` schema annotations the same way.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core import errors
from gateway.core.jsonrpc import Message

MODERN_VERSIONS = ("2026-07-28",)
LATEST_MODERN = MODERN_VERSIONS[-1]
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META_SUBSCRIPTION = "io.modelcontextprotocol/subscriptionId"
ENVELOPE_KEYS = (META_VERSION, META_CLIENT_INFO, META_CAPABILITIES, META_LOG_LEVEL)

VERSION_HEADER = "mcp-protocol-version"
METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
_ROUTING_HEADERS = tuple(name.encode("latin-1") for name in (VERSION_HEADER, METHOD_HEADER, NAME_HEADER))
PARAM_HEADER_PREFIX = "mcp-param-"
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}  # method → the param Mcp-Name mirrors
INPUT_REQUIRED_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})  # may answer input_required
REMOVED_METHODS = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)  # handshake-era requests that a modern request must not use (404 / -32601)

HEADER_MISMATCH = -32020
MISSING_CAPABILITY = -32021
UNSUPPORTED_VERSION = -32022
HTTP_STATUS = {
    errors.PARSE_ERROR: 400,
    errors.INVALID_REQUEST: 400,
    errors.INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    MISSING_CAPABILITY: 400,
    UNSUPPORTED_VERSION: 400,
    errors.METHOD_NOT_FOUND: 404,
}


@dataclass(frozen=True)
class Envelope:
    """What a modern request says about its client, checked."""

    version: str
    capabilities: dict[str, Any]
    client_info: dict[str, Any] | None
    log_level: str | None


@dataclass(frozen=True)
class Rejection:
    code: int
    message: str
    data: Any = None


def meta_of(message: Message) -> dict[str, Any] | None:
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta if isinstance(meta, dict) else None


def is_modern(message: Any, headers: Mapping[str, str]) -> bool:
    """Whether a POST takes the stateless path: a modern `MCP-Protocol-Version` header, or (without a header) a
    body whose `_meta` names a modern version, or an unknown version with the modern envelope. Everything else is
    the handshake era, exactly as before."""
    version = headers.get(VERSION_HEADER)
    meta = meta_of(message) if isinstance(message, dict) else None
    if version is not None:
        if version in MODERN_VERSIONS:
            return True
        # a version this gateway does not know, on a request that carries the per-request envelope: it is told
        # -32022 with the supported versions (the modern rule), not the handshake era's bare 400
        from gateway.core.jsonrpc import PROTOCOL_VERSIONS

        return version not in PROTOCOL_VERSIONS and meta is not None and META_VERSION in meta
    return meta is not None and meta.get(META_VERSION) in MODERN_VERSIONS


def unsupported(requested: Any) -> Rejection:
    return Rejection(
        UNSUPPORTED_VERSION,
        "Unsupported protocol version",
        {"supported": list(MODERN_VERSIONS), "requested": requested},
    )


def duplicated_header(raw_headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """A routing header sent twice (first-copy and last-copy readers would disagree), or None."""
    names = [name.lower() for name, _ in raw_headers]
    for routing in _ROUTING_HEADERS:
        if names.count(routing) > 1:
            return routing.decode("latin-1")
    return None


def envelope(message: Message, headers: Mapping[str, str] | None) -> Envelope | Rejection:
    """The modern validation ladder (first failing rung wins): envelope keys present → headers agree with the
    body → the version is a supported modern one."""
    meta = meta_of(message)
    if meta is None:
        return Rejection(
            errors.INVALID_PARAMS,
            f"params._meta must be an object carrying the required {META_VERSION!r} and {META_CAPABILITIES!r} keys",
        )
    missing = [key for key in (META_VERSION, META_CAPABILITIES) if key not in meta]
    if missing:
        return Rejection(errors.INVALID_PARAMS, f"params._meta is missing the required key(s): {', '.join(missing)}")
    version = meta[META_VERSION]
    if headers is not None:
        header = _value(headers, VERSION_HEADER)
        if header is None or header != version:
            return Rejection(HEADER_MISMATCH, f"{VERSION_HEADER} header does not match params._meta's {META_VERSION}")
        method = message.get("method")
        if _value(headers, METHOD_HEADER) != method:
            return Rejection(HEADER_MISMATCH, f"{METHOD_HEADER} header does not match the request body's method")
        key = NAMED.get(method) if isinstance(method, str) else None
        if key is not None:
            value = message["params"].get(key)
            if value is not None and decode_header_value(_value(headers, NAME_HEADER)) != value:
                return Rejection(HEADER_MISMATCH, f"{NAME_HEADER} header does not match the request body's {key!r}")
    if not isinstance(version, str):
        return Rejection(errors.INVALID_PARAMS, "the protocol-version envelope value must be a string")
    if version not in MODERN_VERSIONS:
        return unsupported(version)
    capabilities = meta[META_CAPABILITIES]
    if not isinstance(capabilities, dict):
        return Rejection(errors.INVALID_PARAMS, f"params._meta[{META_CAPABILITIES!r}] must be an object")
    info = meta.get(META_CLIENT_INFO)
    level = meta.get(META_LOG_LEVEL)
    return Envelope(
        version, capabilities, info if isinstance(info, dict) else None, level if isinstance(level, str) else None
    )


def _value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value without surrounding whitespace (RFC 9110 §5.5: values exclude surrounding OWS)."""
    value = headers.get(name)
    return value.strip(" \t") if value is not None else None


def without_envelope(params: Any) -> Any:
    """A modern request's params made legacy: the envelope keys and the round fields removed (copies)."""
    if not isinstance(params, dict):
        return params
    out = {k: v for k, v in params.items() if k not in ("inputResponses", "requestState")}
    meta = out.get("_meta")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in ENVELOPE_KEYS}
        if kept:
            out["_meta"] = kept
        else:
            del out["_meta"]
    return out


def with_envelope(params: Any, capabilities: Mapping[str, Any], client_info: Any, log_level: str | None) -> Message:
    """A legacy request's params made modern: the envelope added to `_meta` (copies)."""
    out = dict(params) if isinstance(params, dict) else {}
    meta = dict(out.get("_meta") or {})
    meta[META_VERSION] = LATEST_MODERN
    meta[META_CAPABILITIES] = dict(capabilities)
    if client_info:
        meta[META_CLIENT_INFO] = client_info
    if log_level:
        meta[META_LOG_LEVEL] = log_level
    out["_meta"] = meta
    return out


def initialize_result(discovered: Message, name: str) -> Message:
    """What a handshake-era client is told in `initialize` about a child that speaks 2026-07-28: its discovered
    capabilities, identity and instructions, at the newest handshake version."""
    from gateway.core.jsonrpc import LATEST_VERSION

    info = (discovered.get("_meta") or {}).get(META_SERVER_INFO) or discovered.get("serverInfo") or {"name": name}
    result: Message = {
        "protocolVersion": LATEST_VERSION,
        "capabilities": discovered.get("capabilities") or {},
        "serverInfo": info,
    }
    if discovered.get("instructions"):
        result["instructions"] = discovered["instructions"]
    return result


def complete(result: Any, cacheable: bool = False) -> Any:
    """A result stamped as final for a modern client; a cacheable one also carries the cache hints that are
    true for a bridge: `ttlMs: 0` (the gateway cannot promise it will not change; list changes are announced on
    `subscriptions/listen`) and `cacheScope: private` (views differ per identity)."""
    if not isinstance(result, dict):
        return result
    out = {**result, "resultType": result.get("resultType", "complete")}
    if cacheable:
        out.setdefault("ttlMs", 0)
        out.setdefault("cacheScope", "private")
    return out


# --- header values and Mcp-Param-* headers (SEP: per-argument HTTP headers) ----------------------------------

_B64 = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_SINGLE = frozenset(
    {"items", "contains", "unevaluatedItems", "additionalProperties", "propertyNames", "unevaluatedProperties",
     "not", "if", "then", "else", "contentSchema"}
)  # fmt: skip
_LIST = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP = frozenset({"patternProperties", "dependentSchemas", "$defs", "definitions"})


def decode_header_value(value: str | None) -> str | None:
    """A header value, with the `=?base64?…?=` sentinel decoded (None for a malformed one)."""
    if value is None:
        return None
    match = _B64.fullmatch(value)
    if match is None:
        return value
    payload = match.group("payload")
    try:
        decoded = base64.b64decode(payload, validate=True)
        if base64.b64encode(decoded).decode("ascii") != payload:
            return None
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _positions(root: Any) -> Iterator[tuple[tuple[str, ...] | None, dict[str, Any]]]:
    stack: list[tuple[tuple[str, ...] | None, Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                stack.extend(((*path, n) if path is not None else None, sub) for n, sub in value.items())
            elif key in _SINGLE:
                stack.append((None, value))
            elif key in _LIST and isinstance(value, list):
                stack.extend((None, sub) for sub in value)
            elif key in _MAP and isinstance(value, dict):
                stack.extend((None, sub) for sub in value.values())


_SEEN_SCHEMAS: dict[int, tuple[Any, Any]] = {}  # id(schema) → (schema, its annotations); holding it keeps the id


def _annotations_of(schema: Any) -> list[tuple[tuple[str, ...], str, dict[str, Any]]] | None:
    """`_annotations`, remembered per schema object (a tool's schema is walked once, not on every call)."""
    known = _SEEN_SCHEMAS.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]  # type: ignore[no-any-return]
    if len(_SEEN_SCHEMAS) >= 4096:
        _SEEN_SCHEMAS.clear()
    found = _SEEN_SCHEMAS[id(schema)] = (schema, _annotations(schema))
    return found[1]  # type: ignore[no-any-return]


def _annotations(schema: Any) -> list[tuple[tuple[str, ...], str, dict[str, Any]]] | None:
    """The valid `x-mcp-header` annotations of a tool schema, or None when the schema's annotations are invalid
    (a conforming client then drops the tool and sends no headers, so nothing is validated)."""
    found, seen = [], set()
    for path, node in _positions(schema):
        if "x-mcp-header" not in node:
            continue
        token = node["x-mcp-header"]
        if not path or not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return None
        if node.get("type") not in ("string", "integer", "boolean") or token.lower() in seen:
            return None
        seen.add(token.lower())
        found.append((path, token, node))
    return found


def _render(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, str | int | float) else None


def _at(arguments: Any, path: tuple[str, ...]) -> Any:
    node = arguments
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _matches(kind: Any, value: Any, rendered: str, decoded: str) -> bool:
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "integer" and not isinstance(value, bool) and integral and _DECIMAL.fullmatch(decoded):
        whole, _, fraction = decoded.partition(".")
        return not (fraction and set(fraction) != {"0"}) and int(whole) == int(value)
    return decoded == rendered


def param_header_rejection(schema: Any, arguments: Any, raw_headers: Iterable[tuple[bytes, bytes]]) -> Rejection | None:
    """Each `x-mcp-header`-annotated argument and its `Mcp-Param-<token>` header must agree: present together and
    equal (after sentinel decoding; integers numerically), or absent together. First failure as -32020."""
    annotations = _annotations_of(schema)
    if not annotations:
        return None
    folded: dict[str, str] = {}
    twice: set[str] = set()
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        if name in folded:
            twice.add(name)
        folded[name] = raw_value.decode("latin-1")
    for path, token, node in annotations:
        header = f"Mcp-Param-{token}"
        raw = folded.get(header.lower())
        value = _at(arguments if isinstance(arguments, dict) else {}, path)
        argument = ".".join(path)
        if raw is not None and header.lower() in twice:
            return Rejection(HEADER_MISMATCH, f"{header} header appears more than once")
        rendered = _render(value) if value is not None else None
        if value is None or rendered is None:
            if raw is not None:
                return Rejection(HEADER_MISMATCH, f"{header} header does not match the body's {argument!r} (absent)")
            continue
        if raw is None:
            return Rejection(HEADER_MISMATCH, f"{header} header is missing but the body's {argument!r} is present")
        decoded = decode_header_value(raw)
        if decoded is None:
            return Rejection(HEADER_MISMATCH, f"{header} header carries a malformed base64 sentinel value")
        if not _matches(node.get("type"), value, rendered, decoded):
            return Rejection(HEADER_MISMATCH, f"{header} header does not match the body's {argument!r} argument")
    return None
