"""Strict tool arguments: an unknown argument name is an error that names the closest valid one.

Contract: `close_objects(schema)` marks every object schema that lists `properties` (the tool's
top level and each nested record, through `$defs`) with `additionalProperties: false`, so clients
see the rule; maps such as `expected` ({category: proportion}) keep their open value schema.
`unknown_arguments(schema, arguments)` walks the arguments alongside the schema (objects, arrays,
`anyOf`/`oneOf`, `$ref`) and returns one message per unknown key, e.g. "unknown argument
`equal_variance`; did you mean `equal_var`?" — the SDK's validation would otherwise drop the key
and run the tool with the default, a wrong answer with no warning. No MCP import; difflib ranks
the suggestions.
"""

from __future__ import annotations

import difflib
from typing import Any


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return root.get("$defs", {}).get(ref.rsplit("/", 1)[-1], {})
    return schema


def close_objects(schema: dict[str, Any]) -> dict[str, Any]:
    """Set `additionalProperties: false` on every object schema with `properties`; returns the schema."""
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "properties" in node and node.get("type", "object") == "object":
                node["additionalProperties"] = False
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:
        lowered = {v.lower(): v for v in valid}
        prefix = [v for v in valid if v.startswith(key[:4]) or key.startswith(v[:4])] if len(key) >= 4 else []
        close = [lowered[key.lower()]] if key.lower() in lowered else prefix[:1]
    hint = f"did you mean `{close[0]}`? " if close else ""
    return f"{hint}Valid names here: {', '.join(f'`{v}`' for v in valid)}."


def _walk(schema: dict[str, Any], value: Any, root: dict[str, Any], path: str, out: list[str]) -> None:
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [_resolve(b, root) for b in schema[key]]
            matching = [b for b in branches if _fits(b, value)]
            for branch in matching[:1]:
                _walk(branch, value, root, path, out)
            return
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in props:
                out.append(f"unknown argument `{where}`; {_suggest(key, list(props))}")
            else:
                _walk(props[key], item, root, where, out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(schema["items"], item, root, f"{path}[{i}]", out)


def _fits(schema: dict[str, Any], value: Any) -> bool:
    kind = schema.get("type")
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "null": value is None,
    }.get(kind, not isinstance(value, dict | list) if kind else True)


def unknown_arguments(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """One message per argument name the schema does not define (nested records included)."""
    out: list[str] = []
    _walk(schema, arguments, schema, "", out)
    return out
