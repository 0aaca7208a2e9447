"""Strict tool arguments: an unknown argument name is an error naming the closest valid one, never dropped.

The SDK validates arguments against a model that ignores names it does not know, so a misspelt option
(`precison`) would run the tool with the default and give a normal-looking wrong answer. `close_objects`
marks every object schema that lists `properties` with `additionalProperties: false` (clients see the rule);
`unknown_arguments` walks the arguments alongside the schema (nested objects, arrays, `anyOf`/`oneOf`,
`$ref` into `$defs`) and returns one message per unknown name. Pure functions on JSON data; no `mcp` import.
"""

from __future__ import annotations

import difflib
from typing import Any


def close_objects(schema: dict[str, Any]) -> dict[str, Any]:
    """Set `additionalProperties: false` on every object schema with `properties` (in place); returns it."""
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "properties" in node and node.get("type", "object") == "object":
                node.setdefault("additionalProperties", False)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


def suggestion(name: str, valid: list[str]) -> str:
    """`did you mean 'x'? Valid names: a, b.` for an unknown `name`."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}Valid names: {', '.join(sorted(valid))}."


def unknown_arguments(schema: dict[str, Any], arguments: Any) -> list[str]:
    """One message per argument name that `schema` does not declare, with its path (`options.unit`)."""
    problems: list[str] = []
    _walk(schema, arguments, schema, "", problems)
    return problems


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root.get("$defs", {}).get(ref.rsplit("/", 1)[-1], {}), root)
    return node


def _walk(node: dict[str, Any], value: Any, root: dict[str, Any], path: str, out: list[str]) -> None:
    node = _resolve(node, root)
    branches = [_resolve(b, root) for b in node.get("anyOf", []) + node.get("oneOf", [])]
    if branches:
        fitting = [b for b in branches if _fits(b, value)]
        if len(fitting) == 1:
            _walk(fitting[0], value, root, path, out)
        return
    if isinstance(value, dict) and "properties" in node:
        declared: dict[str, Any] = node["properties"]
        for name, item in value.items():
            where = f"{path}.{name}" if path else name
            if name in declared:
                _walk(declared[name], item, root, where, out)
            elif node.get("additionalProperties") is False:
                out.append(f"unknown argument {where!r}; {suggestion(name, list(declared))}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            _walk(node["items"], item, root, f"{path}[{i}]", out)


def _fits(node: dict[str, Any], value: Any) -> bool:
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "null":
        return value is None
    return not isinstance(value, dict | list)
